// preload.cxx_runtime: a C++ program under libhakmem.so (the runtime is loaded first).
#include <dlfcn.h>

#include <cstdio>

extern "C" int hakmem_cxx_runtime_checks();

int main() {
  if (!dlsym(RTLD_DEFAULT, "hak_malloc")) {
    std::fprintf(stderr, "cxx_runtime: not running under libhakmem.so\n");
    return 1;
  }
  int failures = hakmem_cxx_runtime_checks();
  std::printf("cxx_runtime: %d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
