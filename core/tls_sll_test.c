/* The TLS SLL as a component (on plain memory), then as the allocator's thread cache:
 * push/pop/splice/take, bounds, and drain to the slab freelists. */
#include <string.h>

#include "core/api.h"
#include "core/testing/hz_test.h"

static void *blocks[64][2]; /* 16-byte "blocks" */

HZ_TEST(push_pop_is_lifo_and_counts) {
  hz_sll_t l = {NULL, 0, 64};
  for (int i = 0; i < 10; i++) hz_sll_push(&l, blocks[i]);
  HZ_EXPECT_EQ(l.count, 10);
  HZ_EXPECT(hz_sll_validate(&l) == NULL);
  for (int i = 9; i >= 0; i--) HZ_EXPECT(hz_sll_pop(&l) == (void *)blocks[i]);
  HZ_EXPECT(hz_sll_pop(&l) == NULL);
  HZ_EXPECT_EQ(l.count, 0);
}

HZ_TEST(take_detaches_a_prefix_and_splice_puts_it_back) {
  hz_sll_t l = {NULL, 0, 64};
  for (int i = 0; i < 8; i++) hz_sll_push(&l, blocks[i]); /* head: 7 6 5 ... 0 */
  void *h, *t;
  HZ_EXPECT_EQ(hz_sll_take(&l, 3, &h, &t), 3);
  HZ_EXPECT(h == (void *)blocks[7] && t == (void *)blocks[5] && hz_link_get(t) == NULL);
  HZ_EXPECT_EQ(l.count, 5);
  HZ_EXPECT(l.head == (void *)blocks[4]);
  HZ_EXPECT(hz_sll_contains(&l, blocks[0]) && !hz_sll_contains(&l, blocks[6]));
  hz_sll_splice(&l, h, t, 3);
  HZ_EXPECT_EQ(l.count, 8);
  HZ_EXPECT(hz_sll_validate(&l) == NULL);
  HZ_EXPECT(l.head == (void *)blocks[7]);
  /* Taking more than the list holds stops at the end of the links. */
  HZ_EXPECT_EQ(hz_sll_take(&l, 100, &h, &t), 8);
  HZ_EXPECT(l.head == NULL && l.count == 0);
  HZ_EXPECT_EQ(hz_sll_take(&l, 1, &h, &t), 0);
  HZ_EXPECT(h == NULL && t == NULL);
}

HZ_TEST(validate_catches_a_cycle_and_a_wrong_count) {
  hz_sll_t l = {NULL, 0, 64};
  for (int i = 0; i < 4; i++) hz_sll_push(&l, blocks[i]);
  l.count = 5;
  HZ_EXPECT(hz_sll_validate(&l) != NULL);
  l.count = 4;
  hz_link_set(blocks[0], blocks[3]); /* tail -> head: a cycle */
  HZ_EXPECT(hz_sll_validate(&l) != NULL);
  hz_link_set(blocks[0], NULL);
  HZ_EXPECT(hz_sll_validate(&l) == NULL);
}

HZ_TEST(frees_fill_the_cache_up_to_its_bound_then_drain_half) {
  unsigned cls = hz_size_to_class(64);
  uint32_t max = hz_class_sll_max[cls];
  enum { N = 600 };
  static void *p[N];
  for (int i = 0; i < N; i++) HZ_REQUIRE((p[i] = hz_malloc(64)) != NULL);
  hz_thread_flush(); /* refill leftovers go back: the cache starts empty */
  HZ_EXPECT_EQ(hz_tc.sll[cls].count, 0);
  for (uint32_t i = 0; i < max; i++) hz_free(p[i]);
  HZ_EXPECT_EQ(hz_tc.sll[cls].count, max);
  hz_free(p[max]); /* at the bound: drains max/2 first */
  HZ_EXPECT_EQ(hz_tc.sll[cls].count, max - max / 2 + 1);
  HZ_EXPECT(hz_tcache_validate(&hz_tc) == NULL);
  for (int i = (int)max + 1; i < N; i++) hz_free(p[i]);
  HZ_EXPECT(hz_tc.sll[cls].count <= max);
  hz_violation_t v;
  hz_census_t c;
  HZ_EXPECT(hz_heap_check(&v, &c) == 0);
  HZ_EXPECT_EQ(c.user_blocks, 0);
}

HZ_TEST(drain_moves_cached_blocks_to_freelists_and_refill_takes_them_back) {
  unsigned cls = hz_size_to_class(48);
  enum { N = 100 };
  void *p[N];
  for (int i = 0; i < N; i++) p[i] = hz_malloc(48);
  hz_thread_flush();
  for (int i = 0; i < N; i++) hz_free(p[i]);
  hz_census_t before, after;
  HZ_REQUIRE(hz_heap_check(NULL, &before) == 0);
  HZ_EXPECT_EQ(before.cached_blocks, N);
  hz_tcache_drain(&hz_tc, cls, 40);
  HZ_REQUIRE(hz_heap_check(NULL, &after) == 0);
  HZ_EXPECT_EQ(after.cached_blocks, N - 40);
  HZ_EXPECT_EQ(after.freelist_blocks, before.freelist_blocks + 40);
  HZ_EXPECT(hz_tcache_refill(&hz_tc, cls));
  HZ_EXPECT(hz_tc.sll[cls].count > N - 40);
  HZ_EXPECT(hz_tcache_validate(&hz_tc) == NULL);
}

HZ_TEST(flush_empties_every_cache_and_pools_empty_slabs) {
  void *p[256];
  for (int i = 0; i < 256; i++) p[i] = hz_malloc((size_t)(16 + i * 8));
  for (int i = 0; i < 256; i++) hz_free(p[i]);
  hz_thread_flush();
  hz_census_t c;
  HZ_REQUIRE(hz_heap_check(NULL, &c) == 0);
  HZ_EXPECT_EQ(c.cached_blocks, 0);
  HZ_EXPECT_EQ(c.user_blocks, 0);
  HZ_EXPECT_EQ(c.slabs_owned, 0);
  HZ_EXPECT(c.slabs_pooled > 0);
}

HZ_TEST(a_class_that_keeps_running_dry_grows_its_bound_until_flush) {
  unsigned cls = hz_size_to_class(32768);
  uint32_t base = hz_class_sll_max[cls], cap = hz_class_sll_cap[cls];
  HZ_REQUIRE(cap > base); /* a medium class: 8 blocks of room to start with */
  hz_thread_flush();
  HZ_EXPECT_EQ(hz_tc.sll[cls].max, base);
  enum { N = 200 };
  static void *p[N];
  uint32_t last = base;
  for (int i = 0; i < N; i++) {
    p[i] = hz_malloc(32768);
    uint32_t now = hz_tc.sll[cls].max;
    HZ_EXPECT(now == last || now == (2 * last < cap ? 2 * last : cap)); /* doubles, capped */
    last = now;
  }
  HZ_EXPECT_EQ(hz_tc.sll[cls].max, cap);
  for (int i = 0; i < N; i++) hz_free(p[i]);
  HZ_EXPECT(hz_tc.sll[cls].count <= cap);
  HZ_EXPECT(hz_tcache_validate(&hz_tc) == NULL);
  hz_thread_flush();
  HZ_EXPECT_EQ(hz_tc.sll[cls].max, base);
  HZ_EXPECT_EQ(hz_tc.sll[cls].count, 0);
}

/* The thread cache's validator (HZ_DEBUG 3 runs it after every cache operation) on a copy
 * of a real cache, one rule broken at a time: each must be found, by its own message. A
 * validator only ever shown a healthy cache could accept anything. */
static hz_tcache_t broken;

static const char *validate_copy_with(void (*breakit)(hz_tcache_t *)) {
  hz_tcache_t *tc = hz_thread_cache();
  if (!tc) return "no thread cache";
  memcpy(&broken, tc, sizeof broken);
  breakit(&broken);
  return hz_tcache_validate(&broken);
}
static void nothing(hz_tcache_t *t) { (void)t; }
static void empty_batch_in_use(hz_tcache_t *t) {
  t->pending[0] = (hz_remote_batch_t){0};
  t->pending[0].slab = hz_slab_of(blocks); /* a batch of a slab, with no block */
  t->pending[0].limit = 4;
}
static void class_zero_count_wrong(hz_tcache_t *t) { t->sll[0].count = t->sll[0].count + 1; }
static void last_class_count_wrong(hz_tcache_t *t) {
  t->sll[HZ_NUM_CLASSES - 1].count = t->sll[HZ_NUM_CLASSES - 1].count + 1;
}

HZ_TEST(the_cache_validator_names_each_broken_rule) {
  hz_thread_flush();
  void *keep = hz_malloc(16); /* a registered cache, class 0 in use */
  HZ_REQUIRE(keep != NULL);
  const char *why = validate_copy_with(nothing);
  HZ_EXPECT(why == NULL);
  why = validate_copy_with(empty_batch_in_use);
  HZ_EXPECT(why && strstr(why, "1..limit"));
  why = validate_copy_with(class_zero_count_wrong);
  HZ_EXPECT(why && strstr(why, "count == length"));
  why = validate_copy_with(last_class_count_wrong);
  HZ_EXPECT(why && strstr(why, "count == length"));
  hz_free(keep);
}
