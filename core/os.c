/* Layer 0 (os): mmap, mprotect, madvise, mincore, getrandom and write, and nothing else
 * does. */
#include "core/os.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static void *hz__os_reserve(size_t size, size_t align) {
  /* Over-reserve by `align` and trim both ends, so the result is aligned. */
  size_t total = size + align;
  void *raw = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
  size_t head = start - (uintptr_t)raw, tail = total - head - size;
  if (head) munmap(raw, head);
  if (tail) munmap((void *)(start + size), tail);
  return (void *)start;
}

static int hz__os_commit(void *p, size_t size) {
  return mprotect(p, size, PROT_READ | PROT_WRITE) == 0 ? 0 : -1;
}

static int hz__os_decommit(void *p, size_t size) {
  /* MADV_DONTNEED on private anonymous memory frees it now and reads back zeros. */
  int saved = errno;
  int rc = madvise(p, size, MADV_DONTNEED);
  errno = saved;
  return rc == 0 ? 0 : -1;
}

static void *hz__os_map(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void hz__os_unmap(void *p, size_t size) {
  int saved = errno;
  munmap(p, size);
  errno = saved;
}

const hz_page_source_t hz_os_mmap_source = {
    hz__os_reserve, hz__os_commit, hz__os_decommit, hz__os_map, hz__os_unmap,
};

static const hz_page_source_t *_Atomic hz__os_source = &hz_os_mmap_source;
static atomic_bool hz__os_frozen;

const hz_page_source_t *hz_os_pages(void) {
  return atomic_load_explicit(&hz__os_source, memory_order_acquire);
}

int hz_os_set_page_source(const hz_page_source_t *src) {
  if (atomic_load(&hz__os_frozen) || src == NULL) return -1;
  atomic_store_explicit(&hz__os_source, src, memory_order_release);
  return 0;
}

void hz_os_freeze(void) { atomic_store(&hz__os_frozen, 1); }

int hz_os_resident(const void *p, size_t size, unsigned char *vec) {
  int saved = errno;
  int rc = mincore((void *)p, size, vec);
  errno = saved;
  return rc == 0 ? 0 : -1;
}

uint64_t hz_os_random(void) {
  uint64_t v = 0;
  int saved = errno;
  if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    v = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&v ^
        ((uint64_t)ts.tv_sec << 32);
  }
  errno = saved;
  return v | 1; /* never zero: zero is what a fresh block holds */
}

void hz_os_write_stderr(const char *s, size_t n) {
  int saved = errno;
  while (n > 0) {
    ssize_t w = write(2, s, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      break;
    }
    s += w;
    n -= (size_t)w;
  }
  errno = saved;
}
