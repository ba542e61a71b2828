/* A tour of the hz core: a multithreaded workload with cross-thread frees and thread
 * exits, then what the allocator reports about itself and its whole-heap check.
 *
 *   bazel run //tools/demo -- [--threads N] [--ops N]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hz.h"
#include "core/hz_debug.h"

enum { SLOTS = 4096, MAX_THREADS = 64 };

static void *_Atomic shared[SLOTS]; /* blocks handed between threads */
static long ops_per_thread = 2000000;

static void *worker(void *arg) {
  uint32_t s = (uint32_t)(uintptr_t)arg * 2654435761u + 1;
  for (long i = 0; i < ops_per_thread; i++) {
    s = s * 1664525u + 1013904223u;
    size_t n = (s >> 28) == 0 ? 4096 + (s >> 8) % 200000 : 16 + (s >> 8) % 2048;
    void *mine = hz_malloc(n);
    memset(mine, (int)i, n < 64 ? n : 64);
    /* Swap with a shared slot: whatever comes out was likely another thread's. */
    void *theirs = atomic_exchange(&shared[(s >> 4) % SLOTS], mine);
    hz_free(theirs);
  }
  return NULL;
}

static long parse(const char *flag, const char *v, long lo, long hi) {
  char *end;
  long x = v ? strtol(v, &end, 10) : 0;
  if (!v || *end || x < lo || x > hi) {
    fprintf(stderr, "demo: %s wants a number in [%ld, %ld], got '%s'\n", flag, lo, hi,
            v ? v : "(nothing)");
    exit(2);
  }
  return x;
}

int main(int argc, char **argv) {
  long threads = 2;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads")) threads = parse(argv[i], argv[i + 1], 1, MAX_THREADS), i++;
    else if (!strcmp(argv[i], "--ops")) ops_per_thread = parse(argv[i], argv[i + 1], 1, 1L << 40), i++;
    else {
      fprintf(stderr, "demo: unknown flag '%s'\nusage: demo [--threads N] [--ops N]\n", argv[i]);
      return 2;
    }
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int round = 0; round < 2; round++) { /* threads exit: their slabs are adopted */
    pthread_t t[MAX_THREADS];
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 7 * round));
    for (long i = 0; i < threads; i++) pthread_join(t[i], NULL);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  double ops = 2.0 * 2 * (double)threads * (double)ops_per_thread;
  printf("%ld threads x 2 rounds: %.0f malloc+free in %.2f s (%.1f M ops/s)\n", threads, ops,
         secs, ops / secs / 1e6);

  hz_violation_t v;
  hz_census_t c;
  if (hz_heap_check(&v, &c)) {
    printf("heap check FAILED: %s: %s\n", v.invariant, v.message);
    return 1;
  }
  printf("heap check passed: %llu blocks held, %llu cached, %llu queued remote frees,\n"
         "  %llu owned + %llu abandoned + %llu pooled slabs, %llu large blocks\n",
         (unsigned long long)c.user_blocks, (unsigned long long)c.cached_blocks,
         (unsigned long long)c.queued_blocks, (unsigned long long)c.slabs_owned,
         (unsigned long long)c.slabs_abandoned, (unsigned long long)c.slabs_pooled,
         (unsigned long long)c.large_blocks);
  hz_stats_t s;
  hz_get_stats(&s);
  printf("events: %llu refills, %llu drains, %llu remote collections, %llu adoptions,\n"
         "  %llu slab inits, %llu slabs pooled, %llu SuperSlabs taken / %llu returned\n",
         (unsigned long long)s.refills, (unsigned long long)s.drains,
         (unsigned long long)s.remote_collects, (unsigned long long)s.adoptions,
         (unsigned long long)s.slab_inits, (unsigned long long)s.slab_releases,
         (unsigned long long)s.superslabs_taken, (unsigned long long)s.superslabs_released);
  for (int i = 0; i < SLOTS; i++) hz_free(atomic_exchange(&shared[i], NULL));
  hz_thread_flush();
  if (hz_heap_check(&v, &c) || c.user_blocks != 0) {
    printf("after freeing everything: heap check FAILED (%llu blocks still held)\n",
           (unsigned long long)c.user_blocks);
    return 1;
  }
  printf("after freeing everything: heap check passed, 0 blocks held\n");
  return 0;
}
