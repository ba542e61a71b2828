/* Size classes: every request maps to the smallest class that holds it, tables agree
 * with the class list, and the division-by-multiplication is exact. */
#include "core/sizeclass.h"
#include "core/testing/hz_test.h"

HZ_TEST(class_sizes_are_increasing_multiples_of_16) {
  for (unsigned c = 0; c < HZ_NUM_CLASSES; c++) {
    HZ_EXPECT_EQ(hz_class_size[c] % 16, 0);
    if (c) HZ_EXPECT(hz_class_size[c] > hz_class_size[c - 1]);
  }
  HZ_EXPECT_EQ(hz_class_size[HZ_NUM_CLASSES - 1], HZ_MEDIUM_MAX);
}

HZ_TEST(every_size_maps_to_the_smallest_class_that_fits) {
  for (size_t n = 0; n <= HZ_MEDIUM_MAX; n++) {
    unsigned c = hz_size_to_class(n);
    if (c >= HZ_NUM_CLASSES) {
      HZ_EXPECT(c < HZ_NUM_CLASSES);
      return;
    }
    if (hz_class_size[c] < n || (c > 0 && hz_class_size[c - 1] >= n)) {
      HZ_EXPECT(hz_class_size[c] >= n && (c == 0 || hz_class_size[c - 1] < n));
      return;
    }
  }
}

HZ_TEST(waste_is_bounded_by_a_quarter_above_128_bytes) {
  /* The geometric classes waste at most 25% up to 4 KiB; page classes at most one page. */
  for (size_t n = 129; n <= HZ_MEDIUM_MAX; n++) {
    size_t s = hz_class_size[hz_size_to_class(n)];
    if (n <= HZ_SMALL_MAX) HZ_REQUIRE(s * 4 <= n * 5 + 4 * 16);
    else HZ_REQUIRE(s - n < HZ_PAGE_SIZE);
  }
}

HZ_TEST(class_index_is_exact_division_for_every_slab_offset) {
  for (unsigned c = 0; c < HZ_NUM_CLASSES; c++) {
    uint32_t size = hz_class_size[c];
    for (uint32_t off = 0; off < HZ_SLAB_SIZE; off += 16)
      if (hz_class_index(c, off) != off / size) {
        HZ_EXPECT_EQ(hz_class_index(c, off), off / size);
        return;
      }
  }
}

HZ_TEST(capacity_and_cache_bounds_follow_from_the_config) {
  for (unsigned c = 0; c < HZ_NUM_CLASSES; c++) {
    HZ_EXPECT_EQ(hz_class_capacity[c], HZ_SLAB_SIZE / hz_class_size[c]);
    HZ_EXPECT(hz_class_capacity[c] >= 2); /* a slab is never a single-block wrapper */
    HZ_EXPECT(hz_class_sll_max[c] >= HZ_SLL_MIN_COUNT && hz_class_sll_max[c] <= HZ_SLL_MAX_COUNT);
  }
  HZ_EXPECT_EQ(hz_class_sll_max[0], HZ_SLL_MAX_COUNT);
  for (unsigned c = 0; c < HZ_NUM_CLASSES; c++)
    HZ_EXPECT(hz_class_sll_cap[c] >= hz_class_sll_max[c] &&
              hz_class_sll_cap[c] <= HZ_SLL_MAX_COUNT &&
              (hz_class_sll_cap[c] == hz_class_sll_max[c] ||
               (uint64_t)hz_class_sll_cap[c] * hz_class_size[c] <= HZ_SLL_GROW_BYTES));
  HZ_EXPECT_EQ(hz_class_sll_max[HZ_NUM_CLASSES - 1], HZ_SLL_MIN_COUNT);
}

HZ_TEST(aligned_classes_are_multiples_of_the_alignment) {
  for (size_t align = 16; align <= HZ_PAGE_SIZE; align <<= 1)
    for (size_t n = 0; n <= HZ_MEDIUM_MAX; n += 7) {
      int c = hz_class_for_aligned(n, align);
      HZ_REQUIRE(c >= 0);
      HZ_REQUIRE(hz_class_size[c] >= n && hz_class_size[c] % align == 0);
    }
  HZ_EXPECT_EQ(hz_class_for_aligned(HZ_MEDIUM_MAX + 1, 16), -1);
}

HZ_TEST(public_size_class_queries_agree) {
  HZ_EXPECT_EQ(hz_size_class_count(), HZ_NUM_CLASSES);
  HZ_EXPECT_EQ(hz_size_class_size(3), 64);
  HZ_EXPECT_EQ(hz_size_class_size(HZ_NUM_CLASSES), 0);
  HZ_EXPECT_EQ(hz_size_to_class_checked(100), hz_size_to_class(100));
  HZ_EXPECT_EQ(hz_size_to_class_checked(HZ_MEDIUM_MAX + 1), -1);
  HZ_EXPECT_EQ(hz_large_threshold(), HZ_MEDIUM_MAX);
}
