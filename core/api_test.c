/* The public API's contract: realloc, the aligned allocations and calloc behave as
 * glibc documents; usable_size is honest. Also built against the release and the
 * detection-off cores (BUILD.bazel). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/hz.h"
#include "core/hz_debug.h"
#include "core/testing/hz_test.h"

static void fill(unsigned char *p, size_t n, unsigned char seed) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 7);
}
static int intact(const unsigned char *p, size_t n, unsigned char seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(seed + i * 7)) return 0;
  return 1;
}

HZ_TEST(malloc_returns_aligned_distinct_usable_blocks) {
  static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 128, 129, 1000, 2048, 2049, 3000,
                                 4096, 4097, 10000, 65536, 65537, 300000, 5 << 20};
  void *p[sizeof sizes / sizeof *sizes];
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    p[i] = hz_malloc(sizes[i]);
    HZ_REQUIRE(p[i] != NULL);
    HZ_EXPECT_EQ((uintptr_t)p[i] % 16, 0);
    size_t u = hz_usable_size(p[i]);
    HZ_EXPECT(u >= sizes[i]);
    if (sizes[i] <= hz_large_threshold())
      HZ_EXPECT_EQ(u, hz_size_class_size((unsigned)hz_size_to_class_checked(sizes[i])));
    memset(p[i], 0xA5, u); /* all of usable_size is writable */
    for (size_t j = 0; j < i; j++) HZ_EXPECT(p[i] != p[j]);
  }
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) hz_free(p[i]);
}

HZ_TEST(huge_requests_fail_with_enomem) {
  errno = 0;
  HZ_EXPECT(hz_malloc(SIZE_MAX - 4096) == NULL);
  HZ_EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  HZ_EXPECT(hz_malloc((size_t)1 << 50) == NULL);
  HZ_EXPECT_EQ(errno, ENOMEM);
}

HZ_TEST(calloc_overflow_is_enomem_and_memory_is_zeroed) {
  errno = 0;
  HZ_EXPECT(hz_calloc(SIZE_MAX / 2, 3) == NULL);
  HZ_EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  HZ_EXPECT(hz_calloc((size_t)1 << 33, (size_t)1 << 33) == NULL);
  HZ_EXPECT_EQ(errno, ENOMEM);
  /* Recycled blocks are dirty: calloc must clear them. */
  static const size_t sizes[] = {24, 700, 5000, 70000, 3 << 20};
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    for (int round = 0; round < 3; round++) {
      unsigned char *d = hz_malloc(sizes[k]);
      HZ_REQUIRE(d);
      memset(d, 0xFF, sizes[k]);
      hz_free(d);
      unsigned char *z = hz_calloc(1, sizes[k]);
      HZ_REQUIRE(z);
      size_t nonzero = 0;
      for (size_t i = 0; i < sizes[k]; i++) nonzero += z[i] != 0;
      HZ_EXPECT_EQ(nonzero, 0);
      hz_free(z);
    }
  }
  void *e = hz_calloc(0, 8);
  HZ_EXPECT(e != NULL);
  hz_free(e);
}

HZ_TEST(calloc_from_a_reused_large_extent_is_zero_past_the_old_usable_size) {
  /* The old block is written to its full usable size; the new, bigger calloc reuses its
   * extent and must still read zero everywhere. Fill the dirty cache first, so that the
   * freed extent is decommitted and then trusted to read as zero. */
  enum { FILL = 40 };
  void *fill_cache[FILL];
  for (int i = 0; i < FILL; i++) {
    fill_cache[i] = hz_malloc(2 << 20);
    HZ_REQUIRE(fill_cache[i]);
    memset(fill_cache[i], 1, 2 << 20);
  }
  for (int i = 0; i < FILL; i++) hz_free(fill_cache[i]);
  /* A block written in full, then shrunk in place, then freed. */
  unsigned char *shrunk = hz_malloc(1 << 20);
  HZ_REQUIRE(shrunk);
  memset(shrunk, 0xEE, 1 << 20);
  HZ_REQUIRE(hz_realloc(shrunk, 100000) == shrunk);
  hz_free(shrunk);
  unsigned char *after = hz_calloc(1, 1 << 20);
  HZ_REQUIRE(after);
  size_t dirty_bytes = 0;
  for (size_t i = 0; i < (1 << 20); i++) dirty_bytes += after[i] != 0;
  HZ_EXPECT_EQ(dirty_bytes, 0);
  hz_free(after);
  for (int round = 0; round < 4; round++) {
    unsigned char *p = hz_malloc(100000 + (size_t)round * 4096);
    HZ_REQUIRE(p);
    size_t u = hz_usable_size(p);
    HZ_EXPECT(u >= 100000 && u < 100000 + (size_t)round * 4096 + 4096);
    memset(p, 0xFF, u);
    hz_free(p);
    unsigned char *z = hz_calloc(1, 1 << 20);
    HZ_REQUIRE(z);
    size_t nonzero = 0;
    for (size_t i = 0; i < (1 << 20); i++) nonzero += z[i] != 0;
    HZ_EXPECT_EQ(nonzero, 0);
    hz_free(z);
  }
}

HZ_TEST(realloc_null_is_malloc_and_size_zero_frees) {
  void *p = hz_realloc(NULL, 40);
  HZ_REQUIRE(p);
  HZ_EXPECT(hz_usable_size(p) >= 40);
  HZ_EXPECT(hz_realloc(p, 0) == NULL);
  hz_census_t c;
  HZ_REQUIRE(hz_heap_check(NULL, &c) == 0);
  HZ_EXPECT_EQ(c.user_blocks, 0);
}

HZ_TEST(realloc_keeps_the_common_prefix_across_every_kind_of_move) {
  /* small -> small (same class, other class), small -> large, large -> large (in place
   * and moving), large -> small, and shrinking. */
  static const size_t steps[] = {10, 12, 100, 3000, 8000, 70000, 100000, 3 << 20,
                                 (3 << 20) - 5, 1 << 20, 90000, 500, 17, 1};
  size_t cur = 8;
  unsigned char *p = hz_malloc(cur);
  fill(p, cur, 1);
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
    size_t next = steps[i];
    unsigned char *q = hz_realloc(p, next);
    HZ_REQUIRE(q);
    size_t keep = cur < next ? cur : next;
    HZ_EXPECT(intact(q, keep, 1));
    HZ_EXPECT(hz_usable_size(q) >= next);
    fill(q, next, 1);
    p = q;
    cur = next;
  }
  hz_free(p);
}

HZ_TEST(realloc_within_a_class_stays_in_place) {
  void *p = hz_malloc(100); /* class 112 */
  HZ_EXPECT(hz_realloc(p, 112) == p);
  HZ_EXPECT(hz_realloc(p, 97) == p);
  hz_free(p);
}

HZ_TEST(realloc_to_the_usable_size_stays_in_place_for_every_kind_of_block) {
  /* Small, large, multi-SuperSlab, and over-aligned large blocks whose usable size is
   * below the large threshold (a page of a SuperSlab-aligned extent), of 0 bytes too. */
  void *blocks[] = {hz_malloc(100), hz_malloc(300000), hz_malloc(5 << 20),
                    hz_memalign(4 << 20, 100), hz_memalign(2 << 20, 70000),
                    hz_memalign(2 << 20, 0)};
  for (size_t i = 0; i < sizeof blocks / sizeof *blocks; i++) {
    HZ_REQUIRE(blocks[i]);
    size_t u = hz_usable_size(blocks[i]);
    HZ_EXPECT(u > 0); /* even for 0 bytes asked: realloc(p, 0) would free p */
    HZ_EXPECT(hz_realloc(blocks[i], u) == blocks[i]);
    HZ_EXPECT_EQ(hz_usable_size(blocks[i]), u);
    hz_free(blocks[i]);
  }
}

HZ_TEST(failed_realloc_leaves_the_block_untouched) {
  unsigned char *p = hz_malloc(64);
  fill(p, 64, 9);
  errno = 0;
  HZ_EXPECT(hz_realloc(p, (size_t)1 << 50) == NULL);
  HZ_EXPECT_EQ(errno, ENOMEM);
  HZ_EXPECT(intact(p, 64, 9));
  HZ_EXPECT_EQ(hz_classify(p).kind, HZ_PTR_SMALL);
  hz_free(p);
}

HZ_TEST(aligned_allocations_honour_every_power_of_two) {
  for (size_t align = 1; align <= ((size_t)8 << 20); align <<= 1) {
    static const size_t sizes[] = {1, 24, 100, 4096, 5000, 65536, 200000};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
      void *p = NULL;
      if (align >= sizeof(void *)) {
        HZ_REQUIRE(hz_posix_memalign(&p, align, sizes[k]) == 0);
        HZ_EXPECT_EQ((uintptr_t)p % align, 0);
        HZ_EXPECT(hz_usable_size(p) >= sizes[k]);
        memset(p, 1, sizes[k]);
        hz_free(p);
      }
      p = hz_aligned_alloc(align, sizes[k]);
      HZ_REQUIRE(p);
      HZ_EXPECT_EQ((uintptr_t)p % align, 0);
      hz_free(p);
      p = hz_memalign(align, sizes[k]);
      HZ_REQUIRE(p);
      HZ_EXPECT_EQ((uintptr_t)p % align, 0);
      HZ_EXPECT_EQ(hz_classify(p).kind, sizes[k] > hz_large_threshold() || align > 4096
                                            ? HZ_PTR_LARGE
                                            : HZ_PTR_SMALL);
      hz_free(p);
    }
  }
}

HZ_TEST(bad_alignments_are_rejected_as_glibc_does) {
  void *p = (void *)1;
  HZ_EXPECT_EQ(hz_posix_memalign(&p, 3, 10), EINVAL);
  HZ_EXPECT_EQ(hz_posix_memalign(&p, 4, 10), EINVAL); /* not a multiple of sizeof(void *) */
  HZ_EXPECT(p == (void *)1);                          /* untouched on failure */
  errno = 0;
  HZ_EXPECT(hz_aligned_alloc(24, 10) == NULL);
  HZ_EXPECT_EQ(errno, EINVAL);
  p = hz_memalign(24, 10); /* glibc rounds 24 up to 32 */
  HZ_REQUIRE(p);
  HZ_EXPECT_EQ((uintptr_t)p % 32, 0);
  hz_free(p);
  HZ_EXPECT_EQ(hz_posix_memalign(&p, 64, (size_t)1 << 50), ENOMEM);
}

HZ_TEST(free_and_usable_size_accept_null) {
  hz_free(NULL);
  HZ_EXPECT_EQ(hz_usable_size(NULL), 0);
}

HZ_TEST(heap_is_consistent_after_the_api_tests) {
  hz_thread_flush();
  hz_violation_t v;
  hz_census_t c;
  int bad = hz_heap_check(&v, &c);
  if (bad) fprintf(stderr, "%s: %s\n", v.invariant, v.message);
  HZ_EXPECT_EQ(bad, 0);
  HZ_EXPECT_EQ(c.user_blocks, 0);
  HZ_EXPECT_EQ(c.large_blocks, 0);
}
