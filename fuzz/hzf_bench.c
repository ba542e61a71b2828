/* bazel run //fuzz:bench -- [--seconds S] [--len BYTES] [--target T]
 *
 * The cost of the fuzz harness, per target, on one fixed set of pseudo-random inputs
 * (the same bytes in every mode, so the same ops):
 *
 *   direct, unchecked   every op on one thread, model bookkeeping only: the raw ops
 *   direct, checked     the same with every model check (fills, contents, overlap,
 *                       census, the whole-heap check after every op or every 16th)
 *   baton, checked      the deterministic multithreaded mode the fuzzers run
 *   free, checked       the free-running mode (barriers every 64 ops)
 *
 * It prints exec/s and ops/s for each, the checking cost (unchecked ops/s over checked
 * ops/s; the goal is at most 3x) and baton exec/s as a share of direct (single-threaded)
 * exec/s (the goal is at least 30%). Built without sanitizers or coverage, against the
 * release-assertion core, so it measures the harness, not ASan.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz/hzf_api.h"
#include "fuzz/hzf_exec.h"

#define HZF_BENCH_INPUTS 64u

static double hzf__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
  double exec_s, ops_s;
} hzf_rate_t;

/* Runs the inputs round-robin for at least `seconds`; -1 exec/s on a finding. */
static hzf_rate_t hzf__measure(const hzf_profile_t *p, uint8_t *const *in, const size_t *len,
                               hzf_mode_t mode, bool unchecked, double seconds) {
  hzf_options_t opt = {.mode = mode, .unchecked = unchecked};
  hzf_result_t res;
  uint64_t execs = 0, ops = 0;
  double t0 = hzf__now(), t;
  do {
    for (unsigned i = 0; i < HZF_BENCH_INPUTS; i++) {
      if (hzf_run(p, in[i], len[i], &opt, &res)) {
        /* A finding on the clean core: keep the input for repro. */
        char path[256], replay[400];
        snprintf(path, sizeof path, "%s/hzf_bench_%s_%u", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                 p->name, i);
        FILE *f = fopen(path, "wb");
        if (f) fwrite(in[i], 1, len[i], f), fclose(f);
        snprintf(replay, sizeof replay, "bazel run //tools:repro -- --target %s_fuzzer%s %s",
                 p->name, mode == HZF_MODE_FREE ? " --mode free" : mode == HZF_MODE_DIRECT ?
                 " --mode direct" : "", path);
        hzf_report(stderr, hzf_last_program(), &res, replay);
        return (hzf_rate_t){-1, -1};
      }
      execs++;
      ops += res.ops_run;
    }
    t = hzf__now() - t0;
  } while (t < seconds);
  return (hzf_rate_t){(double)execs / t, (double)ops / t};
}

int main(int argc, char **argv) {
  double seconds = 1.0;
  size_t maxlen = 1024;
  const char *only = NULL; /* comma-separated targets, in the order to run */
  const char *modes = "du,dc,bc,fc"; /* direct unchecked, direct/baton/free checked */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--len") == 0 && i + 1 < argc) maxlen = (size_t)atol(argv[++i]);
    else if (strcmp(argv[i], "--target") == 0 && i + 1 < argc) {
      only = argv[++i];
      char *list = strdup(only);
      for (char *t = strtok(list, ","); t; t = strtok(NULL, ","))
        if (!hzf_profile_find(t)) {
          fprintf(stderr, "bench: unknown target %s\n", t);
          return 2;
        }
      free(list);
    } else if (strcmp(argv[i], "--modes") == 0 && i + 1 < argc) {
      modes = argv[++i];
    } else {
      fprintf(stderr, "usage: bench [--seconds S] [--len BYTES] [--target T[,T...]] [--modes du,dc,bc,fc]\n");
      return 2;
    }
  }
  if (seconds <= 0 || maxlen < 6 || maxlen > HZF_OP_BYTES * HZF_MAX_OPS) {
    fprintf(stderr, "bench: --seconds > 0 and --len in 6..%u\n", HZF_OP_BYTES * HZF_MAX_OPS);
    return 2;
  }
  /* xorshift64*: the same inputs on every run and machine. */
  uint64_t x = 0x9E3779B97F4A7C15ull;
  uint8_t *in[HZF_BENCH_INPUTS];
  size_t len[HZF_BENCH_INPUTS];
  for (unsigned i = 0; i < HZF_BENCH_INPUTS; i++) {
    len[i] = maxlen / 2 + (size_t)(i * 7919u) % (maxlen / 2 + 1);
    in[i] = malloc(len[i]);
    for (size_t k = 0; k < len[i]; k++) {
      x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
      in[i][k] = (uint8_t)((x * 0x2545F4914F6CDD1Dull) >> 56);
    }
  }
  printf("hzfuzz bench: %u pseudo-random inputs of %zu..%zu bytes (up to %zu ops), "
         ">= %.1f s per mode\n\n", HZF_BENCH_INPUTS, maxlen / 2, maxlen, maxlen / HZF_OP_BYTES,
         seconds);
  printf("%-16s %20s %20s %20s %20s %9s %8s\n", "target", "direct unchecked", "direct checked",
         "baton checked", "free checked", "check", "baton/");
  printf("%-16s %20s %20s %20s %20s %9s %8s\n", "", "exec/s  ops/s", "exec/s  ops/s",
         "exec/s  ops/s", "exec/s  ops/s", "cost", "direct");
  int rc = 0;
  const hzf_profile_t *order[16];
  unsigned norder = 0;
  char *list = only ? strdup(only) : NULL;
  if (list)
    for (char *t = strtok(list, ","); t && norder < 16; t = strtok(NULL, ","))
      order[norder++] = hzf_profile_find(t);
  else
    for (unsigned k = 0; hzf_profiles[k]; k++) /* the shim's needs the shim linked in */
      if (hzf_api_available(hzf_profiles[k])) order[norder++] = hzf_profiles[k];
  free(list);
  for (unsigned k = 0; k < norder; k++) {
    const hzf_profile_t *p = order[k];
    static const char *const tag[4] = {"du", "dc", "bc", "fc"};
    static const hzf_mode_t mode[4] = {HZF_MODE_DIRECT, HZF_MODE_DIRECT, HZF_MODE_BATON,
                                       HZF_MODE_FREE};
    hzf_rate_t r[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
    for (unsigned m = 0; m < 4; m++)
      if (strstr(modes, tag[m])) r[m] = hzf__measure(p, in, len, mode[m], m == 0, seconds);
    char name[32];
    snprintf(name, sizeof name, "%s_fuzzer", p->name);
    printf("%-16s", name);
    for (unsigned m = 0; m < 4; m++) printf(" %8.0f %11.0f", r[m].exec_s, r[m].ops_s);
    if (r[1].ops_s <= 0 || r[2].exec_s <= 0 || r[0].ops_s <= 0) {
      printf("   a finding (above)\n");
      rc = 1;
      continue;
    }
    double cost = r[0].ops_s / r[1].ops_s, share = r[2].exec_s / r[1].exec_s;
    printf(" %8.2fx %7.0f%%%s\n", cost, 100 * share,
           cost > 3 || share < 0.3 ? "  (misses a goal: cost <= 3x, baton >= 30%)" : "");
  }
  for (unsigned i = 0; i < HZF_BENCH_INPUTS; i++) free(in[i]);
  return rc;
}
