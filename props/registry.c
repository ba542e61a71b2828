/* Every property of the suite, in the order docs/PROPERTIES.md lists them. A new property
 * is added here and to PROPERTIES in props/defs.bzl. */
#include "props/laws.h"

const prop_def_t *const prop_all[] = {
    &prop_model_agreement,   &prop_size_alignment,        &prop_realloc_laws,
    &prop_calloc_law,        &prop_conservation,          &prop_schedule_independence,
    &prop_replay_determinism, &prop_misuse_contained,     &prop_thread_exit,
    &prop_differential,      NULL,
};
