/* The libFuzzer entry point of one target (HZF_TARGET names its profile), shared by the
 * libFuzzer binary and the standalone replay driver.
 *
 * A failed check prints the report (decoded ops up to the failing one, the check, what
 * the model expected and what hz did, and the line "HZFUZZ-FINDING: ...") and then
 * aborts under libFuzzer, so libFuzzer saves the input; the standalone driver exits
 * with HZF_EXIT_FINDING instead.
 */
#include <stdlib.h>
#include <string.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!hzf__mode_set) {
    const char *env = getenv("HZF_MODE");
    if (env && hzf_parse_mode(env, &hzf__opt.mode) != 0)
      fprintf(stderr, "hzfuzz: HZF_MODE=%s is not baton, free or direct; using baton\n", env);
    hzf__opt.abort_on_hang = hzf__input_name == NULL;
    hzf__mode_set = true;
  }
  hzf_result_t res;
  if (hzf_run(hzf_target_profile(), data, size, &hzf__opt, &res) == 0) return 0;
  char replay[512];
  snprintf(replay, sizeof replay, "bazel run //tools:repro -- --target %s_fuzzer %s", HZF_TARGET,
           hzf__input_name ? hzf__input_name : "<the crash file libFuzzer writes below>");
  hzf_report(stderr, hzf_last_program(), &res, replay);
  if (hzf__input_name) exit(HZF_EXIT_FINDING);
  abort();
}
