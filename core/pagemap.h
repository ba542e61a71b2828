/* Layer 2 (pagemap): the arena, the PTAG32 page-tag table, per-SuperSlab metadata and
 * the extent allocator that hands SuperSlabs to slabs and large blocks.
 *
 * The arena is one reserved range of HZ_ARENA_SIZE bytes, 2 MiB aligned, PROT_NONE until
 * committed. Beside it, out of reach of any block overflow:
 *   - ptag[page]: one 32-bit tag per 4 KiB page. 0 = no slab block here (not hz's, an
 *     empty slab, a large block or unused arena); otherwise (owner << 16) | (class + 1)
 *     for a page of a carved slab, owner 0 meaning abandoned.
 *   - ss[i]: metadata of SuperSlab i (kind, extent head and length, pool counts).
 *   - slab_meta: HZ_SLAB_META_SIZE bytes per slab (the hz_slab_t of slab.h).
 * A pointer is classified in O(1): range check, then one tag load. Tag 0 inside the
 * range goes to the slow path, which reads ss[] to tell large blocks from free memory.
 */
#ifndef HZ_PAGEMAP_H
#define HZ_PAGEMAP_H

#include <pthread.h>
#include <stdbool.h>

#include "core/base.h"

#define HZ_SLAB_META_SIZE 128u
#define HZ_NO_EXTENT UINT32_MAX

#define HZ_TAG(owner, cls) (((uint32_t)(owner) << 16) | ((uint32_t)(cls) + 1u))
#define HZ_TAG_OWNER(tag) ((tag) >> 16)
#define HZ_TAG_CLASS(tag) (((tag) & 0xFFFFu) - 1u)

typedef enum {
  HZ_SS_UNUSED = 0, /* never handed out (above the bump pointer) */
  HZ_SS_FREE,       /* part of a free extent */
  HZ_SS_SLABS,      /* cut into slabs */
  HZ_SS_LARGE,      /* part of a large block */
} hz_ss_kind_t;

typedef struct hz_superslab_s {
  _Atomic uint32_t kind;     /* hz_ss_kind_t */
  uint32_t head;             /* FREE, LARGE: index of the extent's first SuperSlab */
  uint32_t len;              /* at the head: extent length in SuperSlabs */
  uint32_t slabs_pooled;     /* SLABS: slabs of this SuperSlab in the shared pool */
  uint8_t was_large;         /* FREE: a large block started here when it was freed (so a
                                second free is reported as a double free) */
  size_t dirty;              /* FREE head: bytes from its start that may hold old data */
  uint64_t dirty_since;      /* FREE head with dirty > 0: hz_arena.clock when its dirty
                                prefix last grew; the trim decommits the oldest first */
  size_t large_size;         /* LARGE head: requested size */
  size_t large_touched;      /* LARGE head: the most the program could have written (the
                                largest usable size over the block's life) */
  struct hz_superslab_s *next, *prev; /* FREE head: free extent list */
} hz_superslab_t;

typedef struct {
  /* Read on every free: set once at init, never written again. */
  uintptr_t base;         /* before init: (0 - HZ_ARENA_SIZE), so no address is in range */
  _Atomic uint32_t *ptag; /* HZ_ARENA_PAGES tags */
  hz_superslab_t *ss;     /* HZ_ARENA_SUPERSLABS entries */
  unsigned char *slab_meta;
  /* Extent allocator state, under `lock`. */
  hz_lock_t lock;
  uint32_t bump;                            /* SuperSlabs ever handed out (committed) */
  hz_superslab_t *free_bins[HZ_EXTENT_BINS + 1]; /* [n]: free extents of n; [0]: longer */
  size_t dirty_bytes;                       /* sum of `dirty` over free extents */
  size_t large_bytes;                       /* extent bytes of the live large blocks */
  size_t large_avg;                         /* large_bytes averaged over the last few large
                                               allocations and frees (1/8 per event) */
  uint64_t clock;                           /* extent frees so far: the trim's age */
} hz_arena_t;

extern hz_arena_t hz_arena;

HZ_INLINE bool hz_in_arena(const void *p) {
  bool in = (uintptr_t)p - hz_arena.base < HZ_ARENA_SIZE;
  if (HZ_BUG(HZ_BUG_FOREIGN_CLAIMED,
             !in && hz_arena.base && (((uintptr_t)p ^ hz_arena.base) >> HZ_ARENA_SHIFT) == 0))
    return true;
  return in;
}
/* Requires hz_in_arena(p). */
HZ_INLINE uint32_t hz_ptag_get(const void *p) {
  return HZ_LOAD(&hz_arena.ptag[((uintptr_t)p - hz_arena.base) >> HZ_PAGE_SHIFT]);
}
HZ_INLINE uint32_t hz_ss_index(const void *p) {
  return (uint32_t)(((uintptr_t)p - hz_arena.base) >> HZ_SUPERSLAB_SHIFT);
}
HZ_INLINE void *hz_ss_addr(uint32_t index) {
  return (void *)(hz_arena.base + ((uintptr_t)index << HZ_SUPERSLAB_SHIFT));
}
HZ_INLINE uint32_t hz_slab_index(const void *p) {
  return (uint32_t)(((uintptr_t)p - hz_arena.base) >> HZ_SLAB_SHIFT);
}
HZ_INLINE void *hz_slab_meta_at(uint32_t slab_index) {
  return hz_arena.slab_meta + (size_t)slab_index * HZ_SLAB_META_SIZE;
}

/* The large working set the dirty cache's bound follows (HZ_LARGE_CACHE_LIMIT): the live
 * large bytes, or their recent average if that is more. Arena lock held. */
HZ_INLINE size_t hz_large_working_set(void) {
  return hz_arena.large_bytes > hz_arena.large_avg ? hz_arena.large_bytes : hz_arena.large_avg;
}

/* Reserves the arena and its tables. 0 on success, -1 when the OS refuses. */
int hz_pagemap_init(void);
bool hz_pagemap_ready(void);

/* Tags `pages` pages from `first` (an arena address) with `tag`. */
void hz_ptag_set_range(void *first, size_t pages, uint32_t tag);

/* Takes an extent of n SuperSlabs aligned to `align` SuperSlabs (a power of two) and
 * marks it `kind`; returns its first index or HZ_NO_EXTENT. *dirty is how many bytes from
 * its start may hold old data: every byte past them reads as zero (0: all of it). Reuses
 * free extents before growing into the arena. */
uint32_t hz_extent_alloc(uint32_t n, uint32_t align, hz_ss_kind_t kind, size_t *dirty);
/* Returns an extent of which at most `touched` bytes from its start were written. It
 * stays committed in the dirty cache; when the cache passes its bound (HZ_LARGE_CACHE_LIMIT
 * in config.h, counted in touched bytes), the least recently freed extents are
 * decommitted until it is back under HZ_LARGE_CACHE_TRIM_TO of the bound. */
void hz_extent_free(uint32_t head, bool was_large, size_t touched);
/* Grows the large extent at `head` to `n` SuperSlabs in place, from the free extent (or
 * never-used arena) right after it. false when that space is not free. On success
 * *dirty is how many bytes of the grown part, from its start, may hold old data. */
bool hz_extent_grow(uint32_t head, uint32_t n, size_t *dirty);
/* Shrinks the large extent at `head` to `n` SuperSlabs (0 < n < len) in place; its tail
 * is freed as an extent of which at most `tail_touched` bytes were written. */
void hz_extent_shrink(uint32_t head, uint32_t n, size_t tail_touched);

/* Makes the pages of [p, p + size) (page aligned) read as zero. Resident pages, up to
 * `keep` bytes of them, are cleared in place (those holding data) and stay resident; the
 * rest is decommitted, which costs no page fault now or later for pages the kernel does not
 * hold. Pages it does not hold are decommitted too, not skipped: a swapped-out page still
 * holds data. So clearing costs what the memory really holds, not its length: a reset that
 * would fault the same pages in again on the next input, or a calloc of a reused extent
 * whose old block wrote a few of its pages. */
void hz_pages_clear(void *p, size_t size, size_t keep);

/* Lock order: pool lock (slab.h) before the arena lock. */
void hz_pagemap_lock(void);
void hz_pagemap_unlock(void);
/* Whether the calling thread holds the arena lock (for HZ_ASSERT: checked builds). */
bool hz_pagemap_held(void);
void hz_pagemap_reset_lock_after_fork(void);
/* Forgets every extent, tag and slab: the arena as hz_pagemap_init left it, its used part
 * reading as zero. Up to `keep` bytes of its resident pages are cleared in place and stay
 * resident; the rest is decommitted. Arena lock held; nothing in the arena may be in use
 * (hz_debug_reset). */
void hz_pagemap_reset(size_t keep);

#endif /* HZ_PAGEMAP_H */
