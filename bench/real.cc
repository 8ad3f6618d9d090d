// real: runs one real program and measures it from outside. The allocator reaches the program
// the same way as every workload here: ci/bench.sh runs this wrapper under LD_PRELOAD and the
// child inherits it. The wrapper itself allocates nothing while the child runs.
//
//   bench_real [--name NAME] [--label LABEL] -- PROGRAM [ARGS...]
//
// Prints one line once the child exits with status 0:
//   RESULT name=real program=LABEL seconds=... user_seconds=... sys_seconds=... peak_rss_kb=...
// (seconds = wall time from fork to the child's exit; user/sys from the child's rusage;
// peak_rss_kb = the child's high-water mark (ru_maxrss). LABEL defaults to PROGRAM's base
// name.) A failing child: its status on stderr, exit 1, no RESULT line.
//
// The wrapper ends with _exit: exit handlers of the preloaded allocator do not run in it, so
// a HAKMEM_STATS_JSON file holds the child's statistics, not the wrapper's.
#include <sys/resource.h>
#include <sys/wait.h>

#include "common.h"

int main(int argc, char** argv) {
  const char* name = "real";
  const char* label = nullptr;
  int i = 1;
  for (; i < argc; ++i) {
    if (strcmp(argv[i], "--") == 0) {
      ++i;
      break;
    }
    if (bench::arg_str(argc, argv, i, "--name", &name) ||
        bench::arg_str(argc, argv, i, "--label", &label))
      continue;
    i = argc;
  }
  if (i >= argc) {
    fprintf(stderr, "usage: %s [--name NAME] [--label LABEL] -- PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  char** child_argv = argv + i;
  if (!label) {
    const char* slash = strrchr(child_argv[0], '/');
    label = slash ? slash + 1 : child_argv[0];
  }

  fflush(nullptr);
  double t0 = bench::now_seconds();
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    execvp(child_argv[0], child_argv);
    perror(child_argv[0]);
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  if (wait4(pid, &status, 0, &ru) < 0) {
    perror("wait4");
    return 1;
  }
  double seconds = bench::now_seconds() - t0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFSIGNALED(status))
      fprintf(stderr, "%s: killed by signal %d\n", child_argv[0], WTERMSIG(status));
    else
      fprintf(stderr, "%s: exit status %d\n", child_argv[0], WEXITSTATUS(status));
    fflush(nullptr);
    _exit(1);
  }
  auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec * 1e-6; };
  printf(
      "RESULT name=%s program=%s seconds=%.6f user_seconds=%.6f sys_seconds=%.6f "
      "peak_rss_kb=%ld\n",
      name, label, seconds, secs(ru.ru_utime), secs(ru.ru_stime), ru.ru_maxrss);
  fflush(nullptr);
  _exit(0);
}
