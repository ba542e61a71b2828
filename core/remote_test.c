/* Batched remote frees (remote.c, tcache.h): a registered thread's frees of another
 * thread's blocks wait in its pending batch for their slab, counted as queued and still
 * in the slab's `used`; a batch reaches the slab's remote queue in one push when it is
 * full, when its slot is needed, or when the thread flushes or exits; a double free of a
 * block that waits in a batch is still caught; and a batch for a slab whose owner exited
 * lets the slab go back to the pool. */
#include <pthread.h>
#include <string.h>

#include "core/api.h"
#include "core/testing/hz_heap.h"
#include "core/testing/hz_test.h"

/* A helper thread that runs one step at a time, so the test can look at the heap
 * between its frees and after its exit. */
typedef struct {
  pthread_t t;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  void (*step)(void *);
  void *arg;
  int busy, quit;
} worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  hz_free(hz_malloc(16)); /* registers: only a thread with a cache batches */
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->busy && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
    if (w->busy) {
      pthread_mutex_unlock(&w->mu);
      w->step(w->arg);
      pthread_mutex_lock(&w->mu);
      w->busy = 0;
      pthread_cond_broadcast(&w->cv);
    }
    if (w->quit && !w->busy) break;
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static void worker_start(worker_t *w) {
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  HZ_REQUIRE(pthread_create(&w->t, NULL, worker_main, w) == 0);
}

static void worker_run(worker_t *w, void (*step)(void *), void *arg) {
  pthread_mutex_lock(&w->mu);
  w->step = step, w->arg = arg, w->busy = 1;
  pthread_cond_broadcast(&w->cv);
  while (w->busy) pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
}

static void worker_exit(worker_t *w) {
  pthread_mutex_lock(&w->mu);
  w->quit = 1;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->t, NULL);
}

typedef struct {
  void **p;
  int n;
} blocks_t;

static void free_blocks(void *arg) {
  blocks_t *b = arg;
  for (int i = 0; i < b->n; i++) hz_free(b->p[i]);
}

static void alloc_blocks(void *arg) {
  blocks_t *b = arg;
  for (int i = 0; i < b->n; i++) HZ_REQUIRE((b->p[i] = hz_malloc(64)) != NULL);
}

static void flush(void *arg) {
  (void)arg;
  hz_thread_flush();
}

static uint32_t queue_length(hz_slab_t *s) {
  uint32_t n = 0;
  for (void *b = atomic_load(&s->remote); b && n < 100000; b = hz_link_get(b)) n++;
  return n;
}

HZ_TEST(remote_frees_wait_in_the_freeing_threads_batch_until_it_exits) {
  hz_thread_flush();
  enum { N = 20 }; /* fewer than a batch of 64-byte blocks holds */
  void *p[N];
  for (int i = 0; i < N; i++) p[i] = hz_malloc(64);
  hz_slab_t *s = hz_slab_of(p[0]);
  for (int i = 1; i < N; i++) HZ_REQUIRE(hz_slab_of(p[i]) == s);
  uint32_t used = s->used;
  hz_census_t before = HZ_TEST_CENSUS();
  worker_t w;
  worker_start(&w);
  worker_run(&w, free_blocks, &(blocks_t){p, N});
  hz_census_t mid = HZ_TEST_CENSUS();
  HZ_EXPECT_EQ(mid.queued_blocks, before.queued_blocks + N); /* pending, counted as queued */
  HZ_EXPECT_EQ(mid.user_blocks, before.user_blocks - N);
  HZ_EXPECT_EQ(queue_length(s), 0);                        /* not published yet */
  HZ_EXPECT_EQ(s->used, used);                             /* and still in `used` */
  worker_exit(&w);
  HZ_EXPECT_EQ(queue_length(s), N); /* the exit published the batch, in one push */
  hz_census_t after = HZ_TEST_CENSUS();
  HZ_EXPECT_EQ(after.queued_blocks, before.queued_blocks + N);
  hz_thread_flush(); /* the owner collects them */
  HZ_EXPECT_EQ(HZ_TEST_CENSUS().queued_blocks, 0);
  HZ_EXPECT_EQ(queue_length(s), 0);
}

HZ_TEST(a_full_batch_is_published_and_a_flush_publishes_the_rest) {
  hz_thread_flush();
  const uint32_t limit = HZ_REMOTE_BATCH_BLOCKS < HZ_REMOTE_BATCH_BYTES / 64
                             ? HZ_REMOTE_BATCH_BLOCKS : HZ_REMOTE_BATCH_BYTES / 64;
  enum { N = 40 };
  HZ_REQUIRE(limit < N);
  void *p[N];
  for (int i = 0; i < N; i++) p[i] = hz_malloc(64);
  hz_slab_t *s = hz_slab_of(p[0]);
  for (int i = 1; i < N; i++) HZ_REQUIRE(hz_slab_of(p[i]) == s);
  worker_t w;
  worker_start(&w);
  worker_run(&w, free_blocks, &(blocks_t){p, (int)limit - 1});
  HZ_EXPECT_EQ(queue_length(s), 0);
  worker_run(&w, free_blocks, &(blocks_t){p + limit - 1, 1});
  HZ_EXPECT_EQ(queue_length(s), limit); /* the batch filled: one push of all of it */
  worker_run(&w, free_blocks, &(blocks_t){p + limit, N - (int)limit});
  HZ_EXPECT_EQ(queue_length(s), limit);
  worker_run(&w, flush, NULL);
  HZ_EXPECT_EQ(queue_length(s), N);
  HZ_EXPECT_EQ(HZ_TEST_CENSUS().queued_blocks, N);
  worker_exit(&w);
  hz_thread_flush();
  HZ_EXPECT_EQ(HZ_TEST_CENSUS().queued_blocks, 0);
}

static struct {
  int count;
  hz_fault_t last;
} faults;

static void on_fault(const hz_fault_t *f, void *ctx) {
  (void)ctx;
  faults.count++;
  faults.last = *f;
}

HZ_TEST(a_double_free_of_a_block_waiting_in_a_batch_is_caught_by_every_thread) {
  hz_thread_flush();
  void *keep = hz_malloc(48), *p = hz_malloc(48);
  worker_t w;
  worker_start(&w);
  worker_run(&w, free_blocks, &(blocks_t){&p, 1}); /* p waits in w's batch */
  memset(&faults, 0, sizeof faults);
  hz_set_error_hook(on_fault, NULL);
  hz_free(p); /* the owner cannot see w's batch: the queued mark tells it */
  HZ_EXPECT_EQ(faults.count, 1);
  HZ_EXPECT_EQ(faults.last.kind, HZ_FAULT_DOUBLE_FREE);
  HZ_EXPECT(faults.last.ptr == p);
  worker_run(&w, free_blocks, &(blocks_t){&p, 1}); /* and the batching thread again */
  HZ_EXPECT_EQ(faults.count, 2);
  HZ_EXPECT_EQ(faults.last.kind, HZ_FAULT_DOUBLE_FREE);
  hz_set_error_hook(NULL, NULL);
  hz_census_t c = HZ_TEST_CENSUS(); /* nothing was queued twice */
  HZ_EXPECT_EQ(c.queued_blocks, 1);
  worker_exit(&w);
  hz_thread_flush();
  HZ_EXPECT_EQ(HZ_TEST_CENSUS().queued_blocks, 0);
  hz_free(keep);
}

HZ_TEST(a_batch_for_a_slab_whose_owner_exited_lets_the_slab_go_back_to_the_pool) {
  hz_thread_flush();
  hz_census_t before = HZ_TEST_CENSUS();
  enum { N = 10 };
  void *p[N];
  worker_t owner, freer;
  worker_start(&owner);
  worker_run(&owner, alloc_blocks, &(blocks_t){p, N});
  worker_exit(&owner); /* exits holding the blocks: their slab is abandoned */
  hz_census_t mid = HZ_TEST_CENSUS();
  HZ_EXPECT(mid.slabs_abandoned > before.slabs_abandoned);
  worker_start(&freer);
  worker_run(&freer, free_blocks, &(blocks_t){p, N});
  worker_exit(&freer); /* publishes into an ownerless slab, which is reclaimed */
  hz_census_t after = HZ_TEST_CENSUS();
  HZ_EXPECT_EQ(after.slabs_abandoned, before.slabs_abandoned);
  HZ_EXPECT_EQ(after.user_blocks, before.user_blocks);
  HZ_EXPECT_EQ(after.queued_blocks, 0);
}

