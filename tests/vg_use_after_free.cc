// Run under memcheck by ctest in the valgrind build: a write to a freed hak_malloc block
// must be reported ("Invalid write"), which shows hakmem's client requests work.
#include <hakmem/hakmem.h>

int main() {
  volatile char* keep = static_cast<char*>(hak_malloc(48));  // keeps the region mapped
  volatile char* p = static_cast<char*>(hak_malloc(48));
  p[0] = 1;
  hak_free(const_cast<char*>(p));
  p[1] = 2;  // use after free
  hak_free(const_cast<char*>(keep));
  return 0;
}
