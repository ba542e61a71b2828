/* Runner for HZ_TEST tests: see hz_test.h. */
#include "core/testing/hz_test.h"

#include <stdlib.h>
#include <string.h>

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
