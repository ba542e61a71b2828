/* Layer 6 (remote): the freeing side of cross-thread frees.
 *
 * A remote free costs the freeing thread a link into its own pending batch for the
 * block's slab (tcache.h), and the slab's owner nothing until the batch is published:
 * one CAS on the slab's remote queue per batch instead of one per block, and one
 * transfer of the queue's cache line. The owner collects the whole queue with one
 * exchange, as before.
 */
#include "core/remote.h"

/* Branch budget: the slot test, the collision test (a publish when it fails) and the
 * limit test; the flags of an unregistered thread are one more. */
void hz_remote_free(hz_tcache_t *tc, hz_slab_t *s, void *b, unsigned cls) {
  uint32_t size = hz_class_size[cls];
  if (HZ_SECURE) hz_mark_set(b, hz_free_mark | HZ_MARK_QUEUED);
  hz_poison(b, size); /* before the link: once published, the owner may reuse it */
  /* A thread with no cache has no exit hook to publish a batch: it pushes the block. */
  if (tc->tid == HZ_TID_NONE) {
    hz_tcache_push_remote(s, b, b);
    return;
  }
  hz_remote_batch_t *q = &tc->pending[hz_slab_index(b) & (HZ_REMOTE_SLOTS - 1)];
  if (q->slab != s) {
    if (q->slab) hz_tcache_publish(tc, q);
    uint32_t limit = HZ_REMOTE_BATCH_BYTES / size;
    if (limit > HZ_REMOTE_BATCH_BLOCKS) limit = HZ_REMOTE_BATCH_BLOCKS;
    *q = (hz_remote_batch_t){.slab = s, .tail = b, .limit = limit ? limit : 1};
    tc->npending++;
  }
  hz_link_set(b, q->head);
  q->head = b;
  if (++q->count >= q->limit) hz_tcache_publish(tc, q);
}
