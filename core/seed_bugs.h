/* Layer 1 (base): the seeded-bug switches (docs/BUGS.md, tools/bugzoo).
 *
 * Each HZ_BUG_* names one real bug of the hakmem/hz3 allocator family. Building with
 * -DHZ_SEED_BUG=HZ_BUG_<NAME> re-introduces that one bug through the smallest edit that
 * could have caused it, at the place marked with HZ_BUG(HZ_BUG_<NAME>, cond). Without
 * HZ_SEED_BUG every HZ_BUG(...) is the constant 0, so the seeded code is dead and the
 * clean allocator is exactly what it would be without this file.
 *
 * Like Magma's canaries, each site logs when it is reached (the faulty condition is
 * evaluated) and when it is triggered (cond holds, so the bug changes behaviour): the
 * bugzoo table reports reached / triggered / detected for every bug.
 */
#ifndef HZ_SEED_BUGS_H
#define HZ_SEED_BUGS_H

#include <stdbool.h>

/* X(id, NAME, what the seeded edit does) */
#define HZ_SEED_BUG_LIST(X)                                                                 \
  X(1, LARSON, "a drained slab is pooled while one of its blocks is still cached")        \
  X(2, DRAIN_PUSHBACK, "the drain pushes its last block back onto the TLS SLL too")       \
  X(3, USED_SKIPS_SLL, "blocks a refill takes from the freelist are not counted in used") \
  X(4, USABLE_OVER, "usable_size of a page-class block reports the next class's size")    \
  X(5, REALLOC_COPY, "realloc copies the new size, not min(old, new)")                    \
  X(6, TAG0_FOREIGN, "an arena pointer with tag 0 is freed as a foreign pointer")         \
  X(7, FOREIGN_CLAIMED, "the arena test accepts the arena's aligned window")              \
  X(8, REMOTE_OWN_SLL, "a remote free goes into the freeing thread's TLS SLL")            \
  X(9, CAS_NO_RELINK, "a failed remote-queue CAS retries without re-linking the tail")    \
  X(10, REMOTE_TWICE, "a block waiting in a remote queue is not seen as free")            \
  X(11, STALE_NEXT, "the drain re-reads a block's link after handing the block back")     \
  X(12, DF_SLOW_PATH, "a free at the cache bound skips the double-free test")             \
  X(13, EXIT_KEEPS_SLL, "thread exit does not drain the thread's TLS SLLs")               \
  X(14, STALE_TAG, "a slab re-carved for another class keeps its old class tag")          \
  X(15, LARGE_ROUND_DOWN, "a large block's extent count is rounded down")                 \
  X(16, LATE_DECOMMIT, "a deferred decommit is applied after the extent was reused")      \
  X(17, OVERFLOW_LEAKS, "a free at the cache bound discards half the list")               \
  X(18, CALLOC_DIRTY, "calloc skips zeroing a block whose first word is zero")            \
  X(19, PLAIN_COUNTER, "the shared refill counter is bumped with a plain add, not atomically") \
  X(20, WHERE_UNINIT, "pointer classification starts from an uninitialised result")     \
  X(21, BATCH_TWICE, "a full remote-free batch is published but stays in its slot")      \
  X(22, BATCH_EXIT_LOST, "an exiting thread drops its unpublished remote-free batches")    \
  X(23, RECLAIM_IN_TRANSIT, "a free into an ownerless slab reclaims it before it is listed")

#define HZ__BUG_ENUM(id, name, what) HZ_BUG_##name = id,
enum { HZ_BUG_NONE = 0, HZ_SEED_BUG_LIST(HZ__BUG_ENUM) HZ_BUG_COUNT };
#undef HZ__BUG_ENUM

#ifndef HZ_SEED_BUG
#define HZ_SEED_BUG HZ_BUG_NONE
#endif

/* Records a reach (and a trigger when cond) of the seeded bug; returns cond. */
bool hz_seed_bug_log(bool cond);

/* True when `id` is the seeded bug and cond holds. The first comparison is a compile-time
 * constant, so for every other id the whole expression, cond included, is dead code. */
#define HZ_BUG(id, cond) (HZ_SEED_BUG == (id) && hz_seed_bug_log(cond))

#endif /* HZ_SEED_BUGS_H */
