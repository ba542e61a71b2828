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

/* Remote frees this thread made and has not yet handed over: one batch per slab, a
 * NULL-terminated chain head..tail of `count` blocks, each already marked queued. A
 * remote free links its block into the batch of the block's slab, without touching the
 * slab; the batch reaches the slab's remote queue in one CAS (hz_tcache_publish) when it
 * holds `limit` blocks, when another slab needs its slot, or when the thread flushes or
 * exits. The blocks stay counted in their slab's `used` all along, so a slab with a
 * pending batch can never look empty.
 *     slab == NULL  <=>  count == 0;   count == length(head..tail) <= limit
 * HZ_REMOTE_SLOTS slots, direct-mapped by slab index: the slabs of a SuperSlab have
 * consecutive indexes, so the slabs a thread frees into at once rarely collide. A batch
 * holds at most HZ_REMOTE_BATCH_BLOCKS blocks and HZ_REMOTE_BATCH_BYTES bytes (one block
 * at least), so a thread keeps at most HZ_REMOTE_SLOTS * HZ_REMOTE_BATCH_BYTES (256 KiB)
 * of freed memory from its owners, and only until its next flush or exit. */
#define HZ_REMOTE_SLOTS 32u
#define HZ_REMOTE_BATCH_BLOCKS 32u
#define HZ_REMOTE_BATCH_BYTES 8192u

typedef struct {
  hz_slab_t *slab;
  void *head, *tail;
  uint32_t count, limit;
} hz_remote_batch_t;

typedef struct hz_tcache_s {
  hz_sll_t sll[HZ_NUM_CLASSES]; /* first: the fast paths touch only this and tid */
  uint32_t tid;
  uint32_t exiting;
  hz_slab_t *active[HZ_NUM_CLASSES];   /* slab refills come from */
  hz_slab_list_t partial[HZ_NUM_CLASSES]; /* owned, with free blocks */
  hz_slab_list_t full[HZ_NUM_CLASSES];    /* owned, none free (remote frees may arrive) */
  uint32_t npending;                       /* non-empty batches in pending[] */
  hz_remote_batch_t pending[HZ_REMOTE_SLOTS]; /* remote frees not yet published */
} hz_tcache_t;

/* This thread's cache; tid == HZ_TID_NONE until the first slow-path allocation. */
extern HZ_TLS hz_tcache_t hz_tc;

/* hz_remote_hint[tid]: bit c set when a remote free found an empty queue on one of
 * tid's class-c slabs. Global, not in the cache, because the owner may have exited by
 * the time a freeing thread writes it. */
typedef struct {
  /* A line per thread: the owner reads its word on every refill, and remote freers write
   * it, so two owners' words in one line would make each refill miss on the other's. */
  _Atomic uint64_t bits __attribute__((aligned(64)));
} hz_remote_hint_t;
extern hz_remote_hint_t hz_remote_hint[HZ_MAX_THREADS];

void hz_tcache_init(hz_tcache_t *tc, uint32_t tid);
/* Makes tc->sll[cls] non-empty; false when no memory can be had. */
bool hz_tcache_refill(hz_tcache_t *tc, unsigned cls);
/* Returns up to n blocks of tc->sll[cls] to their slabs' freelists. */
void hz_tcache_drain(hz_tcache_t *tc, unsigned cls, uint32_t n);
/* Hands batch q (non-empty) to its slab's remote queue in one CAS and empties it; a
 * batch for an abandoned slab is reclaimed at once (hz_pool_reclaim). */
void hz_tcache_publish(hz_tcache_t *tc, hz_remote_batch_t *q);
/* Any thread: pushes the chain head..tail (blocks of s, marked queued) onto s's remote
 * queue and tells its owner (the remote hint), or reclaims s if it has none. */
void hz_tcache_push_remote(hz_slab_t *s, void *head, void *tail);
/* Publishes every pending batch, drains every list, collects remote frees and pools
 * every empty slab. */
void hz_tcache_flush(hz_tcache_t *tc);
/* Thread exit: flush, then abandon every slab still holding live blocks. */
void hz_tcache_abandon_all(hz_tcache_t *tc);
/* Validates every slab tc owns and every SLL (HZ_DEBUG >= 3, and tests). */
const char *hz_tcache_validate(const hz_tcache_t *tc);

#endif /* HZ_TCACHE_H */
