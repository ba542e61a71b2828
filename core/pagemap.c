/* Layer 2 (pagemap): arena reservation, page tags and the extent allocator. */
#include "core/pagemap.h"

#include <string.h>

#include "core/os.h"

hz_arena_t hz_arena = {
    .base = (uintptr_t)0 - HZ_ARENA_SIZE,
    .lock = HZ_LOCK_INIT,
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

/* True when the page at p holds only zero bytes: one cache line at a time, so a page that
 * holds data usually stops at its first line. Not instrumented for coverage: a fuzzing
 * build would trace every word's comparison. */
__attribute__((no_sanitize("address", "memory", "coverage"))) static bool hz__page_is_zero(
    const unsigned char *p) {
  const uint64_t *w = (const uint64_t *)(const void *)p;
  for (size_t i = 0; i < HZ_PAGE_SIZE / sizeof *w; i += 8) {
    uint64_t any = 0;
    for (size_t k = 0; k < 8; k++) any |= w[i + k];
    if (any) return false;
  }
  return true;
}

/* Decommits [p, p + bytes), or clears it by hand where the OS refuses. */
static void hz__decommit_or_clear(unsigned char *p, size_t bytes) {
  if (hz_os_pages()->decommit(p, bytes) == 0) hz_mark_initialized(p, bytes);
  else memset(p, 0, bytes); /* the OS kept the data */
}

void hz_pages_clear(void *p, size_t size, size_t keep) {
  unsigned char vec[512]; /* 2 MiB of pages per residency query */
  const size_t chunk = sizeof vec << HZ_PAGE_SHIFT;
  unsigned char *base = p;
  if (keep == 0) { /* nothing kept: one decommit of the whole range, no residency query */
    hz__decommit_or_clear(base, size);
    return;
  }
  for (size_t off = 0; off < size; off += chunk) {
    size_t len = size - off < chunk ? size - off : chunk, pages = len >> HZ_PAGE_SHIFT;
    if (hz_os_resident(base + off, len, vec) != 0) memset(vec, 0, pages);
    for (size_t i = 0, j; i < pages; i = j) {
      unsigned char resident = vec[i] & 1;
      for (j = i + 1; j < pages && (vec[j] & 1) == resident; j++) {
      }
      unsigned char *run = base + off + (i << HZ_PAGE_SHIFT);
      size_t bytes = (j - i) << HZ_PAGE_SHIFT;
      if (resident && bytes <= keep) {
        keep -= bytes;
        for (size_t k = 0; k < bytes; k += HZ_PAGE_SIZE) {
          /* Zero afterwards either way, so initialised for MSan now: the test may read
           * it, and a page found zero is not written. */
          hz_mark_initialized(run + k, HZ_PAGE_SIZE);
          if (!hz__page_is_zero(run + k)) memset(run + k, 0, HZ_PAGE_SIZE);
        }
      } else {
        hz__decommit_or_clear(run, bytes);
      }
    }
  }
}

void hz_pagemap_reset(size_t keep) {
  HZ_ASSERT(hz_pagemap_held());
  size_t used = (size_t)hz_arena.bump << HZ_SUPERSLAB_SHIFT;
  if (used) {
    hz_unpoison((void *)hz_arena.base, used); /* as never-used arena is */
    /* The next heap trusts never-used arena to read as zero. */
    hz_pages_clear((void *)hz_arena.base, used, keep);
    /* Only the used prefix of each table: the cost follows the heap, not the arena. */
    memset((void *)hz_arena.ptag, 0, (used >> HZ_PAGE_SHIFT) * sizeof *hz_arena.ptag);
    memset(hz_arena.ss, 0, hz_arena.bump * sizeof *hz_arena.ss);
    memset(hz_arena.slab_meta, 0, (used >> HZ_SLAB_SHIFT) * (size_t)HZ_SLAB_META_SIZE);
  }
  hz_arena.bump = 0;
  memset(hz_arena.free_bins, 0, sizeof hz_arena.free_bins);
  hz_arena.dirty_bytes = 0;
  hz_arena.large_bytes = 0;
  hz_arena.large_avg = 0;
  hz_arena.clock = 0;
  hz__deferred_decommit.bytes = 0; /* a pending decommit belongs to the heap just wiped */
}

void hz_pagemap_lock(void) { hz_lock(&hz_arena.lock); }
void hz_pagemap_unlock(void) { hz_unlock(&hz_arena.lock); }
bool hz_pagemap_held(void) { return hz_lock_held(&hz_arena.lock); }
void hz_pagemap_reset_lock_after_fork(void) { hz_lock_reinit(&hz_arena.lock); }

/* ---- free extent lists (arena lock held) -------------------------------------- */

static hz_superslab_t **hz__bin_of(uint32_t len) {
  return &hz_arena.free_bins[len <= HZ_EXTENT_BINS ? len : 0];
}

static void hz__free_list_push(hz_superslab_t *h) {
  HZ_ASSERT(hz_pagemap_held());
  hz_superslab_t **bin = hz__bin_of(h->len);
  h->prev = NULL;
  h->next = *bin;
  if (*bin) (*bin)->prev = h;
  *bin = h;
}

static void hz__free_list_remove(hz_superslab_t *h) {
  HZ_ASSERT(hz_pagemap_held());
  if (h->prev) h->prev->next = h->next;
  else *hz__bin_of(h->len) = h->next;
  if (h->next) h->next->prev = h->prev;
  h->next = h->prev = NULL;
}

/* Marks [head, head + len) as one extent of `kind`. A SuperSlab handed out again forgets
 * that a large block once started there. */
static void hz__mark_extent(uint32_t head, uint32_t len, hz_ss_kind_t kind) {
  HZ_ASSERT(hz_pagemap_held());
  for (uint32_t i = head; i < head + len; i++) {
    hz_arena.ss[i].head = head;
    if (kind != HZ_SS_FREE) hz_arena.ss[i].was_large = 0;
    atomic_store_explicit(&hz_arena.ss[i].kind, kind, memory_order_release);
  }
  hz_arena.ss[head].len = len;
}

/* Frees [head, head + len), whose first `dirty` bytes may hold data (dirty since clock
 * `since`), merging it with free neighbours so that fragments can serve larger extents
 * again. A merged extent's dirty prefix runs to the end of its last dirty part (an
 * over-estimate is only slower), and its age is that of its youngest dirty part, so the
 * trim never decommits memory freed a moment ago because an old neighbour was merged. */
static void hz__make_free(uint32_t head, uint32_t len, size_t dirty, uint64_t since) {
  if (!dirty) since = 0;
  uint32_t next = head + len;
  if (next < hz_arena.bump && HZ_LOAD(&hz_arena.ss[next].kind) == HZ_SS_FREE) {
    hz_superslab_t *n = &hz_arena.ss[next];
    hz__free_list_remove(n);
    hz_arena.dirty_bytes -= n->dirty;
    if (n->dirty) {
      dirty = ((size_t)len << HZ_SUPERSLAB_SHIFT) + n->dirty;
      if (n->dirty_since > since) since = n->dirty_since;
    }
    len += n->len;
  }
  if (head > 0 && HZ_LOAD(&hz_arena.ss[head - 1].kind) == HZ_SS_FREE) {
    hz_superslab_t *p = &hz_arena.ss[hz_arena.ss[head - 1].head];
    hz__free_list_remove(p);
    hz_arena.dirty_bytes -= p->dirty;
    dirty = dirty ? ((size_t)p->len << HZ_SUPERSLAB_SHIFT) + dirty : p->dirty;
    if (p->dirty && p->dirty_since > since) since = p->dirty_since;
    len += p->len;
    head = (uint32_t)(p - hz_arena.ss);
  }
  hz__mark_extent(head, len, HZ_SS_FREE);
  hz_superslab_t *h = &hz_arena.ss[head];
  h->dirty = dirty;
  h->dirty_since = dirty ? since : 0;
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
 * cannot merge them back into it. *dirty is the taken part's own share of the dirty
 * prefix: a large block must count it as touched at its free, or old data past its size
 * would be recorded clean and a later calloc would skip its memset. */
static uint32_t hz__take_free(hz_superslab_t *h, uint32_t off, uint32_t n, hz_ss_kind_t kind,
                              size_t *dirty) {
  uint32_t head = (uint32_t)(h - hz_arena.ss), len = h->len;
  size_t d = h->dirty;
  uint64_t since = h->dirty_since;
  size_t lead = (size_t)off << HZ_SUPERSLAB_SHIFT, end = (size_t)(off + n) << HZ_SUPERSLAB_SHIFT;
  hz__free_list_remove(h);
  hz_arena.dirty_bytes -= d;
  hz__mark_extent(head + off, n, kind);
  if (off > 0) hz__make_free(head, off, d < lead ? d : lead, since);
  if (len > off + n) hz__make_free(head + off + n, len - off - n, d > end ? d - end : 0, since);
  *dirty = d <= lead ? 0 : (d < end ? d : end) - lead;
  return head + off;
}

/* Takes, as `kind`, n SuperSlabs aligned to `align` from a free extent: exact-length bins first,
 * then longer ones, then the list of extents longer than the bins. */
static uint32_t hz__find_free(uint32_t n, uint32_t align, hz_ss_kind_t kind, size_t *dirty) {
  for (uint32_t bin = 1; bin <= HZ_EXTENT_BINS + 1; bin++) {
    uint32_t b = bin <= HZ_EXTENT_BINS ? bin : 0;
    if (b && b < n) continue;
    for (hz_superslab_t *h = hz_arena.free_bins[b]; h; h = h->next) {
      uint32_t head = (uint32_t)(h - hz_arena.ss);
      uint32_t start = align == 1 ? head : hz__align_index(head, align);
      if ((uint64_t)start + n <= (uint64_t)head + h->len)
        return hz__take_free(h, start - head, n, kind, dirty);
      if (align == 1 && b != 0) break; /* every extent of an exact bin is as short */
    }
  }
  return HZ_NO_EXTENT;
}

/* Whether some free extent holds n SuperSlabs aligned to `align`. It walks the SuperSlabs,
 * not the bins, so that it judges the bins' search instead of repeating it. Only an
 * HZ_ASSERT_EXPENSIVE calls it, which below HZ_DEBUG 2 does not: hence `unused`. */
__attribute__((unused)) static bool hz__fits_free(uint32_t n, uint32_t align) {
  for (uint32_t i = 0; i < hz_arena.bump; i++) {
    const hz_superslab_t *h = &hz_arena.ss[i];
    if (HZ_LOAD(&h->kind) == HZ_SS_FREE && h->head == i &&
        (uint64_t)hz__align_index(i, align) + n <= (uint64_t)i + h->len)
      return true;
  }
  return false;
}

/* Grows into never-used arena; the skipped alignment gap becomes a free extent. */
static uint32_t hz__bump(uint32_t n, uint32_t align, size_t *dirty) {
  HZ_ASSERT(hz_pagemap_held());
  uint32_t start = hz__align_index(hz_arena.bump, align);
  if ((uint64_t)start + n > HZ_ARENA_SUPERSLABS) return HZ_NO_EXTENT;
  if (hz_os_pages()->commit(hz_ss_addr(hz_arena.bump),
                            (size_t)(start + n - hz_arena.bump) << HZ_SUPERSLAB_SHIFT) != 0)
    return HZ_NO_EXTENT;
  if (start > hz_arena.bump) hz__make_free(hz_arena.bump, start - hz_arena.bump, 0, 0);
  hz_arena.bump = start + n;
  *dirty = 0;
  return start;
}

/* Adds `add` and takes `sub` from the live large bytes, and moves their average an eighth
 * of the way towards the new value: the cache's bound follows the average too, so that a program whose working set
 * dips for a moment (one thread frees its buffers before the others) does not have its
 * cache decommitted and faulted back in by the next round of allocations. */
static void hz__large_add(size_t add, size_t sub) {
  HZ_ASSERT(hz_pagemap_held());
  hz_arena.large_bytes = hz_arena.large_bytes + add - sub;
  size_t live = hz_arena.large_bytes, avg = hz_arena.large_avg;
  hz_arena.large_avg = live > avg ? avg + (live - avg) / 8 : avg - (avg - live) / 8;
}

uint32_t hz_extent_alloc(uint32_t n, uint32_t align, hz_ss_kind_t kind, size_t *dirty) {
  HZ_ASSERT(n > 0 && align > 0 && (align & (align - 1)) == 0);
  hz_pagemap_lock();
  uint32_t head = hz__find_free(n, align, kind, dirty);
  if (head == HZ_NO_EXTENT) {
    /* Placement: the arena grows only when no free extent fits, or freed address space is
     * lost to every later request (a search that skips a bin passes every other check). */
    HZ_ASSERT_EXPENSIVE(!hz__fits_free(n, align));
    head = hz__bump(n, align, dirty);
    if (head != HZ_NO_EXTENT) hz__mark_extent(head, n, kind);
  }
  if (head != HZ_NO_EXTENT) {
    HZ_COUNT(superslabs_taken);
    if (kind == HZ_SS_LARGE) hz__large_add((size_t)n << HZ_SUPERSLAB_SHIFT, 0);
  }
  hz_pagemap_unlock();
  return head;
}

/* The free extent head with a dirty prefix that was freed longest ago, or NULL. A walk of
 * every free extent, but only once per trimmed extent, and a trim happens only after the
 * cache has grown by a quarter of its bound since the last one. */
static hz_superslab_t *hz__oldest_dirty(void) {
  hz_superslab_t *oldest = NULL;
  for (uint32_t b = 0; b <= HZ_EXTENT_BINS; b++)
    for (hz_superslab_t *h = hz_arena.free_bins[b]; h; h = h->next)
      if (h->dirty && (!oldest || h->dirty_since < oldest->dirty_since)) oldest = h;
  return oldest;
}

/* Decommits the dirty prefixes of the least recently freed extents, in one go, once the
 * cache is over its bound: the extent just freed is the youngest, so a program that frees
 * and reallocates large blocks keeps reusing committed memory, and what was parked
 * longest goes back to the OS. A refused decommit leaves that extent dirty (calloc never
 * trusts data the kernel kept) and ends the trim; the next free over the bound tries
 * again. */
static void hz__trim(void) {
  HZ_ASSERT(hz_pagemap_held());
  size_t limit = HZ_LARGE_CACHE_LIMIT(hz_large_working_set());
  if (hz_arena.dirty_bytes <= limit) return;
  size_t target = HZ_LARGE_CACHE_TRIM_TO(limit);
  while (hz_arena.dirty_bytes > target) {
    hz_superslab_t *h = hz__oldest_dirty();
    if (!h) break;
    void *addr = hz_ss_addr((uint32_t)(h - hz_arena.ss));
    if (HZ_BUG(HZ_BUG_LATE_DECOMMIT, true)) {
      /* One decommit can wait: the one before it is applied now, in time. The extent is
       * recorded clean while its data is still there, so this is a trigger too: the
       * free-extent check sees it before any reuse does. */
      if (hz__deferred_decommit.bytes)
        hz_os_pages()->decommit(hz__deferred_decommit.addr, hz__deferred_decommit.bytes);
      hz__deferred_decommit.addr = addr;
      hz__deferred_decommit.bytes = h->dirty;
    } else if (hz_os_pages()->decommit(addr, h->dirty) != 0) {
      break;
    }
    hz_arena.dirty_bytes -= h->dirty;
    h->dirty = 0;
    h->dirty_since = 0;
    HZ_COUNT(extents_decommitted);
  }
}

void hz_extent_free(uint32_t head, bool was_large, size_t touched) {
  hz_pagemap_lock();
  uint32_t len = hz_arena.ss[head].len;
  size_t bytes = (size_t)len << HZ_SUPERSLAB_SHIFT;
  touched = (touched + HZ_PAGE_SIZE - 1) & ~(HZ_PAGE_SIZE - 1);
  if (touched > bytes) touched = bytes;
  if (HZ_BUG(HZ_BUG_LATE_DECOMMIT, hz__deferred_decommit.bytes != 0)) {
    hz_os_pages()->decommit(hz__deferred_decommit.addr, hz__deferred_decommit.bytes);
    hz__deferred_decommit.bytes = 0;
  }
  if (was_large) hz__large_add(0, bytes);
  hz_arena.ss[head].was_large = was_large;
  /* Committed, and the youngest in the cache: the next allocation of its size reuses it
   * without a system call or a page fault. The cache counts touched bytes, not extent
   * bytes: a 100 KiB block costs 100 KiB of it. */
  hz__make_free(head, len, touched, ++hz_arena.clock);
  hz__trim();
  HZ_COUNT(superslabs_released);
  hz_pagemap_unlock();
}

bool hz_extent_grow(uint32_t head, uint32_t n, size_t *dirty) {
  hz_pagemap_lock();
  hz_superslab_t *h = &hz_arena.ss[head];
  uint32_t len = h->len, next = head + len, extra = n - len;
  HZ_ASSERT(n > len && HZ_LOAD(&h->kind) == HZ_SS_LARGE);
  bool ok = false;
  if (next < hz_arena.bump && HZ_LOAD(&hz_arena.ss[next].kind) == HZ_SS_FREE) {
    /* Free extents are coalesced, so the free SuperSlab right after an extent is a head. */
    hz_superslab_t *f = &hz_arena.ss[next];
    if (f->head == next && f->len >= extra) {
      hz__take_free(f, 0, extra, HZ_SS_LARGE, dirty);
      ok = true;
    }
  } else if (next == hz_arena.bump && (uint64_t)next + extra <= HZ_ARENA_SUPERSLABS &&
             hz_os_pages()->commit(hz_ss_addr(next), (size_t)extra << HZ_SUPERSLAB_SHIFT) == 0) {
    hz_arena.bump = next + extra;
    *dirty = 0;
    ok = true;
  }
  if (ok) {
    /* One extent again: every SuperSlab names the block's head. */
    hz__mark_extent(head, n, HZ_SS_LARGE);
    hz__large_add((size_t)extra << HZ_SUPERSLAB_SHIFT, 0);
    HZ_COUNT(superslabs_taken);
  }
  hz_pagemap_unlock();
  return ok;
}

void hz_extent_shrink(uint32_t head, uint32_t n, size_t tail_touched) {
  hz_pagemap_lock();
  hz_superslab_t *h = &hz_arena.ss[head];
  uint32_t len = h->len;
  HZ_ASSERT(n > 0 && n < len && HZ_LOAD(&h->kind) == HZ_SS_LARGE);
  size_t tail = (size_t)(len - n) << HZ_SUPERSLAB_SHIFT;
  tail_touched = (tail_touched + HZ_PAGE_SIZE - 1) & ~(HZ_PAGE_SIZE - 1);
  if (tail_touched > tail) tail_touched = tail;
  h->len = n;
  hz__large_add(0, tail);
  /* No large block starts in the tail: a free of its address is "not allocated". */
  hz_arena.ss[head + n].was_large = 0;
  hz__make_free(head + n, len - n, tail_touched, ++hz_arena.clock);
  hz__trim();
  HZ_COUNT(superslabs_released);
  hz_pagemap_unlock();
}
