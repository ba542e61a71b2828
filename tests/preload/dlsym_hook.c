/* A dlsym for the preload shim's start-up test (startup_test.sh), preloaded after
 * libhz_preload.so so that the shim's own dlsym calls bind here.
 *
 * The shim resolves the next allocator with dlsym(RTLD_NEXT, ...) once, at its first
 * need. Two things happen only then, and only in a real preloaded process, so no fuzz
 * target reaches them:
 *   HZT_DLSYM=none   the process has no next allocator: every allocator name resolves
 *                    to NULL (a program with no C library, as far as the shim knows);
 *   HZT_DLSYM=boot   dlsym allocates while it resolves, and hz cannot serve it (the test
 *                    runs this under `ulimit -v`, so the arena is never reserved): those
 *                    allocations come from the shim's bootstrap buffer. The hook makes
 *                    them itself, at that moment, and checks what the buffer promises.
 *
 * A failed check prints "dlsym_hook: FAIL: ..." and exits 1. What the hook learns is
 * read by the program (startup.c) through hzt_hook_report(). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/preload/dlsym_hook.h"

static hzt_hook_report_t hzt__report;

hzt_hook_report_t *hzt_hook_report(void) { return &hzt__report; }

/* No stdio in here: it may allocate, and allocation is what is under test. */
static void hzt__fail(const char *what) {
  static const char pre[] = "dlsym_hook: FAIL: ";
  (void)!write(2, pre, sizeof pre - 1);
  (void)!write(2, what, strlen(what));
  (void)!write(2, "\n", 1);
  _exit(1);
}

#define HZT_EXPECT(cond, what) \
  do {                         \
    if (!(cond)) hzt__fail(what); \
  } while (0)

static int hzt__all(const unsigned char *p, unsigned char v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return 0;
  return 1;
}

/* The glibc dlsym, by version: ours hides the unversioned name. */
static void *hzt__real_dlsym(void *handle, const char *name) {
  static void *(*real)(void *, const char *);
  if (!real) {
    real = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!real) real = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    if (!real) hzt__fail("no glibc dlsym to forward to");
  }
  return real(handle, name);
}

static int hzt__allocator_name(const char *name) {
  static const char *const names[] = {"malloc", "free", "realloc", "memalign",
                                      "malloc_usable_size"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(name, names[i]) == 0) return 1;
  return 0;
}

/* Runs inside the shim's resolution of the next allocator, with hz unusable: every
 * allocation here must come from the bootstrap buffer. */
static void hzt__exercise_boot(void) {
  /* Exactly the size asked for: neither hz (size classes) nor glibc (chunk rounding)
   * would report 100, so this also proves the block is the buffer's. */
  unsigned char *a = malloc(100);
  HZT_EXPECT(a != NULL, "malloc(100) while resolving returned NULL");
  HZT_EXPECT(((uintptr_t)a & 15) == 0, "a bootstrap block is not 16-byte aligned");
  HZT_EXPECT(malloc_usable_size(a) == 100, "malloc_usable_size of a bootstrap block is not its size");
  HZT_EXPECT(hzt__all(a, 0, 100), "a bootstrap block is not zero");
  memset(a, 0xab, 100);

  unsigned char *b = realloc(a, 300);
  HZT_EXPECT(b != NULL && b != a, "realloc of a bootstrap block did not move it");
  HZT_EXPECT(hzt__all(b, 0xab, 100), "realloc of a bootstrap block lost its bytes");
  HZT_EXPECT(malloc_usable_size(b) == 300, "a grown bootstrap block has the wrong size");
  memset(b, 0xcd, 300);

  unsigned char *c = realloc(malloc(40), 0);
  HZT_EXPECT(c == NULL, "realloc(bootstrap block, 0) did not return NULL");

  /* A shrinking realloc moves the block and copies what the new one holds, no more:
   * the rest would run on into the buffer past it, where the next block lies, which
   * the buffer promises is zero (the calloc below). */
  unsigned char *d = malloc(200);
  HZT_EXPECT(d != NULL, "malloc(200) while resolving returned NULL");
  memset(d, 0x77, 200);
  unsigned char *e = realloc(d, 40);
  HZT_EXPECT(e != NULL && e != d, "realloc of a bootstrap block to fewer bytes did not move it");
  HZT_EXPECT(hzt__all(e, 0x77, 40), "a shrunk bootstrap block lost its bytes");
  HZT_EXPECT(malloc_usable_size(e) == 40, "a shrunk bootstrap block has the wrong size");
  HZT_EXPECT(hzt__all(d, 0x77, 200), "realloc changed the bootstrap block it moved from");

  unsigned char *z = calloc(8, 16);
  HZT_EXPECT(z != NULL && hzt__all(z, 0, 128), "calloc while resolving is not zero");

  void *al = memalign(256, 24);
  HZT_EXPECT(al != NULL && ((uintptr_t)al & 255) == 0, "memalign(256) while resolving is not aligned");
  HZT_EXPECT(malloc_usable_size(al) == 24, "an aligned bootstrap block has the wrong size");
  memset(al, 0xee, 24);
  void *pm = NULL;
  HZT_EXPECT(posix_memalign(&pm, 1024, 8) == 0 && ((uintptr_t)pm & 1023) == 0,
             "posix_memalign(1024) while resolving failed or is not aligned");

  free(z); /* a bootstrap block is never reused: free is a no-op, not a crash */

  errno = 0;
  HZT_EXPECT(malloc((size_t)1 << 20) == NULL && errno == ENOMEM,
             "1 MiB while resolving did not fail with ENOMEM");
  errno = 0;
  HZT_EXPECT(memalign((size_t)1 << 16, 16) == NULL && errno == ENOMEM,
             "a 64 KiB alignment while resolving did not fail with ENOMEM");

  /* Then use the buffer up: it must say so, and fail cleanly. */
  size_t taken = 0;
  for (int i = 0; i < 64; i++) {
    errno = 0;
    void *p = malloc(4096);
    if (!p) {
      HZT_EXPECT(errno == ENOMEM, "an exhausted bootstrap buffer did not set ENOMEM");
      break;
    }
    taken += 4096;
  }
  HZT_EXPECT(taken >= 32 * 1024, "the bootstrap buffer holds less than 32 KiB");
  HZT_EXPECT(taken < 64 * 4096, "the bootstrap buffer never ran out");

  hzt__report.boot_block = b;
  hzt__report.boot_size = 300;
  hzt__report.boot_spare = al;
}

void *dlsym(void *handle, const char *name) {
  if (handle == RTLD_NEXT && hzt__allocator_name(name)) {
    const char *mode = getenv("HZT_DLSYM");
    if (mode && strcmp(mode, "none") == 0) {
      hzt__report.refused++;
      return NULL;
    }
    if (mode && strcmp(mode, "boot") == 0 && hzt__report.lookups++ == 0) hzt__exercise_boot();
  }
  /* Forwarded from here, RTLD_NEXT means "after this library", which is after the shim
   * too, since the test preloads this library second. */
  return hzt__real_dlsym(handle, name);
}
