/* Run under LD_PRELOAD=libhakmem.so by preload.lifecycle (test_lifecycle.py): process
 * start-up, thread exit and fork in the shapes that once deadlocked or leaked a context.
 * Plain C, not linked to hakmem. Each mode prints "<mode>-done" and frees what it
 * allocated, so the exit report must show only the main thread's context.
 *   atexit-table  a constructor registers 40 atexit handlers (glibc grows its table with
 *                 calloc while holding its atexit lock), then mallocs
 *   tls-rounds    a thread's key destructor re-arms itself for 4 rounds (glibc's limit)
 *                 and mallocs in each round
 *   close-stderr  an atexit handler registered by main (so it runs before hakmem's)
 *                 closes stderr, as coreutils' close_stdout does
 *   atfork        main registers a fork prepare handler that mallocs a large block
 *                 (hakmem's large lock) before its first malloc, then forks: hakmem's
 *                 prepare handler must run after it (registered earlier) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void nothing(void) {}

/* A malloc the compiler cannot elide (free(malloc(n)) may be optimised away). */
static void* volatile g_sink;
static void malloc_and_free(size_t n) {
  g_sink = malloc(n);
  free(g_sink);
}

static void* from_constructor;

__attribute__((constructor)) static void fill_atexit_table(void) {
  const char* mode = getenv("PROBE_MODE");
  if (!mode || strcmp(mode, "atexit-table") != 0) return;
  for (int i = 0; i < 40; ++i) atexit(nothing);
  from_constructor = malloc(100);
}

enum { kRounds = 4 };
static pthread_key_t g_key;
static void* g_late[kRounds];
static int g_round;

static void rearm(void* v) {
  if (g_round < kRounds) g_late[g_round++] = malloc(64);
  if (g_round < kRounds) pthread_setspecific(g_key, v);
}

static void* tls_thread(void* arg) {
  (void)arg;
  malloc_and_free(64); /* the thread's own context, exited in round 1 */
  pthread_setspecific(g_key, &g_key);
  return NULL;
}

static void prepare_that_mallocs(void) {
  malloc_and_free((size_t)4 << 20);
}

static void close_stderr(void) {
  close(2);
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "atexit-table") == 0) {
    if (!from_constructor) return 1;
    free(from_constructor);
  } else if (strcmp(mode, "tls-rounds") == 0) {
    /* hakmem is initialised by now (its key comes first in each destructor round). */
    malloc_and_free(1);
    pthread_key_create(&g_key, rearm);
    pthread_t t;
    if (pthread_create(&t, NULL, tls_thread, NULL) != 0) return 1;
    pthread_join(t, NULL);
    if (g_round != kRounds) {
      fprintf(stderr, "lifecycle_probe: %d destructor rounds, expected %d\n", g_round, kRounds);
      return 1;
    }
    for (int i = 0; i < kRounds; ++i) free(g_late[i]);
  } else if (strcmp(mode, "close-stderr") == 0) {
    malloc_and_free(64);
    atexit(close_stderr);
  } else if (strcmp(mode, "atfork") == 0) {
    pthread_atfork(prepare_that_mallocs, NULL, NULL);
    malloc_and_free(64);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      malloc_and_free(100);
      _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  } else {
    fprintf(stderr, "usage: lifecycle_probe atexit-table|tls-rounds|close-stderr|atfork\n");
    return 2;
  }
  printf("%s-done\n", mode);
  return 0;
}
