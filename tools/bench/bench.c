/* One allocator workload, timed: the driver that tools/bench/allocators.py runs under
 * each allocator (LD_PRELOAD) in turn. It calls only the C library's malloc family, so
 * the same binary measures every allocator.
 *
 * Workloads follow hz3's comparison bench: a working set of 400 slots; each iteration an
 * LCG (s = s * 1664525 + 1013904223, seed 0x12345678) picks a slot, which is freed if
 * occupied and otherwise gets a new block; each malloc and each free is one op. The
 * slot is (s >> 16) % 400 (the high bits: the low bits of this LCG have short periods);
 * the size of a new block comes from the high bits of one more LCG step. The hand-off
 * workloads (producer-consumer, server, false-sharing, bursty) have shapes of their own,
 * described above their run_ functions, with the same LCG and seeds.
 *
 * Prints one line: "ops=<n> seconds=<s> mops=<millions per second> hwm_kib=<peak RSS>
 * malloc=<library>". The peak RSS is VmHWM, which exec resets, unlike the ru_maxrss a
 * parent sees, which still counts the parent's image the child was forked from.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 400
#define SEED 0x12345678u
#define MAX_THREADS 4 /* server: an acceptor and three workers */

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

typedef enum {
  W_SLOTS,
  W_REMOTE,
  W_REALLOC,
  W_LARGE_CHURN,
  W_LARGE_REALLOC,
  W_PRODUCER_CONSUMER,
  W_SERVER,
  W_FALSE_SHARING,
  W_BURSTY,
} kind_t;

typedef struct {
  kind_t kind;
  dist_t dist;
  int threads;
  uint32_t remote_pct;
  uint64_t iters; /* per thread */
} workload_t;

/* Single-producer single-consumer ring: thread t hands blocks to thread t + 1 (in server,
 * rings[w] carries the acceptor's requests to worker w). */
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

/* ---- hand-off workloads ------------------------------------------------------------ */

/* In these the thread that allocates a block is often not the one that frees it, as in
 * programs built around queues. A block handed over carries a stamp, checked by the
 * thread that frees it. */
#define STAMP_MAX 32768u /* the largest block any of them stamps */
#define SERVER_WORKERS 3
#define SERVER_REPLY_MAX 4 /* blocks in one response */
/* A request costs about 7 ops (its malloc and free, and 1-4 response blocks), so server
 * takes --iters / SERVER_ITERS_DIVISOR requests: about 2.3 ops per iteration, near the
 * 2 of the other multithreaded workloads. */
#define SERVER_ITERS_DIVISOR 3u
#define BURST_MIN 100
#define BURST_MAX 5000
#define BURST_HANDOFF_PCT 25
#define FS_WRITES 1000u /* byte stores to each object in false-sharing */
#define FS_LAG 16       /* objects each false-sharing thread hands over ahead of need */

/* false-sharing does about a microsecond of writes per iteration, so it runs --iters /
 * FS_ITERS_DIVISOR iterations per thread: 1,000,000 at the default 20,000,000, about a
 * second under glibc on the 2-core machine of docs/BENCHMARKS.md. */
#define FS_ITERS_DIVISOR 20u

/* The run ends at a failed malloc: nothing here is meant to run out of memory. */
static unsigned char *xmalloc(size_t n) {
  unsigned char *p = malloc(n);
  if (!p) {
    fprintf(stderr, "bench: malloc(%zu) failed\n", n);
    exit(1);
  }
  return p;
}

/* A size from d. draw_size reads two LCG steps; both are used up here, so the next draw
 * does not reuse the second. */
static uint32_t next_size(const dist_t *d, uint32_t *s) {
  *s = lcg(*s);
  size_t n = draw_size(d, *s);
  *s = lcg(*s);
  return (uint32_t)n;
}

/* Marks a block of n >= 8 bytes for the thread that will free it: n in its first four
 * bytes, and a byte that depends on n in its last, so a block shorter than asked for, or
 * written over by another thread, is caught when the stamp is checked. */
static void stamp(unsigned char *p, uint32_t n) {
  memcpy(p, &n, sizeof n);
  p[n - 1] = (unsigned char)(n ^ 0xA5u);
}

/* The size stamp() recorded in p; a block whose stamp does not hold fails the run. */
static uint32_t check_stamp(const unsigned char *p) {
  uint32_t n;
  memcpy(&n, p, sizeof n);
  if (n < 8 || n > STAMP_MAX || p[n - 1] != (unsigned char)(n ^ 0xA5u)) {
    fprintf(stderr, "bench: a block does not hold what was written into it at its malloc\n");
    exit(1);
  }
  return n;
}

/* The consuming end of a ring. It reads the producer's tail only when the blocks it saw
 * last time are used up, and gives slots back every READER_GIVE_BACK blocks and when it
 * runs out: the two shared cache lines move once per batch rather than once per block,
 * so the hand-off costs little next to the allocator work it is there to cause, and a
 * producer waiting on a full ring does not wait for a whole batch. */
#define READER_GIVE_BACK 64
typedef struct {
  ring_t *ring;
  uint64_t head, tail;
} reader_t;

/* The oldest block waiting, or NULL if there is none. */
static void *reader_pop(reader_t *rd) {
  if (rd->head == rd->tail) {
    rd->tail = atomic_load_explicit(&rd->ring->tail, memory_order_acquire);
    if (rd->head == rd->tail) return NULL;
  }
  void *p = rd->ring->slot[rd->head % RING];
  rd->head++;
  if (rd->head % READER_GIVE_BACK == 0 || rd->head == rd->tail)
    atomic_store_explicit(&rd->ring->head, rd->head, memory_order_release);
  return p;
}

/* Frees every block waiting for the reader, checking each one's stamp; returns how many. */
static uint64_t free_waiting(reader_t *in) {
  uint64_t n = 0;
  for (unsigned char *p; (p = reader_pop(in)) != NULL; n++) {
    check_stamp(p);
    free(p);
  }
  return n;
}

/* Waiting on the other end of a ring: a few more looks, then the CPU to whoever wants it,
 * since a workload may have more threads than the machine has cores (server has 4). */
static void backoff(unsigned *spins) {
  if (++*spins > 32) sched_yield();
}

/* Hands p to the consumer of `out`, waiting while the ring is full. If `in` is not NULL
 * it is the caller's own incoming ring, whose blocks it frees meanwhile, so that two
 * threads feeding each other cannot both wait on full rings; returns how many it freed.
 * The wait never frees p: every block handed over is freed by the consumer. */
static uint64_t push_wait(ring_t *out, void *p, reader_t *in) {
  uint64_t freed = 0;
  unsigned spins = 0;
  while (!ring_push(out, p)) {
    uint64_t n = in ? free_waiting(in) : 0;
    freed += n;
    if (!n) backoff(&spins);
  }
  return freed;
}

/* Two threads, one direction: thread 0 only allocates (small-uniform sizes, 16-2048 B),
 * stamps each block and hands it to thread 1 through the ring, waiting while the ring is
 * full; thread 1 only checks and frees, so every free is a remote one and the memory
 * must travel back to where the producer allocates. --iters blocks in all; each malloc
 * and each free is one op, counted by the thread that makes it. */
static uint64_t run_producer_consumer(int tid) {
  uint64_t ops = 0;
  if (tid == 0) {
    uint32_t s = SEED;
    for (uint64_t i = 0; i < W.iters; i++) {
      uint32_t n = next_size(&W.dist, &s);
      unsigned char *p = xmalloc(n);
      stamp(p, n);
      push_wait(&rings[1], p, NULL);
      ops++;
    }
    return ops;
  }
  reader_t in = {&rings[1], 0, 0};
  unsigned spins = 0;
  while (ops < W.iters) {
    uint64_t n = free_waiting(&in);
    if (n) spins = 0;
    else backoff(&spins);
    ops += n;
  }
  return ops;
}

/* Four threads, the acceptor/worker split of a server. Thread 0, the acceptor, allocates
 * a buffer per request ("app" sizes clipped to 64-4096 B), stamps it and hands it to the
 * workers, threads 1-3, in turn, each through its own ring, waiting while that ring is
 * full. A worker checks the request, builds a response of 1-4 blocks (the LCG; small-app
 * sizes, 16-2048 B) and stamps each, then frees the request and checks and frees the
 * response. The acceptor takes --iters / SERVER_ITERS_DIVISOR requests, so each worker
 * serves a third of those; each malloc and each free is one op, counted by the thread that
 * makes it. */
static uint64_t run_server(int tid) {
  uint32_t s = SEED + (uint32_t)tid * 0x9E3779B9u;
  uint64_t ops = 0;
  uint64_t requests = W.iters / SERVER_ITERS_DIVISOR ? W.iters / SERVER_ITERS_DIVISOR : 1;
  if (tid == 0) {
    for (uint64_t i = 0; i < requests; i++) {
      uint32_t n = next_size(&W.dist, &s);
      unsigned char *req = xmalloc(n);
      stamp(req, n);
      push_wait(&rings[1 + i % SERVER_WORKERS], req, NULL);
      ops++;
    }
    return ops;
  }
  dist_t reply = make_dist((range_t){16, 2048}, 1);
  reader_t in = {&rings[tid], 0, 0};
  /* Requests i with i % SERVER_WORKERS == tid - 1 come here. */
  uint64_t todo = requests / SERVER_WORKERS + ((uint64_t)(tid - 1) < requests % SERVER_WORKERS);
  unsigned spins = 0;
  while (todo) {
    unsigned char *req = reader_pop(&in);
    if (!req) {
      backoff(&spins);
      continue;
    }
    spins = 0;
    check_stamp(req);
    unsigned char *resp[SERVER_REPLY_MAX];
    s = lcg(s);
    unsigned nresp = 1 + (s >> 16) % SERVER_REPLY_MAX;
    for (unsigned k = 0; k < nresp; k++) {
      uint32_t n = next_size(&reply, &s);
      resp[k] = xmalloc(n);
      stamp(resp[k], n);
      ops++;
    }
    free(req);
    ops++;
    for (unsigned k = 0; k < nresp; k++) {
      check_stamp(resp[k]);
      free(resp[k]);
      ops++;
    }
    todo--;
  }
  return ops;
}

/* Writes the n bytes of p over and over, FS_WRITES byte stores in all (each one emitted:
 * volatile), as a thread updating a small object hard would, then checks that the last n
 * stores are what p holds. */
static void hammer(unsigned char *p, uint32_t n) {
  volatile unsigned char *b = p;
  uint32_t j = 0;
  for (uint32_t k = 0; k < FS_WRITES; k++) {
    b[j] = (unsigned char)k;
    if (++j == n) j = 0;
  }
  /* Store k went to byte k % n; the last n stores are k = FS_WRITES - n ... FS_WRITES - 1. */
  j = (FS_WRITES - n) % n;
  for (uint32_t k = FS_WRITES - n; k < FS_WRITES; k++) {
    if (b[j] != (unsigned char)k) {
      fprintf(stderr, "bench: an object changed under the thread writing it\n");
      exit(1);
    }
    if (++j == n) j = 0;
  }
}

/* Two threads, each --iters / FS_ITERS_DIVISOR iterations. An iteration takes one small
 * object (8-64 B uniform): on even iterations the thread's own malloc, on odd ones an
 * object the other thread allocated, stamped and handed over through the ring (each
 * thread hands the other one per odd iteration, FS_LAG ahead, so neither waits on the
 * other's every step). The thread writes the object FS_WRITES times over (hammer), then
 * frees it. The writes dominate the time: an allocator that puts objects two threads are
 * writing into one cache line makes the cores take turns owning the line, directly (two
 * threads' blocks side by side) or through the hand-over (a block freed by the thread
 * that did not allocate it, reused next to the other thread's). Each malloc and each free
 * is one op. */
static uint64_t run_false_sharing(int tid) {
  uint32_t s = SEED + (uint32_t)tid * 0x9E3779B9u;
  uint64_t ops = 0, iters = W.iters / FS_ITERS_DIVISOR ? W.iters / FS_ITERS_DIVISOR : 1;
  uint64_t give = iters / 2, given = 0; /* the other thread takes one per odd iteration */
  ring_t *out = &rings[(tid + 1) % 2];
  reader_t in = {&rings[tid], 0, 0};
  for (uint64_t i = 0; i < iters; i++) {
    /* For the other thread: FS_LAG objects before the first iteration, then one per odd
     * iteration, until it has the `give` it takes. */
    for (uint64_t m = i == 0 ? FS_LAG : (i & 1); m && given < give; m--, given++, ops++) {
      uint32_t n = next_size(&W.dist, &s);
      unsigned char *q = xmalloc(n);
      stamp(q, n);
      /* Never waits in practice: the ring holds at most about 4 * FS_LAG blocks. */
      push_wait(out, q, NULL);
    }
    unsigned char *p;
    uint32_t n;
    if (i & 1) {
      unsigned spins = 0;
      while (!(p = reader_pop(&in))) backoff(&spins);
      n = check_stamp(p);
    } else {
      n = next_size(&W.dist, &s);
      p = xmalloc(n);
      ops++;
    }
    hammer(p, n);
    free(p);
    ops++;
  }
  return ops;
}

/* Two threads, each running phases until it has spent --iters ops. A phase is a burst, a
 * release and a quiet spell. The burst allocates K blocks (K uniform over 100-5000 from
 * the LCG; "app" sizes, 16-32768 B) and stamps each. The release frees them in an order
 * shuffled by the LCG, handing each to the other thread with probability 25%
 * (BURST_HANDOFF_PCT) to free there. The quiet spell is K LCG steps and no allocator
 * call: the work between bursts, which also lets the two threads' phases drift apart.
 * Each thread frees what waits in its ring every 64 blocks of a burst or release and at
 * the end of each phase. The budget counts a phase's 2K mallocs and frees wherever they
 * are made; each malloc and each free is one op, counted by the thread that makes it. */
static uint64_t run_bursty(int tid) {
  unsigned char *burst[BURST_MAX];
  uint32_t s = SEED + (uint32_t)tid * 0x9E3779B9u;
  uint64_t ops = 0, spent = 0;
  ring_t *out = &rings[(tid + 1) % 2];
  reader_t in = {&rings[tid], 0, 0};
  while (spent < W.iters) {
    s = lcg(s);
    uint32_t k = BURST_MIN + (s >> 16) % (BURST_MAX - BURST_MIN + 1);
    if (2 * (uint64_t)k > W.iters - spent) k = (uint32_t)((W.iters - spent + 1) / 2);
    for (uint32_t i = 0; i < k; i++) {
      uint32_t n = next_size(&W.dist, &s);
      burst[i] = xmalloc(n);
      stamp(burst[i], n);
      ops++;
      if ((i & 63) == 63) ops += free_waiting(&in);
    }
    for (uint32_t i = k - 1; i > 0; i--) { /* Fisher-Yates */
      s = lcg(s);
      uint32_t j = (s >> 16) % (i + 1);
      unsigned char *t = burst[i];
      burst[i] = burst[j];
      burst[j] = t;
    }
    for (uint32_t i = 0; i < k; i++) {
      s = lcg(s);
      if ((s >> 16) % 100 < BURST_HANDOFF_PCT) {
        ops += push_wait(out, burst[i], &in);
      } else {
        check_stamp(burst[i]);
        free(burst[i]);
        ops++;
      }
      if ((i & 63) == 63) ops += free_waiting(&in);
    }
    spent += 2 * (uint64_t)k;
    for (uint32_t i = 0; i < k; i++) s = lcg(s);
    ops += free_waiting(&in);
  }
  /* Keep freeing what the other thread hands over until it has finished too. */
  atomic_fetch_add(&threads_done, 1);
  unsigned spins = 0;
  while (atomic_load(&threads_done) < W.threads) {
    uint64_t n = free_waiting(&in);
    ops += n;
    if (!n) backoff(&spins);
  }
  ops += free_waiting(&in);
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
    case W_PRODUCER_CONSUMER: a->ops = run_producer_consumer(a->tid); break;
    case W_SERVER: a->ops = run_server(a->tid); break;
    case W_FALSE_SHARING: a->ops = run_false_sharing(a->tid); break;
    case W_BURSTY: a->ops = run_bursty(a->tid); break;
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

/* Every workload: what it runs, on how many threads, and the sizes it draws (the band,
 * uniform or app-like); remote-N hands over N% of its frees. The large-* workloads draw
 * their own sizes; the server's band is its requests' (its workers use small-app). */
#define SMALL {16, 2048}
#define MEDIUM {4096, 32768}
#define MIXED {16, 32768}
static const struct {
  const char *name;
  kind_t kind;
  int threads;
  range_t band;
  int app;
  uint32_t remote_pct;
} WORKLOADS[] = {
    {"small-uniform", W_SLOTS, 1, SMALL, 0, 0},
    {"small-app", W_SLOTS, 1, SMALL, 1, 0},
    {"medium-uniform", W_SLOTS, 1, MEDIUM, 0, 0},
    {"medium-app", W_SLOTS, 1, MEDIUM, 1, 0},
    {"mixed-uniform", W_SLOTS, 1, MIXED, 0, 0},
    {"mixed-app", W_SLOTS, 1, MIXED, 1, 0},
    {"small-uniform-2t", W_SLOTS, 2, SMALL, 0, 0},
    {"small-app-2t", W_SLOTS, 2, SMALL, 1, 0},
    {"medium-uniform-2t", W_SLOTS, 2, MEDIUM, 0, 0},
    {"medium-app-2t", W_SLOTS, 2, MEDIUM, 1, 0},
    {"mixed-uniform-2t", W_SLOTS, 2, MIXED, 0, 0},
    {"mixed-app-2t", W_SLOTS, 2, MIXED, 1, 0},
    {"remote-0", W_REMOTE, 2, SMALL, 0, 0},
    {"remote-50", W_REMOTE, 2, SMALL, 0, 50},
    {"remote-90", W_REMOTE, 2, SMALL, 0, 90},
    {"realloc", W_REALLOC, 1, MIXED, 0, 0},
    {"large-churn", W_LARGE_CHURN, 2, SMALL, 0, 0},
    {"large-realloc", W_LARGE_REALLOC, 2, SMALL, 0, 0},
    {"producer-consumer", W_PRODUCER_CONSUMER, 2, SMALL, 0, 0},
    {"server", W_SERVER, 1 + SERVER_WORKERS, {64, 4096}, 1, 0},
    {"false-sharing", W_FALSE_SHARING, 2, {8, 64}, 0, 0},
    {"bursty", W_BURSTY, 2, MIXED, 1, 0},
};
#undef SMALL
#undef MEDIUM
#undef MIXED
#define NWORKLOADS (sizeof WORKLOADS / sizeof *WORKLOADS)

static void usage(FILE *f) {
  fprintf(f, "usage: bench [--iters N] WORKLOAD\n  workloads:");
  for (size_t i = 0; i < NWORKLOADS; i++) fprintf(f, " %s", WORKLOADS[i].name);
  fprintf(f, "\n  --iters N   iterations per thread (default 20000000); the large-* workloads run"
             " N / %u\n"
             "              and false-sharing N / %u; producer-consumer hands over N blocks,\n"
             "              server takes N / %u requests in all, bursty spends N ops per thread\n",
          LARGE_ITERS_DIVISOR, FS_ITERS_DIVISOR, SERVER_ITERS_DIVISOR);
}

static int parse_workload(const char *name, workload_t *w) {
  for (size_t i = 0; i < NWORKLOADS; i++) {
    if (strcmp(name, WORKLOADS[i].name) != 0) continue;
    w->kind = WORKLOADS[i].kind;
    w->threads = WORKLOADS[i].threads;
    w->remote_pct = WORKLOADS[i].remote_pct;
    w->dist = make_dist(WORKLOADS[i].band, WORKLOADS[i].app);
    return 0;
  }
  return -1;
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
