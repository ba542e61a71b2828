/* bazel run //tools:repro -- [--target T] [--mode baton|free|direct] [--quiet] FILE
 *
 * Replays one input deterministically and prints every op with what it did, then the
 * failing op, what the model expected, what hz did and the violated invariant. The
 * target defaults to the one the path names (corpus/<t>_fuzzer/..., regressions/<t>_
 * fuzzer-...), else alloc_fuzzer. Exit 0: no finding; 86: a finding; 2: bad usage or an
 * unreadable file. A relative FILE is relative to the directory `bazel run` was run from.
 *
 * stdout is line-buffered, so the trace up to a crash (an ASan report, an hz internal
 * assertion's abort) is all out even when stdout is a file or a pipe. A crash prints the
 * same report as a failed check, to stdout after the trace, with its HZFUZZ-FINDING line
 * (fuzz/hzf_death.h), then the process dies of it as it would have.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/hzf_death.h"
#include "fuzz/hzf_exec.h"
#include "fuzz/hzf_input.h"

static char hzf__replay[HZF_PATH_MAX + 100];

static const char *hzf__replay_command(void) { return hzf__replay; }

static int hzf__usage(const char *why) {
  if (why) fprintf(stderr, "repro: %s\n", why);
  fprintf(stderr, "usage: repro [--target T] [--mode baton|free|direct] [--quiet] FILE\n"
                  "targets:");
  for (unsigned i = 0; hzf_profiles[i]; i++) fprintf(stderr, " %s_fuzzer", hzf_profiles[i]->name);
  fprintf(stderr, "\n");
  return 2;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const hzf_profile_t *p = NULL;
  hzf_options_t opt = {.mode = HZF_MODE_BATON, .trace = stdout};
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--target") == 0 && i + 1 < argc) {
      if (!(p = hzf_profile_find(argv[++i]))) return hzf__usage("unknown target");
    } else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
      const char *m = argv[++i];
      if (strcmp(m, "baton") == 0) opt.mode = HZF_MODE_BATON;
      else if (strcmp(m, "free") == 0) opt.mode = HZF_MODE_FREE;
      else if (strcmp(m, "direct") == 0) opt.mode = HZF_MODE_DIRECT;
      else return hzf__usage("modes are baton, free and direct");
    } else if (strcmp(argv[i], "--quiet") == 0) {
      opt.trace = NULL;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return hzf__usage("unknown flag");
    } else if (!path) {
      path = argv[i];
    } else {
      return hzf__usage("one file at a time");
    }
  }
  if (!path) return hzf__usage("no input file given");
  if (!p) p = hzf_profile_of_path(path);
  if (!p) p = &hzf_profile_alloc;
  char buf[HZF_PATH_MAX];
  const char *file = hzf_user_path(path, buf, sizeof buf);
  if (!file) {
    fprintf(stderr, "repro: %s: the path is too long\n", path);
    return 2;
  }
  uint8_t *data;
  char err[512];
  long n = hzf_read_input(p, file, &data, err, sizeof err);
  if (n < 0) {
    fprintf(stderr, "repro: %s\n", err);
    return 2;
  }
  hzf_program_t *prog = malloc(sizeof *prog);
  hzf_decode(p, data, (size_t)n, prog);
  printf("# %s: %ld bytes, %u ops, %u threads, target %s_fuzzer, mode %s\n", path, n, prog->nops,
         prog->nthreads, p->name,
         opt.mode == HZF_MODE_FREE ? "free" : opt.mode == HZF_MODE_DIRECT ? "direct" : "baton");
  fflush(stdout);
  snprintf(hzf__replay, sizeof hzf__replay, "bazel run //tools:repro -- --target %s_fuzzer%s %s",
           p->name, opt.mode == HZF_MODE_FREE ? " --mode free" : opt.mode == HZF_MODE_DIRECT
           ? " --mode direct" : "", path);
  hzf_death_install(stdout, hzf__replay_command);
  hzf_death_arm();
  hzf_result_t res;
  int failed = hzf_run(p, data, (size_t)n, &opt, &res);
  if (!failed) {
    printf("# no finding: %llu ops ran, every check passed\n", (unsigned long long)res.ops_run);
  } else {
    hzf_death_claim();
    hzf_report(stdout, hzf_last_program(), &res, hzf__replay);
  }
  free(prog);
  free(data);
  return failed ? HZF_EXIT_FINDING : 0;
}
