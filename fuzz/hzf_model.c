/* The reference model: a shadow of every live block, and the checks that hold hz to it.
 *
 * A block's identity is its id (stable across realloc); its contents are its requested
 * bytes filled with one byte, so any write by the allocator into a live block, a block
 * handed out twice, or a lost realloc prefix shows up as a wrong byte. Misuse reports
 * arrive through the error hook on the faulting thread, so each thread keeps its own
 * record and every op states how many reports it expects: one for a misuse, none for a
 * correct call.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

#include "core/hz.h"
#include "core/api.h"
#include "core/thread.h"
#include "fuzz/hzf_api.h"
#include "fuzz/hzf_exec.h"
#include "fuzz/hzf_oom.h"
#include "fuzz/hzf_oracle.h"

/* ---- misuse reports ----------------------------------------------------------- */
static __thread hzf_faults_t hzf__faults;

static void hzf__hook(const hz_fault_t *f, void *ctx) {
  (void)ctx;
  hzf_faults_t *r = &hzf__faults;
  if (r->count++ == 0) {
    r->kind = f->kind;
    r->op = f->op;
    r->ptr = f->ptr;
    snprintf(r->message, sizeof r->message, "%s", f->message ? f->message : "");
  }
}

void hzf_faults_install(void) { hz_set_error_hook(hzf__hook, NULL); }
hzf_faults_t *hzf_faults(void) { return &hzf__faults; }

bool hzf_expect_no_fault(hzf_ctx_t *c, const char *what) {
  hzf_faults_t *r = &hzf__faults;
  if (r->count == 0) return true;
  hzf_fail(c, "false-fault", "no misuse report for a correct call",
           "%s: hz reported %u fault(s), first: %s", what, r->count, r->message);
  return false;
}

bool hzf_expect_fault(hzf_ctx_t *c, unsigned allowed, hz_op_t op, const char *what) {
  hzf_faults_t *r = &hzf__faults;
  char want[120] = "";
  size_t n = 0;
  for (unsigned k = 1; k < HZ_FAULT_KIND_COUNT; k++)
    if (allowed & HZF_BIT(k))
      n += (size_t)snprintf(want + n, sizeof want - n, "%s%s", n ? " or " : "",
                            hz_fault_name((hz_fault_kind_t)k));
  char expected[200];
  snprintf(expected, sizeof expected, "exactly one report: %s in %s", want, hz_op_name(op));
  if (r->count == 0) {
    hzf_fail(c, "misuse-not-reported", expected, "%s: no report", what);
    return false;
  }
  if (r->count > 1) {
    hzf_fail(c, "misuse-reported-twice", expected, "%s: %u reports, first: %s", what, r->count,
             r->message);
    return false;
  }
  if (!(allowed & HZF_BIT(r->kind)) || r->op != op) {
    hzf_fail(c, "misuse-wrong-kind", expected, "%s: %s", what, r->message);
    return false;
  }
  /* What a user reads (docs/ARCHITECTURE.md, misuse reports), the whole line: the fault,
   * the call and the pointer the record carries, then ": " and a detail, and no more lines. */
  char line[120];
  snprintf(line, sizeof line, "hz: %s in %s(0x%lx)", hz_fault_name(r->kind), hz_op_name(r->op),
           (unsigned long)(uintptr_t)r->ptr);
  const char *detail = r->message + strlen(line);
  if (strncmp(r->message, line, strlen(line)) != 0 || strncmp(detail, ": ", 2) != 0 ||
      detail[2] == 0 || strchr(detail, '\n')) {
    hzf_fail(c, "misuse-message", "the report is \"hz: <fault> in <call>(0x<pointer>): <detail>\"",
             "%s: expected \"%s: <detail>\", got \"%s\"", what, line, r->message);
    return false;
  }
  hzf_note(c, "reported: %s", hz_fault_name(r->kind));
  return true;
}

/* ---- the shadow heap ------------------------------------------------------------ */
void hzf_model_reset(hzf_model_t *m) {
  m->n = m->nlarge = m->nheld = 0;
  m->ngrave = m->grave_pos = 0;
}

size_t hzf_expected_usable(size_t size, size_t align, bool *large) {
  *large = false;
  /* A slab block is the smallest class that holds the request (over-aligned: whose
   * size is a multiple of the alignment), found by walking the class list, not through
   * the size-to-class lookup (a granule table, then arithmetic) that hz uses and this
   * holds to the list: a wrong entry that still gives a class big enough is caught. */
  if (size <= hz_large_threshold() && align <= 4096)
    for (unsigned k = 0; k < hz_size_class_count(); k++) {
      size_t s = hz_size_class_size(k);
      if (s >= size && s % (align < 16 ? 16 : align) == 0) return s;
    }
  /* Large: the request rounded up to pages (the extent behind it is whole SuperSlabs);
   * an over-aligned request of 0 bytes gets one page, never a usable size of 0. */
  *large = true;
  return size ? (size + 4095) & ~(size_t)4095 : 4096;
}

/* Block ids (and the fill bytes drawn from them) restart with every input, so an input
 * fills its blocks the same way in a long fuzzing process and in a fresh replay. */
static _Atomic uint32_t hzf__next_id; /* free mode: threads add blocks at once */

/* Every address hz handed out during the input, in an open-addressing set (threads add
 * at once in the free mode), and the slabs a sweep carved whole. Full, either answers
 * "maybe" for everything. An address handed out again is counted once: a loop that
 * reuses its blocks must not fill the set. */
#define HZF_EVER_SLOTS (1u << 15)
#define HZF_SWEPT_SLABS 64u
static _Atomic uintptr_t hzf__ever[HZF_EVER_SLOTS];
static _Atomic unsigned hzf__ever_n;
static _Atomic bool hzf__ever_full;
static _Atomic uintptr_t hzf__swept[HZF_SWEPT_SLABS];
static _Atomic unsigned hzf__swept_n;

void hzf_model_restart_ids(void) {
  atomic_store(&hzf__next_id, 0);
  if (atomic_load(&hzf__ever_n)) memset((void *)hzf__ever, 0, sizeof hzf__ever);
  atomic_store(&hzf__ever_n, 0);
  atomic_store(&hzf__ever_full, false);
  atomic_store(&hzf__swept_n, 0);
}

static unsigned hzf__ever_slot(uintptr_t a) { return (unsigned)((a >> 4) * 0x9E3779B97F4A7C15ull >> 49); }

HZF_NO_COVERAGE void hzf_model_handed(const void *p) {
  uintptr_t a = (uintptr_t)p;
  if (!a || atomic_load(&hzf__ever_full)) return;
  for (unsigned i = hzf__ever_slot(a);; i = (i + 1) % HZF_EVER_SLOTS) {
    uintptr_t cur = 0;
    if (atomic_compare_exchange_strong(&hzf__ever[i], &cur, a)) {
      /* Full at half the slots, so a probe always ends at an empty one. */
      if (atomic_fetch_add(&hzf__ever_n, 1) + 1 >= HZF_EVER_SLOTS / 2)
        atomic_store(&hzf__ever_full, true);
      return;
    }
    if (cur == a) return;
  }
}

HZF_NO_COVERAGE void hzf_model_handed_slab(const void *p) {
  uintptr_t s = (uintptr_t)p & ~(uintptr_t)(HZ_SLAB_SIZE - 1);
  unsigned n = atomic_load(&hzf__swept_n);
  for (unsigned i = 0; i < n && i < HZF_SWEPT_SLABS; i++)
    if (atomic_load(&hzf__swept[i]) == s) return;
  unsigned i = atomic_fetch_add(&hzf__swept_n, 1);
  if (i < HZF_SWEPT_SLABS) atomic_store(&hzf__swept[i], s);
  else atomic_store(&hzf__ever_full, true);
}

HZF_NO_COVERAGE bool hzf_model_maybe_handed(const void *p) {
  uintptr_t a = (uintptr_t)p;
  if (atomic_load(&hzf__ever_full)) return true;
  uintptr_t s = a & ~(uintptr_t)(HZ_SLAB_SIZE - 1);
  for (unsigned i = 0, n = atomic_load(&hzf__swept_n); i < n && i < HZF_SWEPT_SLABS; i++)
    if (atomic_load(&hzf__swept[i]) == s) return true;
  for (unsigned i = hzf__ever_slot(a);; i = (i + 1) % HZF_EVER_SLOTS) {
    uintptr_t cur = atomic_load(&hzf__ever[i]);
    if (cur == a) return true;
    if (cur == 0) return false;
  }
}

/* The bytes of a block the model fills and checks: all of a block up to two windows
 * (8 KiB), else its first and last window. Filling every page of every block made page
 * faults and memset most of a fuzzer's work once inputs grew bursts of 64 KiB and 4 MiB
 * blocks (84 exec/s after ten minutes); what the allocator writes by mistake (a link or
 * free marker, a block handed out twice, an extent reused early) lands at a block's start,
 * crosses its end, or overlaps it, which the address check sees whatever the contents. */
#define HZF_WINDOW ((size_t)4096)
/* Linux 5.14; older kernels answer EINVAL and the reads fault pages in one by one. */
#ifdef MADV_POPULATE_READ
#define HZF_MADV_POPULATE_READ MADV_POPULATE_READ
#else
#define HZF_MADV_POPULATE_READ 22
#endif
static unsigned hzf__ranges(size_t req, size_t r[2][2]) {
  if (req <= 2 * HZF_WINDOW) {
    r[0][0] = 0, r[0][1] = req;
    return 1;
  }
  r[0][0] = 0, r[0][1] = HZF_WINDOW;
  r[1][0] = req - HZF_WINDOW, r[1][1] = req;
  return 2;
}

HZF_NO_COVERAGE void hzf_model_fill(hzf_block_t *b) {
  size_t r[2][2];
  for (unsigned k = 0, n = hzf__ranges(b->req, r); k < n; k++)
    memset(b->p + r[k][0], b->fill, r[k][1] - r[k][0]);
}

/* The first of blocks[0..n) other than `except` that [p, p+len) overlaps, or -1. */
HZF_NO_COVERAGE static int hzf__overlap_in(const hzf_block_t *blocks, unsigned n, const void *p,
                                           size_t len, int except) {
  uintptr_t a = (uintptr_t)p, e = a + len;
  for (unsigned i = 0; i < n; i++) {
    if ((int)i == except) continue;
    uintptr_t b = (uintptr_t)blocks[i].p, be = b + blocks[i].cap;
    if (a < be && b < e) return (int)i;
  }
  return -1;
}

int hzf_model_overlap(const hzf_model_t *m, const void *p, size_t n, int except) {
  return hzf__overlap_in(m->b, m->n, p, n, except);
}

int hzf_model_held(const hzf_model_t *m, const void *p, size_t n) {
  return hzf__overlap_in(m->held, m->nheld, p, n, -1);
}

const hzf_block_t *hzf_model_live(const hzf_model_t *m, const void *p, size_t n) {
  int o = hzf_model_overlap(m, p, n, -1);
  if (o >= 0) return &m->b[o];
  int h = hzf_model_held(m, p, n);
  return h >= 0 ? &m->held[h] : NULL;
}

bool hzf_model_large_full(const hzf_model_t *m, size_t size, size_t align) {
  bool large;
  hzf_expected_usable(size, align, &large);
  return large && m->nlarge >= HZF_MAX_LARGE;
}

bool hzf_oom_hit(const hzf_ctx_t *c) { return hzf_oom_thread_refusals() != c->oom_mark; }

bool hzf_expect_oom(hzf_ctx_t *c, int err, const char *what) {
  c->check_now = true; /* a failure path ran: the heap must still be consistent */
  if (!hzf_oom_hit(c)) {
    hzf_fail(c, "null-result", "a block (the heap has memory to spare)", "%s: NULL, errno %d",
             what, err);
    return false;
  }
  if (err != ENOMEM) {
    hzf_fail(c, "oom-errno", "NULL with errno ENOMEM when memory runs out",
             "%s: NULL with errno %d", what, err);
    return false;
  }
  hzf_note(c, "NULL, ENOMEM (injected) ");
  return true;
}

bool hzf_model_disjoint(hzf_ctx_t *c, const void *p, size_t n) {
  const hzf_block_t *x = hzf_model_live(c->m, p, n);
  if (x)
    hzf_fail(c, "overlap", "a block disjoint from every live block",
             "+0x%zx (%zu B) overlaps block #%u at +0x%zx (%zu B)", (size_t)hzf_addr(p), n,
             x->id, (size_t)hzf_addr(x->p), x->cap);
  return !x;
}

int hzf_model_add(hzf_ctx_t *c, void *p, size_t req, size_t align, bool zeroed) {
  int err = errno; /* what the allocation call left */
  hzf_model_t *m = c->m;
  bool large;
  size_t cap = hzf_expected_usable(req, align, &large);
  if (!p) {
    char what[80];
    snprintf(what, sizeof what, "%zu bytes aligned %zu", req, align);
    if (hzf_shim_null_ok(c, req, align, err)) hzf_expect_oom(c, err, what);
    return -1;
  }
  if (!hz_in_arena(p)) { /* the shim's fallback, or for hz a finding */
    hzf_fallback(c, p, req, align, zeroed, req > HZF_ORACLE_HUGE || align > HZF_ORACLE_HUGE);
    return -1;
  }
  if (hzf_checking(c)) {
    size_t a = align < 16 ? 16 : align;
    if ((uintptr_t)p % a) {
      hzf_fail(c, "alignment", "a multiple of the alignment", "+0x%zx is not aligned to %zu",
               (size_t)hzf_addr(p), a);
      return -1;
    }
    size_t u = hzf_api->usable_size(p);
    if (!hzf_expect_no_fault(c, "usable_size of a new block")) return -1;
    if (u < req || u != cap) {
      hzf_fail(c, "usable-size", "requested <= usable == the class (or extent) size", "usable %zu "
               "for %zu bytes aligned %zu, expected %zu", u, req, align, cap);
      return -1;
    }
    if (u > hzf_oracle_max_usable(req, align)) {
      hzf_fail(c, "waste", "usable <= the oracle's waste bound for the request",
               "usable %zu for %zu bytes aligned %zu, bound %zu", u, req, align,
               hzf_oracle_max_usable(req, align));
      return -1;
    }
    if (!hzf_model_disjoint(c, p, cap)) return -1;
    if (large && !hzf_extent_fits(c, p, req)) return -1;
    if (zeroed) {
      size_t bad = hzf_model_first_bad(p, req, 0, req);
      if (bad < req) {
        hzf_fail(c, "calloc-zero", "calloc memory reads as zero",
                 "byte %zu of %zu is 0x%02x", bad, req, ((unsigned char *)p)[bad]);
        return -1;
      }
    }
  }
  if (m->n == HZF_MAX_LIVE || (large && m->nlarge == HZF_MAX_LARGE)) {
    /* The model is full: the block is not tracked, so give it back at once. */
    hzf_model_handed(p);
    hzf_api->free(p);
    hzf_expect_no_fault(c, "free of an untracked block");
    return -1;
  }
  hzf_block_t *b = &m->b[m->n];
  hzf_model_handed(p);
  b->id = atomic_fetch_add_explicit(&hzf__next_id, 1, memory_order_relaxed);
  b->p = p;
  b->req = req;
  b->cap = cap;
  b->fill = (uint8_t)(b->id * 0x9Du + 0x35u);
  if (b->fill == 0) b->fill = 0xA5;
  b->thread = (uint8_t)c->slot;
  b->large = large;
  m->nlarge += large;
  if (hzf_checking(c)) hzf_model_fill(b);
  hzf_note(c, "#%u +0x%zx (%zu B)", b->id, (size_t)hzf_addr(p), req);
  return (int)m->n++;
}

void hzf_model_bury(hzf_model_t *m, const void *p, size_t req) {
  m->grave[m->grave_pos] = (uintptr_t)p;
  m->grave_req[m->grave_pos] = req;
  m->grave_pos = (m->grave_pos + 1) % HZF_GRAVE;
  if (m->ngrave < HZF_GRAVE) m->ngrave++;
}

size_t hzf_model_size(const hzf_model_t *m, unsigned mode, unsigned arg) {
  int back = hzf_size_freed(mode, arg);
  if (back < 0 || !m->ngrave) return hzf_size_of(mode, arg);
  return m->grave_req[(m->grave_pos + HZF_GRAVE - 1 - (unsigned)back % m->ngrave) % HZF_GRAVE];
}

void hzf_model_remove(hzf_model_t *m, unsigned i) {
  hzf_model_bury(m, m->b[i].p, m->b[i].req);
  m->nlarge -= m->b[i].large;
  m->b[i] = m->b[--m->n];
}

int hzf_model_pick(const hzf_model_t *m, unsigned pick) {
  return m->n ? (int)(pick % m->n) : -1;
}

/* First byte of [p, p+n) that is not `fill`, or n. Checks run often, so the usual
 * answer (all of them are) takes one memcmp: when the first eight bytes are `fill` and
 * every byte equals the one eight further on, all are. memcmp is vectorised, and under
 * ASan checks each range's shadow once, where a word loop checks it per word. Only a
 * range that fails is walked, to name the byte. */
HZF_NO_COVERAGE static size_t hzf__mismatch(const unsigned char *p, size_t n, uint8_t fill) {
  uint64_t w = 0x0101010101010101ull * fill, x;
  if (n >= 64 && (memcpy(&x, p, 8), x == w) && memcmp(p, p + 8, n - 8) == 0) return n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    memcpy(&x, p + i, 8);
    if (x != w) break;
  }
  for (; i < n; i++)
    if (p[i] != fill) return i;
  return n;
}

HZF_NO_COVERAGE size_t hzf_model_first_bad(const unsigned char *p, size_t req, uint8_t fill, size_t limit) {
  size_t r[2][2];
  unsigned n = hzf__ranges(req, r);
  for (unsigned k = 0; k < n; k++) {
    size_t a = r[k][0], e = r[k][1] < limit ? r[k][1] : limit;
    if (a >= e) continue;
    size_t bad = a + hzf__mismatch(p + a, e - a, fill);
    if (bad < e) return bad;
  }
  /* Between the windows only calloc memory has known contents: one word a page, which
   * a stale dirty page fails. A fresh block's pages are not mapped yet, and reading one
   * word of each took a fault each: a third of alloc_fuzzer's faults, and a fault costs
   * tens of microseconds on a VM. One madvise maps them all (untouched ones to the zero
   * page) without changing what the loop reads; where it fails (a page that cannot be
   * read), the loop's own read shows the fault as before. */
  if (n == 2 && fill == 0) {
    uintptr_t from = ((uintptr_t)p + HZF_WINDOW + 4095) & ~(uintptr_t)4095;
    uintptr_t to = (uintptr_t)p + (r[1][0] < limit ? r[1][0] : limit);
    if (to > from + 4096) (void)madvise((void *)from, to - from, HZF_MADV_POPULATE_READ);
    for (size_t a = HZF_WINDOW; a + 8 <= r[1][0] && a + 8 <= limit; a += 4096) {
      size_t bad = a + hzf__mismatch(p + a, 8, 0);
      if (bad < a + 8) return bad;
    }
  }
  return req;
}

bool hzf_model_verify(hzf_ctx_t *c, unsigned i, const char *when) {
  return hzf_model_verify_block(c, &c->m->b[i], when);
}

bool hzf_model_verify_block(hzf_ctx_t *c, const hzf_block_t *b, const char *when) {
  if (!hzf_checking(c)) return true;
  size_t bad = hzf_model_first_bad(b->p, b->req, b->fill, b->req);
  if (bad == b->req) return true;
  hzf_fail(c, "contents", "every requested byte still holds the block's fill byte",
           "%s: block #%u at +0x%zx (%zu B, fill 0x%02x): byte %zu is 0x%02x", when, b->id,
           (size_t)hzf_addr(b->p), b->req, b->fill, bad, b->p[bad]);
  return false;
}

HZF_NO_COVERAGE static int hzf__by_addr(const void *x, const void *y) {
  uintptr_t a = (uintptr_t)(*(const hzf_block_t *const *)x)->p;
  uintptr_t b = (uintptr_t)(*(const hzf_block_t *const *)y)->p;
  return a < b ? -1 : a > b;
}

/* The first and last 64 bytes of a block, where links, free markers and a block handed
 * out twice show. The sampled heap check uses it; every byte the model fills is verified
 * when the block is freed, resized or rewritten, and by an explicit check op. */
static bool hzf__verify_edges(hzf_ctx_t *c, const hzf_block_t *b) {
  size_t edge = b->req < 128 ? b->req : 64;
  size_t bad = hzf__mismatch(b->p, edge, b->fill);
  if (bad == edge && b->req > edge) bad = b->req - 64 + hzf__mismatch(b->p + b->req - 64, 64, b->fill);
  else if (bad == edge) bad = b->req;
  if (bad == b->req) return true;
  hzf_fail(c, "contents", "every requested byte still holds the block's fill byte",
           "heap check: block #%u at +0x%zx (%zu B, fill 0x%02x): byte %zu is 0x%02x", b->id,
           (size_t)hzf_addr(b->p), b->req, b->fill, bad, b->p[bad]);
  return false;
}

/* Reads free memory the sanitizers consider poisoned, on purpose: the rule is about what
 * a later calloc would return. */
__attribute__((no_sanitize("address", "memory", "thread", "coverage"))) static size_t
hzf__first_nonzero(const unsigned char *p, size_t n) {
  const volatile uint64_t *w = (const volatile uint64_t *)(const void *)p;
  for (size_t i = 0; i < n / 8; i++)
    if (w[i]) return i * 8;
  return n;
}

bool hzf_model_check_free_extents(hzf_ctx_t *c) {
  if (!hzf_checking(c)) return true;
  static unsigned char resident[HZ_SUPERSLAB_SIZE / 4096 * 32];
  for (uint32_t i = 0; i < hz_arena.bump;) {
    const hz_superslab_t *h = &hz_arena.ss[i];
    uint32_t len = h->len ? h->len : 1;
    if (atomic_load(&h->kind) != HZ_SS_FREE || h->head != i) {
      i += atomic_load(&h->kind) == HZ_SS_LARGE && h->head == i ? len : 1;
      continue;
    }
    unsigned char *base = hz_ss_addr(i);
    size_t from = (h->dirty + 4095) & ~(size_t)4095, to = (size_t)len << HZ_SUPERSLAB_SHIFT;
    for (size_t a = from; a < to;) {
      size_t n = to - a < sizeof resident * 4096 ? to - a : sizeof resident * 4096;
      /* Only pages in memory can hold anything; the rest read as zero without a fault. */
      if (mincore(base + a, n, resident) != 0) break;
      for (size_t pg = 0; pg < n / 4096; pg++) {
        if (!(resident[pg] & 1)) continue;
        size_t off = a + pg * 4096, bad = hzf__first_nonzero(base + off, 4096);
        if (bad < 4096) {
          hzf_fail(c, "free-extent-zero", "every byte of a free extent past its dirty prefix "
                   "reads as zero (what lets calloc skip its memset)",
                   "free extent at +0x%zx (%u SuperSlabs, dirty prefix %zu B): byte %zu is "
                   "not zero", (size_t)hzf_addr(base), len, h->dirty, off + bad);
          return false;
        }
      }
      a += n;
    }
    i += len;
  }
  return true;
}

/* The thread caches' memory bounds, the other half of their cost contract (docs/
 * INVARIANTS.md, "Amortization"): however often a class ran dry, a thread parks at most
 * max(HZ_SLL_MIN_COUNT, min(HZ_SLL_MAX_COUNT, HZ_SLL_GROW_BYTES / size)) blocks of it,
 * which is what config.h promises, written here from its knobs rather than read from hz's
 * own table of bounds. Every registered cache when the others are parked; in the
 * free-running mode only this thread's, the one no other thread writes. */
static bool hzf__cache_bounded(hzf_ctx_t *c, const hz_tcache_t *tc) {
  for (unsigned cls = 0; cls < HZ_NUM_CLASSES; cls++) {
    size_t size = hz_size_class_size(cls), room = HZ_SLL_GROW_BYTES / size;
    if (room > HZ_SLL_MAX_COUNT) room = HZ_SLL_MAX_COUNT;
    if (room < HZ_SLL_MIN_COUNT) room = HZ_SLL_MIN_COUNT;
    const hz_sll_t *l = &tc->sll[cls];
    if (l->max > room || l->max < HZ_SLL_MIN_COUNT || l->count > l->max) {
      hzf_fail(c, "cache-bound", "HZ_SLL_MIN_COUNT <= bound <= HZ_SLL_GROW_BYTES worth, count <= bound",
               "thread %u, class %u (%zu B): bound %u, count %u, room %zu", tc->tid, cls, size,
               l->max, l->count, room);
      return false;
    }
  }
  /* What it holds back from other threads' slabs: a pending remote batch is published
   * when it reaches its limit, max(1, min(HZ_REMOTE_BATCH_BLOCKS, HZ_REMOTE_BATCH_BYTES /
   * size)) (core/tcache.h), so between ops it holds fewer blocks than that, in the slot
   * its slab's index maps to. hz_tcache_validate checks count <= limit; the limit's own
   * value, which bounds the memory a thread keeps from the owners, is checked here. */
  for (unsigned i = 0; i < HZ_REMOTE_SLOTS; i++) {
    const hz_remote_batch_t *q = &tc->pending[i];
    if (!q->slab) continue;
    size_t size = hz_size_class_size(q->slab->cls), room = HZ_REMOTE_BATCH_BYTES / size;
    if (room > HZ_REMOTE_BATCH_BLOCKS) room = HZ_REMOTE_BATCH_BLOCKS;
    if (room < 1) room = 1;
    unsigned slot = (unsigned)(hz_slab_index(hz_slab_start(q->slab)) & (HZ_REMOTE_SLOTS - 1));
    if (q->limit != room || q->count >= q->limit || slot != i) {
      hzf_fail(c, "batch-bound", "limit == the room, count < limit, slot == slab index mod "
               "HZ_REMOTE_SLOTS",
               "thread %u, batch %u (slab of class %u, %zu B, slot %u): limit %u, count %u, "
               "room %zu", tc->tid, i, (unsigned)q->slab->cls, size, slot, q->limit, q->count,
               room);
      return false;
    }
  }
  return true;
}

static bool hzf__caches_bounded(hzf_ctx_t *c) {
  if (hzf_free_running(c)) return hz_tc.tid == HZ_TID_NONE || hzf__cache_bounded(c, &hz_tc);
  for (uint32_t t = 0, n = hz_thread_id_bound(); t < n; t++) {
    const hz_tcache_t *tc = hz_thread_lookup(t);
    if (tc && !hzf__cache_bounded(c, tc)) return false;
  }
  return true;
}

/* The pool's lists keep their counts (docs/INVARIANTS.md, "Pool and abandoned lists"):
 * count == length for the list of pooled slabs and for each class's abandoned list.
 * hz_heap_check only bounds each walk by its count, so a count too high passed it. Not in
 * the free-running mode, where other threads move slabs between the lists meanwhile. */
static bool hzf__pool_counted(hzf_ctx_t *c) {
  if (hzf_free_running(c)) return true;
  for (unsigned k = 0; k <= HZ_NUM_CLASSES; k++) {
    const hz_slab_list_t *l = k < HZ_NUM_CLASSES ? hz_pool_abandoned(k) : hz_pool_list();
    uint32_t n = 0;
    for (const hz_slab_t *s = l->head; s && n <= l->count; s = s->next) n++;
    if (n != l->count) {
      hzf_fail(c, "pool-count", "a slab list's count is its length",
               "%s list%s: count %u, %s%u slabs", k < HZ_NUM_CLASSES ? "abandoned" : "pooled",
               k < HZ_NUM_CLASSES ? " of a class" : "", l->count, n > l->count ? "more than " : "",
               n > l->count ? l->count : n);
      return false;
    }
  }
  return true;
}

bool hzf_model_heap_ok(hzf_ctx_t *c, hz_census_t *census) {
  hz_violation_t v;
  if (!hz_heap_check(&v, census)) return true;
  hzf_fail(c, "heap-check", "hz_heap_check passes", "%s: %s", v.invariant, v.message);
  hzf_fail_invariant(c, v.invariant);
  return false;
}

/* ASan integration (core/base.h): a block hz holds for reuse (in a thread cache, a slab
 * freelist, a remote batch, a pooled slab or a freed large extent) is poisoned, so that a
 * program's use after free is reported, wherever the block went when it was freed. Every
 * recently freed address (each model's grave) that no live block covers now must read as
 * poisoned at its first and last requested byte. Without ASan there is nothing to check. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HZF_POISON_CHECK 1
#endif
#endif
#ifdef HZF_POISON_CHECK
#include <sanitizer/asan_interface.h>
HZF_NO_COVERAGE static bool hzf__covered(const hzf_block_t *const *all, unsigned n,
                                         hzf_model_t *const *models, unsigned nmodels,
                                         uintptr_t a) {
  unsigned lo = 0, hi = n; /* all[] is sorted by address: the last block starting <= a */
  while (lo < hi) {
    unsigned mid = (lo + hi) / 2;
    if ((uintptr_t)all[mid]->p <= a) lo = mid + 1;
    else hi = mid;
  }
  if (lo && a < (uintptr_t)all[lo - 1]->p + all[lo - 1]->cap) return true;
  for (unsigned k = 0; k < nmodels; k++)
    if (hzf_model_held(models[k], (const void *)a, 1) >= 0) return true;
  return false;
}

static bool hzf__graves_poisoned(hzf_ctx_t *c, const hzf_block_t *const *all, unsigned n,
                                 hzf_model_t *const *models, unsigned nmodels) {
  for (unsigned k = 0; k < nmodels; k++) {
    const hzf_model_t *m = models[k];
    for (unsigned g = 0; g < m->ngrave; g++) {
      char *p = (char *)m->grave[g];
      size_t req = m->grave_req[g];
      char *last = p + (req ? req - 1 : 0);
      if (hzf__covered(all, n, models, nmodels, (uintptr_t)p) ||
          hzf__covered(all, n, models, nmodels, (uintptr_t)last))
        continue; /* handed out again: live, so addressable */
      if (!__asan_address_is_poisoned(p) || !__asan_address_is_poisoned(last)) {
        hzf_fail(c, "poison", "memory hz holds for reuse is poisoned (ASan reports a use "
                 "after free)", "the block freed at +0x%zx (%zu B) is not live, but its %s "
                 "byte is addressable", (size_t)hzf_addr(p), req,
                 __asan_address_is_poisoned(p) ? "last" : "first");
        return false;
      }
    }
  }
  return true;
}
#else
static bool hzf__graves_poisoned(hzf_ctx_t *c, const hzf_block_t *const *all, unsigned n,
                                 hzf_model_t *const *models, unsigned nmodels) {
  (void)c, (void)all, (void)n, (void)models, (void)nmodels;
  return true;
}
#endif

bool hzf_model_check_all(hzf_ctx_t *c, hzf_model_t *const *models, unsigned nmodels, bool full) {
  if (!hzf_checking(c)) return true;
  hz_census_t census;
  if (!hzf_model_heap_ok(c, &census) || !hzf__caches_bounded(c) || !hzf__pool_counted(c))
    return false;
  static const hzf_block_t *all[HZF_MAX_LIVE * (HZF_MAX_THREADS + 1)];
  uint64_t small = 0, large = 0;
  unsigned n = 0;
  for (unsigned k = 0; k < nmodels; k++) {
    hzf_model_t *m = models[k];
    hzf_model_t *saved = c->m;
    c->m = m;
    for (unsigned i = 0; i < m->n; i++) {
      if (!(full ? hzf_model_verify(c, i, "heap check") : hzf__verify_edges(c, &m->b[i])))
        return false;
      all[n++] = &m->b[i];
      if (m->b[i].large) large++;
      else small++;
    }
    c->m = saved;
  }
  if (census.user_blocks != small || census.large_blocks != large) {
    hzf_fail(c, "census", "hz's census of blocks held by the program equals the model's",
             "hz counts %llu slab + %llu large blocks held, the model %llu + %llu",
             (unsigned long long)census.user_blocks, (unsigned long long)census.large_blocks,
             (unsigned long long)small, (unsigned long long)large);
    return false;
  }
  qsort(all, n, sizeof *all, hzf__by_addr);
  for (unsigned i = 1; i < n; i++)
    if ((uintptr_t)all[i - 1]->p + all[i - 1]->cap > (uintptr_t)all[i]->p) {
      hzf_fail(c, "overlap", "live blocks are disjoint", "#%u at +0x%zx (%zu B) runs into #%u "
               "at +0x%zx", all[i - 1]->id, (size_t)hzf_addr(all[i - 1]->p), all[i - 1]->cap,
               all[i]->id, (size_t)hzf_addr(all[i]->p));
      return false;
    }
  return hzf__graves_poisoned(c, all, n, models, nmodels);
}

bool hzf_model_check_empty(hzf_ctx_t *c) {
  if (!hzf_checking(c)) return true;
  hz_census_t k;
  if (!hzf_model_heap_ok(c, &k)) return false;
  if (k.slabs_owned || k.slabs_abandoned || k.cached_blocks || k.queued_blocks ||
      k.superslabs_slab > 1) {
    hzf_fail(c, "retention", "the empty heap: no owned or abandoned slab, nothing cached or "
             "queued, at most one SuperSlab of pooled slabs",
             "%llu slabs owned, %llu abandoned, %llu blocks cached, %llu queued, %llu slab "
             "SuperSlabs", (unsigned long long)k.slabs_owned,
             (unsigned long long)k.slabs_abandoned, (unsigned long long)k.cached_blocks,
             (unsigned long long)k.queued_blocks, (unsigned long long)k.superslabs_slab);
    return false;
  }
  return true;
}

/* hz_debug_reset's promise (core/hz_debug.h): hz as before its first allocation. What a
 * fresh process's heap starts from is zeroed tables and empty lists, and the next heap
 * trusts them: a page tag left set classifies a pointer the new heap never handed out,
 * a slab record left behind is read as the state of a slab not yet cut, a pooled slab
 * left listed is handed out twice. Whatever part of that a reset forgets shows in the
 * next input alone, far from its cause, or not at all; here it is seen at once. Read
 * over the tables' prefix that the old heap used: a few KiB per input. */
bool hzf_model_check_reset(hzf_ctx_t *c, uint32_t bump, uint32_t tids) {
  size_t used = (size_t)bump << HZ_SUPERSLAB_SHIFT;
  struct {
    const char *what;
    const void *at;
    size_t bytes;
  } tables[] = {
      {"page tags", (const void *)hz_arena.ptag, (used >> HZ_PAGE_SHIFT) * sizeof *hz_arena.ptag},
      {"SuperSlab records", hz_arena.ss, bump * sizeof *hz_arena.ss},
      {"slab records", hz_arena.slab_meta, (used >> HZ_SLAB_SHIFT) * (size_t)HZ_SLAB_META_SIZE},
      {"remote hints", hz_remote_hint, tids * sizeof *hz_remote_hint},
      {"free extent bins", hz_arena.free_bins, sizeof hz_arena.free_bins},
  };
  for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
    size_t bad = hzf__first_nonzero(tables[t].at, tables[t].bytes);
    if (bad < tables[t].bytes) {
      hzf_fail(c, "reset", "after hz_debug_reset, every table the old heap used reads as zero",
               "%s: byte %zu of %zu is 0x%02x (the old heap used %u SuperSlabs)", tables[t].what,
               bad, tables[t].bytes, ((const unsigned char *)tables[t].at)[bad], bump);
      return false;
    }
  }
  unsigned listed = hz_pool_list()->count + (hz_pool_list()->head != NULL);
  for (unsigned k = 0; k < HZ_NUM_CLASSES; k++)
    listed += hz_pool_abandoned(k)->count + (hz_pool_abandoned(k)->head != NULL);
  if (hz_arena.bump || hz_arena.dirty_bytes || hz_arena.large_bytes || hz_arena.large_avg ||
      hz_arena.clock || listed ||
      hz_pool_empty_superslabs() || hz_thread_id_bound() != 1 || hz_tc.tid != HZ_TID_NONE) {
    hzf_fail(c, "reset", "after hz_debug_reset: no SuperSlab handed out, no dirty or large "
             "bytes, no trim history, no pooled or abandoned slab, no thread registered",
             "bump %u, dirty %zu B, large %zu B (average %zu B), extent frees %llu, slab lists "
             "%u, warm SuperSlabs %u, next thread id %u, the caller's id %u", hz_arena.bump,
             hz_arena.dirty_bytes, hz_arena.large_bytes, hz_arena.large_avg,
             (unsigned long long)hz_arena.clock, listed, hz_pool_empty_superslabs(),
             hz_thread_id_bound(), hz_tc.tid);
    return false;
  }
  return true;
}
