/* Findings that end the process: a sanitizer report, an abort() (an hz internal assertion
 * or misuse report, whose "hz: ..." line the core writes just before), or a fatal signal
 * no sanitizer handles. Each prints the same report as a failed model check (the ops up
 * to the failing one, a check naming what ended the process, "HZFUZZ-FINDING: ..." and
 * the replay command), so every driver of the harness (the libFuzzer binaries, the
 * replay drivers, //tools:repro) names a crash the same way, and the tools that read a
 * finding (minimize, campaign triage) read one line whatever the kind.
 *
 * The checks and their "actual", which starts with the kind of the finding:
 *   sanitizer  "<Tool>Sanitizer: <kind> (the sanitizer report above), during op #i"
 *              ("UndefinedBehaviorSanitizer: undefined-behavior" for a UBSan report;
 *              "... during op #i or before" for TSan's, which the executor notices
 *              after the op, the process going on)
 *   abort      "abort() during op #i: ..."
 *   signal     "SIGSEGV (invalid memory access) during op #i, address 0x..."
 */
#ifndef HZF_DEATH_H
#define HZF_DEATH_H

#include <stdbool.h>
#include <stdio.h>

/* Installs the reports, once per process (later calls only change `out` and `replay`).
 * Call it after the fuzzing engine has installed its own handlers (libFuzzer does before
 * the first input): ours print and then chain to them, so libFuzzer still writes its
 * crash file. `out` receives the report (the stream the trace went to); `replay` gives
 * the replay command of the input running now (it may save the input first). */
void hzf_death_install(FILE *out, const char *(*replay)(void));
/* Before each input: no report printed for it yet. */
void hzf_death_arm(void);
/* A sanitizer that reports and goes on (TSan) reported since the last call: writes the
 * finding's "actual", worded as the death path words it, and returns true. The executor
 * asks after every op, and fails the op with check "sanitizer". */
bool hzf_death_went_on(char *actual, size_t n, int op);
/* The caller prints this input's report itself: true when no report was printed for it
 * yet. After it, an abort() (libFuzzer's path for a finding) prints no second one. */
bool hzf_death_claim(void);

#endif /* HZF_DEATH_H */
