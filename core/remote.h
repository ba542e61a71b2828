/* Layer 6 (remote): frees of blocks whose slab another thread owns (or nobody, after
 * its owner exited).
 *
 * The block goes into the freeing thread's pending batch for its slab (tcache.h), and
 * from there, a batch at a time, onto the slab's lock-free remote queue; never into the
 * freeing thread's TLS SLL: the freeing thread does not own the slab, so it may not
 * touch the freelist or `used`. The block stays counted in `used` until the owner (or
 * the adopter of an abandoned slab) collects the queue into the freelist.
 */
#ifndef HZ_REMOTE_H
#define HZ_REMOTE_H

#include "core/tcache.h"

/* Frees block b (a validated, live block start) of slab s, class cls, owned by another
 * thread than tc's (or by none). */
void hz_remote_free(hz_tcache_t *tc, hz_slab_t *s, void *b, unsigned cls);

#endif /* HZ_REMOTE_H */
