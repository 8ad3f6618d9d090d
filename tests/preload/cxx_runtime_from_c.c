/* preload.cxx_runtime_from_c: a C program under libhakmem.so. The C++ runtime must not
 * be in the process until the program dlopens C++ code (the checks module), whose
 * operator new is then hakmem's and must still throw std::bad_alloc. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static int mapped(const char* name) {
  FILE* f = fopen("/proc/self/maps", "r");
  char line[512];
  int found = 0;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strstr(line, name)) found = 1;
  fclose(f);
  return found;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CHECKS_MODULE\n", argv[0]);
    return 2;
  }
  if (!dlsym(RTLD_DEFAULT, "hak_malloc")) {
    fprintf(stderr, "cxx_runtime_from_c: not running under libhakmem.so\n");
    return 1;
  }
  if (mapped("libstdc++") != 0) {
    fprintf(stderr, "cxx_runtime_from_c: libstdc++ is mapped before any C++ code\n");
    return 1;
  }
  void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "cxx_runtime_from_c: dlopen: %s\n", dlerror());
    return 1;
  }
  int (*run)(void) = (int (*)(void))dlsym(h, "hakmem_cxx_runtime_checks");
  if (!run) return 1;
  int failures = run();
  printf("cxx_runtime_from_c: %d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
