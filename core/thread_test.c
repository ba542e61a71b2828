/* Cross-thread behaviour: remote frees, thread exit with live blocks, adoption of the
 * abandoned slabs, and a producer/consumer run that frees millions of blocks across
 * threads and ends with the whole-heap check passing. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "core/api.h"
#include "core/testing/hz_heap.h"
#include "core/testing/hz_test.h"

typedef struct {
  void **blocks;
  int n;
  size_t size;
} job_t;

static void *free_all(void *arg) {
  job_t *j = arg;
  for (int i = 0; i < j->n; i++) hz_free(j->blocks[i]);
  return NULL;
}

static void *alloc_all_and_exit(void *arg) {
  job_t *j = arg;
  for (int i = 0; i < j->n; i++) {
    j->blocks[i] = hz_malloc(j->size);
    memset(j->blocks[i], 0x3C, j->size);
  }
  return NULL; /* exits holding every block: its slabs must be abandoned, not lost */
}

HZ_TEST(remote_frees_queue_on_the_slab_and_the_owner_collects_them) {
  hz_thread_flush();
  enum { N = 3000 };
  static void *p[N];
  for (int i = 0; i < N; i++) p[i] = hz_malloc(96);
  hz_census_t before = HZ_TEST_CENSUS();
  job_t j = {p, N, 96};
  pthread_t t;
  pthread_create(&t, NULL, free_all, &j);
  pthread_join(t, NULL);
  hz_census_t mid = HZ_TEST_CENSUS();
  HZ_EXPECT_EQ(mid.queued_blocks, before.queued_blocks + N);
  HZ_EXPECT_EQ(mid.user_blocks, before.user_blocks - N);
  /* None went into the freeing thread's cache: it never even registered. */
  HZ_EXPECT_EQ(mid.threads, before.threads);
  hz_stats_t s0, s1;
  hz_get_stats(&s0);
  for (int i = 0; i < N; i++) p[i] = hz_malloc(96); /* refills collect the queue */
  hz_get_stats(&s1);
  HZ_EXPECT(s1.remote_collects > s0.remote_collects);
  for (int i = 0; i < N; i++) hz_free(p[i]);
  hz_thread_flush();
  hz_census_t after = HZ_TEST_CENSUS();
  HZ_EXPECT_EQ(after.queued_blocks, 0);
  HZ_EXPECT_EQ(after.user_blocks, before.user_blocks - N);
}

HZ_TEST(thread_exit_abandons_live_slabs_and_another_thread_adopts_them) {
  hz_thread_flush();
  enum { N = 5000 };
  static void *p[N];
  job_t j = {p, N, 200};
  pthread_t t;
  hz_census_t before = HZ_TEST_CENSUS();
  pthread_create(&t, NULL, alloc_all_and_exit, &j);
  pthread_join(t, NULL);
  hz_census_t mid = HZ_TEST_CENSUS();
  HZ_EXPECT(mid.slabs_abandoned > before.slabs_abandoned);
  HZ_EXPECT_EQ(mid.user_blocks, before.user_blocks + N);
  HZ_EXPECT_EQ(mid.threads, before.threads); /* its id was released */
  /* Blocks of an abandoned slab can still be freed (into its remote queue)... */
  for (int i = 0; i < N; i += 2) {
    HZ_EXPECT_EQ(((unsigned char *)p[i])[199], 0x3C);
    hz_free(p[i]);
  }
  HZ_TEST_CENSUS();
  /* ...and allocating the class adopts the slabs and collects those frees. */
  hz_stats_t s0, s1;
  hz_get_stats(&s0);
  static void *q[N];
  for (int i = 0; i < N; i++) q[i] = hz_malloc(200);
  hz_get_stats(&s1);
  HZ_EXPECT(s1.adoptions > s0.adoptions);
  hz_census_t late = HZ_TEST_CENSUS();
  HZ_EXPECT(late.slabs_abandoned < mid.slabs_abandoned);
  for (int i = 1; i < N; i += 2) hz_free(p[i]);
  for (int i = 0; i < N; i++) hz_free(q[i]);
  hz_thread_flush();
  HZ_EXPECT_EQ(HZ_TEST_CENSUS().user_blocks, before.user_blocks);
}

HZ_TEST(thread_ids_are_reused_after_exit) {
  enum { ROUNDS = 200 };
  static void *p[1];
  job_t j = {p, 1, 32};
  for (int r = 0; r < ROUNDS; r++) {
    pthread_t t;
    pthread_create(&t, NULL, alloc_all_and_exit, &j);
    pthread_join(t, NULL);
    hz_free(p[0]);
  }
  hz_census_t c = HZ_TEST_CENSUS();
  HZ_EXPECT(c.threads <= 2);
}

/* ---- every thread id taken ---------------------------------------------------------- */

/* HZ_MAX_THREADS - 1 ids (0 is "none"): a thread that finds them all held gets no cache,
 * so its small allocations fail as out of memory, and it leaves no trace; large blocks
 * need no cache. Each id comes back when its thread exits. */
enum { CROWD = HZ_MAX_THREADS + 2 };
static pthread_barrier_t crowd_parked, crowd_release;
static struct {
  void *small, *large;
  int small_errno;
} crowd[CROWD];

static void *crowd_member(void *arg) {
  uintptr_t i = (uintptr_t)arg;
  errno = 0;
  crowd[i].small = hz_malloc(24);
  crowd[i].small_errno = errno;
  if (crowd[i].small) memcpy(crowd[i].small, &i, sizeof i);
  crowd[i].large = i % 512 == 0 ? hz_malloc((size_t)3 << 20) : NULL;
  pthread_barrier_wait(&crowd_parked); /* every member alive and holding its id */
  pthread_barrier_wait(&crowd_release);
  hz_free(crowd[i].small);
  hz_free(crowd[i].large);
  return NULL;
}

HZ_TEST(a_thread_that_finds_every_id_taken_fails_cleanly_and_ids_come_back) {
  hz_census_t before = HZ_TEST_CENSUS();
  unsigned free_ids = HZ_MAX_THREADS - 1 - (unsigned)before.threads;
  pthread_attr_t small_stack;
  pthread_attr_init(&small_stack);
  pthread_attr_setstacksize(&small_stack, 64 << 10);
  pthread_barrier_init(&crowd_parked, NULL, CROWD + 1);
  pthread_barrier_init(&crowd_release, NULL, CROWD + 1);
  static pthread_t t[CROWD];
  for (uintptr_t i = 0; i < CROWD; i++)
    HZ_REQUIRE(pthread_create(&t[i], &small_stack, crowd_member, (void *)i) == 0);
  pthread_barrier_wait(&crowd_parked);
  unsigned served = 0, refused = 0;
  for (uintptr_t i = 0; i < CROWD; i++) {
    if (crowd[i].small) {
      served++;
      uintptr_t mark;
      memcpy(&mark, crowd[i].small, sizeof mark);
      HZ_EXPECT(mark == i); /* no two members share a block */
    } else {
      refused++;
      HZ_EXPECT_EQ(crowd[i].small_errno, ENOMEM);
    }
    if (i % 512 == 0) HZ_EXPECT(crowd[i].large != NULL);
  }
  HZ_EXPECT_EQ(served, free_ids);
  HZ_EXPECT_EQ(refused, CROWD - free_ids);
  hz_census_t full = HZ_TEST_CENSUS(); /* the members are parked, outside hz */
  HZ_EXPECT_EQ(full.threads, before.threads + free_ids);
  pthread_barrier_wait(&crowd_release);
  for (unsigned i = 0; i < CROWD; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&crowd_parked);
  pthread_barrier_destroy(&crowd_release);
  pthread_attr_destroy(&small_stack);
  hz_census_t after = HZ_TEST_CENSUS();
  HZ_EXPECT_EQ(after.threads, before.threads);
  HZ_EXPECT_EQ(after.user_blocks, before.user_blocks);
  /* The ids came back: a new thread is served. */
  static void *p[1];
  job_t j = {p, 1, 40};
  pthread_t one;
  pthread_create(&one, NULL, alloc_all_and_exit, &j);
  pthread_join(one, NULL);
  HZ_EXPECT(p[0] != NULL);
  hz_free(p[0]);
}

/* ---- producer/consumer: millions of cross-thread frees ---------------------------- */

enum { RING = 4096, TOTAL = 3000000 };
static void *_Atomic ring[RING];

static void *producer(void *arg) {
  (void)arg;
  uint32_t s = 12345;
  for (int i = 0; i < TOTAL; i++) {
    s = s * 1664525u + 1013904223u;
    size_t n = 16 + (s >> 8) % 1024;
    unsigned char *b = hz_malloc(n);
    b[0] = (unsigned char)i;
    b[n - 1] = (unsigned char)(i >> 8);
    void *expected = NULL;
    while (!atomic_compare_exchange_weak(&ring[i % RING], &expected, b)) {
      expected = NULL;
      sched_yield();
    }
  }
  return NULL;
}

static void *consumer(void *arg) {
  int *bad = arg;
  uint32_t s = 12345;
  for (int i = 0; i < TOTAL; i++) {
    s = s * 1664525u + 1013904223u;
    size_t n = 16 + (s >> 8) % 1024;
    unsigned char *b;
    while ((b = atomic_exchange(&ring[i % RING], NULL)) == NULL) sched_yield();
    if (b[0] != (unsigned char)i || b[n - 1] != (unsigned char)(i >> 8)) (*bad)++;
    hz_free(b); /* always a remote free: the producer owns every slab */
  }
  return NULL;
}

HZ_TEST(producer_consumer_frees_millions_across_threads) {
  hz_thread_flush();
  hz_census_t before = HZ_TEST_CENSUS();
  int bad = 0;
  pthread_t a, b;
  pthread_create(&a, NULL, producer, NULL);
  pthread_create(&b, NULL, consumer, &bad);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  HZ_EXPECT_EQ(bad, 0);
  hz_census_t after = HZ_TEST_CENSUS();
  HZ_EXPECT_EQ(after.user_blocks, before.user_blocks);
  hz_stats_t s;
  hz_get_stats(&s);
  HZ_EXPECT(s.remote_collects > 0);
}
