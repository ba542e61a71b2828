/* Exact accounting: after every kind of free, a slab's used == carved - free_count and
 * used == cached + queued + held by the program; EMPTY slabs are reused, possibly for
 * another class, and fully empty SuperSlabs go back to the arena. */
#include <pthread.h>
#include <string.h>

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

/* A program replacing large buffers of varying sizes keeps reusing what it freed: once
 * the arena has grown to its working set, no free decommits anything and the dirty cache
 * stays within its bound. Freeing everything gives the cache back down to its floor. */
HZ_TEST(large_buffers_replaced_in_a_loop_stay_committed) {
  hz_thread_flush();
  enum { LIVE = 4, WARM = 16, ROUNDS = 64 };
  void *live[LIVE] = {0};
  uint32_t s = 12345;
  hz_stats_t st0, st1, st2;
  for (int i = 0; i < WARM + ROUNDS; i++) {
    if (i == WARM) hz_get_stats(&st0);
    int k = i % LIVE;
    if (live[k]) {
      hz_free(live[k]);
      HZ_EXPECT(hz_arena.dirty_bytes <= HZ_LARGE_CACHE_LIMIT(hz_large_working_set()));
    }
    s = s * 1664525u + 1013904223u;
    size_t n = ((size_t)5 << 20) + (s >> 8) % ((size_t)20 << 20);
    HZ_REQUIRE((live[k] = hz_malloc(n)) != NULL);
    memset(live[k], 0x5A, n);
  }
  hz_get_stats(&st1);
  HZ_EXPECT_EQ(st1.extents_decommitted, st0.extents_decommitted);
  HZ_TEST_CENSUS();
  for (int k = 0; k < LIVE; k++) hz_free(live[k]);
  hz_get_stats(&st2);
  HZ_EXPECT(st2.extents_decommitted > st1.extents_decommitted);
  HZ_EXPECT(hz_arena.dirty_bytes <= HZ_LARGE_CACHE_LIMIT(hz_large_working_set()));
  HZ_TEST_CENSUS();
}

/* realloc of a large block shrinks it in place, giving its tail back as a dirty free
 * extent (a calloc there still reads zero), and grows it in place into the free extent
 * after it: no copy either way, and the contents stay. */
HZ_TEST(large_realloc_shrinks_and_grows_in_place) {
  hz_thread_flush();
  size_t big = (size_t)24 << 20, small = (size_t)4 << 20;
  unsigned char *p = hz_malloc(big);
  HZ_REQUIRE(p);
  memset(p, 0xAB, big);
  uint32_t head = hz_ss_index(p);
  HZ_EXPECT(hz_realloc(p, small) == p);
  HZ_EXPECT_EQ(hz_arena.ss[head].len, 2u);
  HZ_EXPECT_EQ(hz_usable_size(p), small);
  HZ_EXPECT_EQ(atomic_load(&hz_arena.ss[head + 2].kind), (uint32_t)HZ_SS_FREE);
  HZ_TEST_CENSUS();
  unsigned char *z = hz_calloc(1, (size_t)16 << 20);
  HZ_REQUIRE(z);
  size_t nonzero = 0;
  for (size_t i = 0; i < ((size_t)16 << 20); i++) nonzero += z[i] != 0;
  HZ_EXPECT_EQ(nonzero, 0);
  hz_free(z);
  /* The tail is free again (coalesced with whatever follows it): grow back into it. */
  HZ_EXPECT(hz_realloc(p, big - 100) == p);
  HZ_EXPECT_EQ(hz_arena.ss[head].len, 12u);
  size_t kept = 0;
  for (size_t i = 0; i < small; i++) kept += p[i] == 0xAB;
  HZ_EXPECT_EQ(kept, small);
  memset(p, 0xCD, big - 100);
  HZ_TEST_CENSUS();
  hz_free(p);
  HZ_TEST_CENSUS();
}
