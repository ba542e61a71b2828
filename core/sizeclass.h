/* Layer 3 (size classes): request size -> class, class -> block size.
 *
 * 43 classes. Tiny: 16..128 in 16-byte steps (8). Small: four classes per doubling from
 * 160 to 2048 (16), each wasting at most 25%. 2..4 KiB: the same geometric spacing
 * continues (2560, 3072, 3584, 4096), deliberately, so that sizes between the small and
 * the page classes still waste at most 25% and share 128 KiB slabs with them. Medium:
 * one class per page count, 8 KiB..64 KiB (15). Larger requests are large blocks
 * (large.h). Every class size is a multiple of 16, so every block is 16-byte aligned.
 */
#ifndef HZ_SIZECLASS_H
#define HZ_SIZECLASS_H

#include "core/base.h"

#define HZ_NUM_CLASSES 43u
#define HZ_SMALL_MAX 4096u             /* largest size served by the table */
#define HZ_MEDIUM_MAX (64u * 1024u)    /* largest slab class; above is large */
#define HZ_CLASS_PAGE_BASE 26u         /* class of n pages is HZ_CLASS_PAGE_BASE + n */

extern const uint32_t hz_class_size[HZ_NUM_CLASSES];
extern const uint8_t hz_class_of_granule[HZ_SMALL_MAX / 16 + 1];
/* floor(2^40 / size) + 1: exact division of slab offsets by multiplication. */
extern const uint64_t hz_class_inverse[HZ_NUM_CLASSES];
/* Blocks per slab, and the thread-cache bound for each class. */
extern const uint32_t hz_class_capacity[HZ_NUM_CLASSES];
extern const uint32_t hz_class_sll_max[HZ_NUM_CLASSES];
/* What a class's cache bound may grow to (HZ_SLL_GROW_BYTES): sll_max <= cap. */
extern const uint32_t hz_class_sll_cap[HZ_NUM_CLASSES];

/* Requires size <= HZ_MEDIUM_MAX. One compare, one table load. */
HZ_INLINE unsigned hz_size_to_class(size_t size) {
  if (HZ_LIKELY(size <= HZ_SMALL_MAX)) return hz_class_of_granule[(size + 15) >> 4];
  return HZ_CLASS_PAGE_BASE + (unsigned)((size + HZ_PAGE_SIZE - 1) >> HZ_PAGE_SHIFT);
}

/* offset / size for an offset within a slab, exact for offsets < 2^20. */
HZ_INLINE uint32_t hz_class_index(unsigned cls, uint32_t offset) {
  return (uint32_t)(((uint64_t)offset * hz_class_inverse[cls]) >> 40);
}

/* Smallest class >= size whose block size is a multiple of `align` (a power of two
 * <= 4096), so that every block of it is aligned; -1 when none is a slab class. */
int hz_class_for_aligned(size_t size, size_t align);

#endif /* HZ_SIZECLASS_H */
