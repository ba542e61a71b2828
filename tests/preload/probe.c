/* Exercises the whole malloc family and the pointers hz does not own, the same way with
 * or without the preload, so its output can be compared byte for byte. argv[1] names the
 * library that must define malloc in this process ("libhz_preload" or "libc.so"). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* glibc's own allocator, reachable under any preload: the source of foreign pointers. */
extern void *__libc_malloc(size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

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

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s libhz_preload|libc.so\n", argv[0]);
    return 2;
  }
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
  free(NULL);
  CHECK(malloc_usable_size(NULL) == 0);
  void (*cfree_fn)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
  if (cfree_fn) cfree_fn(malloc(10));

  /* Usable sizes are real: fill every byte of many live blocks, then check them all. */
  enum { N = 3000 };
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
