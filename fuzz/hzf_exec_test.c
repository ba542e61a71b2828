/* The executor leaves the process's CPU placement as it found it. The baton mode puts an
 * input's threads on one CPU (hzf_exec.c, "one CPU for the baton"); the thread that called
 * hzf_run must get its own mask back after every input, whatever the input did (forks,
 * real thread exits that spawn new workers), and a free-running input, whose threads run
 * at once, must find every thread free to run on every CPU it had.
 */
#include <dirent.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz/hzf_exec.h"

static int failures;

#define EXPECT(cond, ...)                                          \
  do {                                                             \
    if (!(cond)) {                                                 \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);         \
      fprintf(stderr, __VA_ARGS__);                                \
      fputc('\n', stderr);                                         \
      failures++;                                                  \
    }                                                              \
  } while (0)

/* How many of the process's threads have a mask other than `want`; *single gets how
 * many are allowed exactly one CPU. */
static int threads_not_on(const cpu_set_t *want, int *single) {
  DIR *d = opendir("/proc/self/task");
  if (!d) {
    fprintf(stderr, "hzf_exec_test: cannot list /proc/self/task\n");
    exit(2);
  }
  int other = 0;
  *single = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    int tid = atoi(e->d_name);
    cpu_set_t m;
    if (tid <= 0 || sched_getaffinity(tid, sizeof m, &m) != 0) continue; /* ".", or gone */
    other += !CPU_EQUAL(&m, want);
    *single += CPU_COUNT(&m) == 1;
  }
  closedir(d);
  return other;
}

static void run(hzf_mode_t mode, uint32_t seed) {
  uint8_t in[768];
  uint32_t x = seed;
  for (size_t i = 0; i < sizeof in; i++) { /* a fixed pseudo-random input per seed */
    x = x * 1103515245u + 12345u;
    in[i] = (uint8_t)(x >> 16);
  }
  in[0] = 2; /* mt_fuzzer: four threads */
  hzf_options_t opt = {.mode = mode};
  hzf_result_t res;
  hzf_run(&hzf_profile_mt, in, sizeof in, &opt, &res);
  EXPECT(!res.failed, "seed %u: %s at op %u: %s", seed, res.check, res.op, res.actual);
}

int main(void) {
  cpu_set_t home, now;
  if (sched_getaffinity(0, sizeof home, &home) != 0) {
    fprintf(stderr, "hzf_exec_test: sched_getaffinity failed\n");
    return 2;
  }
  int single;
  for (uint32_t seed = 1; seed <= 24; seed++) {
    run(HZF_MODE_BATON, seed);
    EXPECT(sched_getaffinity(0, sizeof now, &now) == 0 && CPU_EQUAL(&now, &home),
           "after baton input %u the caller is left on %d CPUs of %d", seed, CPU_COUNT(&now),
           CPU_COUNT(&home));
  }
  /* The parked workers are still on the last input's CPU: the pinning did happen. */
  threads_not_on(&home, &single);
  if (CPU_COUNT(&home) > 1) EXPECT(single >= 4, "%d threads on one CPU after baton inputs", single);
  for (uint32_t seed = 1; seed <= 4; seed++) {
    run(HZF_MODE_FREE, seed);
    EXPECT(threads_not_on(&home, &single) == 0,
           "after free-running input %u, %d threads are restricted to one CPU", seed, single);
  }
  run(HZF_MODE_BATON, 99); /* and back */
  EXPECT(sched_getaffinity(0, sizeof now, &now) == 0 && CPU_EQUAL(&now, &home),
         "after a baton input following free ones the caller's mask changed");
  if (failures) return 1;
  printf("hzf_exec_test: the executor restored the CPU masks (%d CPUs)\n", CPU_COUNT(&home));
  return 0;
}
