/* ASan integration: blocks the allocator caches (TLS SLL, freelist, remote queue) are
 * poisoned, so a use-after-free of a cached block is caught; live blocks never are. */
#include <pthread.h>
#include <stdatomic.h>
#include <sanitizer/asan_interface.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/hz.h"
#include "core/testing/hz_test.h"

static int poisoned(const void *p) { return __asan_address_is_poisoned(p); }

static void *free_it(void *p) {
  hz_free(p);
  return NULL;
}

HZ_TEST(live_blocks_are_fully_addressable) {
  for (size_t n = 1; n < 70000; n = n * 2 + 3) {
    unsigned char *p = hz_malloc(n);
    HZ_REQUIRE(p);
    HZ_EXPECT(__asan_region_is_poisoned(p, hz_usable_size(p)) == NULL);
    memset(p, 1, hz_usable_size(p));
    hz_free(p);
  }
}

HZ_TEST(cached_freelisted_and_queued_blocks_are_poisoned) {
  void *keep = hz_malloc(256), *a = hz_malloc(256), *b = hz_malloc(256);
  hz_free(a); /* TLS SLL */
  HZ_EXPECT(poisoned(a));
  hz_thread_flush(); /* freelist; keep holds the slab */
  HZ_EXPECT(poisoned(a));
  pthread_t t; /* remote queue */
  pthread_create(&t, NULL, free_it, b);
  pthread_join(t, NULL);
  HZ_EXPECT(poisoned(b));
  void *again = hz_malloc(256); /* a recycled block is unpoisoned */
  HZ_EXPECT(!poisoned(again));
  hz_free(again);
  hz_free(keep);
  void *big = hz_malloc(1 << 20);
  hz_free(big);
  HZ_EXPECT(poisoned(big)); /* freed large blocks too */
}

static void use_after_free(void) {
  char *volatile p = hz_malloc(64);
  hz_free(p);
  p[10] = 'x'; /* the block sits in this thread's cache */
}

HZ_TEST(use_after_free_of_a_cached_block_is_reported_by_asan) {
  static char out[65536];
  int status = hz_test_run_child(use_after_free, out, sizeof out);
  HZ_REQUIRE(status != -1);
  HZ_EXPECT(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
  HZ_EXPECT(strstr(out, "AddressSanitizer: use-after-poison") != NULL);
}

/* A large block shrunk in place gives its tail SuperSlabs back while another thread
 * allocates large blocks: the shrinking thread must poison what it gives up before the
 * tail is free, or its poison lands on the other thread's new block there (found by the
 * soak's free-running mt arm). Races for a fixed number of rounds; the window is a few
 * hundred nanoseconds wide, so the rounds are many. */
static atomic_int shrink_done;

static void *shrink_loop(void *arg) {
  (void)arg;
  for (int i = 0; i < 100000; i++) {
    void *p = hz_malloc((size_t)5 << 20);  /* 3 SuperSlabs */
    void *q = hz_realloc(p, (size_t)9 << 18); /* 2.25 MiB: 2 kept, the tail given back */
    hz_free(q ? q : p);
  }
  atomic_store(&shrink_done, 1);
  return NULL;
}

HZ_TEST(a_shrinking_block_never_poisons_another_threads_block) {
  pthread_t t;
  atomic_store(&shrink_done, 0);
  pthread_create(&t, NULL, shrink_loop, NULL);
  unsigned bad = 0, rounds = 0;
  while (!atomic_load(&shrink_done)) {
    unsigned char *q = hz_malloc((size_t)3 << 19); /* 1.5 MiB: one SuperSlab */
    HZ_REQUIRE(q);
    if (__asan_region_is_poisoned(q, hz_usable_size(q))) bad++;
    hz_free(q);
    rounds++;
  }
  pthread_join(t, NULL);
  HZ_EXPECT(rounds > 0);
  HZ_EXPECT_EQ(bad, 0u);
}
