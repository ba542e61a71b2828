/* Layer 4 (slab): slabs, the shared pool of empty slabs, abandoned slabs, large blocks.
 *
 * A slab is HZ_SLAB_SIZE bytes of a SuperSlab, carved lazily into blocks of one class.
 * Its metadata lives out of band in the pagemap, never in bytes the program can reach.
 *
 * Exact accounting, the invariant the whole design rests on:
 *     used == carved - free_count
 * where free_count counts the blocks on the slab's freelist. A block that is not on the
 * freelist is "used" whether the program holds it, it sits in the owner's TLS SLL, or
 * it waits in the remote queue: so used == 0 really means no thread can reach a block
 * of the slab, and only then may the slab go back to the pool.
 *
 * Who writes what: the owner thread alone writes freelist, free_count, used, carved and
 * the list links; any thread pushes onto `remote`; ownership moves only through the
 * pool and abandoned lists, under the pool lock.
 */
#ifndef HZ_SLAB_H
#define HZ_SLAB_H

#include "core/pagemap.h"
#include "core/sizeclass.h"

typedef enum {
  HZ_SLAB_UNCUT = 0, /* its SuperSlab is not cut into slabs */
  HZ_SLAB_POOLED,    /* empty, in the shared pool, tags 0 */
  HZ_SLAB_ACTIVE,    /* owned; the owner's current slab for its class */
  HZ_SLAB_PARTIAL,   /* owned; has free blocks */
  HZ_SLAB_FULL,      /* owned; no free blocks */
  HZ_SLAB_ABANDONED, /* its owner exited; waiting on the abandoned list for a new owner */
} hz_slab_state_t;

typedef struct hz_slab_s {
  /* Owner-written on every refill, drain and collect: the line no other thread reads. */
  void *freelist;
  uint32_t free_count;
  uint32_t used;
  uint8_t state;
  uint8_t list; /* which owner list holds it (tcache.h) */
  struct hz_slab_s *next, *prev;
  /* Shared: what classifying a pointer reads (every free by another thread does), and
   * the remote queue. Written rarely: carved while the slab is being carved, remote once
   * per published batch and per collect. With these on the owner's line, each remote
   * free missed on a line the owner had just written (a producer/consumer pair ran at a
   * fifth of tcmalloc's speed). */
  _Atomic uint32_t carved __attribute__((aligned(64))); /* relaxed: remote frees read it
                                                         * to reject never-carved blocks */
  uint32_t capacity;
  uint16_t cls;
  _Atomic uint32_t owner; /* thread id, 0 when pooled or abandoned */
  _Atomic(void *) remote;
} hz_slab_t;

_Static_assert(sizeof(hz_slab_t) <= HZ_SLAB_META_SIZE, "slab metadata slot too small");

typedef struct {
  hz_slab_t *head;
  uint32_t count;
} hz_slab_list_t;

/* Requires hz_in_arena(p). */
HZ_INLINE hz_slab_t *hz_slab_of(const void *p) {
  return (hz_slab_t *)hz_slab_meta_at(hz_slab_index(p));
}
HZ_INLINE unsigned char *hz_slab_start(const hz_slab_t *s) {
  size_t index = (size_t)((const unsigned char *)s - hz_arena.slab_meta) / HZ_SLAB_META_SIZE;
  return (unsigned char *)(hz_arena.base + (index << HZ_SLAB_SHIFT));
}
HZ_INLINE uint32_t hz_slab_block_size(const hz_slab_t *s) { return hz_class_size[s->cls]; }

/* ---- slab operations (slab.c); the caller owns the slab unless stated ------------ */
/* Prepares a pooled slab for class `cls` and owner `owner`: tags its pages. */
void hz_slab_init(hz_slab_t *s, unsigned cls, uint32_t owner);
/* Moves up to n blocks off the freelist, then carves fresh ones, into a NULL-terminated
 * chain; used grows by the count returned. */
uint32_t hz_slab_take(hz_slab_t *s, uint32_t n, void **head, void **tail);
/* Returns one block to the freelist; used shrinks by one. */
HZ_INLINE void hz_slab_put(hz_slab_t *s, void *block) {
  HZ_ASSERT(s->used > 0);
  hz_link_set(block, s->freelist);
  hz_poison(block, hz_slab_block_size(s));
  s->freelist = block;
  s->free_count++;
  s->used--;
}
/* Any thread: pushes the chain head..tail (n blocks, already marked free) onto the
 * slab's remote queue. Returns true when the queue was empty before. */
bool hz_slab_remote_push(hz_slab_t *s, void *head, void *tail);
/* Moves the remote queue out of the slab: up to `want` blocks into the NULL-terminated
 * chain *head..*tail (*taken of them; still counted in `used`, as blocks a refill took),
 * the rest onto the freelist. Returns the number of blocks collected. */
uint32_t hz_slab_collect_take(hz_slab_t *s, uint32_t want, void **head, void **tail,
                              uint32_t *taken);
/* Moves the remote queue onto the freelist; returns the number of blocks. */
HZ_INLINE uint32_t hz_slab_collect(hz_slab_t *s) {
  uint32_t taken;
  return hz_slab_collect_take(s, 0, NULL, NULL, &taken);
}
/* Retags the slab's pages for a new owner (abandon: 0; adopt: the adopter). */
void hz_slab_set_owner(hz_slab_t *s, uint32_t owner);
/* Full consistency check of one owned slab; NULL when valid, else the rule broken.
 * Requires that no other thread is using the slab. */
const char *hz_slab_validate(const hz_slab_t *s);
/* Is block b on the slab's freelist? (walks it; double-free confirmation) */
bool hz_slab_freelist_contains(const hz_slab_t *s, const void *b);

/* ---- the shared pool and abandoned lists (pool.c) -------------------------------- */
/* An empty slab, from the pool or from a new SuperSlab; NULL when the arena is full. */
hz_slab_t *hz_pool_take(void);
/* Takes back an owned slab with used == 0. Releases its SuperSlab to the arena when all
 * of its slabs are pooled and another empty SuperSlab is already kept. */
void hz_pool_put(hz_slab_t *s);
/* Any thread, after a remote free into a slab it found abandoned: collects the slab's
 * queue and pools the slab if that emptied it. Without it, memory freed into the slabs
 * of exited threads stays retained until a refill of the same class adopts them. */
void hz_pool_reclaim(hz_slab_t *s);
/* Leaves an owned, non-empty slab for another thread to adopt. */
void hz_pool_abandon(hz_slab_t *s);
/* Takes an abandoned slab of class cls for `owner` (retagged), or NULL. */
hz_slab_t *hz_pool_adopt(unsigned cls, uint32_t owner);
/* For the heap check: the pool and abandoned lists. */
const hz_slab_list_t *hz_pool_list(void);
const hz_slab_list_t *hz_pool_abandoned(unsigned cls);
/* SuperSlabs all of whose slabs are pooled, kept warm instead of released (at most 1). */
uint32_t hz_pool_empty_superslabs(void);
void hz_pool_lock(void);
void hz_pool_unlock(void);
/* Whether the calling thread holds the pool lock (for HZ_ASSERT: checked builds). */
bool hz_pool_held(void);
void hz_pool_reset_lock_after_fork(void);
/* Empties the pool and abandoned lists (pool lock held; see hz_pagemap_reset). */
void hz_pool_reset(void);

/* ---- large blocks (large.c) ------------------------------------------------------ */
/* A block of at least `size` bytes aligned to `align`, from whole SuperSlabs. */
void *hz_large_alloc(size_t size, size_t align, bool zero);
void hz_large_free(void *p);
/* Usable bytes of the large block starting at p (which must be one): its size rounded
 * up to a page. */
size_t hz_large_usable(const void *p);
/* Resizes the large block at p in place when its extent allows; false otherwise. */
bool hz_large_resize(void *p, size_t size);
/* For a pointer in the arena with tag 0: the large block containing it, or NULL. */
void *hz_large_block_of(const void *p);

#endif /* HZ_SLAB_H */
