/* Layer 4 (slab): large blocks, above HZ_MEDIUM_MAX.
 *
 * A large block is a whole extent of SuperSlabs inside the arena, so it is classified
 * by the same range check as every other hz pointer and is never mistaken for foreign.
 * Its header is out of band: the head SuperSlab's metadata (ss[head].len, large_size),
 * where no overflow of the block can reach it. Its pages carry tag 0; a free of a tag-0
 * arena pointer takes the slow path, which reads ss[] to find the block.
 */
#include <string.h>

#include "core/slab.h"

void *hz_large_alloc(size_t size, size_t align, bool zero) {
  if (size > HZ_ARENA_SIZE || align > HZ_ARENA_SIZE / 2) return NULL;
  /* An over-aligned request of 0 bytes still gets a page: a live block's usable size is
   * never 0 (0 is what a bad pointer gets, and realloc(p, usable_size(p)) would free p). */
  if (size == 0) size = 1;
  uint32_t n = (uint32_t)((size + HZ_SUPERSLAB_SIZE - 1) >> HZ_SUPERSLAB_SHIFT);
  if (HZ_BUG(HZ_BUG_LARGE_ROUND_DOWN, (size & (HZ_SUPERSLAB_SIZE - 1)) != 0))
    n = (uint32_t)(size >> HZ_SUPERSLAB_SHIFT);
  if (n == 0) n = 1;
  uint32_t a = align > HZ_SUPERSLAB_SIZE ? (uint32_t)(align >> HZ_SUPERSLAB_SHIFT) : 1;
  size_t dirty;
  uint32_t idx = hz_extent_alloc(n, a, HZ_SS_LARGE, &dirty);
  if (idx == HZ_NO_EXTENT) return NULL;
  hz_superslab_t *h = &hz_arena.ss[idx];
  void *p = hz_ss_addr(idx);
  /* The extent is out of the free list, its header not written: other threads' large
   * frees and allocations coalesce and split the neighbours meanwhile. */
  hz_race_point(HZ_RACE_LARGE_PUBLISH, p);
  h->large_size = size;
  h->large_touched = hz_large_usable(p);
  /* Old data of a reused extent may lie past this block's size; its free must not
   * record it clean. */
  if (dirty > h->large_touched) h->large_touched = dirty;
  hz_unpoison(p, hz_large_usable(p));
  /* Only the extent's dirty prefix can hold old data: past it, reused memory reads as
   * zero as fresh or decommitted memory does, and a memset would only fault it in. Within
   * it, only the pages the kernel holds: the old block may have written a few of the
   * pages its size spans, and hz_pages_clear decommits the rest instead of faulting them in. */
  if (zero) {
    size_t d = dirty < size ? dirty : size, whole = d & ~(HZ_PAGE_SIZE - 1);
    hz_pages_clear(p, whole, SIZE_MAX);
    memset((char *)p + whole, 0, d - whole);
    if (d < size) hz_mark_initialized((char *)p + d, size - d);
  }
  HZ_COUNT(large_allocs);
  return p;
}

void hz_large_free(void *p) {
  uint32_t idx = hz_ss_index(p);
  HZ_ASSERT(HZ_LOAD(&hz_arena.ss[idx].kind) == HZ_SS_LARGE && hz_arena.ss[idx].head == idx);
  hz_superslab_t *h = &hz_arena.ss[idx];
  /* Exactly what this block unpoisoned: the allocation and every resize keep
   * [p, usable) addressable, and leave the rest of the extent as they found it.
   * Poisoning the whole extent wrote up to 32 times the shadow of a 64 KiB block. */
  hz_poison(p, hz_large_usable(p));
  /* Not the current size: a block shrunk in place may have been written further. */
  hz_extent_free(idx, true, h->large_touched);
  HZ_COUNT(large_frees);
}

/* The page-rounded request: all the program may write. The extent may be larger, but
 * the dirty cache (pagemap.c) assumes nothing past this was touched, so calloc can trust
 * a reused extent's zeroes. */
size_t hz_large_usable(const void *p) {
  const hz_superslab_t *h = &hz_arena.ss[hz_ss_index(p)];
  size_t usable = (h->large_size + HZ_PAGE_SIZE - 1) & ~(HZ_PAGE_SIZE - 1);
  size_t extent = (size_t)h->len << HZ_SUPERSLAB_SHIFT;
  return usable < extent ? usable : extent;
}

bool hz_large_resize(void *p, size_t size) {
  uint32_t head = hz_ss_index(p);
  hz_superslab_t *h = &hz_arena.ss[head];
  size_t extent = (size_t)h->len << HZ_SUPERSLAB_SHIFT;
  size_t old = hz_large_usable(p);
  /* Stay while the extent holds the new size. A shrink to no less than half the usable
   * size always stays: realloc(p, usable_size(p)) of an over-aligned block, whose usable
   * size may be a single page, is a no-op. A block that would fit a small class moves. */
  bool gentle_shrink = size <= old && size >= old / 2;
  if (!gentle_shrink && size <= HZ_MEDIUM_MAX) return false;
  if (size > HZ_ARENA_SIZE) return false;
  uint32_t need = (uint32_t)((size + HZ_SUPERSLAB_SIZE - 1) >> HZ_SUPERSLAB_SHIFT);
  if (!gentle_shrink && size > extent) {
    /* Grow into the free SuperSlabs after the block, if there are enough: no copy, and
     * the old pages stay where they are. */
    size_t dirty;
    if (!hz_extent_grow(head, need, &dirty)) return false;
    /* Old data in the grown part counts as touched, as for a reused extent. */
    if (extent + dirty > h->large_touched) h->large_touched = extent + dirty;
  } else if (!gentle_shrink && h->len > 1 && size <= extent / 2) {
    /* A multi-SuperSlab block would leave more than half of itself unused: give the
     * SuperSlabs past the new size back, with what the program may have written there.
     * Poison what leaves the block first: once the tail is free, another thread may take
     * it and unpoison its own block there, which a later poison of ours would cover. */
    size_t keep = (size_t)need << HZ_SUPERSLAB_SHIFT;
    size_t rounded = (size + HZ_PAGE_SIZE - 1) & ~(HZ_PAGE_SIZE - 1);
    size_t stays = rounded < keep ? rounded : keep;
    if (stays < old) hz_poison((char *)p + stays, old - stays);
    hz_extent_shrink(head, need, h->large_touched > keep ? h->large_touched - keep : 0);
    if (h->large_touched > keep) h->large_touched = keep;
    old = stays < old ? stays : old;
  }
  h->large_size = size;
  size_t now = hz_large_usable(p);
  if (now > h->large_touched) h->large_touched = now;
  /* Only the bytes that change state: the kept prefix keeps its contents (and, under
   * MSan, its initialisation). */
  if (now > old) hz_unpoison((char *)p + old, now - old);
  else if (now < old) hz_poison((char *)p + now, old - now);
  return true;
}

void *hz_large_block_of(const void *p) {
  const hz_superslab_t *ss = &hz_arena.ss[hz_ss_index(p)];
  if (atomic_load_explicit(&ss->kind, memory_order_acquire) != HZ_SS_LARGE) return NULL;
  return hz_ss_addr(ss->head);
}
