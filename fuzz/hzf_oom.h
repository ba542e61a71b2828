/* Fault injection at the OS boundary: the page source the harness installs under hz.
 *
 * It forwards to the mmap page source (core/os.h) and refuses the calls an OOM op arms
 * it to refuse, so that every out-of-memory path of the core (a refill that cannot grow,
 * a large block with no extent, a realloc that cannot move, a decommit the kernel turns
 * down) runs under the model instead of being dead code. Each refusal is counted on the
 * thread that made the call: an allocation may return NULL only when its own thread saw
 * one (or the contract oracle says the request cannot be met).
 */
#ifndef HZF_OOM_H
#define HZF_OOM_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  HZF_OOM_ONCE = 0,  /* refuse the n-th commit from now, once */
  HZF_OOM_FROM,      /* refuse every commit from the n-th on, until disarmed */
  HZF_OOM_DECOMMIT,  /* refuse the n-th decommit from now, once */
  HZF_OOM_DISARM,    /* refuse nothing */
} hzf_oom_mode_t;

/* Installs the page source; must run before hz's first allocation. Returns 0 (also when
 * it is installed already), or -1 when hz already fixed another page source (then
 * nothing can be injected). */
int hzf_oom_install(void);
/* Arms a mode with n >= 1. Replaces whatever was armed. */
void hzf_oom_arm(hzf_oom_mode_t mode, unsigned n);
/* Disarmed, as at the start of every input (the executor calls it). */
void hzf_oom_reset(void);
/* Refusals seen by the calling thread so far (monotonic). */
uint64_t hzf_oom_thread_refusals(void);
/* A function the page source calls before each decommit it is asked for, refused or not:
 * the trim check (hzf_trim.c) watches the dirty cache through it. Set it before the
 * threads that may decommit start; NULL for none. */
typedef void hzf_decommit_watch_t(void *p, size_t size);
void hzf_oom_watch_decommits(hzf_decommit_watch_t *watch);
/* "armed: refuse the 2nd commit" for traces. */
const char *hzf_oom_describe(hzf_oom_mode_t mode);

#endif /* HZF_OOM_H */
