/* Linked into every bugzoo binary: when the process ends normally (the fuzzing budget
 * ran out, or every replayed input passed), say how often the seeded bug was reached
 * and triggered. Findings and crashes print the same line from their own paths. */
#include <stdlib.h>

#include "core/hz_debug.h"

__attribute__((constructor)) static void hzb__register(void) { atexit(hz_seed_bug_print); }
