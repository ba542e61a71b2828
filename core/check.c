/* Layer 7 (api): the whole-heap invariant check and census (hz_debug.h).
 *
 * Every rule it tests is stated in docs/INVARIANTS.md, in the words of the `invariant`
 * string it reports. It takes every allocator lock, so thread registration, the pool and
 * the arena stand still; the caller guarantees no thread is inside a fast path.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/api.h"
#include "core/os.h"

#define HZ_BITMAP_BYTES (HZ_SLAB_SIZE / 16 / 8) /* one bit per 16-byte slot of a slab */

/* What the check learns about one slab. Valid only while stamp == the check's own: a
 * slab's record is cleared when the check first touches it, so a check costs what the
 * slab SuperSlabs hold, not the arena's span (which large blocks widen). */
typedef struct {
  uint32_t stamp;
  uint32_t cached; /* blocks in thread caches */
  uint32_t queued; /* blocks in the remote queue or a pending batch */
  uint8_t bits[HZ_BITMAP_BYTES]; /* a bit per block seen on a free list */
} hz__slab_scratch_t;

typedef struct {
  hz_violation_t *out;
  hz_census_t census;
  hz__slab_scratch_t *slab; /* by slab index */
  uint32_t now;             /* this check's stamp */
  uint32_t nslabs;
  uint32_t empty_superslabs; /* SuperSlabs whose every slab is pooled */
  uint32_t owned_by[HZ_MAX_THREADS];
} hz__check_t;

HZ_CHECKER __attribute__((format(printf, 4, 5))) static int hz__fail(hz__check_t *c, const char *rule,
                                                          const void *where, const char *fmt,
                                                          ...) {
  if (c->out) {
    va_list ap;
    va_start(ap, fmt);
    c->out->invariant = rule;
    c->out->where = where;
    vsnprintf(c->out->message, sizeof c->out->message, fmt, ap);
    va_end(ap);
  }
  return 1;
}

/* Slab si's scratch entries, cleared on this check's first touch. */
HZ_CHECKER static hz__slab_scratch_t *hz__touch(hz__check_t *c, uint32_t si) {
  hz__slab_scratch_t *r = &c->slab[si];
  if (r->stamp != c->now) {
    memset(r, 0, sizeof *r);
    r->stamp = c->now;
  }
  return r;
}

/* Marks block b of slab s as seen on a free list; fails on a second sighting. */
HZ_CHECKER static int hz__mark(hz__check_t *c, const hz_slab_t *s, const void *b, const char *list) {
  uint32_t idx = (uint32_t)((const unsigned char *)b - hz_slab_start(s)) / hz_slab_block_size(s);
  uint8_t *bm = hz__touch(c, hz_slab_index(b))->bits;
  if (bm[idx >> 3] & (1u << (idx & 7)))
    return hz__fail(c, "a free block is in exactly one list", b, "block %p found again in %s",
                    b, list);
  bm[idx >> 3] |= (uint8_t)(1u << (idx & 7));
  return 0;
}

HZ_CHECKER static int hz__check_slab(hz__check_t *c, hz_slab_t *s) {
  if (s->state == HZ_SLAB_POOLED) {
    c->census.slabs_pooled++;
    if (s->used != 0 || s->free_count != 0 || s->freelist != NULL ||
        atomic_load(&s->owner) != 0 || atomic_load(&s->remote) != NULL)
      return hz__fail(c, "a pooled slab has used == 0, an empty freelist, owner == 0 and an "
                      "empty remote queue",
                      s, "slab %p used %u", (void *)hz_slab_start(s), s->used);
    for (size_t i = 0; i < HZ_PAGES_PER_SLAB; i++)
      if (hz_ptag_get(hz_slab_start(s) + (i << HZ_PAGE_SHIFT)) != 0)
        return hz__fail(c, "ptag[page] == 0 for every page of a pooled slab", s,
                        "slab %p page %zu", (void *)hz_slab_start(s), i);
    return 0;
  }
  const char *why = hz_slab_validate(s);
  if (why) return hz__fail(c, why, s, "slab %p class %u", (void *)hz_slab_start(s), (unsigned)s->cls);
  /* Retention: where a slab is filed must match what it holds, or its free blocks (or
   * the slab itself) are kept where no refill or pooling will ever look. */
  bool has_free = s->free_count > 0 || HZ_LOAD(&s->carved) < s->capacity;
  if (s->state == HZ_SLAB_FULL && has_free)
    return hz__fail(c, "a FULL slab has no free block (free_count == 0, carved == capacity)", s,
                    "slab %p class %u free_count %u carved %u of %u", (void *)hz_slab_start(s),
                    (unsigned)s->cls, s->free_count, HZ_LOAD(&s->carved), s->capacity);
  if (s->state == HZ_SLAB_PARTIAL && !has_free)
    return hz__fail(c, "a PARTIAL slab has a free block (free_count > 0 or carved < capacity)",
                    s, "slab %p class %u", (void *)hz_slab_start(s), (unsigned)s->cls);
  if (s->state == HZ_SLAB_ABANDONED && s->used == 0)
    return hz__fail(c, "an abandoned slab holds a block (used > 0): an exiting thread pools its "
                    "empty slabs", s, "slab %p class %u", (void *)hz_slab_start(s),
                    (unsigned)s->cls);
  uint32_t owner = atomic_load(&s->owner), si = hz_slab_index(hz_slab_start(s));
  if (s->state == HZ_SLAB_ABANDONED) c->census.slabs_abandoned++;
  else {
    c->census.slabs_owned++;
    if (!hz_thread_lookup(owner))
      return hz__fail(c, "an owned slab's owner is a registered thread", s,
                      "slab %p owner %u", (void *)hz_slab_start(s), owner);
    c->owned_by[owner]++;
    /* Retention: an owner looks into its full slabs' queues only when its hint says one
     * went non-empty, so without the bit these blocks wait for a flush that may never
     * come (the freeing thread sets it when its push finds the queue empty). */
    if (s->state == HZ_SLAB_FULL && atomic_load(&s->remote) != NULL &&
        !(atomic_load(&hz_remote_hint[owner].bits) & ((uint64_t)1 << s->cls)))
      return hz__fail(c, "a FULL slab whose remote queue holds a block has its class's bit in "
                      "its owner's remote hint", s, "slab %p class %u owner %u",
                      (void *)hz_slab_start(s), (unsigned)s->cls, owner);
  }
  for (void *b = s->freelist; b; b = hz_link_get(b))
    if (hz__mark(c, s, b, "a freelist")) return 1;
  for (void *b = atomic_load(&s->remote); b; b = hz_link_get(b)) {
    if (HZ_SECURE && hz_mark_get(b) != (hz_free_mark | HZ_MARK_QUEUED))
      return hz__fail(c, "a block in a remote batch or queue carries the queued mark", b,
                      "block %p in the queue of slab %p", b, (void *)hz_slab_start(s));
    if (hz__mark(c, s, b, "a remote queue")) return 1;
    c->slab[si].queued++;
  }
  c->census.freelist_blocks += s->free_count;
  return 0;
}

HZ_CHECKER static int hz__check_superslabs(hz__check_t *c) {
  for (uint32_t i = 0; i < hz_arena.bump; i++) {
    hz_superslab_t *ss = &hz_arena.ss[i];
    uint32_t kind = atomic_load(&ss->kind);
    if (kind == HZ_SS_FREE || kind == HZ_SS_LARGE) {
      hz_superslab_t *h = &hz_arena.ss[ss->head];
      if (ss->head > i || ss->head + h->len <= i || atomic_load(&h->kind) != kind)
        return hz__fail(c, "every SuperSlab of an extent names its head, whose len covers it",
                        ss, "superslab %u head %u", i, ss->head);
      if (ss->head == i) {
        if (kind == HZ_SS_FREE) c->census.superslabs_free += h->len;
        else {
          c->census.superslabs_large += h->len;
          c->census.large_blocks++;
          c->census.large_bytes += h->large_size;
        }
      }
      for (size_t p = 0; p < HZ_SUPERSLAB_SIZE / HZ_PAGE_SIZE; p++)
        if (hz_ptag_get((char *)hz_ss_addr(i) + (p << HZ_PAGE_SHIFT)) != 0)
          return hz__fail(c, "ptag[page] == 0 for every page of a free extent or large block",
                          ss, "superslab %u page %zu", i, p);
      /* Slab metadata outlives the cut: a stale state would let a later walk or reuse
       * of the SuperSlab take it for a live slab. */
      for (size_t k = 0; k < HZ_SLABS_PER_SUPERSLAB; k++)
        if (hz_slab_of((char *)hz_ss_addr(i) + (k << HZ_SLAB_SHIFT))->state != HZ_SLAB_UNCUT)
          return hz__fail(c, "every slab of a free extent or large block is UNCUT", ss,
                          "superslab %u slab %zu", i, k);
    } else if (kind == HZ_SS_SLABS) {
      c->census.superslabs_slab++;
      uint32_t pooled = 0;
      for (size_t k = 0; k < HZ_SLABS_PER_SUPERSLAB; k++) {
        hz_slab_t *s = hz_slab_of((char *)hz_ss_addr(i) + (k << HZ_SLAB_SHIFT));
        pooled += s->state == HZ_SLAB_POOLED;
        if (hz__check_slab(c, s)) return 1;
      }
      if (pooled != ss->slabs_pooled)
        return hz__fail(c, "slabs_pooled == number of pooled slabs of the SuperSlab", ss,
                        "superslab %u counts %u pooled, found %u", i, ss->slabs_pooled, pooled);
      c->empty_superslabs += pooled == HZ_SLABS_PER_SUPERSLAB;
    } else {
      return hz__fail(c, "every SuperSlab below the bump is free, slabs or large", ss,
                      "superslab %u kind %u", i, kind);
    }
  }
  /* Retention: an emptied SuperSlab goes back to the arena, except one kept warm. */
  if (c->empty_superslabs > 1 || c->empty_superslabs != hz_pool_empty_superslabs())
    return hz__fail(c, "at most one SuperSlab whose every slab is pooled is kept, and the pool "
                    "counts it (empty_superslabs)", NULL, "found %u, the pool counts %u",
                    c->empty_superslabs, hz_pool_empty_superslabs());
  return 0;
}

HZ_CHECKER static int hz__check_threads(hz__check_t *c) {
  for (uint32_t tid = 1, bound = hz_thread_id_bound(); tid < bound; tid++) {
    hz_tcache_t *tc = hz_thread_lookup(tid);
    if (!tc) continue;
    c->census.threads++;
    if (tc->tid != tid)
      return hz__fail(c, "a registered cache's tid is its registry slot", tc, "tid %u slot %u", tc->tid, tid);
    const char *why = hz_tcache_validate(tc);
    if (why) return hz__fail(c, why, tc, "thread %u", tid);
    uint32_t lists = 0;
    for (unsigned k = 0; k < HZ_NUM_CLASSES; k++) {
      lists += (tc->active[k] != NULL) + tc->partial[k].count + tc->full[k].count;
      for (void *b = tc->sll[k].head; b; b = hz_link_get(b)) {
        if (!hz_in_arena(b) || hz_ptag_get(b) != HZ_TAG(tid, k))
          return hz__fail(c, "a TLS SLL holds only blocks of its class from its thread's slabs",
                          b, "block %p in thread %u", b, tid);
        hz_slab_t *s = hz_slab_of(b);
        uint32_t off = (uint32_t)((unsigned char *)b - hz_slab_start(s));
        if (off % hz_slab_block_size(s) || off / hz_slab_block_size(s) >= HZ_LOAD(&s->carved))
          return hz__fail(c, "a TLS SLL holds only carved block starts", b,
                          "block %p in thread %u", b, tid);
        if (hz__mark(c, s, b, "a TLS SLL")) return 1;
        c->slab[hz_slab_index(b)].cached++;
        c->census.cached_blocks++;
      }
    }
    /* Pending remote batches: free blocks of other threads' slabs, still in `used`. */
    for (unsigned i = 0; i < HZ_REMOTE_SLOTS; i++)
      for (void *b = tc->pending[i].head; b; b = hz_link_get(b)) {
        if (HZ_SECURE && hz_mark_get(b) != (hz_free_mark | HZ_MARK_QUEUED))
          return hz__fail(c, "a block in a remote batch or queue carries the queued mark", b,
                          "block %p in a batch of thread %u", b, tid);
        if (hz__mark(c, tc->pending[i].slab, b, "a remote batch")) return 1;
        c->slab[hz_slab_index(b)].queued++;
      }
    if (lists != c->owned_by[tid])
      return hz__fail(c, "every slab a thread owns is on exactly one of its lists", tc,
                      "thread %u lists %u slabs, owns %u", tid, lists, c->owned_by[tid]);
  }
  return 0;
}

/* used == cached + queued + held by the program, so used >= cached + queued. */
HZ_CHECKER static int hz__check_accounting(hz__check_t *c) {
  for (uint32_t si = 0; si < c->nslabs; si++) {
    hz_slab_t *s = hz_slab_meta_at(si);
    if (s->state < HZ_SLAB_ACTIVE) continue;
    const hz__slab_scratch_t *r = hz__touch(c, si);
    if (s->used < (uint64_t)r->cached + r->queued)
      return hz__fail(c, "used >= cached + queued (used counts every block off the freelist)",
                      s, "slab %p used %u", (void *)hz_slab_start(s), s->used);
    c->census.user_blocks += s->used - r->cached - r->queued;
    c->census.queued_blocks += r->queued;
  }
  return 0;
}

HZ_CHECKER static int hz__check_lists(hz__check_t *c) {
  const hz_slab_list_t *pool = hz_pool_list();
  uint64_t n = 0;
  for (hz_slab_t *s = pool->head; s; s = s->next)
    if (s->state != HZ_SLAB_POOLED || ++n > pool->count)
      return hz__fail(c, "the pool holds exactly the pooled slabs", s, "pool entry %p", (void *)s);
  if (n != c->census.slabs_pooled)
    return hz__fail(c, "the pool holds exactly the pooled slabs", pool, "pool %lu, found %lu",
                    (unsigned long)n, (unsigned long)c->census.slabs_pooled);
  n = 0;
  for (unsigned k = 0; k < HZ_NUM_CLASSES; k++) {
    const hz_slab_list_t *l = hz_pool_abandoned(k);
    for (hz_slab_t *s = l->head; s; s = s->next, n++)
      if (s->state != HZ_SLAB_ABANDONED || s->cls != k || n > c->census.slabs_abandoned)
        return hz__fail(c, "an abandoned list holds abandoned slabs of its class", s,
                        "entry %p class %u", (void *)s, k);
  }
  if (n != c->census.slabs_abandoned)
    return hz__fail(c, "the abandoned lists hold exactly the abandoned slabs", NULL,
                    "lists %lu, found %lu", (unsigned long)n,
                    (unsigned long)c->census.slabs_abandoned);
  return 0;
}

/* The free extent lists: each entry is the head of a free extent, in the bin of its
 * length; together they hold every free SuperSlab once; dirty_bytes is the sum of their
 * dirty prefixes; no free extent touches another (frees coalesce); and large_bytes counts
 * the large blocks' extents. */
HZ_CHECKER static int hz__check_extents(hz__check_t *c) {
  uint64_t listed = 0, dirty = 0, walked = 0;
  for (uint32_t bin = 0; bin <= HZ_EXTENT_BINS; bin++) {
    const hz_superslab_t *prev = NULL;
    for (const hz_superslab_t *h = hz_arena.free_bins[bin]; h; prev = h, h = h->next) {
      uint32_t head = (uint32_t)(h - hz_arena.ss);
      if (++walked > hz_arena.bump)
        return hz__fail(c, "the free extent lists hold each free extent once", h,
                        "more entries than SuperSlabs (a cycle)");
      if (head >= hz_arena.bump || atomic_load(&h->kind) != HZ_SS_FREE || h->head != head ||
          h->prev != prev)
        return hz__fail(c, "a free extent list links free extent heads (prev/next agree)", h,
                        "bin %u entry superslab %u", bin, head);
      if ((h->len <= HZ_EXTENT_BINS ? h->len : 0) != bin)
        return hz__fail(c, "a free extent sits in the bin of its length", h,
                        "superslab %u len %u in bin %u", head, h->len, bin);
      if (h->dirty > ((size_t)h->len << HZ_SUPERSLAB_SHIFT))
        return hz__fail(c, "dirty <= len * SuperSlab size", h, "superslab %u", head);
      uint32_t end = head + h->len;
      if ((head > 0 && atomic_load(&hz_arena.ss[head - 1].kind) == HZ_SS_FREE) ||
          (end < hz_arena.bump && atomic_load(&hz_arena.ss[end].kind) == HZ_SS_FREE))
        return hz__fail(c, "free extents are coalesced: no free extent touches another", h,
                        "superslab %u len %u", head, h->len);
      listed += h->len;
      dirty += h->dirty;
    }
  }
  if (listed != c->census.superslabs_free)
    return hz__fail(c, "the free extent lists hold every free SuperSlab", NULL,
                    "lists %lu, found %lu", (unsigned long)listed,
                    (unsigned long)c->census.superslabs_free);
  if (dirty != hz_arena.dirty_bytes)
    return hz__fail(c, "dirty_bytes == sum of the free extents' dirty prefixes", NULL,
                    "dirty_bytes %zu, sum %lu", hz_arena.dirty_bytes, (unsigned long)dirty);
  /* The dirty cache's bound follows this sum: a drift would keep too much or too little. */
  uint64_t large = (uint64_t)c->census.superslabs_large << HZ_SUPERSLAB_SHIFT;
  if (large != hz_arena.large_bytes)
    return hz__fail(c, "large_bytes == extent bytes of the live large blocks", NULL,
                    "large_bytes %zu, extents %lu", hz_arena.large_bytes, (unsigned long)large);
  return 0;
}

/* Scratch of at least `bytes`, kept between checks (the locks serialise them): a fresh
 * mapping per check cost a munmap, with its TLB shootdown, and its page faults on every
 * call, a quarter of a fuzzer's time. It only grows, with the heap; a new mapping is zero,
 * so every stamp in it is stale. */
HZ_CHECKER static unsigned char *hz__scratch(size_t bytes, uint32_t *stamp) {
  static unsigned char *mem;
  static size_t cap;
  if (bytes > cap || *stamp == UINT32_MAX) { /* (a wrapped stamp could match old records) */
    size_t want = (bytes + (1u << 20) - 1) & ~(size_t)((1u << 20) - 1);
    unsigned char *p = hz_os_pages()->map(want);
    if (!p) return NULL;
    if (mem) hz_os_pages()->unmap(mem, cap);
    mem = p, cap = want;
    *stamp = 0;
  }
  ++*stamp;
  return mem;
}

HZ_CHECKER int hz_heap_check(hz_violation_t *out, hz_census_t *census) {
  static hz__check_t c; /* large (owned_by); serialised by the locks below */
  int bad = 0;
  if (census) memset(census, 0, sizeof *census);
  if (!hz_pagemap_ready()) return 0;
  hz_threads_lock();
  hz_pool_lock();
  hz_pagemap_lock();
  memset(&c, 0, sizeof c);
  c.out = out;
  c.nslabs = hz_arena.bump * (uint32_t)HZ_SLABS_PER_SUPERSLAB;
  static uint32_t stamp; /* the last check's; 0 is what a new scratch mapping holds */
  size_t bytes = ((size_t)c.nslabs + 1) * sizeof(hz__slab_scratch_t);
  c.slab = (hz__slab_scratch_t *)hz__scratch(bytes, &stamp);
  c.now = stamp;
  if (!c.slab) {
    bad = hz__fail(&c, "the check could map its scratch memory", NULL, "%zu bytes", bytes);
  } else {
    bad = hz__check_superslabs(&c) || hz__check_extents(&c) || hz__check_threads(&c) ||
          hz__check_accounting(&c) || hz__check_lists(&c);
  }
  hz_pagemap_unlock();
  hz_pool_unlock();
  hz_threads_unlock();
  if (census) *census = c.census;
  return bad;
}
