/* The heap check finds what it claims to. Every fuzz target, property and unit test leans
 * on hz_heap_check, and in a correct core it never fires, so nothing else shows a check
 * that went blind or a report that lost its text. Each case breaks one equation of
 * docs/INVARIANTS.md on a real heap state, expects the check to fail naming that
 * equation with a message that names the part it found broken, puts the field back and
 * expects the heap to check clean again. */
#include <pthread.h>
#include <string.h>

#include "core/api.h"
#include "core/testing/hz_heap.h"
#include "core/testing/hz_test.h"

/* The check fails, naming `rule`, with `detail` in its message. */
static void expect_violation(const char *rule, const char *detail) {
  hz_violation_t v;
  memset(&v, 0, sizeof v);
  HZ_EXPECT_EQ(hz_heap_check(&v, NULL), 1);
  HZ_EXPECT(v.invariant != NULL && strstr(v.invariant, rule) != NULL);
  HZ_EXPECT(strstr(v.message, detail) != NULL);
  if (v.invariant && !strstr(v.invariant, rule))
    fprintf(stderr, "check_test: expected '%s', got '%s: %s'\n", rule, v.invariant, v.message);
}

/* A slab of a class nobody else uses, given back to the pool (NULL if it was not). */
static hz_slab_t *pooled_slab(void) {
  hz_thread_flush();
  void *p = hz_malloc(3000);
  hz_slab_t *s = hz_slab_of(p);
  hz_free(p);
  hz_thread_flush();
  return s->state == HZ_SLAB_POOLED ? s : NULL;
}

HZ_TEST(a_tag_on_any_page_of_a_pooled_slab_is_found) {
  hz_slab_t *s = pooled_slab();
  HZ_REQUIRE(s != NULL);
  /* The first page and the last: the check must look at each one. */
  const size_t pages[] = {0, HZ_PAGES_PER_SLAB - 1};
  for (unsigned k = 0; k < 2; k++) {
    unsigned char *at = hz_slab_start(s) + (pages[k] << HZ_PAGE_SHIFT);
    HZ_REQUIRE(hz_ptag_get(at) == 0);
    hz_ptag_set_range(at, 1, 0x12345u);
    expect_violation("ptag[page] == 0 for every page of a pooled slab", "page");
    hz_ptag_set_range(at, 1, 0);
    HZ_TEST_CENSUS();
  }
}

HZ_TEST(a_pooled_slab_that_counts_a_block_is_found) {
  hz_slab_t *s = pooled_slab();
  HZ_REQUIRE(s != NULL);
  s->used = 1;
  expect_violation("a pooled slab has used == 0", "used 1");
  s->used = 0;
  HZ_TEST_CENSUS();
}

HZ_TEST(an_owned_slab_whose_used_count_drifts_is_found) {
  hz_thread_flush();
  void *a = hz_malloc(700), *b = hz_malloc(700);
  hz_slab_t *s = hz_slab_of(a);
  hz_free(a); /* cached: still counted in used */
  s->used++;
  expect_violation("used == carved - free_count", "class");
  s->used--;
  HZ_TEST_CENSUS();
  hz_free(b);
  hz_thread_flush();
}

HZ_TEST(large_and_dirty_byte_counts_that_drift_are_found) {
  void *p = hz_malloc((size_t)1 << 20);
  HZ_REQUIRE(p != NULL);
  hz_arena.large_bytes += 4096;
  expect_violation("large_bytes == extent bytes of the live large blocks", "large_bytes");
  hz_arena.large_bytes -= 4096;
  HZ_TEST_CENSUS();
  hz_free(p);
  hz_arena.dirty_bytes += 1;
  expect_violation("dirty_bytes == sum of the free extents' dirty prefixes", "dirty_bytes");
  hz_arena.dirty_bytes -= 1;
  HZ_TEST_CENSUS();
}

HZ_TEST(a_slab_left_pooled_in_a_free_superslab_is_found) {
  void *p = hz_malloc((size_t)1 << 20); /* a large block: its SuperSlabs are not cut */
  HZ_REQUIRE(p != NULL);
  hz_slab_t *s = hz_slab_of((char *)p + HZ_SLAB_SIZE);
  HZ_REQUIRE(s->state == HZ_SLAB_UNCUT);
  s->state = HZ_SLAB_POOLED;
  expect_violation("every slab of a free extent or large block is UNCUT", "slab 1");
  s->state = HZ_SLAB_UNCUT;
  HZ_TEST_CENSUS();
  hz_free(p);
}

HZ_TEST(a_block_twice_on_a_slab_freelist_is_found) {
  hz_thread_flush();
  enum { N = 4 };
  void *p[N];
  for (int i = 0; i < N; i++) p[i] = hz_malloc(1200);
  hz_slab_t *s = hz_slab_of(p[0]);
  for (int i = 1; i < N; i++) hz_free(p[i]);
  hz_thread_flush(); /* onto the freelist; p[0] keeps the slab owned */
  HZ_REQUIRE(s->free_count >= 2);
  void *a = s->freelist, *b = hz_link_get(a), *after_b = hz_link_get(b);
  hz_link_set(b, a); /* a, b, a, ...: a cycle that the count alone reports as a long list */
  expect_violation("a block is on a free list twice (or a cycle)", "class");
  hz_link_set(b, after_b);
  HZ_TEST_CENSUS();
  hz_free(p[0]);
  hz_thread_flush();
}

static void *free_one(void *p) {
  hz_free(p);
  hz_thread_flush(); /* publishes the batch: the block waits in its slab's remote queue */
  return NULL;
}

HZ_TEST(a_full_slab_whose_remote_frees_are_hidden_from_its_owner_is_found) {
  hz_thread_flush();
  enum { N = 2 * 128 };
  void *p[N];
  for (int i = 0; i < N; i++) p[i] = hz_malloc(2500);
  hz_slab_t *s = hz_slab_of(p[0]); /* every block taken, and a refill moved on: FULL */
  HZ_REQUIRE(s->state == HZ_SLAB_FULL && N > (int)s->capacity);
  pthread_t t;
  HZ_REQUIRE(pthread_create(&t, NULL, free_one, p[0]) == 0);
  pthread_join(t, NULL);
  _Atomic uint64_t *hint = &hz_remote_hint[atomic_load(&s->owner)].bits;
  uint64_t bit = (uint64_t)1 << s->cls;
  HZ_REQUIRE(atomic_load(&s->remote) != NULL && (atomic_load(hint) & bit));
  atomic_fetch_and(hint, ~bit);
  expect_violation("a FULL slab whose remote queue holds a block has its class's bit", "owner");
  atomic_fetch_or(hint, bit);
  HZ_TEST_CENSUS();
  for (int i = 1; i < N; i++) hz_free(p[i]);
  hz_thread_flush();
}
