/* Layer 7 (api): malloc, calloc and the aligned allocations. */
#include <errno.h>
#include <string.h>

#include "core/api.h"

void *hz_malloc_class(unsigned cls) {
  hz_tcache_t *tc = hz_thread_cache();
  if (HZ_UNLIKELY(!tc)) {
    errno = ENOMEM;
    return NULL;
  }
  hz_sll_t *l = &tc->sll[cls];
  if (!l->head && !hz_tcache_refill(tc, cls)) {
    errno = ENOMEM;
    return NULL;
  }
  HZ_ASSERT_EXPENSIVE(HZ_DEBUG < 3 || hz_tcache_validate(tc) == NULL);
  void *b = hz_sll_pop(l);
  hz_block_out(b, cls);
  return b;
}

static void *hz__large(size_t size, size_t align, bool zero) {
  void *p = hz_ensure_init() ? hz_large_alloc(size, align, zero) : NULL;
  if (!p) errno = ENOMEM;
  return p;
}

void *hz_malloc_slow(size_t size) {
  if (size > HZ_MEDIUM_MAX) return hz__large(size, HZ_MIN_ALIGN, false);
  return hz_malloc_class(hz_size_to_class(size));
}

HZ_EXPORT void *hz_malloc(size_t size) { return hz_malloc_fast(size); }

HZ_EXPORT void *hz_calloc(size_t nmemb, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(nmemb, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  if (total > HZ_MEDIUM_MAX) return hz__large(total, HZ_MIN_ALIGN, true);
  void *p = hz_malloc_fast(total);
  /* Slab blocks are recycled, never known to be zero: clear what was asked for. */
  if (p && !HZ_BUG(HZ_BUG_CALLOC_DIRTY, total > sizeof(void *) && *(void **)p == NULL))
    memset(p, 0, total);
  return p;
}

/* align is a power of two. Slab classes whose size is a multiple of align give aligned
 * blocks (slabs are 128 KiB aligned); larger alignments are large blocks. */
static void *hz__aligned(size_t align, size_t size) {
  if (align <= HZ_MIN_ALIGN) return hz_malloc_fast(size);
  if (align <= HZ_PAGE_SIZE) {
    int cls = hz_class_for_aligned(size, align);
    if (cls >= 0) return hz_malloc_class((unsigned)cls);
  }
  return hz__large(size, align, false);
}

static bool hz__pow2(size_t x) { return x && (x & (x - 1)) == 0; }

HZ_EXPORT int hz_posix_memalign(void **out, size_t alignment, size_t size) {
  if (!hz__pow2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
  int saved = errno;
  void *p = hz__aligned(alignment, size);
  errno = saved; /* posix_memalign reports through its result, not errno */
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

HZ_EXPORT void *hz_aligned_alloc(size_t alignment, size_t size) {
  if (!hz__pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return hz__aligned(alignment, size);
}

HZ_EXPORT void *hz_memalign(size_t alignment, size_t size) {
  /* glibc rounds an alignment that is not a power of two up to the next one. */
  if (!hz__pow2(alignment)) {
    if (alignment > ((size_t)1 << (sizeof(size_t) * 8 - 1))) {
      errno = EINVAL;
      return NULL;
    }
    size_t a = HZ_MIN_ALIGN;
    while (a < alignment) a <<= 1;
    alignment = a;
  }
  return hz__aligned(alignment, size);
}

HZ_EXPORT void hz_thread_flush(void) {
  if (hz_tc.tid != HZ_TID_NONE) hz_tcache_flush(&hz_tc);
}
