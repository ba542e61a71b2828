/* What a target's entry (hzf_target.c) offers its drivers. */
#ifndef HZF_TARGET_H
#define HZF_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "fuzz/hzf_exec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* The profile this target was built for. */
const hzf_profile_t *hzf_target_profile(void);
/* "baton", "free" or "direct" -> *out; -1 when none of them. */
int hzf_parse_mode(const char *s, hzf_mode_t *out);
/* Standalone use: the mode to run in, and the input's name for the replay command (a
 * finding then exits with HZF_EXIT_FINDING instead of aborting). */
void hzf_target_configure(hzf_mode_t mode, const char *input_name);

#endif /* HZF_TARGET_H */
