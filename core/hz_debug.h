/* hz debug and introspection API, for tests, fuzzers and tools.
 *
 * Nothing here is on the allocation path. hz_heap_check and hz_heap_census walk every
 * structure of the heap and must be called while no other thread is inside the
 * allocator (the fuzz harness calls them with every other thread parked).
 */
#ifndef HZ_DEBUG_H
#define HZ_DEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- misuse reporting --------------------------------------------------------- */
typedef enum {
  HZ_FAULT_NONE = 0,
  HZ_FAULT_DOUBLE_FREE,   /* the block is already free (in a thread cache, freelist or remote queue) */
  HZ_FAULT_NOT_ALLOCATED, /* inside hz's arena but not a live block: a freed slab, a freed
                             large block, or memory never handed out */
  HZ_FAULT_FOREIGN,       /* not hz memory at all, and no foreign allocator to pass it to */
  HZ_FAULT_INTERIOR,      /* 16-byte aligned but not the start of a block */
  HZ_FAULT_MISALIGNED,    /* not even 16-byte aligned */
  HZ_FAULT_CORRUPTION,    /* a free list or queue is damaged (a cycle, a stray link) */
  HZ_FAULT_KIND_COUNT
} hz_fault_kind_t;

typedef enum { HZ_OP_FREE = 0, HZ_OP_REALLOC, HZ_OP_USABLE_SIZE, HZ_OP_INTERNAL } hz_op_t;

typedef struct {
  hz_fault_kind_t kind;
  hz_op_t op;
  const void *ptr;
  const char *message; /* the one line that would have been printed; valid during the hook */
} hz_fault_t;

/* Called instead of abort() when a misuse is detected. The faulting call then does
 * nothing (free), returns NULL (realloc, errno EINVAL) or returns 0 (usable_size).
 * Pass NULL to restore the default (print and abort). Process-wide. */
typedef void (*hz_error_hook_t)(const hz_fault_t *fault, void *ctx);
void hz_set_error_hook(hz_error_hook_t hook, void *ctx);
const char *hz_fault_name(hz_fault_kind_t kind);
const char *hz_op_name(hz_op_t op);

/* ---- pointer classification --------------------------------------------------- */
typedef enum {
  HZ_PTR_FOREIGN = 0, /* not in hz's arena */
  HZ_PTR_SMALL,       /* start of a live slab block (held by the program) */
  HZ_PTR_LARGE,       /* start of a live large block */
  HZ_PTR_FREE,        /* start of a slab block that is free (cached, queued or on a freelist) */
  HZ_PTR_INTERIOR,    /* inside a live or free block, not at its start */
  HZ_PTR_MISALIGNED,  /* inside hz memory, not 16-byte aligned */
  HZ_PTR_UNALLOCATED  /* in the arena, in no block (empty slab, free extent, uncarved) */
} hz_ptr_kind_t;

typedef struct {
  hz_ptr_kind_t kind;
  void *block;       /* start of the containing block, or NULL */
  size_t block_size; /* its usable size, or 0 */
  int size_class;    /* slab class index, or -1 */
  unsigned owner;    /* owning thread id of the slab, 0 when unowned */
} hz_ptr_info_t;

/* O(1) for slab pointers except HZ_PTR_FREE, which is confirmed by walking lists. */
hz_ptr_info_t hz_classify(const void *ptr);
const char *hz_ptr_kind_name(hz_ptr_kind_t kind);

/* ---- size classes ------------------------------------------------------------- */
unsigned hz_size_class_count(void);
size_t hz_size_class_size(unsigned cls);
/* Class of a request, or -1 when it is served as a large block. */
int hz_size_to_class_checked(size_t size);
size_t hz_large_threshold(void); /* requests above this are large blocks */

/* ---- whole-heap invariants ---------------------------------------------------- */
typedef struct {
  const char *invariant; /* the equation or rule violated, as in docs/INVARIANTS.md */
  const void *where;     /* the slab, block or thread cache concerned */
  char message[256];
} hz_violation_t;

typedef struct {
  uint64_t user_blocks;    /* slab blocks held by the program: sum(used - cached - queued) */
  uint64_t cached_blocks;  /* in thread caches (TLS SLLs) */
  uint64_t queued_blocks;  /* in remote-free queues and threads' pending batches */
  uint64_t freelist_blocks;
  uint64_t large_blocks, large_bytes;
  uint64_t slabs_owned, slabs_abandoned, slabs_pooled;
  uint64_t superslabs_slab, superslabs_large, superslabs_free;
  uint64_t threads;
} hz_census_t;

/* Checks every invariant in docs/INVARIANTS.md. Returns 0 when the heap is consistent,
 * else 1 with the first violation in *out (out may be NULL). Fills *census when not
 * NULL. Requires that no other thread is inside the allocator. */
int hz_heap_check(hz_violation_t *out, hz_census_t *census);

/* Returns the allocator to its state before the first allocation, so that a fuzz driver
 * can start every input from the same heap (same addresses, same thread ids) and a
 * finding replays in a fresh process exactly as it happened. Allowed only when no thread
 * but the caller holds a thread cache and the program holds no hz block; returns 0, or
 * -1 (changing nothing) when that is not so. Not for use while other threads allocate. */
int hz_debug_reset(void);
/* hz_debug_reset, except that up to `keep` bytes of the arena's resident pages are
 * cleared in place and stay resident instead of being decommitted (the rest is
 * decommitted as before). A driver that resets after every input saves faulting the same
 * pages in again each time; a test that measures resident memory wants hz_debug_reset. */
int hz_debug_reset_warm(size_t keep);

/* The calling thread leaves hz as if it exited (its cache flushed, its slabs abandoned
 * or released, its id free for reuse) but goes on running; its next allocation registers
 * it again. Lets a fuzz driver keep its worker threads across hz_debug_reset instead of
 * creating new ones for every input. */
void hz_thread_detach(void);

/* ---- race points ---------------------------------------------------------------- */
/* Where another thread's step can land inside a lock-free update (HZ_RACE_POINTS). At
 * each the thread holds no allocator lock, so the hook may run another thread's step
 * there and wait for it. `obj` is the slab (the large block for HZ_RACE_LARGE_PUBLISH). */
typedef enum {
  HZ_RACE_REMOTE_PUSH,    /* a remote free linked its block to the queue head it loaded and
                           * is about to CAS the queue head */
  HZ_RACE_COLLECT,        /* the owner took its slab's remote queue with one exchange and
                           * has not walked it yet: new frees start a new queue */
  HZ_RACE_ADOPT,          /* a thread adopted an abandoned slab and has not collected it */
  HZ_RACE_ABANDON,        /* an exiting thread gave up a slab's ownership and has not put it
                           * on the abandoned list */
  HZ_RACE_POOL_TAKE,      /* a refill took an empty slab from the pool and has not cut it
                           * for its class */
  HZ_RACE_LARGE_PUBLISH,  /* a large allocation has its extent and has not written the
                           * block's header (size, touched bytes) */
  HZ_RACE_POINT_COUNT
} hz_race_point_t;
/* "remote_push", ... for reports and traces. */
const char *hz_race_point_name(hz_race_point_t where);
typedef void (*hz_race_hook_t)(hz_race_point_t where, void *obj);
/* Installs the hook every race point calls (NULL: none). Returns false, installing
 * nothing, in a build without race points. The hook runs on the racing thread, with no
 * allocator lock held, and may call into hz (a free there is the competing step). */
bool hz_set_race_hook(hz_race_hook_t hook);

/* ---- counters ----------------------------------------------------------------- */
typedef struct {
  uint64_t refills, drains, remote_collects, adoptions, abandons, slab_inits,
      slab_releases, superslabs_taken, superslabs_released, large_allocs, large_frees,
      faults,
      extents_decommitted; /* free extents whose dirty prefix the cache gave back */
} hz_stats_t;
void hz_get_stats(hz_stats_t *out);
/* This thread's id as used in page tags (1..), or 0 before its first allocation. */
unsigned hz_thread_id(void);

/* ---- seeded bugs (core/seed_bugs.h, docs/BUGS.md) ----------------------------- */
typedef struct {
  int id;            /* 0 in a clean build */
  const char *name;  /* "LARSON", ... or "none" */
  const char *what;
  uint64_t reached;   /* times the faulty condition was evaluated */
  uint64_t triggered; /* times it held, so the bug changed what the allocator did */
} hz_seed_bug_info_t;
/* The bug this build seeds, and its reach and trigger counts so far. */
hz_seed_bug_info_t hz_seed_bug_info(void);
/* Writes "hz-seed-bug: NAME reached R triggered T" to stderr (without allocating); a
 * clean build writes nothing. Fuzz drivers call it when they stop or crash. */
void hz_seed_bug_print(void);

#ifdef __cplusplus
}
#endif
#endif /* HZ_DEBUG_H */
