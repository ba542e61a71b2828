/* The entry points the ops call (hzf_api.h): hz's table, the next allocator, and what a
 * result outside the arena means. */
#include "fuzz/hzf_api.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/api.h"
#include "fuzz/hzf_oom.h"
#include "fuzz/hzf_ops.h"

static size_t hzf__hz_usable(void *p) { return hz_usable_size(p); }

/* free never changes errno (POSIX.1-2024; glibc since 2.33): a program may free between
 * a failing call and its test of errno. Each free through a table runs with a sentinel
 * in errno; the first change is kept for the executor's check after the op. */
#define HZF__ERRNO_SENTINEL 0x7e57
static _Thread_local int hzf__free_errno; /* what a free left in errno; 0: kept */

void hzf_api_free_kept(void (*fn)(void *), void *p) {
  int saved = errno;
  errno = HZF__ERRNO_SENTINEL;
  fn(p);
  if (errno != HZF__ERRNO_SENTINEL && hzf__free_errno == 0) hzf__free_errno = errno ? errno : -1;
  errno = saved;
}

void hzf_errno_in(const hzf_ctx_t *c) {
  static const int in[4] = {0, ENOMEM, EINVAL, ERANGE};
  errno = in[c->index % 4];
}

int hzf_api_errno_changed(void) {
  int e = hzf__free_errno;
  hzf__free_errno = 0;
  return e;
}

static void hzf__hz_free(void *p) { hzf_api_free_kept(hz_free, p); }

static const hzf_api_t hzf__hz = {
    .name = "hz",
    .malloc = hz_malloc,
    .calloc = hz_calloc,
    .realloc = hz_realloc,
    .free = hzf__hz_free,
    .aligned_alloc = hz_aligned_alloc,
    .memalign = hz_memalign,
    .posix_memalign = hz_posix_memalign,
    .usable_size = hzf__hz_usable,
};

const hzf_api_t *hzf_api = &hzf__hz;

/* Weak: hzf_api_shim.c, in the binaries that carry the shim, defines the strong one. */
__attribute__((weak)) const hzf_api_t *hzf_shim_table(void) { return NULL; }

bool hzf_api_available(const hzf_profile_t *p) {
  return p != &hzf_profile_shim || hzf_shim_table() != NULL;
}

bool hzf_api_select(const hzf_profile_t *p) {
  const hzf_api_t *want = p == &hzf_profile_shim ? hzf_shim_table() : &hzf__hz;
  if (!want) return false;
  hzf_api = want; /* between inputs: no worker runs an op */
  hz_set_foreign_allocator(want->foreign);
  return true;
}

/* ---- the next allocator ---------------------------------------------------------- */

typedef struct {
  void *(*malloc)(size_t);
  void (*free)(void *);
  size_t (*usable_size)(void *);
} hzf__next_t;

static hzf__next_t hzf__next_fns;
static pthread_once_t hzf__next_once = PTHREAD_ONCE_INIT;

static void hzf__resolve_next(void) {
  hzf__next_fns.malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
  hzf__next_fns.free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
  hzf__next_fns.usable_size = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
}

static const hzf__next_t *hzf__next(void) {
  pthread_once(&hzf__next_once, hzf__resolve_next);
  return &hzf__next_fns;
}

void *hzf_next_malloc(size_t size) {
  const hzf__next_t *n = hzf__next();
  return n->malloc && n->free && n->usable_size ? n->malloc(size) : NULL;
}

size_t hzf_next_usable_size(void *p) {
  return hzf__next()->usable_size ? hzf__next()->usable_size(p) : 0;
}

/* ---- results outside the arena ---------------------------------------------------- */

bool hzf_fallback(hzf_ctx_t *c, void *p, size_t req, size_t align, bool zeroed,
                  bool may_refuse) {
  if (!hzf_api->shim) {
    hzf_fail(c, "foreign-result", "every block hz hands out lies in its arena",
             "%zu bytes aligned %zu: %p is outside the arena", req, align, p);
    return false;
  }
  if (!hzf_oom_hit(c) && !may_refuse) {
    hzf_fail(c, "shim-fallback", "the shim uses the next allocator only when hz cannot allocate",
             "%zu bytes aligned %zu: %p from the next allocator, and hz was refused nothing",
             req, align, p);
    hzf_api->free(p);
    return false;
  }
  size_t a = align < 16 ? 16 : align;
  size_t u = hzf_api->usable_size(p);
  if (!hzf_expect_no_fault(c, "malloc_usable_size of a fallback block")) return false;
  if ((uintptr_t)p % a || u < req) {
    hzf_fail(c, "shim-fallback", "a fallback block is aligned and holds the request",
             "%zu bytes aligned %zu: %p with usable size %zu", req, align, p, u);
    hzf_api->free(p);
    return false;
  }
  if (zeroed && hzf_checking(c)) {
    size_t bad = hzf_model_first_bad(p, req, 0, req);
    if (bad < req) {
      hzf_fail(c, "calloc-zero", "calloc memory reads as zero, the next allocator's too",
               "fallback block: byte %zu of %zu is 0x%02x", bad, req, ((unsigned char *)p)[bad]);
      hzf_api->free(p);
      return false;
    }
  }
  /* The program owns every byte it asked for. */
  memset(p, 0xC3, req < 4096 ? req : 4096);
  if (req > 4096) memset((unsigned char *)p + req - 4096, 0xC3, 4096);
  hzf_api->free(p);
  if (!hzf_expect_no_fault(c, "free of a fallback block")) return false;
  hzf_note(c, "fallback to the next allocator (%zu B) ", req);
  return true;
}

bool hzf_fallback_realloc(hzf_ctx_t *c, unsigned i, void *q, size_t size, bool may_refuse) {
  hzf_block_t b = c->m->b[i];
  size_t keep = b.req < size ? b.req : size;
  if (hzf_api->shim && hzf_checking(c)) {
    size_t k = hzf_model_first_bad(q, b.req, b.fill, keep);
    if (k < b.req) {
      hzf_fail(c, "realloc-prefix", "the first min(old, new) bytes survive realloc",
               "block #%u %zu -> %zu B, moved to the next allocator: byte %zu is 0x%02x, "
               "fill 0x%02x", b.id, b.req, size, k, ((unsigned char *)q)[k], b.fill);
      hzf_api->free(q);
      return false;
    }
  }
  hzf_model_remove(c->m, i);
  hzf_note(c, "#%u moved out of hz ", b.id);
  return hzf_fallback(c, q, size, 16, false, may_refuse);
}

bool hzf_shim_null_ok(hzf_ctx_t *c, size_t req, size_t align, int err) {
  if (!hzf_api->shim || !hzf_oom_hit(c) || req > HZF_NEXT_SURE || align > HZF_NEXT_SURE)
    return true;
  hzf_fail(c, "shim-fallback", "a request hz cannot serve goes to the next allocator",
           "%zu bytes aligned %zu: NULL, errno %d, with hz refused memory", req, align, err);
  return false;
}

/* ---- foreign pointers, routed ------------------------------------------------------ */

void hzf_foreign_routed(hzf_ctx_t *c, unsigned call) {
  unsigned char *p = hzf_next_malloc(64);
  if (!p) return;
  memset(p, 0x5C, 64);
  hzf_faults()->count = 0;
  if (call == 1) {
    size_t size = 1 + hzf_size_of(1, c->op->arg);
    unsigned char *q = hzf_api->realloc(p, size);
    if (!hzf_expect_no_fault(c, "realloc of a next-allocator block")) return;
    if (!q) { /* the next allocator's failure, which leaves p alone */
      hzf_api->free(p);
      return;
    }
    for (size_t k = 0; k < 64 && k < size; k++)
      if (q[k] != 0x5C) {
        hzf_fail(c, "shim-routing", "realloc of a next-allocator block keeps its bytes",
                 "byte %zu is 0x%02x after realloc to %zu B", k, q[k], size);
        break;
      }
    if (hz_in_arena(q))
      hzf_fail(c, "shim-routing", "the next allocator reallocs its own blocks",
               "the block moved into hz's arena");
    hzf_api->free(q);
  } else if (call == 2) {
    size_t u = hzf_api->usable_size(p), want = hzf_next_usable_size(p);
    if (u != want || u < 64)
      hzf_fail(c, "shim-routing", "malloc_usable_size of a next-allocator block is that "
               "allocator's", "%zu, the next allocator says %zu", u, want);
    hzf_api->free(p);
  } else {
    if (call == 3 && hzf_api->cfree) hzf_api->cfree(p);
    else hzf_api->free(p);
  }
  hzf_expect_no_fault(c, "a call on a next-allocator block");
  hzf_note(c, "routed to the next allocator");
}
