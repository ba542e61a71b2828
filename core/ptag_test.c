/* PTAG classification: owned, large, free, interior, misaligned, unallocated and foreign
 * pointers, each found without reading the block. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/api.h"
#include "core/testing/hz_test.h"

static int a_global;

HZ_TEST(small_blocks_carry_class_and_owner_in_their_tag) {
  for (size_t n = 1; n <= hz_large_threshold(); n = n * 3 + 1) {
    void *p = hz_malloc(n);
    HZ_REQUIRE(p);
    uint32_t tag = hz_ptag_get(p);
    HZ_EXPECT_EQ(HZ_TAG_CLASS(tag), hz_size_to_class(n));
    HZ_EXPECT_EQ(HZ_TAG_OWNER(tag), hz_thread_id());
    hz_ptr_info_t i = hz_classify(p);
    HZ_EXPECT_EQ(i.kind, HZ_PTR_SMALL);
    HZ_EXPECT(i.block == p);
    HZ_EXPECT_EQ(i.block_size, hz_class_size[hz_size_to_class(n)]);
    HZ_EXPECT_EQ(i.size_class, (int)hz_size_to_class(n));
    HZ_EXPECT_EQ(i.owner, hz_thread_id());
    hz_free(p);
  }
}

HZ_TEST(interior_and_misaligned_pointers_name_their_block) {
  char *p = hz_malloc(200); /* class 224 */
  HZ_REQUIRE(p);
  hz_ptr_info_t i = hz_classify(p + 16);
  HZ_EXPECT_EQ(i.kind, HZ_PTR_INTERIOR);
  HZ_EXPECT(i.block == p);
  i = hz_classify(p + 3);
  HZ_EXPECT_EQ(i.kind, HZ_PTR_MISALIGNED);
  i = hz_classify(p + 223);
  HZ_EXPECT_EQ(i.kind, HZ_PTR_MISALIGNED);
  hz_free(p);
}

HZ_TEST(free_blocks_are_recognised_wherever_they_sit) {
  void *keep = hz_malloc(32);
  void *p = hz_malloc(32);
  hz_free(p); /* in the TLS SLL */
  HZ_EXPECT_EQ(hz_classify(p).kind, HZ_PTR_FREE);
  hz_thread_flush(); /* on the freelist: `keep` holds the slab */
  HZ_EXPECT_EQ(hz_classify(p).kind, HZ_PTR_FREE);
  hz_free(keep);
}

HZ_TEST(large_blocks_are_classified_from_superslab_metadata) {
  char *p = hz_malloc(300000);
  HZ_REQUIRE(p);
  HZ_EXPECT_EQ(hz_ptag_get(p), 0); /* large pages carry tag 0: the slow path decides */
  hz_ptr_info_t i = hz_classify(p);
  HZ_EXPECT_EQ(i.kind, HZ_PTR_LARGE);
  HZ_EXPECT(i.block_size >= 300000);
  HZ_EXPECT_EQ(i.size_class, -1);
  i = hz_classify(p + 250000);
  HZ_EXPECT_EQ(i.kind, HZ_PTR_INTERIOR);
  HZ_EXPECT(i.block == p);
  HZ_EXPECT_EQ(hz_classify(p + 16).kind, HZ_PTR_INTERIOR);
  HZ_EXPECT_EQ(hz_classify(p + 8).kind, HZ_PTR_MISALIGNED); /* blocks are 16-byte aligned */
  hz_free(p);
  HZ_EXPECT_EQ(hz_classify(p).kind, HZ_PTR_UNALLOCATED);
}

HZ_TEST(usable_size_never_overestimates) {
  /* usable_size bytes must be writable and inside the block: the neighbour is intact. */
  for (size_t n = 1; n <= 20000; n += 97) {
    unsigned char *a = hz_malloc(n), *b = hz_malloc(n);
    HZ_REQUIRE(a && b);
    size_t ua = hz_usable_size(a), ub = hz_usable_size(b);
    HZ_EXPECT(ua >= n && ua == hz_class_size[hz_size_to_class(n)]);
    memset(b, 0x5C, ub);
    memset(a, 0xC5, ua);
    for (size_t k = 0; k < ub; k++)
      if (b[k] != 0x5C) {
        HZ_EXPECT(b[k] == 0x5C);
        break;
      }
    hz_free(a);
    hz_free(b);
  }
}

HZ_TEST(foreign_pointers_are_foreign) {
  int local = 0;
  void *sys = malloc(64); /* glibc's malloc: this test binary does not preload hz */
  void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  hz_free(hz_malloc(1)); /* make sure the arena exists */
  HZ_EXPECT_EQ(hz_classify(&local).kind, HZ_PTR_FOREIGN);
  HZ_EXPECT_EQ(hz_classify(&a_global).kind, HZ_PTR_FOREIGN);
  HZ_EXPECT_EQ(hz_classify(sys).kind, HZ_PTR_FOREIGN);
  HZ_EXPECT_EQ(hz_classify(map).kind, HZ_PTR_FOREIGN);
  HZ_EXPECT_EQ(hz_classify(NULL).kind, HZ_PTR_FOREIGN);
  HZ_EXPECT_EQ(hz_classify((void *)(uintptr_t)-16).kind, HZ_PTR_FOREIGN);
  free(sys);
  munmap(map, 4096);
}

HZ_TEST(arena_memory_outside_any_block_is_unallocated) {
  /* Past the last block of a class whose blocks do not tile the slab. */
  char *p = hz_malloc(36000); /* class 36864: 3 per 128 KiB slab, 20 KiB tail */
  HZ_REQUIRE(p);
  char *slab = (char *)((uintptr_t)p & ~(uintptr_t)(HZ_SLAB_SIZE - 1));
  HZ_EXPECT_EQ(hz_classify(slab + 3 * 36864).kind, HZ_PTR_UNALLOCATED);
  HZ_EXPECT_EQ(hz_classify(slab + HZ_SLAB_SIZE - 16).kind, HZ_PTR_UNALLOCATED);
  hz_free(p);
  /* A slab that went back to the pool: tag 0, and no large block there. */
  hz_thread_flush();
  HZ_EXPECT_EQ(hz_classify(p).kind, HZ_PTR_UNALLOCATED);
  /* Arena space never handed out. */
  HZ_EXPECT_EQ(hz_classify((char *)hz_arena.base + HZ_ARENA_SIZE - 4096).kind,
               HZ_PTR_UNALLOCATED);
}

HZ_TEST(reused_slab_is_retagged_for_its_new_class) {
  enum { N = 2000 };
  static void *p[N];
  for (int i = 0; i < N; i++) p[i] = hz_malloc(16);
  void *old = p[N / 2];
  for (int i = 0; i < N; i++) hz_free(p[i]);
  hz_thread_flush(); /* every 16-byte slab empties and returns to the pool */
  HZ_EXPECT_EQ(hz_classify(old).kind, HZ_PTR_UNALLOCATED);
  hz_stats_t s0, s1;
  hz_get_stats(&s0);
  /* 2000 blocks of 4 KiB need 63 slabs: more than the pool holds, so the emptied
   * slab (or its SuperSlab, reused from the free extents) is carved again. */
  for (int i = 0; i < N; i++) p[i] = hz_malloc(4000);
  hz_get_stats(&s1);
  HZ_EXPECT(s1.slab_inits >= s0.slab_inits + 63);
  HZ_REQUIRE(hz_ptag_get(old) != 0);
  HZ_EXPECT_EQ(HZ_TAG_CLASS(hz_ptag_get(old)), hz_size_to_class(4000));
  HZ_EXPECT_EQ(hz_slab_of(old)->cls, hz_size_to_class(4000));
  hz_ptr_info_t info = hz_classify(old);
  HZ_EXPECT(info.kind == HZ_PTR_SMALL || info.kind == HZ_PTR_INTERIOR || info.kind == HZ_PTR_FREE);
  HZ_EXPECT_EQ(info.size_class, (int)hz_size_to_class(4000));
  for (int i = 0; i < N; i++) hz_free(p[i]);
  HZ_EXPECT(hz_heap_check(NULL, NULL) == 0);
}
