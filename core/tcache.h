/* Layer 5 (TLS cache): one thread's cache: a TLS SLL per class, and the slabs it owns.
 *
 * Every block in tc->sll[c] belongs to a slab of class c owned by tc's thread; remote
 * blocks never enter it (remote.h). The functions take the cache explicitly, so tests and
 * fuzzers can drive them; the allocator passes its thread-local hz_tc.
 */
#ifndef HZ_TCACHE_H
#define HZ_TCACHE_H

#include "core/slab.h"
#include "core/tls_sll.h"

#define HZ_TID_NONE 0xFFFFu /* an unregistered thread: matches no page tag */

enum { HZ_LIST_NONE = 0, HZ_LIST_PARTIAL, HZ_LIST_FULL };

typedef struct hz_tcache_s {
  hz_sll_t sll[HZ_NUM_CLASSES]; /* first: the fast paths touch only this and tid */
  uint32_t tid;
  uint32_t exiting;
  hz_slab_t *active[HZ_NUM_CLASSES];   /* slab refills come from */
  hz_slab_list_t partial[HZ_NUM_CLASSES]; /* owned, with free blocks */
  hz_slab_list_t full[HZ_NUM_CLASSES];    /* owned, none free (remote frees may arrive) */
} hz_tcache_t;

/* This thread's cache; tid == HZ_TID_NONE until the first slow-path allocation. */
extern HZ_TLS hz_tcache_t hz_tc;

/* hz_remote_hint[tid]: bit c set when a remote free found an empty queue on one of
 * tid's class-c slabs. Global, not in the cache, because the owner may have exited by
 * the time a freeing thread writes it. */
extern _Atomic uint64_t hz_remote_hint[HZ_MAX_THREADS];

void hz_tcache_init(hz_tcache_t *tc, uint32_t tid);
/* Makes tc->sll[cls] non-empty; false when no memory can be had. */
bool hz_tcache_refill(hz_tcache_t *tc, unsigned cls);
/* Returns up to n blocks of tc->sll[cls] to their slabs' freelists. */
void hz_tcache_drain(hz_tcache_t *tc, unsigned cls, uint32_t n);
/* Drains every list, collects remote frees and pools every empty slab. */
void hz_tcache_flush(hz_tcache_t *tc);
/* Thread exit: flush, then abandon every slab still holding live blocks. */
void hz_tcache_abandon_all(hz_tcache_t *tc);
/* Validates every slab tc owns and every SLL (HZ_DEBUG >= 3, and tests). */
const char *hz_tcache_validate(const hz_tcache_t *tc);

#endif /* HZ_TCACHE_H */
