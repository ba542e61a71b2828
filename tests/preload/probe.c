/* Exercises the whole malloc family and the pointers hz does not own, the same way with
 * or without the preload, so its output can be compared byte for byte. argv[1] names the
 * library that must define malloc in this process ("libhz_preload" or "libc.so"). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* glibc's own allocator, reachable under any preload: the source of foreign pointers. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t nmemb, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

#if defined(__x86_64__) && defined(__GLIBC__)
/* glibc keeps cfree only as a compatibility symbol; binding to that version, as a binary
 * built against an old glibc does, checks that the preload's cfree interposes it (were it
 * glibc's, an hz pointer would reach glibc's free). */
void cfree(void *ptr);
__asm__(".symver cfree,cfree@GLIBC_2.2.5");
#define HAVE_CFREE 1
#endif

static int failures;
#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) {                                                   \
      printf("FAILED line %d: %s\n", __LINE__, #cond);               \
      failures++;                                                    \
    }                                                                \
  } while (0)

static int filled(const unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return 0;
  return 1;
}

static void *free_elsewhere(void *p) {
  free(p);
  return NULL;
}

/* Blocks allocated here are freed by the main thread: remote frees. */
#define HANDOFF 20000
static void *handoff[HANDOFF];
static void *producer(void *arg) {
  (void)arg;
  for (int i = 0; i < HANDOFF; i++) {
    size_t n = 16 + (size_t)(i * 37) % 3000;
    handoff[i] = malloc(n);
    memset(handoff[i], 0x5c, n);
  }
  return NULL;
}

/* ---- fork in a multithreaded parent -------------------------------------------------
 * Two churners allocate, free and swap blocks (remote frees) without pause while the main
 * thread forks. Each churner first publishes a batch of blocks that stays live; a child
 * frees its copies of them (their owner does not exist in the child), allocates across
 * every size range, and runs a thread of its own, all with contents checked. */
#define CHURNERS 2
#define BATCH 2000
static void *batch[CHURNERS][BATCH];
static _Atomic int batches_ready;
static _Atomic int churn_stop;
static _Atomic(void *) mailbox; /* swapped by both churners: whoever takes a block frees it */

static size_t churn_size(uint32_t r) {
  /* mostly small, some medium, a few large (> 64 KiB) */
  uint32_t k = (r >> 8) % 1000;
  return k < 850 ? 1 + (r >> 12) % 2048 : k < 998 ? 2049 + (r >> 12) % 60000 : 65537 + (r >> 12) % 400000;
}

static void *churner(void *arg) {
  int id = (int)(intptr_t)arg;
  for (int i = 0; i < BATCH; i++) {
    size_t n = 16 + (size_t)(i * 131 + id) % 5000;
    batch[id][i] = malloc(n);
    memset(batch[id][i], 0x40 + id, n);
  }
  atomic_fetch_add(&batches_ready, 1);
  enum { LIVE = 256 };
  void *live[LIVE] = {0};
  uint32_t s = 0x9e3779b9u * (uint32_t)(id + 1);
  for (uint32_t iter = 0; !atomic_load_explicit(&churn_stop, memory_order_relaxed); iter++) {
    /* on a small machine, leave the forking thread and its children some CPU */
    if ((iter & 1023) == 0) sched_yield();
    s = s * 1664525u + 1013904223u;
    uint32_t k = (s >> 16) % LIVE;
    if (live[k]) {
      if ((s & 0x700) == 0) live[k] = atomic_exchange(&mailbox, live[k]);
      free(live[k]);
      live[k] = NULL;
    } else {
      size_t n = churn_size(s * 1664525u + 1013904223u);
      live[k] = malloc(n);
      memset(live[k], 1, n < 64 ? n : 64);
    }
  }
  for (int k = 0; k < LIVE; k++) free(live[k]);
  return NULL;
}

#define CHILD_BLOCKS 1000
static void *free_evens(void *arg) {
  unsigned char **p = arg;
  for (int i = 0; i < CHILD_BLOCKS; i += 2) free(p[i]);
  return malloc(100); /* and leaves with an allocation of its own in its cache */
}

/* In the forked child: 0 when everything worked. */
static int child_work(void *glibc_block) {
  int bad = 0;
  for (int c = 0; c < CHURNERS; c++)
    for (int i = 0; i < BATCH; i++) {
      bad += !filled(batch[c][i], 16, (unsigned char)(0x40 + c));
      free(batch[c][i]);
    }
  free(glibc_block);
  enum { N = CHILD_BLOCKS };
  static unsigned char *p[N];
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < N; i++) {
      size_t n = churn_size((uint32_t)(i * 2654435761u + (unsigned)round));
      p[i] = malloc(n);
      if (!p[i]) return 1;
      memset(p[i], (unsigned char)i, n < 256 ? n : 256);
    }
    for (int i = 0; i < N; i++) {
      size_t n = churn_size((uint32_t)(i * 2654435761u + (unsigned)round));
      bad += !filled(p[i], n < 256 ? n : 256, (unsigned char)i);
      /* half freed here, half by a thread of the child */
      if (i % 2) {
        free(p[i]);
        p[i] = NULL;
      }
    }
    pthread_t t;
    void *left;
    if (pthread_create(&t, NULL, free_evens, p) != 0) return 1;
    pthread_join(t, &left);
    free(left);
  }
  return bad != 0;
}

static void fork_while_threads_allocate(void) {
  pthread_t t[CHURNERS];
  for (int c = 0; c < CHURNERS; c++) pthread_create(&t[c], NULL, churner, (void *)(intptr_t)c);
  while (atomic_load(&batches_ready) < CHURNERS) sched_yield();
  void *glibc_block = __libc_malloc(777);
  for (int f = 0; f < 5; f++) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(child_work(glibc_block));
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  atomic_store(&churn_stop, 1);
  for (int c = 0; c < CHURNERS; c++) pthread_join(t[c], NULL);
  free(atomic_exchange(&mailbox, NULL));
  for (int c = 0; c < CHURNERS; c++)
    for (int i = 0; i < BATCH; i++) free(batch[c][i]);
  free(glibc_block);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s libhz_preload|libc.so\n", argv[0]);
    return 2;
  }
  /* Line-buffered even into a file, so the failures found before a crash are shown. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  Dl_info info;
  void *m = dlsym(RTLD_DEFAULT, "malloc");
  if (!m || !dladdr(m, &info) || !strstr(info.dli_fname, argv[1])) {
    fprintf(stderr, "malloc is defined by %s, expected %s\n", m ? info.dli_fname : "?", argv[1]);
    return 1;
  }

  /* Foreign pointers (glibc's) through free, realloc and malloc_usable_size. */
  unsigned char *g = __libc_malloc(100);
  memset(g, 'x', 100);
  CHECK(malloc_usable_size(g) >= 100);
  g = realloc(g, 5000);
  CHECK(g && filled(g, 100, 'x'));
  free(g);
  free(__libc_memalign(64, 300));
  unsigned char *gz = __libc_calloc(10, 30);
  CHECK(filled(gz, 300, 0));
  gz = reallocarray(gz, 1000, 1000); /* a glibc block growing to mmap size stays glibc's */
  CHECK(gz && filled(gz, 300, 0));
  gz = realloc(gz, 64);
  CHECK(gz && filled(gz, 64, 0));
  free(gz);
  gz = __libc_realloc(NULL, 5000);
  pthread_t ft;
  pthread_create(&ft, NULL, free_elsewhere, gz); /* a foreign free from another thread */
  pthread_join(ft, NULL);
  free(NULL);
  CHECK(malloc_usable_size(NULL) == 0);
#ifdef HAVE_CFREE
  cfree(malloc(10));
  cfree(__libc_malloc(10));
#endif

  /* Usable sizes are real: fill every byte of many live blocks, then check them all. */
  enum { N = 1000 };
  static unsigned char *blocks[N];
  static size_t usable[N];
  for (int i = 0; i < N; i++) {
    size_t n = (size_t)(i * 7919) % 140000;
    blocks[i] = malloc(n);
    CHECK(blocks[i] != NULL);
    usable[i] = malloc_usable_size(blocks[i]);
    CHECK(usable[i] >= n);
    memset(blocks[i], (unsigned char)i, usable[i]);
  }
  for (int i = 0; i < N; i++) CHECK(filled(blocks[i], usable[i], (unsigned char)i));
  for (int i = 0; i < N; i++) free(blocks[i]);

  /* calloc zeroes recycled memory; overflow is ENOMEM. */
  for (int i = 0; i < 100; i++) {
    unsigned char *p = malloc(1000);
    memset(p, 0xff, 1000);
    free(p);
    p = calloc(10, 100);
    CHECK(p && filled(p, 1000, 0));
    free(p);
  }
  /* Called through volatile pointers: LLVM assumes the allocation functions leave errno
   * alone and may elide an allocation whose result is only compared. */
  void *(*volatile calloc_fn)(size_t, size_t) = calloc;
  void *(*volatile reallocarray_fn)(void *, size_t, size_t) = reallocarray;
  errno = 0;
  void *none = calloc_fn(SIZE_MAX / 2, 3);
  CHECK(none == NULL && errno == ENOMEM);
  errno = 0;
  none = reallocarray_fn(NULL, SIZE_MAX / 2, 3);
  CHECK(none == NULL && errno == ENOMEM);

  /* realloc keeps contents through growth across every size range, and shrinks. */
  unsigned char *r = NULL;
  size_t have = 0;
  for (size_t n = 1; n < 3000000; n = n * 3 / 2 + 1) {
    r = realloc(r, n);
    CHECK(r != NULL && filled(r, have, 0x3a));
    memset(r, 0x3a, n);
    have = n;
  }
  r = reallocarray(r, 10, 10);
  CHECK(r && filled(r, 100, 0x3a));
  CHECK(realloc(r, 0) == NULL);

  /* Alignment functions. */
  long page = sysconf(_SC_PAGESIZE);
  for (size_t a = 8; a <= (1u << 22); a <<= 1) {
    void *p = NULL;
    CHECK(posix_memalign(&p, a, 100) == 0 && ((uintptr_t)p & (a - 1)) == 0);
    free(p);
    if (a >= 16) {
      p = aligned_alloc(a, a * 2);
      CHECK(p && ((uintptr_t)p & (a - 1)) == 0);
      free(p);
    }
    p = memalign(a, 3 * a + 5);
    CHECK(p && ((uintptr_t)p & (a - 1)) == 0);
    memset(p, 1, 3 * a + 5);
    free(p);
  }
  CHECK(posix_memalign(&(void *){NULL}, 24, 100) == EINVAL);
  void *v = valloc(10);
  CHECK(v && ((uintptr_t)v & (uintptr_t)(page - 1)) == 0);
  free(v);
  v = pvalloc(1);
  CHECK(v && ((uintptr_t)v & (uintptr_t)(page - 1)) == 0 && malloc_usable_size(v) >= (size_t)page);
  memset(v, 7, (size_t)page);
  free(v);

  /* Frees of another thread's blocks. */
  pthread_t t;
  pthread_create(&t, NULL, producer, NULL);
  pthread_join(t, NULL);
  for (int i = 0; i < HANDOFF; i++) {
    CHECK(filled(handoff[i], 16, 0x5c));
    free(handoff[i]);
  }

  fork_while_threads_allocate();

  /* fork while another thread allocates: the child allocates and frees freely. */
  pthread_create(&t, NULL, producer, NULL);
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < 10000; i++) free(malloc((size_t)i));
    _exit(0);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  pthread_join(t, NULL);
  for (int i = 0; i < HANDOFF; i++) free(handoff[i]);

  printf("probe: %s\n", failures ? "FAILED" : "ok");
  return failures != 0;
}
