/* The system under test, as the property engine sees it (prop.h): hz with the fuzz
 * harness's page source (so properties can inject OS failures, hzf_oom.h) and its misuse
 * hook (so a misuse report is recorded for the property to check, hzf_faults()). */
#include <stdio.h>

#include "core/hz.h"
#include "core/hz_debug.h"
#include "core/thread.h"
#include "fuzz/hzf_exec.h"
#include "fuzz/hzf_oom.h"
#include "props/prop.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
/* The harness and core carry libFuzzer's inline counters, plain bytes every thread bumps
 * (racy by design, as fuzz/hzf_target.c says): TSan must not report them, and only them. */
const char *__tsan_default_suppressions(void);
__attribute__((disable_sanitizer_instrumentation)) const char *__tsan_default_suppressions(void) {
  return "race:__start___sancov_cntrs\n";
}
#endif
#endif

void prop_env_init(void) {
  if (hzf_oom_install() != 0)
    fprintf(stderr, "prop: hz was initialised before the engine; OS failures cannot be injected\n");
  hz_ensure_init();
  hzf_faults_install();
}

bool prop_env_reset(char *why, size_t n) {
  hzf_oom_reset();
  hz_thread_flush();
  if (hz_debug_reset() == 0) return true;
  hz_census_t c;
  hz_violation_t v;
  if (hz_heap_check(&v, &c) != 0) {
    snprintf(why, n, "the heap check fails: %s (%s)", v.message, v.invariant);
    return false;
  }
  snprintf(why, n,
           "the heap cannot be reset: the program holds %llu slab and %llu large blocks, %llu "
           "threads are registered",
           (unsigned long long)c.user_blocks, (unsigned long long)c.large_blocks,
           (unsigned long long)c.threads);
  return false;
}
