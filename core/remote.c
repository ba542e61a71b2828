/* Layer 6 (remote): the freeing side of cross-thread frees. */
#include "core/remote.h"

void hz_remote_free(hz_slab_t *s, void *b, unsigned cls) {
  if (HZ_SECURE) hz_mark_set(b, hz_free_mark | HZ_MARK_QUEUED);
  hz_poison(b, hz_class_size[cls]); /* before the push: afterwards the owner may reuse it */
  bool was_empty = hz_slab_remote_push(s, b, b);
  uint32_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
  /* Abandoned: no owner will collect, so this free may have emptied it for good. Takes
   * the pool lock, but only for frees into slabs of threads that exited. */
  if (owner == 0) hz_pool_reclaim(s);
  /* The queue was empty: tell the owner, who only scans full slabs with a hint set. */
  else if (was_empty && owner < HZ_MAX_THREADS)
    atomic_fetch_or_explicit(&hz_remote_hint[owner], (uint64_t)1 << cls, memory_order_release);
}
