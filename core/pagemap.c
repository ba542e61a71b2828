/* Layer 2 (pagemap): arena reservation, page tags and the extent allocator. */
#include "core/pagemap.h"

#include <string.h>

#include "core/os.h"

hz_arena_t hz_arena = {
    .base = (uintptr_t)0 - HZ_ARENA_SIZE,
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

static atomic_bool hz__pagemap_ready;

bool hz_pagemap_ready(void) { return atomic_load_explicit(&hz__pagemap_ready, memory_order_acquire); }

int hz_pagemap_init(void) {
  const hz_page_source_t *os = hz_os_pages();
  void *arena = os->reserve(HZ_ARENA_SIZE, HZ_SUPERSLAB_SIZE);
  _Atomic uint32_t *ptag = os->map(HZ_ARENA_PAGES * sizeof(uint32_t));
  hz_superslab_t *ss = os->map(HZ_ARENA_SUPERSLABS * sizeof(hz_superslab_t));
  unsigned char *meta = os->map(HZ_ARENA_SLABS * (size_t)HZ_SLAB_META_SIZE);
  if (!arena || !ptag || !ss || !meta) {
    static const char msg[] = "hz: cannot reserve the arena or its tables (address space limit?)\n";
    hz_os_write_stderr(msg, sizeof msg - 1);
    return -1;
  }
  hz_arena.ptag = ptag;
  hz_arena.ss = ss;
  hz_arena.slab_meta = meta;
  hz_arena.base = (uintptr_t)arena; /* last: publishes the range to hz_in_arena */
  atomic_store_explicit(&hz__pagemap_ready, 1, memory_order_release);
  return 0;
}

void hz_ptag_set_range(void *first, size_t pages, uint32_t tag) {
  _Atomic uint32_t *t = &hz_arena.ptag[((uintptr_t)first - hz_arena.base) >> HZ_PAGE_SHIFT];
  for (size_t i = 0; i < pages; i++) HZ_STORE(&t[i], tag);
}

/* The seeded LATE_DECOMMIT bug defers a decommit to the next free of an extent, by which
 * time the range may belong to a new block. */
static struct {
  void *addr;
  size_t bytes;
} hz__deferred_decommit;

void hz_pagemap_reset(void) {
  size_t used = (size_t)hz_arena.bump << HZ_SUPERSLAB_SHIFT;
  if (used) {
    bool cleared = hz_os_pages()->decommit((void *)hz_arena.base, used) == 0;
    hz_unpoison((void *)hz_arena.base, used); /* as never-used arena is */
    /* The next heap trusts never-used arena to read as zero: clear what the OS kept. */
    if (!cleared) memset((void *)hz_arena.base, 0, used);
    /* Only the used prefix of each table: the cost follows the heap, not the arena. */
    memset((void *)hz_arena.ptag, 0, (used >> HZ_PAGE_SHIFT) * sizeof *hz_arena.ptag);
    memset(hz_arena.ss, 0, hz_arena.bump * sizeof *hz_arena.ss);
    memset(hz_arena.slab_meta, 0, (used >> HZ_SLAB_SHIFT) * (size_t)HZ_SLAB_META_SIZE);
  }
  hz_arena.bump = 0;
  memset(hz_arena.free_bins, 0, sizeof hz_arena.free_bins);
  hz_arena.dirty_bytes = 0;
  hz__deferred_decommit.bytes = 0; /* a pending decommit belongs to the heap just wiped */
}

void hz_pagemap_lock(void) { pthread_mutex_lock(&hz_arena.lock); }
void hz_pagemap_unlock(void) { pthread_mutex_unlock(&hz_arena.lock); }
void hz_pagemap_reset_lock_after_fork(void) { pthread_mutex_init(&hz_arena.lock, NULL); }

/* ---- free extent lists (arena lock held) -------------------------------------- */

static hz_superslab_t **hz__bin_of(uint32_t len) {
  return &hz_arena.free_bins[len <= HZ_EXTENT_BINS ? len : 0];
}

static void hz__free_list_push(hz_superslab_t *h) {
  hz_superslab_t **bin = hz__bin_of(h->len);
  h->prev = NULL;
  h->next = *bin;
  if (*bin) (*bin)->prev = h;
  *bin = h;
}

static void hz__free_list_remove(hz_superslab_t *h) {
  if (h->prev) h->prev->next = h->next;
  else *hz__bin_of(h->len) = h->next;
  if (h->next) h->next->prev = h->prev;
  h->next = h->prev = NULL;
}

/* Marks [head, head + len) as one extent of `kind`. A SuperSlab handed out again forgets
 * that a large block once started there. */
static void hz__mark_extent(uint32_t head, uint32_t len, hz_ss_kind_t kind) {
  for (uint32_t i = head; i < head + len; i++) {
    hz_arena.ss[i].head = head;
    if (kind != HZ_SS_FREE) hz_arena.ss[i].was_large = 0;
    atomic_store_explicit(&hz_arena.ss[i].kind, kind, memory_order_release);
  }
  hz_arena.ss[head].len = len;
}

/* Frees [head, head + len), whose first `dirty` bytes may hold data, merging it with free
 * neighbours so that fragments can serve larger extents again. A merged extent's dirty
 * prefix runs to the end of its last dirty part (an over-estimate is only slower). */
static void hz__make_free(uint32_t head, uint32_t len, size_t dirty) {
  uint32_t next = head + len;
  if (next < hz_arena.bump && HZ_LOAD(&hz_arena.ss[next].kind) == HZ_SS_FREE) {
    hz_superslab_t *n = &hz_arena.ss[next];
    hz__free_list_remove(n);
    hz_arena.dirty_bytes -= n->dirty;
    if (n->dirty) dirty = ((size_t)len << HZ_SUPERSLAB_SHIFT) + n->dirty;
    len += n->len;
  }
  if (head > 0 && HZ_LOAD(&hz_arena.ss[head - 1].kind) == HZ_SS_FREE) {
    hz_superslab_t *p = &hz_arena.ss[hz_arena.ss[head - 1].head];
    hz__free_list_remove(p);
    hz_arena.dirty_bytes -= p->dirty;
    dirty = dirty ? ((size_t)p->len << HZ_SUPERSLAB_SHIFT) + dirty : p->dirty;
    len += p->len;
    head = (uint32_t)(p - hz_arena.ss);
  }
  hz__mark_extent(head, len, HZ_SS_FREE);
  hz_superslab_t *h = &hz_arena.ss[head];
  h->dirty = dirty;
  hz_arena.dirty_bytes += dirty;
  hz__free_list_push(h);
}

/* The first index >= from whose address is aligned to `align` SuperSlabs: the arena is
 * only 2 MiB aligned, so alignment is a property of the address, not the index. */
static uint32_t hz__align_index(uint32_t from, uint32_t align) {
  uint64_t base_idx = hz_arena.base >> HZ_SUPERSLAB_SHIFT;
  return (uint32_t)(((base_idx + from + align - 1) & ~(uint64_t)(align - 1)) - base_idx);
}

/* Takes [head + off, head + off + n) out of free extent h as an extent of `kind`; the
 * parts before and after go back to the free lists, each keeping whatever part of the
 * dirty prefix it holds. The taken part is marked first, so that freeing the remainders
 * cannot merge them back into it. */
static uint32_t hz__take_free(hz_superslab_t *h, uint32_t off, uint32_t n, hz_ss_kind_t kind,
                              bool *zeroed) {
  uint32_t head = (uint32_t)(h - hz_arena.ss), len = h->len;
  size_t dirty = h->dirty;
  size_t lead = (size_t)off << HZ_SUPERSLAB_SHIFT, end = (size_t)(off + n) << HZ_SUPERSLAB_SHIFT;
  hz__free_list_remove(h);
  hz_arena.dirty_bytes -= dirty;
  hz__mark_extent(head + off, n, kind);
  if (off > 0) hz__make_free(head, off, dirty < lead ? dirty : lead);
  if (len > off + n) hz__make_free(head + off + n, len - off - n, dirty > end ? dirty - end : 0);
  *zeroed = dirty <= lead;
  /* The taken part's own share of the dirty prefix, for its new owner: a large block
   * must still count it as touched at its free, or old data past its size would be
   * recorded clean and a later calloc would skip its memset. */
  hz_arena.ss[head + off].dirty = dirty <= lead ? 0 : (dirty < end ? dirty : end) - lead;
  return head + off;
}

/* Takes, as `kind`, n SuperSlabs aligned to `align` from a free extent: exact-length bins first,
 * then longer ones, then the list of extents longer than the bins. */
static uint32_t hz__find_free(uint32_t n, uint32_t align, hz_ss_kind_t kind, bool *zeroed) {
  for (uint32_t bin = 1; bin <= HZ_EXTENT_BINS + 1; bin++) {
    uint32_t b = bin <= HZ_EXTENT_BINS ? bin : 0;
    if (b && b < n) continue;
    for (hz_superslab_t *h = hz_arena.free_bins[b]; h; h = h->next) {
      uint32_t head = (uint32_t)(h - hz_arena.ss);
      uint32_t start = align == 1 ? head : hz__align_index(head, align);
      if ((uint64_t)start + n <= (uint64_t)head + h->len)
        return hz__take_free(h, start - head, n, kind, zeroed);
      if (align == 1 && b != 0) break; /* every extent of an exact bin is as short */
    }
  }
  return HZ_NO_EXTENT;
}

/* Grows into never-used arena; the skipped alignment gap becomes a free extent. */
static uint32_t hz__bump(uint32_t n, uint32_t align, bool *zeroed) {
  uint32_t start = hz__align_index(hz_arena.bump, align);
  if ((uint64_t)start + n > HZ_ARENA_SUPERSLABS) return HZ_NO_EXTENT;
  if (hz_os_pages()->commit(hz_ss_addr(hz_arena.bump),
                            (size_t)(start + n - hz_arena.bump) << HZ_SUPERSLAB_SHIFT) != 0)
    return HZ_NO_EXTENT;
  if (start > hz_arena.bump) hz__make_free(hz_arena.bump, start - hz_arena.bump, 0);
  hz_arena.bump = start + n;
  *zeroed = true;
  return start;
}

uint32_t hz_extent_alloc(uint32_t n, uint32_t align, hz_ss_kind_t kind, bool *zeroed) {
  HZ_ASSERT(n > 0 && align > 0 && (align & (align - 1)) == 0);
  hz_pagemap_lock();
  uint32_t head = hz__find_free(n, align, kind, zeroed);
  if (head == HZ_NO_EXTENT) {
    head = hz__bump(n, align, zeroed);
    if (head != HZ_NO_EXTENT) hz__mark_extent(head, n, kind);
  }
  if (head != HZ_NO_EXTENT) HZ_COUNT(superslabs_taken);
  hz_pagemap_unlock();
  return head;
}

void hz_extent_free(uint32_t head, bool was_large, size_t touched) {
  hz_pagemap_lock();
  uint32_t len = hz_arena.ss[head].len;
  size_t bytes = (size_t)len << HZ_SUPERSLAB_SHIFT;
  touched = (touched + HZ_PAGE_SIZE - 1) & ~(HZ_PAGE_SIZE - 1);
  if (touched > bytes) touched = bytes;
  /* Keep recently freed memory committed while the cache has room: a program that frees
   * and reallocates large blocks then pays no system call and no page fault. The cache
   * counts touched bytes, not extent bytes: a 100 KiB block costs 100 KiB of it. */
  if (HZ_BUG(HZ_BUG_LATE_DECOMMIT, hz__deferred_decommit.bytes != 0)) {
    hz_os_pages()->decommit(hz__deferred_decommit.addr, hz__deferred_decommit.bytes);
    hz__deferred_decommit.bytes = 0;
  }
  if (hz_arena.dirty_bytes + touched > HZ_LARGE_CACHE_BYTES) {
    if (HZ_SEED_BUG == HZ_BUG_LATE_DECOMMIT) {
      hz__deferred_decommit.addr = hz_ss_addr(head);
      hz__deferred_decommit.bytes = touched;
      touched = 0;
    } else if (hz_os_pages()->decommit(hz_ss_addr(head), touched) == 0) {
      touched = 0;
    }
    /* A refused decommit leaves the data in place: the extent stays dirty (over the
     * cache budget, which the next free of an extent decommits again). */
  }
  hz_arena.ss[head].was_large = was_large;
  hz__make_free(head, len, touched);
  HZ_COUNT(superslabs_released);
  hz_pagemap_unlock();
}
