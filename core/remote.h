/* Layer 6 (remote): frees of blocks whose slab another thread owns (or nobody, after
 * its owner exited).
 *
 * The block goes onto its slab's lock-free remote queue, never into the freeing
 * thread's TLS SLL: the freeing thread does not own the slab, so it may not touch the
 * freelist or `used`. The block stays counted in `used` until the owner (or the adopter
 * of an abandoned slab) collects the queue into the freelist.
 */
#ifndef HZ_REMOTE_H
#define HZ_REMOTE_H

#include "core/tcache.h"

/* Frees block b (a validated, live block start) of slab s, class cls. */
void hz_remote_free(hz_slab_t *s, void *b, unsigned cls);

#endif /* HZ_REMOTE_H */
