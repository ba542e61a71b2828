/* hz_debug_reset: the heap starts over exactly as it first started, and refuses while
 * anything is still in use. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "core/api.h"
#include "core/testing/hz_test.h"

#define N 300

/* A fixed workload over several classes and a large block; records the addresses. */
static void workload(void *out[N + 1]) {
  for (int i = 0; i < N; i++) out[i] = hz_malloc((size_t)(i % 37) * 48 + 1);
  out[N] = hz_malloc(3u << 20);
  for (int i = 0; i < N; i += 3) hz_free(out[i]);
  for (int i = 0; i < N; i += 3) out[i] = hz_calloc(1, 700);
}

static void release(void *p[N + 1]) {
  for (int i = 0; i <= N; i++) hz_free(p[i]);
}

HZ_TEST(after_a_reset_the_same_workload_gets_the_same_addresses) {
  HZ_REQUIRE(hz_debug_reset() == 0);
  void *first[N + 1], *again[N + 1];
  workload(first);
  unsigned tid = hz_thread_id();
  release(first);
  HZ_REQUIRE(hz_debug_reset() == 0);
  workload(again);
  HZ_EXPECT_EQ(hz_thread_id(), tid);
  HZ_EXPECT(memcmp(first, again, sizeof first) == 0);
  hz_violation_t v;
  HZ_EXPECT(hz_heap_check(&v, NULL) == 0);
  release(again);
}

HZ_TEST(a_reset_leaves_freshly_zeroed_memory) {
  HZ_REQUIRE(hz_debug_reset() == 0);
  unsigned char *p = hz_malloc(5000), *big = hz_malloc(1u << 21);
  memset(p, 0x77, 5000);
  memset(big, 0x77, 1u << 21);
  hz_free(p);
  hz_free(big);
  HZ_REQUIRE(hz_debug_reset() == 0);
  unsigned char *q = hz_malloc(5000), *big2 = hz_malloc(1u << 21);
  HZ_EXPECT(q == p && big2 == big);
  unsigned nonzero = 0;
  for (int i = 16; i < 5000; i++) nonzero += q[i] != 0; /* words 0-1: link and mark */
  for (size_t i = 0; i < (1u << 21); i += 4096) nonzero += big2[i] != 0;
  HZ_EXPECT_EQ(nonzero, 0);
  hz_free(q);
  hz_free(big2);
}

HZ_TEST(a_reset_is_refused_while_a_block_is_live) {
  HZ_REQUIRE(hz_debug_reset() == 0);
  void *small = hz_malloc(100);
  HZ_EXPECT_EQ(hz_debug_reset(), -1);
  HZ_EXPECT(hz_usable_size(small) >= 100); /* still usable: nothing changed */
  hz_free(small);
  void *large = hz_malloc(1u << 20);
  HZ_EXPECT_EQ(hz_debug_reset(), -1);
  hz_free(large);
  HZ_EXPECT_EQ(hz_debug_reset(), 0);
}

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static atomic_int registered;
static void *holder(void *arg) {
  (void)arg;
  hz_free(hz_malloc(64)); /* registers a thread cache, then waits at the gate */
  atomic_store(&registered, 1);
  pthread_mutex_lock(&gate);
  pthread_mutex_unlock(&gate);
  return NULL;
}

HZ_TEST(a_reset_is_refused_while_another_thread_has_a_cache) {
  HZ_REQUIRE(hz_debug_reset() == 0);
  pthread_mutex_lock(&gate);
  pthread_t t;
  HZ_REQUIRE(pthread_create(&t, NULL, holder, NULL) == 0);
  while (!atomic_load(&registered)) sched_yield();
  HZ_EXPECT_EQ(hz_debug_reset(), -1);
  pthread_mutex_unlock(&gate);
  pthread_join(t, NULL); /* its exit flushes and releases its cache */
  HZ_EXPECT_EQ(hz_debug_reset(), 0);
}
