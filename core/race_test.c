/* Race points (config.h HZ_RACE_POINTS): in a fuzzing build the remote push calls the
 * race hook between its link and its CAS, and a free landed there is not lost, whether
 * it is pushed alone (a thread with no cache) or published with a batch; a free landed
 * while its slab is being abandoned is reclaimed; a build without race points refuses
 * the hook. Built three ways (BUILD.bazel): with race points,
 * with race points and the seeded CAS_NO_RELINK bug (the raced block is lost, which is
 * what bugzoo's mt_fuzzer must see), and without race points. */
#include <pthread.h>

#include "core/api.h"
#include "core/testing/hz_heap.h"
#include "core/testing/hz_test.h"

static void *armed;   /* the block the hook frees, once */
static unsigned calls; /* race points reached */

static void free_at_race_point(hz_race_point_t where, void *obj) {
  HZ_EXPECT(obj != NULL);
  if (where != HZ_RACE_REMOTE_PUSH) return;
  calls++;
  void *q = armed;
  armed = NULL;
  if (!q) return;
  hz_free(q); /* a second remote free of the same slab, inside the first one's */
  hz_thread_flush(); /* a registered thread batches it: publish, so its push lands here */
}

static void *remote_free(void *p) {
  hz_free(p);
  return NULL;
}

HZ_TEST(a_free_landed_between_link_and_cas_is_not_lost) {
  if (!hz_set_race_hook(free_at_race_point)) {
    HZ_EXPECT(!HZ_RACE_POINTS);
    return; /* the build without race points: the next test covers it */
  }
  void *p = hz_malloc(64), *q = hz_malloc(64);
  HZ_REQUIRE(p && q && hz_slab_of(p) == hz_slab_of(q));
  hz_census_t before = HZ_TEST_CENSUS();
  armed = q;
  calls = 0;
  pthread_t t; /* another thread's free of p goes to the remote queue */
  HZ_REQUIRE(pthread_create(&t, NULL, remote_free, p) == 0);
  pthread_join(t, NULL);
  hz_set_race_hook(NULL);
  HZ_EXPECT(armed == NULL);
  HZ_EXPECT(calls >= 3); /* p's push, q's push inside it, p's retry */
  hz_census_t after = HZ_TEST_CENSUS();
  if (HZ_SEED_BUG == HZ_BUG_NONE) {
    HZ_EXPECT_EQ(after.user_blocks, before.user_blocks - 2);
    HZ_EXPECT_EQ(after.queued_blocks, before.queued_blocks + 2);
  } else {
    /* CAS_NO_RELINK: p's retry kept the link it made before q was pushed, so the queue
     * skips q, which the census then counts as held by the program. */
    HZ_EXPECT_EQ(hz_seed_bug_info().triggered, 1);
    HZ_EXPECT_EQ(after.user_blocks, before.user_blocks - 1);
    HZ_EXPECT_EQ(after.queued_blocks, before.queued_blocks + 1);
  }
}

static void *remote_free_batched(void *p) {
  hz_free(hz_malloc(16)); /* registered: the free waits in this thread's batch */
  hz_free(p);
  hz_thread_flush(); /* publishing the batch reaches the race point */
  return NULL;
}

HZ_TEST(a_batch_published_between_another_batchs_link_and_cas_is_not_lost) {
  if (!hz_set_race_hook(free_at_race_point)) return;
  void *p = hz_malloc(64), *q = hz_malloc(64);
  HZ_REQUIRE(p && q && hz_slab_of(p) == hz_slab_of(q));
  hz_census_t before = HZ_TEST_CENSUS();
  armed = q;
  calls = 0;
  pthread_t t;
  HZ_REQUIRE(pthread_create(&t, NULL, remote_free_batched, p) == 0);
  pthread_join(t, NULL);
  hz_set_race_hook(NULL);
  HZ_EXPECT(armed == NULL);
  HZ_EXPECT(calls >= 3);
  hz_census_t after = HZ_TEST_CENSUS();
  if (HZ_SEED_BUG == HZ_BUG_NONE) {
    HZ_EXPECT_EQ(after.user_blocks, before.user_blocks - 2);
    HZ_EXPECT_EQ(after.queued_blocks, before.queued_blocks + 2);
  } else {
    HZ_EXPECT_EQ(after.user_blocks, before.user_blocks - 1);
    HZ_EXPECT_EQ(after.queued_blocks, before.queued_blocks + 1);
  }
}

/* At the abandonment race point: a thread hz never registered frees the slab's last live
 * block, so its free finds no owner and a slab not yet listed as abandoned. */
static void *abandon_victim;

static void *free_it(void *p) {
  hz_free(p);
  return NULL;
}

static void free_at_abandon(hz_race_point_t where, void *obj) {
  if (where != HZ_RACE_ABANDON || !abandon_victim || (void *)hz_slab_of(abandon_victim) != obj)
    return;
  void *p = abandon_victim;
  abandon_victim = NULL;
  pthread_t t;
  HZ_REQUIRE(pthread_create(&t, NULL, free_it, p) == 0);
  pthread_join(t, NULL);
}

static void *own_one_block_then_exit(void *arg) {
  (void)arg;
  abandon_victim = hz_malloc(3000); /* a new thread: the only live block of a new slab */
  return NULL;
}

HZ_TEST(a_free_landing_while_its_slab_is_abandoned_is_reclaimed) {
  if (!hz_set_race_hook(free_at_abandon)) return;
  hz_census_t before = HZ_TEST_CENSUS();
  pthread_t t;
  HZ_REQUIRE(pthread_create(&t, NULL, own_one_block_then_exit, NULL) == 0);
  pthread_join(t, NULL);
  hz_set_race_hook(NULL);
  HZ_EXPECT(abandon_victim == NULL); /* the free landed at the race point */
  hz_census_t after = HZ_TEST_CENSUS();
  /* The abandonment collected the queue and pooled the emptied slab; before the fix the
   * slab stayed abandoned with the block queued, for good if nobody allocated 3000 B. */
  HZ_EXPECT_EQ(after.slabs_abandoned, before.slabs_abandoned);
  HZ_EXPECT_EQ(after.queued_blocks, before.queued_blocks);
  HZ_EXPECT_EQ(after.user_blocks, before.user_blocks);
}

HZ_TEST(without_race_points_the_hook_is_refused) {
  if (HZ_RACE_POINTS) return;
  HZ_EXPECT(!hz_set_race_hook(free_at_race_point));
  void *p = hz_malloc(64);
  armed = hz_malloc(64);
  calls = 0;
  pthread_t t;
  HZ_REQUIRE(pthread_create(&t, NULL, remote_free, p) == 0);
  pthread_join(t, NULL);
  HZ_EXPECT_EQ(calls, 0);
  hz_free(armed);
}
