/* The entry points the ops call (hzf_api.h): hz's table, the next allocator, and what a
 * result outside the arena means. */
#include "fuzz/hzf_api.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "core/api.h"
#include "fuzz/hzf_oom.h"

static size_t hzf__hz_usable(void *p) { return hz_usable_size(p); }

static const hzf_api_t hzf__hz = {
    .name = "hz",
    .malloc = hz_malloc,
    .calloc = hz_calloc,
    .realloc = hz_realloc,
    .free = hz_free,
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

static const hzf__next_t *hzf__next(void) {
  static hzf__next_t next;
  static atomic_int state; /* 0 unresolved, 1 resolved */
  if (!atomic_load_explicit(&state, memory_order_acquire)) {
    /* Racing threads resolve the same three symbols: the stores agree. */
    next.malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    next.free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    next.usable_size = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    atomic_store_explicit(&state, 1, memory_order_release);
  }
  return &next;
}

void *hzf_next_malloc(size_t size) {
  const hzf__next_t *n = hzf__next();
  return n->malloc && n->free && n->usable_size ? n->malloc(size) : NULL;
}

void hzf_next_free(void *p) {
  if (hzf__next()->free) hzf__next()->free(p);
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
