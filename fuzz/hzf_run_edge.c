/* Ops at the edges of the API contract, fault injection, and cache fill levels.
 *
 * Every result is held to the contract oracle (hzf_oracle.h), never to hz's own tables:
 * sizes of 0 and sizes no object can have, every shape of calloc overflow, alignments of
 * every class (0, below a pointer, not a power of two, above a SuperSlab, above the
 * address space), realloc to 0 and to the block's own usable size. As elsewhere, fields
 * are reduced modulo their ranges, so every decoded op is valid.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/api.h"
#include "fuzz/hzf_api.h"
#include "fuzz/hzf_exec.h"
#include "fuzz/hzf_oom.h"
#include "fuzz/hzf_oracle.h"
#include "fuzz/hzf_proc.h"

/* Sizes no allocation can satisfy here: SIZE_MAX and its neighbours, the PTRDIFF_MAX
 * boundary, and requests past the 256 GiB arena. (Not sizes the arena could hold: one
 * that succeeded would cost its size / 8 in ASan shadow memory.) */
static const size_t hzf__huge[] = {
    SIZE_MAX,         SIZE_MAX - 1,         SIZE_MAX - 4095,         SIZE_MAX / 2 + 1,
    (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1, (size_t)1 << 40, ((size_t)1 << 38) + 1,
};
#define HZF_NHUGE (sizeof hzf__huge / sizeof *hzf__huge)

/* A malloc-like call whose outcome the oracle decides: a documented failure is checked
 * (NULL and errno), any other result goes to the model. `req` is what a success holds. */
static void hzf__sized_call(hzf_ctx_t *c, hzf_fn_t fn, size_t a, size_t b, size_t req) {
  hzf_contract_t k = hzf_oracle(fn, a, b);
  if (!k.must_fail && (c->m->n == HZF_MAX_LIVE || hzf_model_large_full(c->m, req, k.align))) return;
  hzf_errno_in(c);
  void *p = fn == HZF_FN_CALLOC    ? hzf_api->calloc(a, b)
            : fn == HZF_FN_REALLOC ? hzf_api->realloc(NULL, b)
                                   : hzf_api->malloc(a);
  int err = errno;
  if (!hzf_expect_no_fault(c, hzf_fn_name(fn))) return;
  if (!p && (k.must_fail || k.may_fail)) {
    if (err != ENOMEM)
      hzf_fail(c, "oom-errno", "NULL with errno ENOMEM for a size no object can have",
               "%s(%zu, %zu): NULL with errno %d", hzf_fn_name(fn), a, b, err);
    hzf_note(c, "%s(%zu, %zu): NULL, ENOMEM", hzf_fn_name(fn), a, b);
    c->check_now = true;
    return;
  }
  if (p && k.must_fail) {
    hzf_fail(c, "huge-request", "NULL with ENOMEM: the request overflows or exceeds PTRDIFF_MAX",
             "%s(%zu, %zu) returned a block", hzf_fn_name(fn), a, b);
    hzf_api->free(p);
    return;
  }
  if (p && k.may_fail && req > HZF_ORACLE_HUGE) { /* allowed; too big for the model to track */
    hzf_api->free(p);
    hzf_expect_no_fault(c, "free of a huge block");
    return;
  }
  errno = err;
  hzf_model_add(c, p, req, 16, fn == HZF_FN_CALLOC);
}

/* The shim's reallocarray(p, n, s) of live block i (glibc's manual): realloc(p, n * s),
 * except that an overflowing product fails with ENOMEM and leaves p alone. A product of
 * 0 frees p as realloc(p, 0) does; one no object can have fails and keeps p. */
static void hzf__reallocarray_shape(hzf_ctx_t *c, unsigned i, size_t n, size_t s) {
  if (!hzf_model_verify(c, i, "before reallocarray")) return;
  size_t total = 0;
  bool over = __builtin_mul_overflow(n, s, &total);
  hzf_contract_t k = over ? (hzf_contract_t){.must_fail = true, .err = ENOMEM}
                          : hzf_oracle(HZF_FN_REALLOC, 1, total);
  if (!over && total && !k.must_fail && !k.may_fail) return; /* an ordinary realloc */
  hzf_errno_in(c);
  void *q = hzf_api->reallocarray(c->m->b[i].p, n, s);
  int err = errno;
  if (!hzf_expect_no_fault(c, "reallocarray")) return;
  c->check_now = true;
  if (!over && total == 0) {
    if (q) hzf_fail(c, "realloc-zero", "NULL: reallocarray(p, n, s) with n * s == 0 frees p",
                    "a block");
    hzf_note(c, "#%u freed by reallocarray(p, %zu, %zu)", c->m->b[i].id, n, s);
    hzf_model_remove(c->m, i);
    return;
  }
  if (q && !hz_in_arena(q) && k.may_fail) { /* the fallback, where the kernel overcommits */
    hzf_fallback_realloc(c, i, q, total, true);
    return;
  }
  if (q || err != ENOMEM) {
    hzf_fail(c, "reallocarray-overflow", "NULL with errno ENOMEM when n * s overflows or no "
             "object can be that large, and p kept", "reallocarray(p, %zu, %zu): %s, errno %d",
             n, s, q ? "a block" : "NULL", err);
    return;
  }
  hzf_note(c, "reallocarray(p, %zu, %zu): NULL, ENOMEM ", n, s);
  hzf_realloc_kept(c, i);
}

/* Every shape of calloc overflow, and the products that only just do not overflow; in the
 * shim, the same shapes through reallocarray too. */
static void hzf__calloc_shapes(hzf_ctx_t *c) {
  unsigned shape = c->op->arg % 6, pick = c->op->pick;
  size_t n, s;
  switch (shape) {
    case 0: /* wraps to a small value */
      s = 16 + (c->op->arg >> 3) % 4096;
      n = SIZE_MAX / s + 1 + pick % 8;
      break;
    case 1: /* wraps to a value larger than both operands */
      n = ((size_t)1 << 32) + (pick | 1u);
      s = ((size_t)1 << 32) + ((c->op->arg >> 3) | 1u);
      break;
    case 2: /* exactly SIZE_MAX: no overflow, but no object can be that large */
      n = 3, s = SIZE_MAX / 3;
      break;
    case 3: /* one past SIZE_MAX */
      n = 3, s = SIZE_MAX / 3 + 1;
      break;
    case 4: /* zero times anything is a valid request of 0 bytes */
      n = (pick & 1) ? 0 : SIZE_MAX, s = (pick & 1) ? SIZE_MAX : 0;
      break;
    default: { /* wraps to exactly 0 */
      unsigned k = 1 + (c->op->arg >> 3) % 63;
      n = (size_t)1 << k, s = (size_t)1 << (64 - k);
      break;
    }
  }
  size_t total = 0;
  bool over = __builtin_mul_overflow(n, s, &total);
  int i = hzf_model_pick(c->m, c->op->sel >> 3);
  if (hzf_api->reallocarray && (pick & 2) && i >= 0) hzf__reallocarray_shape(c, (unsigned)i, n, s);
  else hzf__sized_call(c, HZF_FN_CALLOC, n, s, over ? 0 : total);
}

/* Alignments of every class for one of the three aligned functions. */
static void hzf__align_classes(hzf_ctx_t *c) {
  unsigned fn = (c->op->sel >> 3) % 3, pick = c->op->pick;
  size_t align;
  switch (c->op->arg % 10) {
    case 0: align = 0; break;
    case 1: align = 1; break;
    case 2: align = 2; break;
    case 3: align = 4; break;
    case 4: align = 8; break;
    case 5: align = 3 + 2 * (size_t)pick; break;               /* odd: never a power of two */
    case 6: align = (size_t)1 << (pick % 26); break;           /* up to 32 MiB: past a SuperSlab */
    case 7: /* beyond the address space: a power of two, or (memalign rounds it) not */
      align = ((size_t)1 << (40 + pick % 24)) + ((pick & 32) ? 16 : 0);
      break;
    case 8: align = ((size_t)1 << (4 + pick % 20)) + 16; break; /* just past a power of two */
    default: align = (pick & 1) ? SIZE_MAX : SIZE_MAX / 2 + 1; break;
  }
  /* Any size, most of them not a multiple of the alignment (valid for aligned_alloc
   * since C17). */
  size_t size = hzf_size_of((c->op->sel >> 5) ? 2 : 1, (c->op->arg >> 4) * 37u + pick);
  hzf_aligned_call(c, fn, align, size);
}

/* realloc(p, 0) frees p; realloc(p, usable_size(p)) keeps p where it is (hz.h). */
static void hzf__realloc_edges(hzf_ctx_t *c) {
  int i = hzf_model_pick(c->m, c->op->pick);
  if (i < 0 || !hzf_model_verify(c, (unsigned)i, "before realloc")) return;
  hzf_block_t *b = &c->m->b[i];
  if (c->op->sel & 8) {
    hzf_errno_in(c);
    void *q = hzf_api->realloc(b->p, 0);
    if (!hzf_expect_no_fault(c, "realloc(p, 0)")) return;
    if (q) hzf_fail(c, "realloc-zero", "NULL: realloc(p, 0) frees p", "a block");
    hzf_note(c, "#%u freed by realloc(p, 0)", b->id);
    hzf_model_remove(c->m, (unsigned)i);
    return;
  }
  size_t u = hzf_api->usable_size(b->p);
  if (!hzf_expect_no_fault(c, "usable_size")) return;
  void *q = hzf_api->realloc(b->p, u);
  if (!hzf_expect_no_fault(c, "realloc(p, usable_size(p))")) return;
  if (q != b->p) {
    hzf_fail(c, "realloc-in-place", "realloc(p, usable_size(p)) returns p",
             "block #%u (%zu B, usable %zu) moved to +0x%zx", b->id, b->req, u,
             (size_t)hzf_addr(q));
    return;
  }
  if (!hzf_model_verify(c, (unsigned)i, "after realloc in place")) return;
  b->req = u; /* the program may now use every usable byte */
  hzf_model_fill(b);
  hzf_note(c, "#%u in place at %zu B", b->id, u);
}

/* A request of a size no allocation can satisfy, through one of the six functions; a
 * realloc of a live block must leave it untouched. */
static void hzf__huge_request(hzf_ctx_t *c) {
  size_t size = hzf__huge[c->op->arg % HZF_NHUGE];
  unsigned fn = (c->op->sel >> 3) % 6;
  if (fn == 2) {
    int i = hzf_model_pick(c->m, c->op->pick);
    if (i < 0) return;
    hzf_contract_t k = hzf_oracle(HZF_FN_REALLOC, 1, size);
    hzf_errno_in(c);
    void *q = hzf_api->realloc(c->m->b[i].p, size);
    int err = errno;
    if (!hzf_expect_no_fault(c, "realloc to a huge size")) return;
    if (q && !hz_in_arena(q)) { /* the shim's fallback, where the kernel overcommits */
      hzf_fallback_realloc(c, (unsigned)i, q, size, true);
      c->check_now = true;
      return;
    }
    if (q) {
      hzf_fail(c, "huge-request", "NULL with ENOMEM", "realloc to %zu B returned a block", size);
      return;
    }
    if (err != ENOMEM || !(k.must_fail || k.may_fail))
      hzf_fail(c, "oom-errno", "NULL with errno ENOMEM", "realloc to %zu B: errno %d", size, err);
    else hzf_realloc_kept(c, (unsigned)i);
    c->check_now = true;
    return;
  }
  if (fn >= 3) {
    hzf_aligned_call(c, fn - 3, (size_t)64 << (c->op->pick % 8), size);
    return;
  }
  if (fn == 1) hzf__sized_call(c, HZF_FN_CALLOC, 1 + (c->op->pick & 1), size, 0);
  else hzf__sized_call(c, HZF_FN_MALLOC, size, 0, 0);
}

void hzf_op_edge(hzf_ctx_t *c) {
  const hzf_op_t *o = c->op;
  switch (o->sel & 7) {
    case 0: /* zero bytes: a unique block (C leaves it to the implementation; glibc gives one) */
      if ((o->sel >> 3) & 1) hzf__sized_call(c, HZF_FN_REALLOC, 0, 0, 0);
      else hzf__sized_call(c, HZF_FN_MALLOC, 0, 0, 0);
      break;
    case 1: hzf__huge_request(c); break;
    case 2: hzf__calloc_shapes(c); break;
    case 3: hzf__align_classes(c); break;
    case 4: hzf__realloc_edges(c); break;
    case 5: { /* NULL: free is a no-op, usable_size is 0 */
      hzf_faults()->count = 0;
      hzf_api->free(NULL);
      if (hzf_api->usable_size(NULL) != 0)
        hzf_fail(c, "misuse-result", "usable_size(NULL) == 0", "non-zero");
      hzf_expect_no_fault(c, "free(NULL), usable_size(NULL)");
      break;
    }
    default: { /* just past a power of two: where size bands meet */
      unsigned k = 4 + o->arg % 21;
      size_t size = ((size_t)1 << k) + (size_t)(o->pick % 5) - 2;
      if ((o->sel >> 3) & 1) hzf__sized_call(c, HZF_FN_CALLOC, 1, size, size);
      else hzf__sized_call(c, HZF_FN_MALLOC, size, 0, size);
      break;
    }
  }
}

void hzf_op_oom(hzf_ctx_t *c) {
  hzf_oom_mode_t mode = (hzf_oom_mode_t)(c->op->sel & 3);
  unsigned n = 1 + c->op->arg % 8;
  hzf_oom_arm(mode, n);
  if (mode == HZF_OOM_DISARM) hzf_note(c, "disarmed");
  else hzf_note(c, "armed: %s (the %u%s from now)", hzf_oom_describe(mode), n,
                n == 1 ? "st" : n == 2 ? "nd" : n == 3 ? "rd" : "th");
}

/* Puts the class's TLS SLL at a fill level: allocate enough blocks of the class (they
 * join the model), then free them back until the list holds the target count. The
 * levels are where the free and malloc paths change course: empty (the next malloc
 * refills), one below the bound, at it (the next free drains), one over (that free
 * happens now). Composes with every op after it. */
static bool hzf__free_newest(hzf_ctx_t *c) {
  unsigned i = c->m->n - 1;
  if (!hzf_model_verify(c, i, "before free")) return false;
  hzf_api->free(c->m->b[i].p);
  if (!hzf_expect_no_fault(c, "free to fill")) return false;
  hzf_model_remove(c->m, i);
  return true;
}

/* The thread cache's cost contract (docs/INVARIANTS.md, "Amortization"): a thread that
 * allocates and frees the same w <= HZ_SLL_MIN_COUNT blocks of one class, round after
 * round, is served from its own cache once warm. After HZF_STEADY_WARM rounds no round
 * may refill, drain, collect, initialise or release a slab, take or release a
 * SuperSlab, adopt or abandon: every counter of hz_stats_t but faults stays still. A
 * bound that collapses, a refill that brings back too little, a drain that runs early or
 * a cache that is bypassed keep every block correct and only make hz slow; nothing else
 * in the suite sees them. Judged only when nothing else can move the counters: one
 * thread in hz (not the free-running mode), no race armed, no commit refused. */
#define HZF_STEADY_WARM 2u
#define HZF_STEADY_ROUNDS 4u
/* A loop of w blocks is steady once the bound has room for 2w: it starts at
 * HZ_SLL_MIN_COUNT or more and grows on refills to HZ_SLL_GROW_BYTES worth of blocks,
 * which for the largest class is at least 2 x HZ_SLL_MIN_COUNT (config.h). A
 * configuration that breaks this needs a smaller w, and this says so. */
_Static_assert(HZ_SLL_MAX_COUNT >= 2 * HZ_SLL_MIN_COUNT &&
                   HZ_SLL_GROW_BYTES / HZ_MEDIUM_MAX >= 2 * HZ_SLL_MIN_COUNT,
               "the steady loop's w <= HZ_SLL_MIN_COUNT needs room for 2w in every class");

/* Every counter of hz_stats_t but faults. */
#define HZF__STAT(f) {#f, offsetof(hz_stats_t, f)}
typedef struct {
  const char *name;
  size_t off;
} hzf__stat_t;
static const hzf__stat_t hzf__stats[] = {
    HZF__STAT(refills),          HZF__STAT(drains),           HZF__STAT(remote_collects),
    HZF__STAT(adoptions),        HZF__STAT(abandons),         HZF__STAT(slab_inits),
    HZF__STAT(slab_releases),    HZF__STAT(superslabs_taken), HZF__STAT(superslabs_released),
    HZF__STAT(large_allocs),     HZF__STAT(large_frees),      HZF__STAT(extents_decommitted),
};
/* What a free or an exit may not do (hzf_takes_nothing). */
static const hzf__stat_t hzf__takes[] = {
    HZF__STAT(refills), HZF__STAT(adoptions), HZF__STAT(slab_inits),
    HZF__STAT(superslabs_taken), HZF__STAT(large_allocs),
};
#undef HZF__STAT

static uint64_t hzf__stat_at(const hz_stats_t *s, size_t off) {
  return *(const uint64_t *)((const char *)s + off);
}

static uint64_t hzf__stat(const hz_stats_t *s, unsigned k) {
  return hzf__stat_at(s, hzf__stats[k].off);
}

/* One block for a loop the model does not track (the steady loop, the sweep), or NULL
 * once the call is judged: a fault, a failure (which must be an injected one), or the
 * shim's fallback (held to its contract and freed). */
static unsigned char *hzf__loop_malloc(hzf_ctx_t *c, size_t size, const char *what) {
  hzf_errno_in(c);
  unsigned char *p = hzf_api->malloc(size);
  if (!hzf_expect_no_fault(c, what)) return NULL;
  if (!p) {
    hzf_expect_oom(c, errno, what);
    return NULL;
  }
  if (!hz_in_arena(p)) {
    hzf_fallback(c, p, size, 16, false, false);
    return NULL;
  }
  return p;
}

static void hzf__steady(hzf_ctx_t *c, unsigned cls, unsigned w) {
  size_t size = hz_size_class_size(cls);
  void *blk[HZ_SLL_MIN_COUNT];
  hz_stats_t before, after;
  for (unsigned r = 0; r < HZF_STEADY_WARM + HZF_STEADY_ROUNDS && !hzf_failed(c); r++) {
    if (r == HZF_STEADY_WARM) hz_get_stats(&before);
    unsigned got = 0;
    for (; got < w; got++) {
      if (!(blk[got] = hzf__loop_malloc(c, size, "steady malloc"))) break;
      hzf_model_handed(blk[got]);
      if (!hzf_model_disjoint(c, blk[got], size)) {
        got++;
        break;
      }
    }
    for (unsigned k = got; k-- > 0;) { /* last in, first out: as a cache sees a loop */
      hzf_api->free(blk[k]);
      if (!hzf_expect_no_fault(c, "steady free")) return;
    }
    if (got < w) return;
  }
  if (hzf_failed(c) || hzf_oom_hit(c) || hzf_race_live()) return;
  hz_get_stats(&after);
  for (unsigned k = 0; k < sizeof hzf__stats / sizeof *hzf__stats; k++) {
    uint64_t d = hzf__stat(&after, k) - hzf__stat(&before, k);
    if (d) {
      hzf_fail(c, "amortization", "a warm thread cache serves a steady loop alone",
               "class %u (%zu B), %u blocks a round: %llu %s in %u rounds after %u to warm up",
               cls, size, w, (unsigned long long)d, hzf__stats[k].name, HZF_STEADY_ROUNDS,
               HZF_STEADY_WARM);
      return;
    }
  }
  hzf_note(c, "steady x%u: served from the cache; ", w);
}

/* A free and a thread's exit give back and take nothing: a free returns a block (to the
 * cache, a slab, a remote batch, the free extents) and an exit returns everything its
 * thread holds (its cache drained, its batches published, its slabs collected, the empty
 * ones pooled and the rest abandoned). Neither may refill, adopt, cut a slab, or take a
 * SuperSlab or a large extent: what an exit takes its thread never uses, and an exit
 * that adopts every abandoned slab only to abandon it again costs O(abandoned slabs) per
 * exit while every byte stays right; a free that takes memory grows the heap on a path
 * that should shrink it. The counters are the process's, so only with one thread in hz
 * and no race armed (a racing step may allocate) is their difference the call's own. */
void hzf_takes_begin(const hzf_ctx_t *c, hzf_takes_t *t, bool alone) {
  t->on = alone && !hzf_free_running(c) && !hzf_race_live();
  if (t->on) hz_get_stats(&t->before);
}

bool hzf_takes_nothing(hzf_ctx_t *c, const hzf_takes_t *t, const char *what) {
  if (!t->on || hzf_failed(c)) return !hzf_failed(c);
  hz_stats_t after;
  hz_get_stats(&after);
  for (unsigned i = 0; i < sizeof hzf__takes / sizeof *hzf__takes; i++) {
    size_t off = hzf__takes[i].off;
    uint64_t d = hzf__stat_at(&after, off) - hzf__stat_at(&t->before, off);
    if (d) {
      hzf_fail(c, "takes-nothing", "a free or a thread's exit gives back and takes nothing",
               "%s: %llu %s", what, (unsigned long long)d, hzf__takes[i].name);
      return false;
    }
  }
  return true;
}

void hzf_thread_exit(hzf_ctx_t *c, const char *what) {
  hzf_takes_t t;
  hzf_takes_begin(c, &t, true); /* judged unless free-running or racing: hzf_takes_begin */
  hz_thread_detach();
  if (hzf_expect_no_fault(c, what)) hzf_takes_nothing(c, &t, what);
}

/* A sweep: a whole slab's worth of one class at once (HZ_SLAB_SIZE / size blocks, and as
 * many more as the thread's cache holds, so its active slab is carved to its end), then
 * freed in an order drawn from the input: last in first out, first in first out, or every
 * other one first. The model tracks at most HZF_MAX_LIVE blocks a thread, a quarter of a
 * slab of the smallest class, so without this the high block indices of small-class
 * slabs, and a slab going from fully carved to empty, would never be reached. The blocks
 * are held here, not in the model: each must classify as a slab block of the class
 * starting where it is (the page tag and index arithmetic at every index), none may
 * overlap another (each carries its index at both ends, verified before the frees) or a
 * live block (the full check the fill op asks for verifies them afterwards). */
static void hzf__sweep(hzf_ctx_t *c, const hz_sll_t *l, unsigned cls, unsigned order) {
  size_t size = hz_size_class_size(cls), n = HZ_SLAB_SIZE / size + l->count, got = 0;
  unsigned char **blk = malloc(n * sizeof *blk);
  if (!blk) return;
  for (; got < n && !hzf_failed(c); got++) {
    unsigned char *p = hzf__loop_malloc(c, size, "sweep malloc");
    if (!p) break;
    blk[got] = p;
    if (((uintptr_t)p ^ (uintptr_t)(got ? blk[got - 1] : NULL)) >= HZ_SLAB_SIZE)
      hzf_model_handed_slab(p); /* once per run of blocks in one slab */
    hz_ptr_info_t info = hz_classify(p);
    if (info.kind != HZ_PTR_SMALL || info.block != p || info.block_size != size ||
        info.size_class != (int)cls) {
      hzf_fail(c, "classify", "a slab block of its class, starting where it is",
               "sweep block %zu of class %u (%zu B) at +0x%zx: %s, block +0x%zx, size %zu, "
               "class %d", got, cls, size, (size_t)hzf_addr(p), hz_ptr_kind_name(info.kind),
               (size_t)hzf_addr(info.block), info.block_size, info.size_class);
      got++;
      break;
    }
    memcpy(p, &got, sizeof got);
    memcpy(p + size - sizeof got, &got, sizeof got);
  }
  for (size_t k = 0; k < got && !hzf_failed(c); k++) {
    size_t head, tail;
    memcpy(&head, blk[k], sizeof head);
    memcpy(&tail, blk[k] + size - sizeof tail, sizeof tail);
    if (head != k || tail != k)
      hzf_fail(c, "overlap", "the blocks of a sweep are disjoint",
               "sweep block %zu of class %u at +0x%zx holds the marks %zu and %zu", k, cls,
               (size_t)hzf_addr(blk[k]), head, tail);
  }
  for (size_t k = 0; k < got; k++) {
    size_t i = order == 0 ? got - 1 - k : order == 1 ? k
             : k < (got + 1) / 2 ? 2 * k : 2 * (k - (got + 1) / 2) + 1;
    hzf_api->free(blk[i]);
    if (!hzf_expect_no_fault(c, "sweep free")) break;
  }
  free(blk);
  hzf_note(c, "sweep of %zu, freed %s; ", got, hzf_sweep_order_name(order));
}

void hzf_op_fill(hzf_ctx_t *c) {
  hz_tcache_t *tc = hz_thread_cache();
  if (!tc) return;
  unsigned cls = c->op->pick % HZ_NUM_CLASSES, level = c->op->sel & 3;
  hz_sll_t *l = &tc->sll[cls];
  c->check_now = true;
  /* sel bit 2: first a steady loop of the class, judged for what it cost (above). */
  if ((c->op->sel & 4) && !hzf_free_running(c)) {
    hzf__steady(c, cls, hzf_steady_width(c->op->arg));
    if (hzf_failed(c)) return;
  }
  /* sel bit 3: a sweep of a whole slab's worth of the class (above). */
  if (c->op->sel & 8) {
    hzf__sweep(c, l, cls, hzf_sweep_order(c->op->arg));
    if (hzf_failed(c)) return;
  }
  if (level == 0) {
    hz_tcache_drain(tc, cls, UINT32_MAX);
    hzf_expect_no_fault(c, "drain");
    hzf_note(c, "class %u emptied", cls);
    return;
  }
  size_t size = hz_size_class_size(cls);
  unsigned first = c->m->n;
  /* Enough blocks to fill the list to its bound and one more; refills may grow the
   * bound as we go, so it is re-read each time. */
  for (unsigned k = 0; k < l->max + 2 && c->m->n < HZF_MAX_LIVE && !hzf_failed(c); k++) {
    void *p = hzf_api->malloc(size);
    if (!hzf_expect_no_fault(c, "malloc to fill") || hzf_model_add(c, p, size, 16, false) < 0)
      break;
  }
  if (hzf_failed(c)) return;
  uint32_t target = level == 1 ? l->max - 1 : l->max;
  if (l->count > target) hz_tcache_drain(tc, cls, l->count - target);
  while (c->m->n > first && l->count < target)
    if (!hzf__free_newest(c)) return;
  if (level == 3 && c->m->n > first && !hzf__free_newest(c)) return; /* the one over */
  hzf_note(c, "class %u at %u of %u", cls, l->count, l->max);
}

/* The child's half of a fork op: returns NULL or what went wrong. Runs with one thread;
 * must not return into the fuzzer (the caller _exits). */
static const char *hzf__fork_child(hzf_ctx_t *c, hzf_model_t *const *models, unsigned nm,
                                   char *msg, size_t n) {
  unsigned every = 1 + c->op->sel % 4u, count = 1 + c->op->pick % 32u, k = 0;
  size_t size = hzf_size_of(1, c->op->arg);
  hzf_faults()->count = 0;
  for (unsigned m = 0; m < nm; m++)
    for (unsigned i = 0; i < models[m]->n; i++, k++) {
      hzf_block_t *b = &models[m]->b[i];
      size_t bad = hzf_model_first_bad(b->p, b->req, b->fill, b->req);
      if (bad < b->req) {
        snprintf(msg, n, "block #%u changed across fork: byte %zu is 0x%02x", b->id, bad, b->p[bad]);
        return msg;
      }
      /* another thread's block, maybe its slab abandoned */
      if (k % every == 0) hzf_api->free(b->p);
    }
  void *mine[32];
  for (unsigned i = 0; i < count; i++) {
    mine[i] = hzf_api->malloc(size);
    if (!mine[i]) return snprintf(msg, n, "malloc(%zu) failed in the child", size), msg;
    memset(mine[i], 0x6B, size);
  }
  for (unsigned i = 0; i < count; i++) hzf_api->free(mine[i]);
  if (hzf_faults()->count)
    return snprintf(msg, n, "a correct call was reported: %s", hzf_faults()->message), msg;
  hz_thread_flush();
  hz_violation_t v;
  hz_census_t census;
  if (hz_heap_check(&v, &census)) return snprintf(msg, n, "heap check: %s: %s", v.invariant, v.message), msg;
  /* Only the forking thread lives on in the child: every other thread's cache must have
   * been abandoned and its id released, or its slabs stay owned by nobody forever. */
  if (census.threads > 1)
    return snprintf(msg, n, "%llu threads registered in the child, which has one",
                    (unsigned long long)census.threads), msg;
  return NULL;
}

/* Waits until the child writes to fd or exits: NULL then, else why it is stuck. */
static const char *hzf__wait_child(hzf_ctx_t *c, int fd, pid_t pid) {
  struct pollfd pf = {fd, POLLIN, 0};
  unsigned long last = 0;
  unsigned idle_s = 0;
  for (;;) {
    int ready = poll(&pf, 1, 1000);
    if (ready > 0) return NULL;
    if (ready < 0 && errno == EINTR) continue;
    unsigned long cpu_ms;
    char state;
    bool known = hzf_proc_stat(pid, 0, &state, &cpu_ms);
    if (known && cpu_ms >= hzf_hang_ms(c))
      return "the child ran for the watchdog's limit of CPU time without finishing (a cycle "
             "in a free list?)";
    if (known && (cpu_ms != last || state == 'R' || state == 'D')) {
      last = cpu_ms;
      idle_s = 0;
      hzf_heartbeat(c);
    } else if (++idle_s >= 5) {
      return known ? "the child slept for 5 s without gaining CPU time (a lock held across "
                     "fork?)"
                   : "the child made no progress for 5 s (a lock held across fork?)";
    }
  }
}

bool hzf_run_child(hzf_ctx_t *c, void (*child)(void *arg, int out), void *arg, hzf_child_t *r) {
  int fd[2];
  if (pipe(fd) != 0) return false;
  fflush(NULL);
  /* In the child, hz's fork handler (which abandons the other threads' caches) would meet
   * an armed race point and wait for a worker the child does not have. */
  hz_race_hook_t race = atomic_load(&hz_race_hook);
  hz_set_race_hook(NULL);
  pid_t pid = fork();
  if (pid != 0) hz_set_race_hook(race);
  if (pid < 0) {
    close(fd[0]), close(fd[1]);
    return false;
  }
  if (pid == 0) {
    close(fd[0]);
    hzf_oom_reset();
    child(arg, fd[1]);
    _exit(127); /* a child that returned */
  }
  close(fd[1]);
  r->len = 0;
  r->status = 0;
  /* To the end of what it writes: its exit closes the pipe. */
  while (!(r->stuck = hzf__wait_child(c, fd[0], pid))) {
    ssize_t got = read(fd[0], r->out + r->len, sizeof r->out - 1 - r->len);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0 || (r->len += (size_t)got) == sizeof r->out - 1) break;
  }
  r->out[r->len] = 0;
  close(fd[0]);
  if (r->stuck) kill(pid, SIGKILL);
  while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR) {
  }
  return true;
}

typedef struct {
  hzf_ctx_t *c;
  hzf_model_t *const *models;
  unsigned nmodels;
} hzf__fork_arg_t;

static void hzf__fork_main(void *arg, int out) {
  const hzf__fork_arg_t *a = arg;
  char msg[256];
  const char *why = hzf__fork_child(a->c, a->models, a->nmodels, msg, sizeof msg);
  if (why && write(out, why, strlen(why)) < 0) why = "(could not report)";
  _exit(why ? 1 : 0);
}

void hzf_op_fork(hzf_ctx_t *c, hzf_model_t *const *models, unsigned nmodels) {
  if (hzf_free_running(c)) return;
  hzf__fork_arg_t arg = {c, models, nmodels};
  static hzf_child_t r;
  if (!hzf_run_child(c, hzf__fork_main, &arg, &r)) {
    hzf_note(c, "fork refused: skipped");
    return;
  }
  c->check_now = true;
  const char *rule = "the child of a fork can allocate, free and pass the heap check";
  if (r.stuck) hzf_fail(c, "fork-child", rule, "%s", r.stuck);
  else if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
    hzf_fail(c, "fork-child", rule, "%s",
             r.out[0] ? r.out : WIFSIGNALED(r.status) ? "the child died of a signal" : "the child failed");
  if (!r.stuck) hzf_note(c, "child %s", r.out[0] ? r.out : "passed");
}
