/* One function per op kind: do the call on the calling thread, then hold the result to
 * the model. Fields are reduced modulo their ranges here, so every decoded op is valid;
 * an op with nothing to act on (no live block, nothing freed yet) does nothing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/api.h"
#include "fuzz/hzf_api.h"
#include "fuzz/hzf_exec.h"
#include "fuzz/hzf_oom.h"
#include "fuzz/hzf_oracle.h"

/* Foreign memory: hz must report it and never write it. A global buffer per worker: in
 * the free-running mode two workers' foreign ops would fill and compare one buffer at
 * once (a data race TSan reports in the harness, not in hz). */
static _Alignas(16) unsigned char hzf__global[HZF_MAX_THREADS][64];
static unsigned char *hzf__global_of(const hzf_ctx_t *c) {
  return hzf__global[c->slot % HZF_MAX_THREADS];
}
static const _Alignas(16) char hzf__rodata[64] = "hzfuzz: read-only data, never hz's";

static hz_tcache_t *hzf__tc(hzf_ctx_t *c) {
  hz_tcache_t *tc = hz_thread_cache();
  if (!tc) hzf_fail(c, "thread-cache", "this thread can register with hz", "no thread cache");
  return tc;
}

/* The three calls every misuse op can make with a bad pointer. Returns the result of
 * realloc (which must be NULL) or NULL. */
static void *hzf__bad_call(hzf_ctx_t *c, unsigned call, void *p, hz_op_t *op) {
  hzf_faults()->count = 0;
  switch (call & 3) {
    case 1: {
      *op = HZ_OP_REALLOC;
      hzf_errno_in(c);
      void *q = hzf_api->realloc(p, 64);
      int e = errno;
      if (q) hzf_fail(c, "misuse-result", "realloc of a bad pointer returns NULL",
                      "returned +0x%zx", (size_t)hzf_addr(q));
      else if (e != EINVAL)
        hzf_fail(c, "misuse-result", "realloc of a bad pointer sets errno to EINVAL",
                 "errno is %d (%s)", e, e ? strerror(e) : "unchanged");
      return q;
    }
    case 2: {
      *op = HZ_OP_USABLE_SIZE;
      size_t u = hzf_api->usable_size(p);
      if (u) hzf_fail(c, "misuse-result", "usable_size of a bad pointer is 0", "returned %zu", u);
      return NULL;
    }
    default:
      *op = HZ_OP_FREE;
      hzf_api->free(p);
      return NULL;
  }
}

static void hzf__malloc(hzf_ctx_t *c) {
  const hzf_op_t *o = c->op;
  size_t size = hzf_model_size(c->m, o->sel, o->arg);
  unsigned n = hzf_burst_of(o->sel), done = 0;
  for (; done < n && !hzf_failed(c); done++) {
    if (c->m->n == HZF_MAX_LIVE || hzf_model_large_full(c->m, size, 16)) break;
    void *p = hzf_api->malloc(size);
    if (!hzf_expect_no_fault(c, "malloc")) return;
    hzf_model_add(c, p, size, 16, false);
  }
  hzf_count_ops(c, done);
}

static void hzf__calloc(hzf_ctx_t *c) {
  const hzf_op_t *o = c->op;
  if (o->sel & 32) {
    size_t elem = 3 + (o->arg & 0xff), nmemb = SIZE_MAX / elem + 1;
    hzf_errno_in(c);
    void *p = hzf_api->calloc(nmemb, elem);
    if (p || errno != ENOMEM)
      hzf_fail(c, "calloc-overflow", "NULL with errno ENOMEM when nmemb * size overflows",
               "%s, errno %d", p ? "a block" : "NULL", errno);
    if (p) hzf_api->free(p);
    hzf_expect_no_fault(c, "calloc");
    return;
  }
  unsigned nm = 1 + ((o->sel >> 2) & 7), n = hzf_calloc_burst_of(o->pick), done = 0;
  size_t elem = hzf_model_size(c->m, o->sel, o->arg) / nm, req = elem * nm;
  /* A burst empties the thread's cache of the class down to its last block, whose link
   * word is NULL: calloc must not take that for fresh memory. */
  for (; done < n && !hzf_failed(c); done++) {
    if (c->m->n == HZF_MAX_LIVE || hzf_model_large_full(c->m, req, 16)) break;
    void *p = hzf_api->calloc(nm, elem);
    if (!hzf_expect_no_fault(c, "calloc")) return;
    hzf_model_add(c, p, req, 16, true);
  }
  hzf_count_ops(c, done);
}

void hzf_op_recarve(hzf_ctx_t *c) {
  /* Right after a reuse emptied slabs: allocate enough blocks of another class to take
   * one of them, so that a slab is re-carved for a class it did not hold before. */
  unsigned from = c->op->pick % HZ_NUM_CLASSES;
  unsigned cls = (from + 1 + c->op->arg % (HZ_NUM_CLASSES - 1)) % HZ_NUM_CLASSES;
  size_t size = hz_size_class_size(cls);
  unsigned n = 0, want = (unsigned)(HZ_SLAB_SIZE / size) + 1;
  if (want > 64) want = 64;
  for (; n < want && !hzf_failed(c) && c->m->n < HZF_MAX_LIVE; n++) {
    void *p = hzf_api->malloc(size);
    if (!hzf_expect_no_fault(c, "malloc after reuse")) return;
    hzf_model_add(c, p, size, 16, false);
  }
  hzf_note(c, "re-carve: %u x %zu B", n, size);
  hzf_count_ops(c, n);
}

/* One aligned allocation of `size` through function fn (0 aligned_alloc, 1 memalign,
 * 2 posix_memalign), held to the contract oracle: EINVAL where the documents require it,
 * ENOMEM only where allowed, else a block the model tracks. posix_memalign must leave
 * its out-parameter untouched when it fails, and hz's leaves errno as it was, failing or
 * not: it reports through its result (core/alloc.c). The shim's may not: when hz
 * fails, it asks the next allocator, which need not keep errno (nor does POSIX ask it
 * to), and says ENOMEM in errno too when that fails as well. */
void hzf_aligned_call(hzf_ctx_t *c, unsigned fn, size_t align, size_t size) {
  static const hzf_fn_t fns[3] = {HZF_FN_ALIGNED_ALLOC, HZF_FN_MEMALIGN, HZF_FN_POSIX_MEMALIGN};
  hzf_contract_t k = hzf_oracle(fns[fn], align, size);
  if (!k.must_fail && hzf_model_large_full(c->m, size, k.align)) return;
  void *const sentinel = (void *)&hzf__global[0][16];
  void *p = fn == 2 ? sentinel : NULL;
  int rc = 0;
  hzf_errno_in(c);
  int errno_in = errno;
  if (fn == 0) p = hzf_api->aligned_alloc(align, size);
  else if (fn == 1) p = hzf_api->memalign(align, size);
  else rc = hzf_api->posix_memalign(&p, align, size);
  int err = fn == 2 ? rc : errno;
  bool failed = fn == 2 ? rc != 0 : p == NULL;
  if (!hzf_expect_no_fault(c, "aligned allocation")) return;
  if (fn == 2 && !hzf_api->shim && errno != errno_in) {
    hzf_fail(c, "errno-kept", "hz_posix_memalign leaves errno as it was (it reports through "
             "its result)", "posix_memalign(%zu, %zu) returned %d and changed errno from %d "
             "to %d", align, size, rc, errno_in, errno);
    if (!failed) hzf_api->free(p);
    return;
  }
  if (fn == 2 && failed && p != sentinel) {
    hzf_fail(c, "out-param", "posix_memalign leaves *memptr untouched when it fails",
             "rc %d and *memptr changed to %p", rc, p);
    return;
  }
  if (failed && (k.must_fail || k.may_fail)) {
    if (err != k.err && !(k.may_fail && err == ENOMEM))
      hzf_fail(c, "bad-alignment", "the documented error for the call",
               "%s(%zu, %zu): error %d, expected %d", hzf_fn_name(fns[fn]), align, size, err, k.err);
    hzf_note(c, "error %d as documented", err);
    c->check_now = true;
    return;
  }
  if (k.must_fail) {
    hzf_fail(c, "bad-alignment", "failure as documented (EINVAL for an invalid alignment, ENOMEM "
             "for an impossible size)", "%s(%zu, %zu): a block, expected error %d",
             hzf_fn_name(fns[fn]), align, size, k.err);
    if (!failed) hzf_api->free(p);
    return;
  }
  if (failed) {
    errno = err;
    p = NULL;
  }
  hzf_model_add(c, p, size, k.align, false);
}

/* The shim's valloc and pvalloc (glibc's manual): memalign(page, size), and memalign(page,
 * size rounded up to whole pages; one page for 0). Sizes here stay far from overflow. */
static void hzf__valloc(hzf_ctx_t *c, bool pv, size_t size) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), req = size;
  if (pv) req = size ? (size + page - 1) & ~(page - 1) : page;
  if (hzf_model_large_full(c->m, req, page)) return;
  hzf_errno_in(c);
  void *p = pv ? hzf_api->pvalloc(size) : hzf_api->valloc(size);
  if (!hzf_expect_no_fault(c, pv ? "pvalloc" : "valloc")) return;
  hzf_note(c, "%s(%zu) ", pv ? "pvalloc" : "valloc", size);
  hzf_model_add(c, p, req, page, false);
}

static void hzf__memalign(hzf_ctx_t *c) {
  const hzf_op_t *o = c->op;
  size_t size = hzf_size_of(o->sel & 3, o->arg);
  unsigned sh = o->pick % 23, fn = (o->sel >> 2) & 3;
  if (fn == 3 && hzf_api->valloc) { /* the shim: its page-aligned entry points */
    hzf__valloc(c, (o->sel & 16) != 0, size);
    return;
  }
  size_t align = (size_t)1 << sh;
  if (o->sel & 16) align = sh >= 4 ? (align | 8) : 24; /* not a power of two */
  hzf_aligned_call(c, fn > 2 ? 2 : fn, align, size);
}

static void hzf__realloc(hzf_ctx_t *c) {
  const hzf_op_t *o = c->op;
  hzf_model_t *m = c->m;
  int i = hzf_model_pick(m, o->pick);
  if (i < 0 || (o->sel & 32)) {
    size_t size = hzf_model_size(c->m, o->sel, o->arg);
    if (hzf_model_large_full(m, size, 16)) return;
    void *p = hzf_api->realloc(NULL, size);
    if (hzf_expect_no_fault(c, "realloc(NULL)")) hzf_model_add(c, p, size, 16, false);
    return;
  }
  if (!hzf_model_verify(c, (unsigned)i, "before realloc")) return;
  hzf_block_t *b = &m->b[i];
  size_t old = b->req, ns;
  if (o->sel & 4) ns = 0;
  else if (o->sel & 8) ns = hzf_realloc_relative(old, o->sel, o->arg);
  else ns = hzf_model_size(c->m, o->sel, o->arg);
  bool newlarge;
  size_t newcap = hzf_expected_usable(ns, 16, &newlarge);
  if (!b->large && newlarge && m->nlarge >= HZF_MAX_LARGE) return;
  unsigned char *p = b->p;
  /* dirty-bound below: only a large hz block's realloc can release an extent. */
  bool was_large = b->large && hz_in_arena(p);
  hz_stats_t before;
  if (was_large) hz_get_stats(&before);
  bool room = was_large && hzf_extent_room(c, p, ns);
  hzf_errno_in(c);
  /* The shim's reallocarray is its realloc behind an overflow check: half the blocks go
   * through it, as two factors when the size has them. */
  void *q = !hzf_api->reallocarray || !(b->id & 1) ? hzf_api->realloc(p, ns)
            : ns % 2 == 0 && ns ? hzf_api->reallocarray(p, 2, ns / 2)
                                : hzf_api->reallocarray(p, ns, 1);
  if (!hzf_expect_no_fault(c, "realloc")) return;
  if (ns == 0) {
    if (q) hzf_fail(c, "realloc-zero", "NULL: realloc(p, 0) frees p", "a block");
    hzf_note(c, "#%u freed", b->id);
    hzf_model_remove(m, (unsigned)i);
    if (was_large) hzf_trim_bounded(c, "a large block's realloc to 0");
    return;
  }
  if (!q) { /* the shim owes a fallback here too: hz keeps p, the next allocator takes it */
    int err = errno;
    if (hzf_shim_null_ok(c, ns, 16, err) && hzf_expect_oom(c, err, "realloc"))
      hzf_realloc_kept(c, (unsigned)i);
    return;
  }
  if (!hz_in_arena(q)) {
    hzf_fallback_realloc(c, (unsigned)i, q, ns, ns > HZF_ORACLE_HUGE);
    return;
  }
  if (room && !hzf_extent_grew_in_place(c, p, q, ns)) return;
  if (q != p && newlarge && !hzf_extent_fits(c, q, ns)) return;
  /* A large block's realloc ends with its extent's release when it moved, or with a
   * shrink in place when an extent was released: both trim the dirty cache last. */
  if (was_large) {
    hz_stats_t now;
    hz_get_stats(&now);
    if ((q != p || now.superslabs_released != before.superslabs_released) &&
        !hzf_trim_bounded(c, q != p ? "a large block's move" : "a large block's shrink"))
      return;
  }
  size_t keep = old < ns ? old : ns;
  /* In place, a slab block keeps its class (which an aligned allocation may have chosen
   * above the size's own); a large block stays large, whatever the new size, and its
   * usable size follows the new request. Where a block of which size may stay is the
   * allocator's policy, not the contract: the model only follows what happened. */
  if (q == p && !b->large) newcap = b->cap, newlarge = false;
  else if (q == p) newcap = (ns + 4095) & ~(size_t)4095, newlarge = true;
  if (hzf_checking(c)) {
    unsigned char *u = q;
    size_t k = hzf_model_first_bad(u, old, b->fill, keep); /* the old block's checked bytes */
    if (k < old) {
      hzf_fail(c, "realloc-prefix", "the first min(old, new) bytes survive realloc",
               "block #%u %zu -> %zu B: byte %zu is 0x%02x, fill 0x%02x", b->id, old, ns, k,
               u[k], b->fill);
      return;
    }
    size_t usable = hzf_api->usable_size(q);
    if (!hzf_expect_no_fault(c, "usable_size after realloc")) return;
    if ((uintptr_t)q % 16 || usable < ns || usable != newcap) {
      hzf_fail(c, "usable-size", "16-aligned, requested <= usable == the class (or extent) size",
               "+0x%zx usable %zu for %zu B, expected %zu", (size_t)hzf_addr(q), usable, ns,
               newcap);
      return;
    }
    int ov = hzf_model_overlap(m, q, newcap, i);
    if (ov >= 0) {
      hzf_fail(c, "overlap", "a block disjoint from every live block",
               "realloc result +0x%zx overlaps block #%u", (size_t)hzf_addr(q), m->b[ov].id);
      return;
    }
  }
  if (q != p) {
    hzf_model_handed(q);
    hzf_model_bury(m, p, old);
    b->thread = (uint8_t)c->slot;
  }
  m->nlarge -= b->large;
  b->p = q;
  b->req = ns;
  b->cap = newcap;
  b->large = newlarge;
  m->nlarge += b->large;
  /* The new size moves the tail window (blocks over 8 KiB) onto bytes the model never
   * filled, and a grown block has new bytes: fill the checked bytes again. */
  if (hzf_checking(c)) hzf_model_fill(b);
  hzf_note(c, "#%u %s +0x%zx (%zu B)", b->id, q == p ? "in place" : "moved to",
           (size_t)hzf_addr(q), ns);
}

void hzf_realloc_kept(hzf_ctx_t *c, unsigned i) {
  hzf_block_t *b = &c->m->b[i];
  if (!hzf_model_verify(c, i, "after a failed realloc")) return;
  hz_ptr_info_t info = hz_classify(b->p);
  size_t u = hzf_api->usable_size(b->p);
  if (!hzf_expect_no_fault(c, "usable_size after a failed realloc")) return;
  if (u != b->cap || (info.kind != HZ_PTR_SMALL && info.kind != HZ_PTR_LARGE))
    hzf_fail(c, "realloc-failed", "a failed realloc leaves the old block live and unchanged",
             "block #%u is %s with usable %zu (was %zu)", b->id, hz_ptr_kind_name(info.kind), u,
             b->cap);
  hzf_note(c, "#%u kept ", b->id);
}

/* Index of the block a free chooses: which 0 any, 1 another thread's, 2 own, 3 newest. */
static int hzf__choose(const hzf_ctx_t *c, unsigned which, unsigned pick) {
  const hzf_model_t *m = c->m;
  if (!m->n) return -1;
  if (which == 3) return (int)m->n - 1;
  if (which == 1 || which == 2)
    for (unsigned k = 0; k < m->n; k++) {
      unsigned i = (pick + k) % m->n;
      if ((m->b[i].thread != c->slot) == (which == 1)) return (int)i;
    }
  return (int)(pick % m->n);
}

/* Another live small block of the same slab as block i, or -1. */
static int hzf__slab_mate(const hzf_model_t *m, unsigned i) {
  if (m->b[i].large) return -1;
  for (unsigned k = 1; k < m->n; k++) {
    unsigned j = (i + k) % m->n;
    if (!m->b[j].large && hz_slab_of(m->b[j].p) == hz_slab_of(m->b[i].p)) return (int)j;
  }
  return -1;
}

static void hzf__free(hzf_ctx_t *c) {
  const hzf_op_t *o = c->op;
  unsigned n = hzf_burst_of(o->sel), done = 0;
  for (; done < n && !hzf_failed(c); done++) {
    int i = hzf__choose(c, o->sel & 3, o->pick + done);
    if (i < 0 || !hzf_model_verify(c, (unsigned)i, "before free")) break;
    void *p = c->m->b[i].p;
    bool large = c->m->b[i].large && hz_in_arena(p);
    hzf_note(c, "#%u ", c->m->b[i].id);
    /* Racing: if this free is a remote push, a free of a block of the same slab lands
     * between its link and its CAS, as another thread's could. */
    int mate = done == 0 && hzf_free_races(o->arg) ? hzf__slab_mate(c->m, (unsigned)i) : -1;
    if (mate >= 0 && !hzf_model_verify(c, (unsigned)mate, "before free")) break;
    hzf_race_inline(mate >= 0 ? c->m->b[mate].p : NULL);
    hzf_takes_t t; /* not for a racing free: it flushes below, and a flush may adopt */
    hzf_takes_begin(c, &t, mate < 0);
    if (hzf_api->cfree && (c->m->b[i].id & 1)) hzf_api->cfree(p); /* the shim's alias */
    else hzf_api->free(p);
    /* A remote free is published with its batch, and only then reaches the race point. */
    if (mate >= 0 && !hzf_race_inline_fired()) hz_thread_flush();
    void *raced = mate >= 0 && hzf_race_inline_fired() ? c->m->b[mate].p : NULL;
    hzf_race_inline(NULL);
    if (!hzf_expect_no_fault(c, "free") || !hzf_takes_nothing(c, &t, "free")) return;
    hzf_model_remove(c->m, (unsigned)i);
    if (large && !hzf_trim_bounded(c, "a large block's free")) return;
    int j = raced ? hzf_model_overlap(c->m, raced, 1, -1) : -1;
    if (j >= 0) {
      hzf_note(c, "raced by #%u ", c->m->b[j].id);
      hzf_model_remove(c->m, (unsigned)j);
    }
  }
  hzf_count_ops(c, done);
}

static void hzf__usable(hzf_ctx_t *c) {
  int i = hzf_model_pick(c->m, c->op->pick);
  if (i < 0) return;
  hzf_block_t *b = &c->m->b[i];
  size_t u = hzf_api->usable_size(b->p);
  if (!hzf_expect_no_fault(c, "usable_size")) return;
  if (u < b->req || u != b->cap)
    hzf_fail(c, "usable-size", "requested <= usable == the class (or extent) size",
             "block #%u (%zu B): usable %zu, expected %zu", b->id, b->req, u, b->cap);
  hzf_note(c, "#%u -> %zu", b->id, u);
}

static void hzf__write(hzf_ctx_t *c) {
  int i = hzf_model_pick(c->m, c->op->pick);
  if (i < 0 || !hzf_model_verify(c, (unsigned)i, "before write")) return;
  hzf_block_t *b = &c->m->b[i];
  b->fill = (uint8_t)(c->op->arg & 0xff);
  if (b->fill == 0) b->fill = 0xA5; /* 0 stands for calloc memory (hzf_model_first_bad) */
  if (hzf_checking(c)) hzf_model_fill(b);
  else memset(b->p, b->fill, b->req < 64 ? b->req : 64);
  hzf_note(c, "#%u fill 0x%02x", b->id, b->fill);
}

/* ---- the TLS SLL, driven through the internal API ------------------------------ */
static void hzf__sll_valid(hzf_ctx_t *c, const hz_sll_t *l, unsigned cls) {
  const char *why = hz_sll_validate(l);
  if (!why && l->count > l->max) why = "count <= max";
  if (why) hzf_fail(c, "sll", "a TLS SLL's count is its length and at most its bound",
                    "class %u: %s (count %u, max %u)", cls, why, l->count, l->max);
}

static void hzf__sll_pop(hzf_ctx_t *c) {
  hz_tcache_t *tc = hzf__tc(c);
  if (!tc) return;
  unsigned cls = c->op->pick % HZ_NUM_CLASSES, n = 1 + c->op->arg % 64u, done = 0;
  hz_sll_t *l = &tc->sll[cls];
  for (; done < n && c->m->n < HZF_MAX_LIVE && !hzf_failed(c); done++) {
    if (!l->head && !hz_tcache_refill(tc, cls)) {
      if (!hzf_oom_hit(c))
        hzf_fail(c, "null-result", "a refill succeeds", "class %u refill failed", cls);
      c->check_now = true;
      break;
    }
    void *b = hz_sll_pop(l);
    hz_block_out(b, cls);
    hzf_model_add(c, b, hz_class_size[cls], 16, false);
  }
  hzf_expect_no_fault(c, "sll pop");
  hzf__sll_valid(c, l, cls);
  hzf_count_ops(c, done);
}

static void hzf__sll_push(hzf_ctx_t *c) {
  hz_tcache_t *tc = hzf__tc(c);
  if (!tc) return;
  hzf_model_t *m = c->m;
  unsigned n = 1 + c->op->arg % 64u, done = 0;
  for (; done < n && !hzf_failed(c); done++) {
    int found = -1;
    uint32_t tag = 0;
    for (unsigned k = 0; k < m->n && found < 0; k++) {
      unsigned i = (c->op->pick + done + k) % m->n;
      if (m->b[i].large || !hz_in_arena(m->b[i].p)) continue;
      tag = hz_ptag_get(m->b[i].p);
      if (tag && HZ_TAG_OWNER(tag) == tc->tid) found = (int)i;
    }
    if (found < 0 || !hzf_model_verify(c, (unsigned)found, "before sll push")) break;
    unsigned cls = HZ_TAG_CLASS(tag);
    hz_sll_t *l = &tc->sll[cls];
    if (l->count >= l->max) hz_tcache_drain(tc, cls, l->max / 2 ? l->max / 2 : 1);
    hzf_note(c, "#%u ", m->b[found].id);
    hz_block_in(m->b[found].p, cls);
    hz_sll_push(l, m->b[found].p);
    hzf_model_remove(m, (unsigned)found);
    hzf__sll_valid(c, l, cls);
  }
  hzf_expect_no_fault(c, "sll push");
  hzf_count_ops(c, done);
}

static void hzf__sll_splice(hzf_ctx_t *c) {
  hz_tcache_t *tc = hzf__tc(c);
  if (!tc) return;
  unsigned cls = c->op->pick % HZ_NUM_CLASSES;
  uint32_t want = 1 + c->op->arg % 256u;
  hz_sll_t *l = &tc->sll[cls];
  uint32_t before = l->count, expect = want < before ? want : before;
  void *head, *tail;
  uint32_t got = hz_sll_take(l, want, &head, &tail);
  uint32_t len = 0;
  void *last = NULL;
  for (void *b = head; b && len <= got; b = hz_link_get(b)) last = b, len++;
  if (got != expect || len != got || last != tail || l->count != before - got) {
    hzf_fail(c, "sll", "take(n) detaches min(n, count) blocks as a NULL-terminated chain",
             "class %u count %u take %u: got %u, chain %u, count after %u", cls, before, want,
             got, len, l->count);
    return;
  }
  if ((c->op->sel & 1) && got > 1) { /* reverse: the same blocks, in another order */
    void *prev = NULL, *b = head;
    while (b) {
      void *next = hz_link_get(b);
      hz_link_set(b, prev);
      prev = b;
      b = next;
    }
    tail = head;
    head = prev;
  }
  if (got) hz_sll_splice(l, head, tail, got);
  if (l->count != before)
    hzf_fail(c, "sll", "splice restores the count", "class %u: %u -> %u", cls, before, l->count);
  hzf__sll_valid(c, l, cls);
  hzf_note(c, "class %u: %u of %u", cls, got, before);
}

static void hzf__sll_drain(hzf_ctx_t *c) {
  hz_tcache_t *tc = hzf__tc(c);
  if (!tc) return;
  unsigned cls = c->op->pick % HZ_NUM_CLASSES;
  uint32_t n = (c->op->sel & 1) ? UINT32_MAX : c->op->arg % 512u;
  hz_sll_t *l = &tc->sll[cls];
  uint32_t before = l->count, expect = before - (n < before ? n : before);
  c->check_now = true;
  hz_tcache_drain(tc, cls, n);
  hzf_expect_no_fault(c, "drain");
  if (l->count != expect)
    hzf_fail(c, "sll", "drain(n) removes min(n, count) blocks", "class %u: %u - %u left %u", cls,
             before, n, l->count);
  hzf__sll_valid(c, l, cls);
  hzf_note(c, "class %u: %u -> %u", cls, before, l->count);
}

void hzf_op_flush(hzf_ctx_t *c) {
  c->check_now = true; /* slabs went back to the pool: the full check follows */
  hz_thread_flush();
  hzf_expect_no_fault(c, "flush");
  if (hz_tc.tid == HZ_TID_NONE) return;
  for (unsigned k = 0; k < HZ_NUM_CLASSES; k++)
    if (hz_tc.sll[k].count || hz_tc.sll[k].head) {
      hzf_fail(c, "flush", "every TLS SLL of the thread is empty after a flush",
               "class %u holds %u blocks", k, hz_tc.sll[k].count);
      return;
    }
}

void hzf_op_reuse_free(hzf_ctx_t *c) {
  hzf_model_t *m = c->m;
  unsigned scope = c->op->sel & 3, cls = c->op->pick % HZ_NUM_CLASSES, n = 0;
  for (unsigned i = m->n; i-- > 0 && !hzf_failed(c);) {
    hzf_block_t *b = &m->b[i];
    bool hit = scope == 3 || (scope == 2 && b->thread == c->slot) ||
               (!b->large && (scope == 1 || hz_size_to_class_checked(b->cap) == (int)cls));
    if (!hit || !hzf_model_verify(c, i, "before reuse")) continue;
    hzf_api->free(b->p);
    if (!hzf_expect_no_fault(c, "free")) return;
    hzf_model_remove(m, i);
    n++;
  }
  hzf_note(c, "freed %u, then every thread flushes", n);
  hzf_count_ops(c, n);
}

/* ---- misuse --------------------------------------------------------------------- */

/* Addresses at the arena's edges, where its range tests have their boundaries (an
 * off-by-one there reads past the page-tag table or claims a neighbour's memory). Inside:
 * the start of the last page or the last granule. Outside: an address out of nowhere,
 * the first byte past the end, or the last granule before the start. */
static uintptr_t hzf__arena_tail(unsigned arg) {
  return hz_arena.base + HZ_ARENA_SIZE - (arg & 1 ? 16 : 4096);
}
static uintptr_t hzf__wild(unsigned arg) {
  switch (arg % 3) {
    case 0: return 0x7ff0deadbee0ull;
    case 1: return hz_arena.base + HZ_ARENA_SIZE;
    default: return hz_arena.base - 16;
  }
}

static void hzf__foreign(hzf_ctx_t *c) {
  unsigned src = c->op->pick % 8, call = c->op->sel & 3;
  if (hzf_api->shim && src != 4 && src != 5) {
    hzf_foreign_routed(c, call);
    return;
  }
  _Alignas(16) unsigned char stack[64];
  void *p = NULL, *map = NULL;
  unsigned char *watch = NULL; /* bytes hz must not touch */
  unsigned allowed = HZF_BIT(HZ_FAULT_FOREIGN);
  switch (src) {
    case 0: p = watch = malloc(64); break;
    case 1: p = watch = stack; break;
    case 2: p = watch = hzf__global_of(c); break;
    case 3:
      map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      p = watch = map == MAP_FAILED ? NULL : map;
      break;
    case 4: p = NULL; break;
    case 5: /* the arena's last page or last granule: hz memory never handed out */
      p = (void *)hzf__arena_tail(c->op->arg);
      allowed = HZF_BIT(HZ_FAULT_NOT_ALLOCATED);
      break;
    case 6: p = (void *)hzf__rodata; break;
    default: p = (void *)hzf__wild(c->op->arg); break;
  }
  /* The wild address fell in the arena (tested here, not with hz's own range test). */
  if (p && (uintptr_t)p - hz_arena.base < HZ_ARENA_SIZE && src != 5) return;
  if (watch) memset(watch, 0x5C, 64);
  if (!p) { /* NULL: free and usable_size are quiet no-ops; realloc is malloc */
    if (call == 1) {
      size_t size = hzf_size_of(1, c->op->arg);
      void *q = hzf_api->realloc(NULL, size);
      if (hzf_expect_no_fault(c, "realloc(NULL)"))
        hzf_model_add(c, q, size, 16, false);
    } else {
      hzf_faults()->count = 0;
      if (call == 2 ? hzf_api->usable_size(NULL) != 0 : (hzf_api->free(NULL), 0))
        hzf_fail(c, "misuse-result", "usable_size(NULL) == 0", "non-zero");
      hzf_expect_no_fault(c, "free(NULL) or usable_size(NULL)");
    }
    return;
  }
  hz_op_t op;
  hzf__bad_call(c, call, p, &op);
  hzf_expect_fault(c, allowed, op, "foreign pointer");
  if (watch)
    for (unsigned k = 0; k < 64; k++)
      if (watch[k] != 0x5C) {
        hzf_fail(c, "foreign-write", "hz never writes memory it does not own",
                 "byte %u of the foreign buffer changed", k);
        break;
      }
  if (src == 0) free(p);
  if (map) munmap(map, 4096);
}

/* An offset in [0, n): arg itself when it covers the range, else arg spread over all
 * of it (a 16-bit argument reaches anywhere inside the largest blocks). */
static size_t hzf__spread(unsigned arg, size_t n) {
  return n <= 65536 ? arg % n : (size_t)(((uint64_t)arg * 0x9E3779B1u) % n);
}

/* A misalignment of 1..15 bytes. Half of them are a single bit (1, 2, 4 or 8): an
 * alignment test whose mask lost one bit (`& 15` turned into `& 14` or `& 7`) then
 * misses one offset in four of those, not one in fifteen. */
static size_t hzf__misalign(unsigned x) { return (x & 1) ? 1u << ((x >> 1) & 3) : 1 + x % 15u; }

/* An address inside live block b: interior (16-aligned) or misaligned. */
static unsigned char *hzf__inside(const hzf_block_t *b, bool misaligned, unsigned arg,
                                  hz_fault_kind_t *kind) {
  size_t off, cap = b->cap < 16 ? 16 : b->cap; /* a large block of 0 bytes has a page */
  if (misaligned || cap < 32) {
    off = hzf__misalign(arg) + 16 * hzf__spread(arg >> 4, cap / 16);
    *kind = HZ_FAULT_MISALIGNED;
  } else {
    off = 16 * (1 + hzf__spread(arg, cap / 16 - 1));
    *kind = HZ_FAULT_INTERIOR;
  }
  return b->p + off;
}

/* free/realloc/usable_size of the start of a slot k blocks past a live small block, in
 * its slab: a live block (skipped: that would be a correct call), or a slot that is free,
 * never carved, or carved but never handed out. Whatever it is, a slot hz never handed
 * out must not be reported as a double free. With sel & 4 the address is a few bytes
 * into that slot, or into the slab's tail past its last slot: not 16-byte aligned, so
 * "misaligned" whatever the slot holds. */
static void hzf__neighbour(hzf_ctx_t *c, unsigned i) {
  const hzf_block_t *b = &c->m->b[i];
  if (b->large || hzf_free_running(c)) return;
  size_t k = 1 + c->op->arg % 8u;
  unsigned char *q = b->p + k * b->cap;
  if (((uintptr_t)q & (HZ_SLAB_SIZE - 1)) < ((uintptr_t)b->p & (HZ_SLAB_SIZE - 1)) ||
      (uintptr_t)q - ((uintptr_t)b->p & ~(uintptr_t)(HZ_SLAB_SIZE - 1)) >= HZ_SLAB_SIZE)
    return; /* past the end of the slab */
  hz_op_t op;
  if (c->op->sel & 4) {
    q += hzf__misalign(c->op->arg >> 3); /* still inside the slab: it ends 16-byte aligned */
    hzf__bad_call(c, c->op->sel, q, &op);
    hzf_expect_fault(c, HZF_BIT(HZ_FAULT_MISALIGNED), op, "a misaligned address in a slot");
    return;
  }
  const hzf_block_t *live = hzf_model_live(c->m, q, 1);
  if (live && live->p == q) return;
  bool handed = hzf_model_maybe_handed(q);
  unsigned allowed = HZF_BIT(HZ_FAULT_NOT_ALLOCATED) | HZF_BIT(HZ_FAULT_INTERIOR);
  if (handed) allowed |= HZF_BIT(HZ_FAULT_DOUBLE_FREE);
  hzf__bad_call(c, c->op->sel, q, &op);
  hzf_expect_fault(c, allowed, op, handed ? "a freed slot" : "a slot never handed out");
}

static void hzf__interior(hzf_ctx_t *c) {
  int i = hzf_model_pick(c->m, c->op->pick);
  if (i < 0) return;
  if (c->op->sel & 8) {
    hzf__neighbour(c, (unsigned)i);
    return;
  }
  hz_fault_kind_t kind;
  unsigned char *q = hzf__inside(&c->m->b[i], c->op->sel & 4, c->op->arg, &kind);
  hz_op_t op;
  hzf__bad_call(c, c->op->sel, q, &op);
  if (hzf_expect_fault(c, HZF_BIT(kind), op, "interior or misaligned pointer"))
    hzf_model_verify(c, (unsigned)i, "after a rejected interior free");
}

/* Free a block, then free, realloc or usable_size it again. The cache level at which the
 * second call arrives (empty, below, at or past the bound) is set by a `fill` op before
 * it, the general mechanism, not by this op. */
static void hzf__double_free(hzf_ctx_t *c) {
  int i = hzf_model_pick(c->m, c->op->pick);
  if (i < 0 || !hzf_model_verify(c, (unsigned)i, "before free")) return;
  void *p = c->m->b[i].p;
  hzf_note(c, "#%u ", c->m->b[i].id);
  hzf_api->free(p);
  if (!hzf_expect_no_fault(c, "first free")) return;
  hzf_model_remove(c->m, (unsigned)i);
  hz_op_t op;
  hzf__bad_call(c, c->op->sel, p, &op);
  hzf_expect_fault(c, HZF_BIT(HZ_FAULT_DOUBLE_FREE) | HZF_BIT(HZ_FAULT_NOT_ALLOCATED), op,
                   "second free of a block");
}

static void hzf__stale(hzf_ctx_t *c) {
  hzf_model_t *m = c->m;
  if (!m->ngrave) return;
  void *p = (void *)m->grave[c->op->pick % m->ngrave];
  if (hzf_model_live(m, p, 1)) {
    /* reused since: a free through it would be a correct free */
    hzf_note(c, "+0x%zx is inside a live block now: skipped", (size_t)hzf_addr(p));
    return;
  }
  hz_op_t op;
  hzf__bad_call(c, c->op->sel, p, &op);
  hzf_expect_fault(c, HZF_BIT(HZ_FAULT_DOUBLE_FREE) | HZF_BIT(HZ_FAULT_NOT_ALLOCATED) |
                          HZF_BIT(HZ_FAULT_INTERIOR), op, "stale pointer");
}

/* hz_classify(p) held to what the model knows: a kind among `allowed` (a bit per
 * hz_ptr_kind_t), the containing block and its size when given, and, for a pointer into
 * live block i (i >= 0), the record's equations (hz_debug.h): a pointer into a small
 * block carries its slab's class; one into a large block or outside hz has class -1 and
 * no owner, and a foreign one no block either. Freed and unallocated addresses may be in
 * a slab or not. */
static bool hzf__classified(hzf_ctx_t *c, const void *p, unsigned allowed, const void *block,
                            size_t size, int i, const char *what) {
  hzf_model_t *m = c->m;
  hz_ptr_info_t info = hz_classify(p);
  hzf_expect_no_fault(c, "classify");
  bool ok = (allowed >> info.kind) & 1;
  if (ok && block && info.block != block) ok = false;
  if (ok && size && info.block_size != size) ok = false;
  if (ok && i >= 0) {
    int cls = m->b[i].large ? -1 : hz_size_to_class_checked(m->b[i].cap);
    if (info.size_class != cls || (m->b[i].large && info.owner)) ok = false;
  }
  if (ok && info.kind == HZ_PTR_FOREIGN &&
      (info.block || info.block_size || info.size_class != -1 || info.owner))
    ok = false;
  if (!ok) {
    char want[96] = "";
    for (unsigned k = 0; k <= HZ_PTR_UNALLOCATED; k++)
      if ((allowed >> k) & 1)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", *want ? "|" : "",
                 hz_ptr_kind_name((hz_ptr_kind_t)k));
    hzf_fail(c, "classify", "the pointer's kind, containing block and size",
             "%s pointer +0x%zx: kind %s (want %s), block +0x%zx (want +0x%zx), size %zu "
             "(want %zu), class %d, owner %u", what, (size_t)hzf_addr(p),
             hz_ptr_kind_name(info.kind), want, (size_t)hzf_addr(info.block),
             (size_t)hzf_addr(block), info.block_size, size, info.size_class, info.owner);
  }
  return ok;
}

/* Classification is a pure query, so the op asks about all 16 addresses of the 16-byte
 * granule its pointer is in, not only the pointer: the aligned one gets the kind the
 * pointer class allows there, the 15 others "misaligned" (or "foreign", outside hz). A
 * test that reads the low bits wrong (a mask short of a bit, a residue taken for
 * aligned) is then seen on every op of the class it breaks, whichever residue the
 * argument drew: on large blocks and stale pointers, which few ops pick, as often as
 * on small blocks. */
static void hzf__classify(hzf_ctx_t *c) {
  hzf_model_t *m = c->m;
  unsigned what = c->op->sel & 7;
  if (what >= 6) what -= 6;
  int i = hzf_model_pick(m, c->op->pick);
  if (what <= 2 && i < 0) return;
  _Alignas(16) unsigned char stack[32];
  const unsigned char *p, *g, *block = NULL;
  unsigned aligned, misaligned = 1u << HZ_PTR_MISALIGNED; /* a bit per hz_ptr_kind_t */
  size_t size = 0;
  if (what <= 2) { /* a live block: its start, or an interior or misaligned address */
    const hzf_block_t *b = &m->b[i];
    hz_fault_kind_t fk;
    p = what == 0 ? b->p : hzf__inside(b, what == 2, c->op->arg, &fk);
    g = b->p + ((size_t)(p - b->p) & ~(size_t)15);
    block = b->p;
    if (g == b->p) {
      aligned = 1u << (b->large ? HZ_PTR_LARGE : HZ_PTR_SMALL);
      size = b->cap;
    } else {
      aligned = 1u << HZ_PTR_INTERIOR;
    }
  } else if (what == 3) { /* never hz's: every address of the granule is foreign */
    const void *srcs[5] = {stack, hzf__global_of(c), hzf__rodata, (const void *)hzf__wild(1),
                           (const void *)hzf__wild(2)};
    p = g = srcs[c->op->pick % 5];
    aligned = misaligned = 1u << HZ_PTR_FOREIGN;
    i = -1;
  } else if (what == 4) { /* a block freed since, not reused by a live one */
    if (!m->ngrave || hzf_free_running(c)) return;
    p = g = (const unsigned char *)m->grave[c->op->pick % m->ngrave];
    if (hzf_model_live(m, p, 16)) return;
    aligned = 1u << HZ_PTR_FREE | 1u << HZ_PTR_UNALLOCATED | 1u << HZ_PTR_INTERIOR;
    i = -1;
  } else { /* the arena's last page or last granule, which nothing reaches */
    p = g = (const unsigned char *)hzf__arena_tail(c->op->arg);
    aligned = 1u << HZ_PTR_UNALLOCATED;
    i = -1;
  }
  const char *name = what == 0 ? "live" : what <= 2 ? "inner" : "other";
  for (unsigned r = 0; r < 16; r++)
    if (!hzf__classified(c, g + r, r ? misaligned : aligned, block, r ? 0 : size, i, name))
      return;
  /* The kind of p itself, which the granule's checks asked about without keeping: only
   * a trace shows it, so only a trace asks again. */
  if (hzf_tracing(c))
    hzf_note(c, "+0x%zx is %s", (size_t)hzf_addr(p), hz_ptr_kind_name(hz_classify(p).kind));
}

void hzf_free_everything(hzf_ctx_t *c, hzf_model_t *m) {
  hzf_model_t *saved = c->m;
  c->m = m;
  hzf_faults()->count = 0;
  while (m->n && !hzf_failed(c)) {
    unsigned i = m->n - 1;
    if (!hzf_model_verify(c, i, "at the end of the input")) break;
    hzf_api->free(m->b[i].p);
    if (!hzf_expect_no_fault(c, "free at the end of the input")) break;
    hzf_model_remove(m, i);
  }
  c->m = saved;
}

void hzf_op_run(hzf_ctx_t *c) {
  hzf_faults()->count = 0;
  c->oom_mark = hzf_oom_thread_refusals();
  switch (c->op->kind) {
    case HZF_MALLOC: hzf__malloc(c); return;
    case HZF_CALLOC: hzf__calloc(c); break;
    case HZF_MEMALIGN: hzf__memalign(c); break;
    case HZF_REALLOC: hzf__realloc(c); break;
    case HZF_FREE: hzf__free(c); return;
    case HZF_USABLE: hzf__usable(c); break;
    case HZF_WRITE: hzf__write(c); break;
    case HZF_SLL_POP: hzf__sll_pop(c); return;
    case HZF_SLL_PUSH: hzf__sll_push(c); return;
    case HZF_SLL_SPLICE: hzf__sll_splice(c); break;
    case HZF_SLL_DRAIN: hzf__sll_drain(c); break;
    case HZF_FLUSH: hzf_op_flush(c); break;
    case HZF_FOREIGN: hzf__foreign(c); break;
    case HZF_INTERIOR: hzf__interior(c); break;
    case HZF_DOUBLE_FREE:
      if (!hzf_free_running(c)) hzf__double_free(c);
      break;
    case HZF_STALE:
      if (!hzf_free_running(c)) hzf__stale(c);
      break;
    case HZF_CLASSIFY: hzf__classify(c); break;
    case HZF_EDGE: hzf_op_edge(c); break;
    case HZF_OOM: hzf_op_oom(c); break;
    case HZF_FILL: hzf_op_fill(c); break;
    case HZF_RACE: hzf_op_race(c); break;
    case HZF_EXIT: /* the executor's, but for a free-running thread's detach (hzf_exec.c) */
      if (hzf_free_running(c)) {
        hzf_thread_exit(c, "exit");
        hzf_note(c, "thread %u left hz as at exit, among the others' ops", c->op->thread);
      }
      break;
    default: break; /* REUSE, CHECK, FORK: the executor's */
  }
  hzf_count_ops(c, 1);
}
