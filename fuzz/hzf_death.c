/* Findings that end the process (fuzz/hzf_death.h): the sanitizer's death callback and
 * the handlers of SIGABRT, SIGSEGV, SIGBUS, SIGFPE and SIGILL print the finding's report,
 * then hand the death on to whoever had it before (libFuzzer: its crash file and stats;
 * nobody: the default action, so the process still dies of what killed it).
 *
 * This runs in a dying process, in a signal handler or the sanitizer's death path: stdio
 * is not async-signal-safe, but the alternative is a crash with no report at all, and
 * the trace the report follows went through the same stream.
 */
#include "fuzz/hzf_death.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/api.h"
#include "fuzz/hzf_exec.h"

/* Weak: a build with no sanitizer (the AFL++ fast binary, the release replays) has no
 * sanitizer runtime. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));
void __sanitizer_report_error_summary(const char *summary);
/* libFuzzer's death callback (it writes the crash file and the final stats), which ours
 * replaces and then calls. Weak: the replay drivers and repro have no libFuzzer. */
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
#define HZF__NSIG (sizeof hzf__signals / sizeof *hzf__signals)
static struct sigaction hzf__prev[HZF__NSIG]; /* the handler each had before ours */
static char hzf__summary[160];                 /* "AddressSanitizer: SEGV", from SUMMARY */
static FILE *_Atomic hzf__out;
static const char *(*_Atomic hzf__replay)(void);
/* Set once this input's report is printed (or being printed): an abort() after it
 * (libFuzzer's finding path, the watchdog's) prints no second one. */
static atomic_int hzf__reported;

void hzf_death_arm(void) { atomic_store(&hzf__reported, 0); }

bool hzf_death_claim(void) { return atomic_exchange(&hzf__reported, 1) == 0; }

/* Every sanitizer report ends with this line (the runtime's default prints it): keep its
 * "<tool>: <kind>" for the report's "actual", then print it as the default does. The
 * kind may be several words ("data race"); the location after it is a path, a
 * "file:line" or a "(module+0x...)".
 * Under TSan this runs inside the report, with the runtime's report and thread-registry
 * locks held: an instrumented access, or a libc call TSan intercepts, can start a report
 * of its own there and wait for those locks forever (two threads reporting races of a
 * blind bug at once hung that way). So nothing here is instrumented, no builtin may
 * become a libc call, and the line goes out through the raw write system call. */
__attribute__((disable_sanitizer_instrumentation, no_builtin)) void
__sanitizer_report_error_summary(const char *summary) {
  static const char prefix[] = "SUMMARY: ";
  const char *s = summary;
  size_t k = 0;
  while (k < sizeof prefix - 1 && s[k] == prefix[k]) k++;
  if (k == sizeof prefix - 1) s += k;
  const char *colon = NULL, *end = s;
  for (const char *q = s; *q && !colon; q++)
    if (q[0] == ':' && q[1] == ' ') colon = q;
  if (colon) {
    end = colon;
    for (const char *w = colon + 2; *w && *w != '(';) {
      const char *e = w;
      bool location = false;
      for (; *e && *e != ' '; e++) location |= *e == '/' || *e == ':';
      if (location) break;
      end = e;
      w = *e ? e + 1 : e;
    }
  } else {
    while (*end) end++;
  }
  size_t n = (size_t)(end - s);
  if (n >= sizeof hzf__summary) n = sizeof hzf__summary - 1;
  for (size_t i = 0; i < n; i++) hzf__summary[i] = s[i];
  hzf__summary[n] = 0;
  size_t len = 0;
  while (summary[len]) len++;
  long w = syscall(SYS_write, 2, summary, len);
  w = syscall(SYS_write, 2, "\n", 1);
  (void)w;
}

/* The report, once per input and only while an op runs (between inputs a crash is the
 * engine's own trouble); then everything is flushed. */
static void hzf__report(const char *check, const char *expected, const char *actual) {
  int op = hzf_current_op();
  FILE *out = atomic_load(&hzf__out);
  if (op >= 0 && out && hzf_death_claim()) {
    hzf_result_t r = {.failed = true, .op = (unsigned)op};
    snprintf(r.check, sizeof r.check, "%s", check);
    snprintf(r.expected, sizeof r.expected, "%s", expected);
    snprintf(r.actual, sizeof r.actual, "%s", actual);
    const char *(*replay)(void) = atomic_load(&hzf__replay);
    hzf_report(out, hzf_last_program(), &r, replay ? replay() : "");
    hz_seed_bug_print(); /* a seeded-bug build (tools/bugzoo) says how often it fired */
  }
  fflush(NULL);
}

/* A sanitizer finding's "actual", the same whether the process died of it or went on:
 * "<tool>: <kind> (the sanitizer report above), during op #i<when>". */
static void hzf__sanitizer_actual(char *actual, size_t n, int op, const char *when) {
  snprintf(actual, n, "%s (the sanitizer report above), during op #%d%s",
           hzf__summary[0] ? hzf__summary : "a sanitizer report", op, when);
}

/* TSan reports and goes on (halt_on_error=0, hzf_target.c), so the executor's next
 * check between ops turns the report into the finding (hzf_death_went_on). Stopping in
 * TSan's death path instead deadlocked: the report holds the runtime's thread-registry
 * and slot locks there, and printing the op trace (instrumented code) waited for a new
 * trace part behind them, forever. Called with those locks held, so it must not be
 * instrumented itself: one relaxed count. */
static atomic_uint hzf__went_on, hzf__went_on_seen;
void __tsan_on_report(const void *report);
__attribute__((disable_sanitizer_instrumentation)) void __tsan_on_report(const void *report) {
  (void)report;
  __atomic_fetch_add((unsigned *)&hzf__went_on, 1, __ATOMIC_RELAXED);
}

bool hzf_death_went_on(char *actual, size_t n, int op) {
  unsigned now = atomic_load(&hzf__went_on);
  if (atomic_exchange(&hzf__went_on_seen, now) == now) return false;
  hzf__sanitizer_actual(actual, n, op, " or before");
  return true;
}

static void hzf__on_sanitizer_death(void) {
  char actual[300];
  hzf__sanitizer_actual(actual, sizeof actual, hzf_current_op(), "");
  hzf__report("sanitizer", "no sanitizer report", actual);
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
    hzf__report("abort", "no abort()", actual);
  } else {
    snprintf(actual, sizeof actual, "%s during op #%d, address %p", hzf__signal_name(sig),
             hzf_current_op(), si ? si->si_addr : NULL);
    hzf__report("signal", "no fatal signal", actual);
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

/* A SIGSEGV, SIGBUS or SIGFPE that a sanitizer handles (it had a handler before ours) is
 * left to it: its report ends in the death callback, where ours prints after it. */
void hzf_death_install(FILE *out, const char *(*replay)(void)) {
  atomic_store(&hzf__out, out);
  atomic_store(&hzf__replay, replay);
  static atomic_bool done;
  if (atomic_exchange(&done, true)) return;
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(hzf__on_sanitizer_death);
  for (unsigned k = 0; k < HZF__NSIG; k++) {
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
