/* The libFuzzer entry point of one target (HZF_TARGET names its profile), shared by the
 * libFuzzer binary and the standalone replay driver.
 *
 * A failed check prints the report (decoded ops up to the failing one, the check, what
 * the model expected and what hz did, the line "HZFUZZ-FINDING: ..." and a one-line
 * replay command) and then aborts under libFuzzer, so libFuzzer saves the input too;
 * the standalone driver exits with HZF_EXIT_FINDING instead.
 *
 * Under libFuzzer with $HZF_FINDINGS_DIR set (run_fuzzer.sh sets it to the crash folder)
 * the input is also written there as finding-<hash>, so the replay command printed with
 * the report names a file that exists before libFuzzer writes its own copy.
 *
 * A finding that ends the process without a check failing (a sanitizer report, an
 * abort, a fatal signal) prints the same report, with a check naming what ended it
 * (fuzz/hzf_death.h); under libFuzzer it then chains to libFuzzer's own handling, which
 * writes the crash file.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz/hzf_death.h"
#include "fuzz/hzf_exec.h"
#include "fuzz/hzf_target.h"

#ifndef HZF_TARGET
#error "HZF_TARGET must name a profile, e.g. -DHZF_TARGET=\"tls_sll\""
#endif
#ifndef HZF_DEFAULT_MODE
#define HZF_DEFAULT_MODE HZF_MODE_BATON
#endif

static hzf_options_t hzf__opt = {.mode = HZF_DEFAULT_MODE};
static bool hzf__mode_set;
static const char *hzf__input_name; /* set by the standalone driver */
static const uint8_t *hzf__data;    /* the input running now, for hzf__save */
static size_t hzf__size;
static char hzf__replay[1200];

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
/* libFuzzer's inline coverage counters are plain bytes that every thread increments,
 * racy by design (a lost count costs nothing): TSan must not report them, and only them. */
const char *__tsan_default_suppressions(void);
/* TSan calls it while initialising, before it could run any instrumented code. */
__attribute__((disable_sanitizer_instrumentation)) const char *__tsan_default_suppressions(void) {
  return "race:__start___sancov_cntrs\nrace:fuzzer::TracePC\n";
}
/* A data race is a finding like any other, but TSan prints it and goes on: the executor
 * fails the op after it (hzf_death.c says why not TSan's own halt), so libFuzzer keeps
 * the input. Not a signal-unsafe call in a signal handler, though: libFuzzer's own
 * SIGTERM/SIGINT handler allocates, and TSan's report of it, made while the worker
 * threads run on, deadlocked the process, so a fuzzer stopped by a campaign or a soak
 * never exited. hz itself runs in no signal handler. */
const char *__tsan_default_options(void);
__attribute__((disable_sanitizer_instrumentation)) const char *__tsan_default_options(void) {
  return "halt_on_error=0:report_signal_unsafe=0";
}
#endif
#endif

const hzf_profile_t *hzf_target_profile(void) { return hzf_profile_find(HZF_TARGET); }

int hzf_parse_mode(const char *s, hzf_mode_t *out) {
  if (strcmp(s, "baton") == 0) *out = HZF_MODE_BATON;
  else if (strcmp(s, "free") == 0) *out = HZF_MODE_FREE;
  else if (strcmp(s, "direct") == 0) *out = HZF_MODE_DIRECT;
  else return -1;
  return 0;
}

void hzf_target_configure(hzf_mode_t mode, const char *input_name) {
  hzf__opt.mode = mode;
  hzf__mode_set = true;
  hzf__input_name = input_name;
}

/* The replay command for the running input; under libFuzzer, after saving it. */
static const char *hzf__save(void) {
  hzf_death_claim();
  const char *mode = hzf__opt.mode == HZF_MODE_FREE ? " --mode free" : "";
  if (hzf__input_name) {
    snprintf(hzf__replay, sizeof hzf__replay, "bazel run //tools:repro -- --target %s_fuzzer%s %s",
             HZF_TARGET, mode, hzf__input_name);
    return hzf__replay;
  }
  const char *dir = getenv("HZF_FINDINGS_DIR");
  if (!dir || !*dir) { /* run by hand: libFuzzer's own crash file is the only copy */
    snprintf(hzf__replay, sizeof hzf__replay, "bazel run //tools:repro -- --target %s_fuzzer%s "
             "<the crash file libFuzzer names below>", HZF_TARGET, mode);
    return hzf__replay;
  }
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: a stable name per input */
  for (size_t i = 0; i < hzf__size; i++) h = (h ^ hzf__data[i]) * 0x100000001b3ull;
  char path[1024];
  snprintf(path, sizeof path, "%s/finding-%016llx", dir, (unsigned long long)h);
  FILE *f = fopen(path, "wb");
  bool ok = f && fwrite(hzf__data, 1, hzf__size, f) == hzf__size;
  if (f && fclose(f) != 0) ok = false;
  if (ok)
    snprintf(hzf__replay, sizeof hzf__replay,
             "bazel run //tools:repro -- --target %s_fuzzer%s %s%s", HZF_TARGET, mode,
             path[0] == '/' ? "" : "$PWD/", path);
  else
    snprintf(hzf__replay, sizeof hzf__replay,
             "bazel run //tools:repro -- --target %s_fuzzer%s <the crash file libFuzzer "
             "writes below> (could not write %s)", HZF_TARGET, mode, path);
  return hzf__replay;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* At the first input, not earlier: libFuzzer's handlers are in place by then, and the
   * death reports chain to them. */
  hzf_death_install(stderr, hzf__save);
  hzf_death_arm();
  if (!hzf__mode_set) {
    const char *env = getenv("HZF_MODE");
    if (env && hzf_parse_mode(env, &hzf__opt.mode) != 0)
      fprintf(stderr, "hzfuzz: HZF_MODE=%s is not baton, free or direct; using baton\n", env);
    hzf__opt.abort_on_hang = hzf__input_name == NULL;
    hzf__mode_set = true;
  }
  hzf__opt.save = hzf__save;
  hzf__data = data;
  hzf__size = size;
  hzf_result_t res;
  if (hzf_run(hzf_target_profile(), data, size, &hzf__opt, &res) == 0) return 0;
  hzf_report(stderr, hzf_last_program(), &res, hzf__save());
  hz_seed_bug_print(); /* a seeded-bug build (tools/bugzoo) says how often it fired */
  fflush(NULL);
  if (hzf__input_name) exit(HZF_EXIT_FINDING);
  abort();
}
