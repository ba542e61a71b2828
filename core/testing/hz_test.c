/* Runner for HZ_TEST tests: see hz_test.h. */
#define _POSIX_C_SOURCE 200809L /* fork, pipe, dup2 under -std=c11 */
#include "core/testing/hz_test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HZ_TEST_MAX 256

static struct {
  const char *name;
  hz_test_fn fn;
} hz__tests[HZ_TEST_MAX];
static int hz__ntests;
int hz_test_current_failed;

void hz_test_register(const char *name, hz_test_fn fn) {
  if (hz__ntests == HZ_TEST_MAX) {
    fprintf(stderr, "hz_test: more than %d tests in one binary\n", HZ_TEST_MAX);
    abort();
  }
  hz__tests[hz__ntests].name = name;
  hz__tests[hz__ntests].fn = fn;
  hz__ntests++;
}

void hz_test_fail(const char *file, int line, const char *expr, const char *detail) {
  fprintf(stderr, "%s:%d: check failed: %s%s%s\n", file, line, expr, detail ? ": " : "",
          detail ? detail : "");
  hz_test_current_failed = 1;
}

int hz_test_run_child(void (*child)(void), char *out, size_t cap) {
  int fds[2];
  if (cap == 0 || pipe(fds) != 0) return -1;
  fflush(NULL); /* nothing buffered is written twice */
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    child();
    _exit(0);
  }
  close(fds[1]);
  size_t n = 0;
  ssize_t r;
  char spill[4096];
  /* Read to the end even past cap: a child blocked on a full pipe would never exit. */
  while ((r = read(fds[0], n < cap - 1 ? out + n : spill,
                   n < cap - 1 ? cap - 1 - n : sizeof spill)) > 0)
    if (n < cap - 1) n += (size_t)r;
  out[n] = 0;
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

int main(int argc, char **argv) {
  const char *filter = argc > 1 ? argv[1] : NULL;
  int passed = 0, failed = 0;
  for (int i = 0; i < hz__ntests; i++) {
    if (filter && !strstr(hz__tests[i].name, filter)) continue;
    printf("[ RUN      ] %s\n", hz__tests[i].name);
    fflush(stdout);
    hz_test_current_failed = 0;
    hz__tests[i].fn();
    printf("[ %s ] %s\n", hz_test_current_failed ? " FAILED " : "      OK", hz__tests[i].name);
    if (hz_test_current_failed) failed++;
    else passed++;
  }
  if (passed + failed == 0) {
    fprintf(stderr, "hz_test: no test matched%s%s\n", filter ? " " : "", filter ? filter : "");
    return 2;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
