/* Exact accounting: after every kind of free, a slab's used == carved - free_count and
 * used == cached + queued + held by the program; EMPTY slabs are reused, possibly for
 * another class, and fully empty SuperSlabs go back to the arena. */
#include <pthread.h>

#include "core/api.h"
#include "core/testing/hz_heap.h"
#include "core/testing/hz_test.h"

static void *remote_free(void *p) {
  hz_free(p);
  return NULL;
}

HZ_TEST(used_counts_blocks_held_cached_queued_but_not_freelisted) {
  hz_thread_flush();
  hz_census_t c0 = HZ_TEST_CENSUS();
  void *a = hz_malloc(500), *b = hz_malloc(500), *d = hz_malloc(500), *e = hz_malloc(500);
  hz_slab_t *s = hz_slab_of(a);
  HZ_REQUIRE(hz_slab_of(e) == s);
  uint32_t used0 = s->used; /* the four blocks, and what the refill cached */
  hz_census_t c1 = HZ_TEST_CENSUS();
  HZ_EXPECT_EQ(c1.user_blocks, c0.user_blocks + 4);

  hz_free(a); /* local free: into the TLS SLL, still used */
  HZ_EXPECT_EQ(s->used, used0);
  hz_census_t c2 = HZ_TEST_CENSUS();
  HZ_EXPECT_EQ(c2.user_blocks, c1.user_blocks - 1);
  HZ_EXPECT_EQ(c2.cached_blocks, c1.cached_blocks + 1);

  pthread_t t; /* remote free: into the slab's queue, still used */
  pthread_create(&t, NULL, remote_free, b);
  pthread_join(t, NULL);
  HZ_EXPECT_EQ(s->used, used0);
  hz_census_t c3 = HZ_TEST_CENSUS();
  HZ_EXPECT_EQ(c3.queued_blocks, c2.queued_blocks + 1);
  HZ_EXPECT_EQ(c3.user_blocks, c2.user_blocks - 1);

  /* Drain and collect: only now do blocks leave `used`. */
  hz_thread_flush();
  hz_census_t c4 = HZ_TEST_CENSUS();
  HZ_EXPECT_EQ(c4.cached_blocks, 0);
  HZ_EXPECT_EQ(c4.queued_blocks, 0);
  HZ_EXPECT_EQ(c4.user_blocks, c3.user_blocks);
  HZ_EXPECT_EQ(s->used, 2); /* d and e */
  HZ_EXPECT_EQ(s->used, HZ_LOAD(&s->carved) - s->free_count);

  hz_free(d);
  hz_free(e);
  hz_thread_flush(); /* the slab is EMPTY: it goes back to the pool */
  HZ_EXPECT_EQ(s->state, HZ_SLAB_POOLED);
  HZ_EXPECT_EQ(HZ_TEST_CENSUS().user_blocks, c0.user_blocks);
}

HZ_TEST(a_slab_is_not_reused_while_a_thread_cache_holds_its_blocks) {
  /* The Larson double free: a slab must not look EMPTY while blocks sit in a cache. */
  hz_thread_flush();
  enum { N = 50 };
  void *p[N];
  for (int i = 0; i < N; i++) p[i] = hz_malloc(1500);
  hz_slab_t *s = hz_slab_of(p[0]);
  for (int i = 0; i < N; i++) hz_free(p[i]); /* all cached, none on the freelist */
  HZ_EXPECT(s->used > 0);
  HZ_EXPECT(s->state != HZ_SLAB_POOLED);
  /* Fill other classes until the pool is exhausted: s must not be handed out. */
  void *q[400];
  for (int i = 0; i < 400; i++) {
    q[i] = hz_malloc(60000);
    HZ_EXPECT(hz_slab_of(q[i]) != s);
  }
  for (int i = 0; i < 400; i++) hz_free(q[i]);
  HZ_TEST_CENSUS();
  hz_thread_flush();
}

HZ_TEST(empty_slabs_are_reused_for_another_class) {
  hz_thread_flush();
  enum { N = 8192 }; /* a whole slab of 16-byte blocks */
  static void *p[N];
  for (int i = 0; i < N; i++) p[i] = hz_malloc(16);
  hz_slab_t *s = hz_slab_of(p[0]);
  for (int i = 0; i < N; i++) hz_free(p[i]);
  hz_thread_flush();
  HZ_EXPECT_EQ(s->state, HZ_SLAB_POOLED);
  hz_stats_t st0, st1;
  hz_get_stats(&st0);
  /* Take every pooled slab for 64 KiB blocks: s comes back with the new class. */
  static void *q[4096];
  int found = 0;
  for (int i = 0; i < 4096 && !found; i++) {
    q[i] = hz_malloc(65536);
    if (hz_slab_of(q[i]) == s) found = i + 1;
  }
  HZ_REQUIRE(found);
  hz_get_stats(&st1);
  HZ_EXPECT(st1.slab_inits > st0.slab_inits);
  HZ_EXPECT_EQ(s->cls, hz_size_to_class(65536));
  HZ_EXPECT_EQ(HZ_TAG_CLASS(hz_ptag_get(q[found - 1])), hz_size_to_class(65536));
  HZ_TEST_CENSUS();
  for (int i = 0; i < found; i++) hz_free(q[i]);
  hz_thread_flush();
}

HZ_TEST(fully_empty_superslabs_return_to_the_arena) {
  hz_thread_flush();
  enum { N = 6 * 16 * 2 }; /* six SuperSlabs of 64 KiB blocks, two per slab */
  static void *p[N];
  for (int i = 0; i < N; i++) HZ_REQUIRE((p[i] = hz_malloc(65536)) != NULL);
  hz_census_t full = HZ_TEST_CENSUS();
  hz_stats_t st0, st1;
  hz_get_stats(&st0);
  for (int i = 0; i < N; i++) hz_free(p[i]);
  hz_thread_flush();
  hz_get_stats(&st1);
  hz_census_t empty = HZ_TEST_CENSUS();
  /* All but one empty SuperSlab (kept warm) went back to the arena's free extents. */
  HZ_EXPECT(st1.superslabs_released >= st0.superslabs_released + 4);
  HZ_EXPECT(empty.superslabs_slab < full.superslabs_slab);
  HZ_EXPECT(empty.superslabs_free > full.superslabs_free);
}

HZ_TEST(extents_are_reused_before_the_arena_grows) {
  hz_thread_flush();
  void *a = hz_malloc(5 << 20);
  HZ_REQUIRE(a);
  hz_free(a);
  void *b = hz_malloc(5 << 20); /* the same three SuperSlabs come back */
  HZ_EXPECT(a == b);
  void *c = hz_malloc(3 << 20); /* splits a larger free extent, or grows */
  HZ_REQUIRE(c);
  hz_free(b);
  hz_free(c);
  HZ_TEST_CENSUS();
}
