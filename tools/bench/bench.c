/* One allocator workload, timed: the driver that tools/bench/allocators.py runs under
 * each allocator (LD_PRELOAD) in turn. It calls only the C library's malloc family, so
 * the same binary measures every allocator.
 *
 * Workloads follow hz3's comparison bench: a working set of 400 slots; each iteration an
 * LCG (s = s * 1664525 + 1013904223, seed 0x12345678) picks a slot, which is freed if
 * occupied and otherwise gets a new block; each malloc and each free is one op. The
 * slot is (s >> 16) % 400 (the high bits: the low bits of this LCG have short periods);
 * the size of a new block comes from the high bits of one more LCG step.
 *
 * Prints one line: "ops=<n> seconds=<s> mops=<millions per second> hwm_kib=<peak RSS>
 * malloc=<library>". The peak RSS is VmHWM, which exec resets, unlike the ru_maxrss a
 * parent sees, which still counts the parent's image the child was forked from.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 400
#define SEED 0x12345678u
#define MAX_THREADS 2

static uint32_t lcg(uint32_t s) { return s * 1664525u + 1013904223u; }

/* ---- size distributions ------------------------------------------------------------ */

typedef struct {
  uint32_t lo, hi;
} range_t;

typedef struct {
  range_t bucket[3];
  uint32_t weight[3]; /* percent; buckets outside the band have weight 0 */
  uint32_t total;
  int nbuckets;
} dist_t;

/* "uniform": one bucket, the band. "app": 80% 16-256, 15% 257-2048, 5% 2049-32768, each
 * clipped to the band; a bucket wholly outside the band is dropped and the remaining
 * weights keep their proportions. */
static dist_t make_dist(range_t band, int app) {
  dist_t d = {.nbuckets = 0, .total = 0};
  if (!app) {
    d.bucket[0] = band;
    d.weight[0] = 1;
    d.total = 1;
    d.nbuckets = 1;
    return d;
  }
  static const range_t app_buckets[3] = {{16, 256}, {257, 2048}, {2049, 32768}};
  static const uint32_t app_weights[3] = {80, 15, 5};
  for (int i = 0; i < 3; i++) {
    uint32_t lo = app_buckets[i].lo > band.lo ? app_buckets[i].lo : band.lo;
    uint32_t hi = app_buckets[i].hi < band.hi ? app_buckets[i].hi : band.hi;
    if (lo > hi) continue;
    d.bucket[d.nbuckets] = (range_t){lo, hi};
    d.weight[d.nbuckets] = app_weights[i];
    d.total += app_weights[i];
    d.nbuckets++;
  }
  return d;
}

static size_t draw_size(const dist_t *d, uint32_t r) {
  uint32_t pick = (r >> 8) % d->total, i = 0;
  while (pick >= d->weight[i]) pick -= d->weight[i++];
  const range_t *b = &d->bucket[i];
  /* A second, independent draw for the position in the bucket. */
  uint32_t r2 = lcg(r);
  return b->lo + (r2 >> 8) % (b->hi - b->lo + 1);
}

/* ---- workloads ---------------------------------------------------------------------- */

typedef enum { W_SLOTS, W_REMOTE, W_REALLOC, W_LARGE_CHURN, W_LARGE_REALLOC } kind_t;

typedef struct {
  kind_t kind;
  dist_t dist;
  int threads;
  uint32_t remote_pct;
  uint64_t iters; /* per thread */
} workload_t;

/* Single-producer single-consumer ring: thread t hands blocks to thread t + 1. */
#define RING 4096
typedef struct {
  _Atomic uint64_t head __attribute__((aligned(64))); /* consumer */
  _Atomic uint64_t tail __attribute__((aligned(64))); /* producer */
  void *slot[RING];
} ring_t;

static ring_t rings[MAX_THREADS];
static _Atomic int threads_done;
static pthread_barrier_t start_barrier;
static workload_t W;

static int ring_push(ring_t *r, void *p) {
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  if (t - atomic_load_explicit(&r->head, memory_order_acquire) == RING) return 0;
  r->slot[t % RING] = p;
  atomic_store_explicit(&r->tail, t + 1, memory_order_release);
  return 1;
}

/* Frees everything waiting in r; returns how many. */
static uint64_t ring_drain(ring_t *r) {
  uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
  for (uint64_t i = h; i < t; i++) free(r->slot[i % RING]);
  if (t != h) atomic_store_explicit(&r->head, t, memory_order_release);
  return t - h;
}

static void touch(void *p, size_t n) {
  ((volatile unsigned char *)p)[0] = (unsigned char)n;
}

static uint64_t run_slots(int tid) {
  void *slot[SLOTS] = {0};
  uint32_t s = SEED + (uint32_t)tid * 0x9E3779B9u;
  uint64_t ops = 0;
  ring_t *in = &rings[tid], *out = &rings[(tid + 1) % W.threads];
  for (uint64_t i = 0; i < W.iters; i++) {
    s = lcg(s);
    uint32_t k = (s >> 16) % SLOTS;
    if (slot[k]) {
      if (W.remote_pct && (lcg(s) >> 8) % 100 < W.remote_pct && ring_push(out, slot[k])) {
        /* counted by the thread that frees it */
      } else {
        free(slot[k]);
        ops++;
      }
      slot[k] = NULL;
    } else {
      s = lcg(s);
      size_t n = draw_size(&W.dist, s);
      void *p = malloc(n);
      if (!p) {
        fprintf(stderr, "bench: malloc(%zu) failed\n", n);
        exit(1);
      }
      touch(p, n);
      slot[k] = p;
      ops++;
    }
    if (W.remote_pct && (i & 63) == 0) ops += ring_drain(in);
  }
  if (W.kind == W_REMOTE) {
    /* Keep taking remote frees until every producer has finished. */
    atomic_fetch_add(&threads_done, 1);
    while (atomic_load(&threads_done) < W.threads) ops += ring_drain(in);
    ops += ring_drain(in);
  }
  for (int k = 0; k < SLOTS; k++)
    if (slot[k]) free(slot[k]);
  return ops;
}

/* Each slot holds a buffer that grows by half until it passes the band's top, then is
 * freed: malloc, realloc and free each count as one op. */
static uint64_t run_realloc(int tid) {
  void *slot[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  uint32_t s = SEED + (uint32_t)tid * 0x9E3779B9u;
  uint64_t ops = 0;
  uint32_t top = W.dist.bucket[0].hi;
  for (uint64_t i = 0; i < W.iters; i++) {
    s = lcg(s);
    uint32_t k = (s >> 16) % SLOTS;
    if (!slot[k]) {
      size[k] = 16 + (lcg(s) >> 8) % 48;
      slot[k] = malloc(size[k]);
    } else if (size[k] < top) {
      size[k] = size[k] + size[k] / 2;
      slot[k] = realloc(slot[k], size[k]);
    } else {
      free(slot[k]);
      slot[k] = NULL;
      ops++;
      continue;
    }
    if (!slot[k]) {
      fprintf(stderr, "bench: allocation of %zu bytes failed\n", size[k]);
      exit(1);
    }
    ((volatile unsigned char *)slot[k])[size[k] - 1] = 1;
    ops++;
  }
  for (int k = 0; k < SLOTS; k++) free(slot[k]);
  return ops;
}

/* ---- large blocks ------------------------------------------------------------------ */

/* The large workloads do milliseconds of work per op (a 15 MiB memset), so they run
 * --iters / LARGE_ITERS_DIVISOR iterations per thread: 500 at the default 20,000,000. */
#define LARGE_ITERS_DIVISOR 40000u
#define MIB ((size_t)1 << 20)
#define PAGE 4096u
#define CHURN_LIVE 4 /* buffers each thread holds in large-churn */
#define LREALLOC_SLOTS 8

/* Writes one byte in every page of [p, p + n): what a program filling the buffer makes
 * the kernel do at the least (a page fault per page it has not backed yet). */
static void touch_pages(void *p, size_t n) {
  volatile unsigned char *b = p;
  for (size_t i = 0; i < n; i += PAGE) b[i] = 1;
  if (n) b[n - 1] = 1;
}

/* Returns 1 if the byte 8 past the start of every page of the first `n` bytes reads
 * zero. Called after touch_pages: reading a page before its first write would cost a
 * second fault (zero page, then copy on write) that a program filling the buffer does
 * not pay. */
static int zero_sampled(const unsigned char *p, size_t n) {
  for (size_t i = 8; i < n; i += PAGE)
    if (p[i]) return 0;
  return 1;
}

/* Each thread keeps its last CHURN_LIVE zero-filled buffers of 5-25 MiB: an iteration
 * frees the oldest and gets a new one, by calloc or by malloc + memset (a fair coin of
 * the LCG), then writes every page of it. A calloc'ed buffer that does not read as zero
 * fails the run. malloc, calloc and free each count as one op. */
static uint64_t run_large_churn(int tid) {
  void *live[CHURN_LIVE] = {0};
  uint32_t s = SEED + (uint32_t)tid * 0x9E3779B9u;
  uint64_t ops = 0, iters = W.iters / LARGE_ITERS_DIVISOR ? W.iters / LARGE_ITERS_DIVISOR : 1;
  for (uint64_t i = 0; i < iters; i++) {
    unsigned k = (unsigned)(i % CHURN_LIVE);
    if (live[k]) {
      free(live[k]);
      ops++;
    }
    s = lcg(s);
    size_t n = 5 * MIB + (size_t)(s >> 8) % (20 * MIB + 1);
    s = lcg(s);
    void *p;
    if ((s >> 20) & 1) {
      p = calloc(1, n);
      if (p) {
        touch_pages(p, n);
        if (!zero_sampled(p, n)) {
          fprintf(stderr, "bench: calloc(1, %zu) returned memory that is not zero\n", n);
          exit(1);
        }
      }
    } else {
      p = malloc(n);
      if (p) {
        memset(p, 0, n);
        touch_pages(p, n);
      }
    }
    if (!p) {
      fprintf(stderr, "bench: allocation of %zu bytes failed\n", n);
      exit(1);
    }
    live[k] = p;
    ops++;
  }
  for (int k = 0; k < CHURN_LIVE; k++) free(live[k]);
  return ops;
}

/* Each thread has LREALLOC_SLOTS buffers; an iteration picks one (LCG). An empty slot
 * gets malloc(256 KiB-2 MiB); an occupied one is realloc'ed: three times in four it
 * grows by 1.25-2x, and then every page of the new tail is written; otherwise it shrinks
 * to half (not below 256 KiB). A buffer that has passed 24 MiB is freed instead. The
 * first byte, written at the malloc, is checked after every realloc. malloc, realloc and
 * free each count as one op. */
static uint64_t run_large_realloc(int tid) {
  unsigned char *slot[LREALLOC_SLOTS] = {0};
  size_t size[LREALLOC_SLOTS] = {0};
  uint32_t s = SEED + (uint32_t)tid * 0x9E3779B9u;
  uint64_t ops = 0, iters = W.iters / LARGE_ITERS_DIVISOR ? W.iters / LARGE_ITERS_DIVISOR : 1;
  for (uint64_t i = 0; i < iters; i++) {
    s = lcg(s);
    unsigned k = (s >> 16) % LREALLOC_SLOTS;
    s = lcg(s);
    size_t old = size[k], n;
    if (!slot[k]) {
      n = 256 * 1024 + (size_t)(s >> 8) % (2 * MIB - 256 * 1024 + 1);
      slot[k] = malloc(n);
      old = 0;
    } else if (old > 24 * MIB) {
      free(slot[k]);
      slot[k] = NULL;
      size[k] = 0;
      ops++;
      continue;
    } else {
      n = (s >> 8) % 4 == 0 ? old / 2 : old + old / 4 + (size_t)(s >> 10) % (old * 3 / 4 + 1);
      if (n < 256 * 1024) n = 256 * 1024;
      unsigned char *q = realloc(slot[k], n);
      if (q && q[0] != (unsigned char)(k + 1)) {
        fprintf(stderr, "bench: realloc lost the contents of a block\n");
        exit(1);
      }
      if (q) slot[k] = q;
      else slot[k] = NULL;
    }
    if (!slot[k]) {
      fprintf(stderr, "bench: allocation of %zu bytes failed\n", n);
      exit(1);
    }
    size[k] = n;
    if (n > old) {
      touch_pages(slot[k] + old, n - old);
      slot[k][0] = (unsigned char)(k + 1);
    }
    ops++;
  }
  for (int k = 0; k < LREALLOC_SLOTS; k++) free(slot[k]);
  return ops;
}

typedef struct {
  int tid;
  uint64_t ops;
} arg_t;

static void *thread_main(void *p) {
  arg_t *a = p;
  pthread_barrier_wait(&start_barrier);
  switch (W.kind) {
    case W_REALLOC: a->ops = run_realloc(a->tid); break;
    case W_LARGE_CHURN: a->ops = run_large_churn(a->tid); break;
    case W_LARGE_REALLOC: a->ops = run_large_realloc(a->tid); break;
    default: a->ops = run_slots(a->tid); break;
  }
  return NULL;
}

/* Peak resident set of this process in KiB, or 0 when /proc is unavailable. */
static unsigned long long peak_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kib = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %llu kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- command line ---------------------------------------------------------------------- */

static const char *const WORKLOADS[] = {
    "small-uniform",  "small-app",     "medium-uniform",     "medium-app",
    "mixed-uniform",  "mixed-app",     "small-uniform-2t",   "small-app-2t",
    "medium-uniform-2t", "medium-app-2t", "mixed-uniform-2t", "mixed-app-2t",
    "remote-0",       "remote-50",     "remote-90",          "realloc",
    "large-churn",    "large-realloc",
};
#define NWORKLOADS (sizeof WORKLOADS / sizeof *WORKLOADS)

static void usage(FILE *f) {
  fprintf(f, "usage: bench [--iters N] WORKLOAD\n  workloads:");
  for (size_t i = 0; i < NWORKLOADS; i++) fprintf(f, " %s", WORKLOADS[i]);
  fprintf(f, "\n  --iters N   iterations per thread (default 20000000; the large-* workloads run"
             " N / %u)\n", LARGE_ITERS_DIVISOR);
}

static int parse_workload(const char *name, workload_t *w) {
  size_t i;
  for (i = 0; i < NWORKLOADS; i++)
    if (strcmp(name, WORKLOADS[i]) == 0) break;
  if (i == NWORKLOADS) return -1;
  range_t small = {16, 2048}, medium = {4096, 32768}, mixed = {16, 32768};
  w->threads = 1;
  w->remote_pct = 0;
  w->kind = W_SLOTS;
  if (strncmp(name, "remote-", 7) == 0) {
    /* Small uniform sizes on two threads, a given share of frees handed over. */
    w->kind = W_REMOTE;
    w->threads = 2;
    w->remote_pct = (uint32_t)atoi(name + 7);
    w->dist = make_dist(small, 0);
    return 0;
  }
  if (strncmp(name, "large-", 6) == 0) {
    /* Sizes are the workload's own; two threads, no hand-over. */
    w->kind = strcmp(name, "large-churn") == 0 ? W_LARGE_CHURN : W_LARGE_REALLOC;
    w->threads = 2;
    w->dist = make_dist(small, 0);
    return 0;
  }
  if (strcmp(name, "realloc") == 0) {
    w->kind = W_REALLOC;
    w->dist = make_dist(mixed, 0);
    return 0;
  }
  range_t band = strncmp(name, "small", 5) == 0 ? small : strncmp(name, "medium", 6) == 0 ? medium : mixed;
  w->dist = make_dist(band, strstr(name, "-app") != NULL);
  if (strstr(name, "-2t")) w->threads = 2;
  return 0;
}

int main(int argc, char **argv) {
  uint64_t iters = 20000000;
  const char *name = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--iters") == 0) {
      if (i + 1 == argc) {
        fprintf(stderr, "bench: --iters needs a value\n");
        return 2;
      }
      char *end;
      errno = 0;
      unsigned long long v = strtoull(argv[++i], &end, 10);
      if (errno || *end || v == 0) {
        fprintf(stderr, "bench: --iters needs a positive integer, got '%s'\n", argv[i]);
        return 2;
      }
      iters = v;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "bench: unknown flag '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    } else if (name) {
      fprintf(stderr, "bench: one workload at a time (got '%s' and '%s')\n", name, argv[i]);
      return 2;
    } else {
      name = argv[i];
    }
  }
  if (!name) {
    usage(stderr);
    return 2;
  }
  if (parse_workload(name, &W) != 0) {
    fprintf(stderr, "bench: unknown workload '%s'\n", name);
    usage(stderr);
    return 2;
  }
  W.iters = iters;

  /* Which library serves malloc here: the runner checks the preload took effect. */
  Dl_info info;
  void *m = dlsym(RTLD_DEFAULT, "malloc");
  const char *lib = m && dladdr(m, &info) && info.dli_fname ? info.dli_fname : "?";

  pthread_t th[MAX_THREADS];
  arg_t args[MAX_THREADS];
  pthread_barrier_init(&start_barrier, NULL, (unsigned)W.threads + 1);
  for (int t = 0; t < W.threads; t++) {
    args[t] = (arg_t){t, 0};
    if (pthread_create(&th[t], NULL, thread_main, &args[t]) != 0) {
      fprintf(stderr, "bench: pthread_create failed\n");
      return 1;
    }
  }
  pthread_barrier_wait(&start_barrier);
  double t0 = now();
  uint64_t ops = 0;
  for (int t = 0; t < W.threads; t++) {
    pthread_join(th[t], NULL);
    ops += args[t].ops;
  }
  double secs = now() - t0;
  printf("ops=%llu seconds=%.6f mops=%.6f hwm_kib=%llu malloc=%s\n", (unsigned long long)ops,
         secs, (double)ops / secs / 1e6, peak_rss_kib(), lib);
  return 0;
}
