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
 * A finding that ends the process without a check failing prints the same report, with
 * a check naming what ended it (hzf__install, below): "abort" (an hz internal assertion
 * or misuse report, whose line is just above, or another abort()), "sanitizer" (an ASan
 * or UBSan report, SEGV included), "signal" (SIGSEGV, SIGBUS, SIGFPE or SIGILL with no
 * sanitizer handling it). Both binaries install this once, at their first input; under
 * libFuzzer it then chains to libFuzzer's own handling, which writes the crash file.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sigaction, siginfo_t (the entry builds with -std=c11) */
#endif
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
/* Set once this input's report is printed (or being printed), so an abort() after it
 * (libFuzzer's finding path, the watchdog's) does not print a second one. */
static atomic_int hzf__reported;

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
/* libFuzzer's inline coverage counters are plain bytes that every thread increments,
 * racy by design (a lost count costs nothing): TSan must not report them, and only them. */
const char *__tsan_default_suppressions(void);
/* TSan calls it while initialising, before it could run any instrumented code. */
__attribute__((disable_sanitizer_instrumentation)) const char *__tsan_default_suppressions(void) {
  return "race:__start___sancov_cntrs\nrace:fuzzer::TracePC\n";
}
/* A data race is a finding like any other: stop at the first report (TSan's default is to
 * print and go on), so libFuzzer keeps the input. */
const char *__tsan_default_options(void);
__attribute__((disable_sanitizer_instrumentation)) const char *__tsan_default_options(void) {
  return "halt_on_error=1";
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
  atomic_store(&hzf__reported, 1);
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

/* ---- findings that end the process ---------------------------------------------- */

/* Weak: a build with no sanitizer (the AFL++ fast binary) has no sanitizer runtime. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));
void __sanitizer_report_error_summary(const char *summary);
/* libFuzzer's death callback (it writes the crash file and the final stats), which ours
 * replaces and then calls. Weak: the replay driver has no libFuzzer. */
extern void hzf__libfuzzer_death(void) __asm__("_ZN6fuzzer6Fuzzer19StaticDeathCallbackEv")
    __attribute__((weak));

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HZF_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HZF_SANITIZED 1
#endif
#endif
#ifndef HZF_SANITIZED
#define HZF_SANITIZED 0
#endif

static const int hzf__signals[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
static struct sigaction hzf__prev[5]; /* the handler each had before ours, to chain to */
static char hzf__summary[160];        /* "AddressSanitizer: SEGV", from the SUMMARY line */

/* Every sanitizer report ends with this line (the runtime's default prints it): keep its
 * "<tool>: <kind>" for the report's "actual", then print it as the default does. */
void __sanitizer_report_error_summary(const char *summary) {
  const char *s = strncmp(summary, "SUMMARY: ", 9) == 0 ? summary + 9 : summary;
  const char *colon = strstr(s, ": ");
  size_t n = colon ? (size_t)(colon - s) + 2 + strcspn(colon + 2, " ") : strlen(s);
  if (n >= sizeof hzf__summary) n = sizeof hzf__summary - 1;
  memcpy(hzf__summary, s, n);
  hzf__summary[n] = 0;
  ssize_t w = write(2, summary, strlen(summary));
  w = write(2, "\n", 1);
  (void)w;
}

/* The report of a finding that ends the process, once per input and only while an op
 * runs (between inputs it is libFuzzer's own trouble); then everything is flushed. */
static void hzf__report_death(const char *check, const char *expected, const char *actual) {
  int op = hzf_current_op();
  if (op >= 0 && atomic_exchange(&hzf__reported, 1) == 0) {
    hzf_result_t r = {.failed = true, .op = (unsigned)op};
    snprintf(r.check, sizeof r.check, "%s", check);
    snprintf(r.expected, sizeof r.expected, "%s", expected);
    snprintf(r.actual, sizeof r.actual, "%s", actual);
    hzf_report(stderr, hzf_last_program(), &r, hzf__save());
    hz_seed_bug_print();
  }
  fflush(NULL);
}

static void hzf__on_sanitizer_death(void) {
  char actual[300];
  snprintf(actual, sizeof actual, "%s (the sanitizer report above), during op #%d",
           hzf__summary[0] ? hzf__summary : "a sanitizer report", hzf_current_op());
  hzf__report_death("sanitizer", "no sanitizer report", actual);
  if (hzf__libfuzzer_death) hzf__libfuzzer_death();
}

static const char *hzf__signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV (invalid memory access)";
    case SIGBUS: return "SIGBUS (bus error)";
    case SIGFPE: return "SIGFPE (arithmetic exception)";
    case SIGILL: return "SIGILL (illegal instruction)";
    default: return "a fatal signal";
  }
}

static void hzf__on_signal(int sig, siginfo_t *si, void *uc) {
  int saved_errno = errno;
  char actual[300];
  if (sig == SIGABRT) {
    snprintf(actual, sizeof actual, "abort() during op #%d: an hz internal assertion or "
             "misuse report (its \"hz: ...\" line is above), or another abort()",
             hzf_current_op());
    hzf__report_death("abort", "no abort()", actual);
  } else {
    snprintf(actual, sizeof actual, "%s during op #%d, address %p", hzf__signal_name(sig),
             hzf_current_op(), si ? si->si_addr : NULL);
    hzf__report_death("signal", "no fatal signal", actual);
  }
  unsigned k = 0;
  while (hzf__signals[k] != sig) k++;
  const struct sigaction *prev = &hzf__prev[k];
  errno = saved_errno;
  if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) {
    prev->sa_sigaction(sig, si, uc); /* libFuzzer: its crash file, then _Exit */
    return;
  }
  if (!(prev->sa_flags & SA_SIGINFO) && prev->sa_handler != SIG_DFL &&
      prev->sa_handler != SIG_IGN) {
    prev->sa_handler(sig);
    return;
  }
  /* Nobody else handles it: die of it as we would have. A raised signal is delivered when
   * the handler returns; a fault recurs at the same instruction. */
  signal(sig, SIG_DFL);
  if (si == NULL || si->si_code <= 0) raise(sig);
}

/* Once, at the first input: by then libFuzzer has installed its death callback and its
 * signal handlers, which ours print before and then chain to. A SIGSEGV, SIGBUS or
 * SIGFPE that a sanitizer handles (it had a handler before ours) is left to it: its
 * report ends in the death callback, where ours prints after the sanitizer's report. */
static void hzf__install(void) {
  static bool done;
  if (done) return;
  done = true;
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(hzf__on_sanitizer_death);
  for (unsigned k = 0; k < sizeof hzf__signals / sizeof *hzf__signals; k++) {
    int sig = hzf__signals[k];
    if (sigaction(sig, NULL, &hzf__prev[k]) != 0) continue;
    bool handled = (hzf__prev[k].sa_flags & SA_SIGINFO) ? hzf__prev[k].sa_sigaction != NULL
                   : hzf__prev[k].sa_handler != SIG_DFL && hzf__prev[k].sa_handler != SIG_IGN;
    if (HZF_SANITIZED && sig != SIGABRT && sig != SIGILL && handled) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = hzf__on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hzf__install();
  atomic_store(&hzf__reported, 0);
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
