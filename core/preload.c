/* Layer 8 (preload shim): the malloc family of a dynamically linked program, on hz.
 *
 * Built into libhz_preload.so (core/BUILD.bazel) and loaded with LD_PRELOAD. Every
 * allocation is served by hz. A pointer hz did not hand out is recognised by the arena
 * range check alone (hz owns exactly one reserved range, so "not in the arena" is
 * "not ours") and goes to the next allocator in link order (RTLD_NEXT, normally glibc)
 * for free, realloc and malloc_usable_size: an hz pointer never reaches it, and a
 * foreign one never reaches hz's block classification.
 *
 * Where foreign pointers come from: memory glibc's malloc handed out when hz could not
 * (the arena could not be reserved, e.g. under `ulimit -v`; more threads than
 * HZ_MAX_THREADS; the arena is full), which the shim then falls back to, so hz and glibc
 * blocks coexist; code calling glibc's own entry points (__libc_malloc and the like);
 * and the bootstrap buffer below. Allocations made "before hz initialised" are not among
 * them: from the first malloc of the process on, every caller, the dynamic loader
 * included, is bound to this malloc (the loader's private allocator serves it only until
 * relocation, and it never frees those blocks through free), and hz initialises inside
 * that first call.
 *
 * Re-entry: hz's own initialisation does not allocate before the heap is usable
 * (thread.c), so a malloc re-entering from pthread_atfork or pthread_setspecific is
 * served normally. The only recursion the shim adds is resolving the next allocator
 * with dlsym, which may itself allocate; should hz be unusable at that moment, those
 * allocations come from a small static bootstrap buffer whose blocks are never freed.
 *
 * fork: hz registers its pthread_atfork handlers at its first allocation (thread.c),
 * before any other library can, so its prepare handler runs last and its child handler
 * first: handlers of other libraries may allocate on either side of fork.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/api.h"
#include "core/hz.h"
#include "core/os.h"

/* glibc exports cfree only as a compatibility symbol and no longer declares it. */
void cfree(void *ptr);

/* ---- the next allocator ----------------------------------------------------------- */

typedef struct {
  void *(*malloc)(size_t);
  void (*free)(void *);
  void *(*realloc)(void *, size_t);
  void *(*memalign)(size_t, size_t);
  size_t (*usable_size)(void *);
} hz__next_t;

static hz__next_t hz__next;
/* 0 unresolved, 1 being resolved by some thread, 2 resolved (possibly to NULLs). */
static _Atomic int hz__next_state;
/* Set while this thread is inside dlsym: its allocations must not resolve again. */
static __thread __attribute__((tls_model("initial-exec"))) int hz__resolving;

static void hz__say(const char *msg) { hz_os_write_stderr(msg, strlen(msg)); }

/* Resolves the next allocator once. Returns false while this very thread is resolving
 * it (a re-entrant call from dlsym), or when the program has no next allocator. */
static bool hz__next_ready(void) {
  int state = atomic_load_explicit(&hz__next_state, memory_order_acquire);
  if (HZ_LIKELY(state == 2)) return hz__next.free != NULL;
  if (hz__resolving) return false;
  int expected = 0;
  if (atomic_compare_exchange_strong(&hz__next_state, &expected, 1)) {
    hz__resolving = 1;
    hz__next_t n;
    n.malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    n.free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    n.realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    n.memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    n.usable_size = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    if (!n.malloc || !n.free || !n.realloc || !n.memalign || !n.usable_size) {
      hz__say("hz: libhz_preload: no next allocator (RTLD_NEXT) for pointers hz does not own\n");
      memset(&n, 0, sizeof n);
    }
    hz__next = n;
    hz__resolving = 0;
    atomic_store_explicit(&hz__next_state, 2, memory_order_release);
  } else {
    /* Another thread is resolving: wait for it, it does not depend on us. */
    while (atomic_load_explicit(&hz__next_state, memory_order_acquire) != 2) sched_yield();
  }
  return hz__next.free != NULL;
}

/* ---- bootstrap buffer: allocations made while the next allocator is being resolved -- */

/* Each block is preceded by a 16-byte header holding its size, so that realloc and
 * malloc_usable_size work on it; the buffer is never reused. */
static unsigned char hz__boot[64 * 1024] __attribute__((aligned(4096)));
static _Atomic size_t hz__boot_used;

static bool hz__in_boot(const void *p) {
  return (const unsigned char *)p >= hz__boot && (const unsigned char *)p < hz__boot + sizeof hz__boot;
}

static void *hz__boot_alloc(size_t align, size_t size) {
  if (align < HZ_MIN_ALIGN) align = HZ_MIN_ALIGN;
  if (size > sizeof hz__boot || align > 4096) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = (size + 15) & ~(size_t)15;
  size_t old = atomic_load(&hz__boot_used), start, end;
  do {
    start = (old + 16 + align - 1) & ~(align - 1);
    end = start + need;
    if (end > sizeof hz__boot) {
      hz__say("hz: libhz_preload: bootstrap buffer exhausted\n");
      errno = ENOMEM;
      return NULL;
    }
  } while (!atomic_compare_exchange_weak(&hz__boot_used, &old, end));
  ((size_t *)(hz__boot + start))[-1] = size;
  return hz__boot + start; /* static storage: already zero */
}

static size_t hz__boot_size(const void *p) { return ((const size_t *)p)[-1]; }

/* ---- falling back when hz cannot allocate ----------------------------------------- */

/* hz returned NULL: allocate from the next allocator instead, so a program keeps
 * working when hz cannot serve it at all. align 0 means malloc alignment. */
static HZ_NOINLINE void *hz__fallback(size_t align, size_t size) {
  int saved = errno;
  void *p;
  if (hz__next_ready()) p = align ? hz__next.memalign(align, size) : hz__next.malloc(size);
  else if (hz__resolving) p = hz__boot_alloc(align, size);
  else p = NULL;
  if (!p) errno = saved ? saved : ENOMEM;
  return p;
}

/* ---- pointers hz does not own ----------------------------------------------------- */

static HZ_NOINLINE void hz__foreign_free(void *p) {
  if (!p || hz__in_boot(p)) return;
  if (hz__next_ready()) hz__next.free(p);
  /* else: there is nobody to give it to; leaking it is the only safe choice. */
}

static HZ_NOINLINE void *hz__foreign_realloc(void *p, size_t size) {
  if (hz__in_boot(p)) {
    size_t old = hz__boot_size(p);
    if (size == 0) return NULL;
    void *q = malloc(size);
    if (q) memcpy(q, p, old < size ? old : size);
    return q;
  }
  if (hz__next_ready()) return hz__next.realloc(p, size);
  errno = ENOMEM;
  return NULL;
}

static HZ_NOINLINE size_t hz__foreign_usable_size(void *p) {
  if (!p) return 0;
  if (hz__in_boot(p)) return hz__boot_size(p);
  return hz__next_ready() ? hz__next.usable_size(p) : 0;
}

/* The core routes a foreign pointer here when it meets one itself (hz_realloc and
 * hz_usable_size called through the hz_ API by a preloaded program's own code). */
static const hz_foreign_ops_t hz__foreign_ops = {
    hz__foreign_free,
    hz__foreign_realloc,
    hz__foreign_usable_size,
};

/* Runs before the executable's constructors. Resolving the next allocator here, while
 * the process is normally still single-threaded, keeps dlsym (and the loader lock it
 * takes) off the paths of foreign pointers later. */
__attribute__((constructor(101))) static void hz__preload_init(void) {
  hz_set_foreign_allocator(&hz__foreign_ops);
  (void)hz__next_ready();
}

/* ---- the malloc family ------------------------------------------------------------ */

static bool hz__pow2(size_t x) { return x && (x & (x - 1)) == 0; }

static size_t hz__page_size(void) {
  static _Atomic size_t page;
  size_t p = atomic_load_explicit(&page, memory_order_relaxed);
  if (HZ_UNLIKELY(p == 0)) {
    long v = sysconf(_SC_PAGESIZE);
    p = v > 0 ? (size_t)v : 4096;
    atomic_store_explicit(&page, p, memory_order_relaxed);
  }
  return p;
}

HZ_EXPORT void *malloc(size_t size) {
  void *p = hz_malloc_fast(size);
  if (HZ_UNLIKELY(!p)) return hz__fallback(0, size);
  return p;
}

HZ_EXPORT void free(void *p) {
  /* The same range test opens hz_free_fast; the compiler merges the two. */
  if (HZ_UNLIKELY(!hz_in_arena(p))) {
    hz__foreign_free(p);
    return;
  }
  hz_free_fast(p);
}

HZ_EXPORT void cfree(void *p) { free(p); }

HZ_EXPORT void *calloc(size_t nmemb, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(nmemb, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = hz_calloc(nmemb, size);
  if (HZ_UNLIKELY(!p)) {
    p = hz__fallback(0, total);
    /* The next allocator's malloc does not zero; the bootstrap buffer is zero. */
    if (p && !hz__in_boot(p)) memset(p, 0, total);
  }
  return p;
}

HZ_EXPORT void *realloc(void *p, size_t size) {
  if (HZ_UNLIKELY(!hz_in_arena(p))) {
    if (!p) return malloc(size);
    return hz__foreign_realloc(p, size);
  }
  void *q = hz_realloc(p, size);
  if (HZ_UNLIKELY(!q && size != 0 && errno == ENOMEM)) {
    /* hz is out of memory and kept p: move it to memory the next allocator gives. */
    size_t old = hz_usable_size(p);
    q = hz__fallback(0, size);
    if (q) {
      memcpy(q, p, old < size ? old : size);
      hz_free(p);
    }
  }
  return q;
}

HZ_EXPORT void *reallocarray(void *p, size_t nmemb, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(nmemb, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, total);
}

HZ_EXPORT size_t malloc_usable_size(void *p) {
  if (HZ_UNLIKELY(!hz_in_arena(p))) return hz__foreign_usable_size(p);
  return hz_usable_size(p);
}

HZ_EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
  int rc = hz_posix_memalign(out, alignment, size);
  if (HZ_UNLIKELY(rc == ENOMEM)) {
    void *p = hz__fallback(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
  }
  return rc;
}

HZ_EXPORT void *aligned_alloc(size_t alignment, size_t size) {
  void *p = hz_aligned_alloc(alignment, size);
  if (HZ_UNLIKELY(!p) && hz__pow2(alignment)) return hz__fallback(alignment, size);
  return p;
}

HZ_EXPORT void *memalign(size_t alignment, size_t size) {
  void *p = hz_memalign(alignment, size);
  if (HZ_UNLIKELY(!p) && errno == ENOMEM) {
    size_t a = HZ_MIN_ALIGN;
    while (a < alignment) a <<= 1; /* hz_memalign rounded it the same way */
    return hz__fallback(a, size);
  }
  return p;
}

HZ_EXPORT void *valloc(size_t size) { return memalign(hz__page_size(), size); }

/* pvalloc rounds the size up to whole pages; pvalloc(0) is one page, as in glibc. */
HZ_EXPORT void *pvalloc(size_t size) {
  size_t page = hz__page_size();
  size_t rounded;
  if (__builtin_add_overflow(size, page - 1, &rounded)) {
    errno = ENOMEM;
    return NULL;
  }
  rounded &= ~(page - 1);
  return memalign(page, rounded ? rounded : page);
}
