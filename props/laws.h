/* The properties of the suite, one prop_def_t each (props/registry.c lists them):
 *   api_laws.c   size_alignment, realloc_laws, calloc_law, differential
 *   heap_laws.c  model_agreement, replay_determinism, schedule_independence, conservation,
 *                misuse_contained, thread_exit
 */
#ifndef PROPS_LAWS_H
#define PROPS_LAWS_H

#include "props/prop.h"

extern const prop_def_t prop_model_agreement, prop_size_alignment, prop_realloc_laws,
    prop_calloc_law, prop_conservation, prop_schedule_independence, prop_replay_determinism,
    prop_misuse_contained, prop_thread_exit, prop_differential;

#endif /* PROPS_LAWS_H */
