/* The program of the preload shim's start-up test (startup_test.sh): run under
 * LD_PRELOAD="libhz_preload.so libdlsym_hook.so" with HZT_DLSYM set, it checks what the
 * shim does after a start-up the hook (dlsym_hook.c) made unusual.
 *
 *   startup none   no next allocator: a foreign pointer (glibc's own __libc_malloc) is
 *                  leaked by free, refused by realloc with ENOMEM, and has usable size
 *                  0; hz itself serves as usual.
 *   startup boot   under `ulimit -v` (hz unusable, every block is the next
 *                  allocator's): the bootstrap blocks the hook kept are intact,
 *                  malloc_usable_size reports their size, realloc moves one out with
 *                  its bytes, and free leaves the other alone.
 *
 * Prints "startup <mode>: ok" and exits 0, or names the first broken promise and
 * exits 1. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/preload/dlsym_hook.h"

extern void *__libc_malloc(size_t size);

static int hzt__failures;

#define HZT_EXPECT(cond, ...)                        \
  do {                                               \
    if (!(cond)) {                                   \
      fprintf(stderr, "startup: FAIL: " __VA_ARGS__); \
      fputc('\n', stderr);                           \
      hzt__failures++;                               \
    }                                                \
  } while (0)

static int hzt__all(const unsigned char *p, unsigned char v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return 0;
  return 1;
}

static void hzt__none(const hzt_hook_report_t *r) {
  HZT_EXPECT(r->refused > 0, "the shim never asked dlsym for its next allocator");

  unsigned char *g = __libc_malloc(64);
  HZT_EXPECT(g != NULL, "__libc_malloc(64) returned NULL");
  if (!g) return;
  memset(g, 0x5a, 64);
  HZT_EXPECT(malloc_usable_size(g) == 0,
             "malloc_usable_size of a foreign pointer is %zu with no next allocator, not 0",
             malloc_usable_size(g));
  errno = 0;
  void *moved = realloc(g, 128);
  int err = errno;
  HZT_EXPECT(moved == NULL && err == ENOMEM,
             "realloc of a foreign pointer with no next allocator: %p, errno %d (want NULL, ENOMEM)",
             moved, err);
  free(g); /* nobody to give it to: leaked, not passed to hz and not a crash */
  HZT_EXPECT(hzt__all(g, 0x5a, 64), "free of a foreign pointer touched it");

  /* hz's own blocks are unaffected. */
  unsigned char *p = malloc(100);
  HZT_EXPECT(p != NULL && malloc_usable_size(p) >= 100, "hz's malloc(100) failed");
  if (p) memset(p, 1, 100);
  p = realloc(p, 5000);
  HZT_EXPECT(p != NULL && p[99] == 1, "hz's realloc lost a block's bytes");
  free(p);
}

static void hzt__boot(const hzt_hook_report_t *r) {
  HZT_EXPECT(r->lookups > 0, "the shim never asked dlsym for its next allocator");
  unsigned char *b = r->boot_block;
  HZT_EXPECT(b != NULL, "the hook kept no bootstrap block");
  if (!b) return;
  size_t n = r->boot_size;
  HZT_EXPECT(hzt__all(b, 0xcd, n), "the bootstrap block changed after start-up");
  HZT_EXPECT(malloc_usable_size(b) == n, "malloc_usable_size of the bootstrap block is %zu, not %zu",
             malloc_usable_size(b), n);
  unsigned char *q = realloc(b, 1000);
  HZT_EXPECT(q != NULL && q != b, "realloc of the bootstrap block did not move it");
  if (q) {
    HZT_EXPECT(hzt__all(q, 0xcd, n), "realloc of the bootstrap block lost its bytes");
    HZT_EXPECT(malloc_usable_size(q) >= 1000, "the moved block has %zu usable bytes",
               malloc_usable_size(q));
    memset(q, 0, 1000);
    free(q);
  }

  /* Freeing a bootstrap block leaves it alone: it is never reused, and it must never
   * reach the next allocator's free, which would abort on a pointer it never made. */
  unsigned char *s = r->boot_spare;
  HZT_EXPECT(s != NULL && hzt__all(s, 0xee, 24), "the spare bootstrap block changed after start-up");
  free(s);

  /* With hz unusable, everything else is the next allocator's, through the fallback. */
  unsigned char *z = calloc(100, 10);
  HZT_EXPECT(z != NULL && hzt__all(z, 0, 1000), "calloc after start-up failed or is not zero");
  free(z);
  void *a = NULL;
  HZT_EXPECT(posix_memalign(&a, 4096, 100) == 0 && ((uintptr_t)a & 4095) == 0,
             "posix_memalign(4096) after start-up failed or is not aligned");
  free(a);
}

int main(int argc, char **argv) {
  if (argc != 2 || (strcmp(argv[1], "none") != 0 && strcmp(argv[1], "boot") != 0)) {
    fprintf(stderr, "usage: startup none|boot (under LD_PRELOAD=\"libhz_preload.so libdlsym_hook.so\")\n");
    return 2;
  }
  hzt_hook_report_fn *report = (hzt_hook_report_fn *)dlsym(RTLD_DEFAULT, "hzt_hook_report");
  if (!report) {
    fprintf(stderr, "startup: libdlsym_hook.so is not preloaded\n");
    return 2;
  }
  if (strcmp(argv[1], "none") == 0) hzt__none(report());
  else hzt__boot(report());
  if (hzt__failures) return 1;
  printf("startup %s: ok\n", argv[1]);
  return 0;
}
