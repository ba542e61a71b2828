/* The reference model: a shadow of every live block, and the checks that hold hz to it.
 *
 * A block's identity is its id (stable across realloc); its contents are its requested
 * bytes filled with one byte, so any write by the allocator into a live block, a block
 * handed out twice, or a lost realloc prefix shows up as a wrong byte. Misuse reports
 * arrive through the error hook on the faulting thread, so each thread keeps its own
 * record and every op states how many reports it expects: one for a misuse, none for a
 * correct call.
 */
#include <stdlib.h>
#include <string.h>

#include "core/hz.h"
#include "fuzz/hzf_exec.h"

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
  hzf_note(c, "reported: %s", hz_fault_name(r->kind));
  return true;
}

/* ---- the shadow heap ------------------------------------------------------------ */
void hzf_model_reset(hzf_model_t *m) {
  m->n = m->nlarge = 0;
  m->ngrave = m->grave_pos = 0;
}

size_t hzf_expected_usable(size_t size, size_t align, bool *large) {
  *large = false;
  if (size <= hz_large_threshold()) {
    int cls = hz_size_to_class_checked(size);
    if (align <= 16) return hz_size_class_size((unsigned)cls);
    if (align <= 4096)
      for (unsigned k = (unsigned)cls; k < hz_size_class_count(); k++)
        if (hz_size_class_size(k) % align == 0) return hz_size_class_size(k);
  }
  /* Large: the request rounded up to pages (the extent behind it is whole SuperSlabs). */
  *large = true;
  return (size + 4095) & ~(size_t)4095;
}

static uint32_t hzf__next_id;

void hzf_model_fill(hzf_block_t *b) { memset(b->p, b->fill, b->req); }

int hzf_model_overlap(const hzf_model_t *m, const void *p, size_t n, int except) {
  uintptr_t a = (uintptr_t)p, e = a + n;
  for (unsigned i = 0; i < m->n; i++) {
    if ((int)i == except) continue;
    uintptr_t b = (uintptr_t)m->b[i].p, be = b + m->b[i].cap;
    if (a < be && b < e) return (int)i;
  }
  return -1;
}

int hzf_model_add(hzf_ctx_t *c, void *p, size_t req, size_t align, bool zeroed) {
  hzf_model_t *m = c->m;
  bool large;
  size_t cap = hzf_expected_usable(req, align, &large);
  if (!p) {
    hzf_fail(c, "null-result", "a block (the heap has memory to spare)",
             "NULL for %zu bytes aligned %zu", req, align);
    return -1;
  }
  if (hzf_checking(c)) {
    size_t a = align < 16 ? 16 : align;
    if ((uintptr_t)p % a) {
      hzf_fail(c, "alignment", "a multiple of the alignment", "+0x%zx is not aligned to %zu",
               (size_t)hzf_addr(p), a);
      return -1;
    }
    size_t u = hz_usable_size(p);
    if (!hzf_expect_no_fault(c, "usable_size of a new block")) return -1;
    if (u < req || u != cap) {
      hzf_fail(c, "usable-size", "requested <= usable == the class (or extent) size", "usable %zu "
               "for %zu bytes aligned %zu, expected %zu", u, req, align, cap);
      return -1;
    }
    int o = hzf_model_overlap(m, p, cap, -1);
    if (o >= 0) {
      hzf_fail(c, "overlap", "a block disjoint from every live block",
               "+0x%zx (%zu B) overlaps block #%u at +0x%zx (%zu B)", (size_t)hzf_addr(p), cap,
               m->b[o].id, (size_t)hzf_addr(m->b[o].p), m->b[o].cap);
      return -1;
    }
    if (zeroed)
      for (size_t i = 0; i < req; i++)
        if (((unsigned char *)p)[i]) {
          hzf_fail(c, "calloc-zero", "calloc memory reads as zero",
                   "byte %zu of %zu is 0x%02x", i, req, ((unsigned char *)p)[i]);
          return -1;
        }
  }
  if (m->n == HZF_MAX_LIVE || (large && m->nlarge == HZF_MAX_LARGE)) {
    /* The model is full: the block is not tracked, so give it back at once. */
    hz_free(p);
    hzf_expect_no_fault(c, "free of an untracked block");
    return -1;
  }
  hzf_block_t *b = &m->b[m->n];
  b->id = hzf__next_id++;
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

void hzf_model_bury(hzf_model_t *m, const void *p) {
  m->grave[m->grave_pos] = (uintptr_t)p;
  m->grave_pos = (m->grave_pos + 1) % HZF_GRAVE;
  if (m->ngrave < HZF_GRAVE) m->ngrave++;
}

void hzf_model_remove(hzf_model_t *m, unsigned i) {
  hzf_model_bury(m, m->b[i].p);
  m->nlarge -= m->b[i].large;
  m->b[i] = m->b[--m->n];
}

int hzf_model_pick(const hzf_model_t *m, unsigned pick) {
  return m->n ? (int)(pick % m->n) : -1;
}

/* First byte of [p, p+n) that is not `fill`, or n. Word at a time: checks run often. */
static size_t hzf__mismatch(const unsigned char *p, size_t n, uint8_t fill) {
  uint64_t w = 0x0101010101010101ull * fill;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    memcpy(&x, p + i, 8);
    if (x != w) break;
  }
  for (; i < n; i++)
    if (p[i] != fill) return i;
  return n;
}

bool hzf_model_verify(hzf_ctx_t *c, unsigned i, const char *when) {
  if (!hzf_checking(c)) return true;
  hzf_block_t *b = &c->m->b[i];
  /* Large blocks: the first and last 32 KiB, so a 4 MiB block does not dominate a run. */
  size_t span = 32768, head = b->req > 2 * span ? span : b->req;
  size_t bad = hzf__mismatch(b->p, head, b->fill);
  if (bad == head && head < b->req) {
    size_t tail = b->req - span, k = hzf__mismatch(b->p + tail, span, b->fill);
    bad = k == span ? b->req : tail + k;
  } else if (bad == head) {
    bad = b->req;
  }
  if (bad == b->req) return true;
  hzf_fail(c, "contents", "every requested byte still holds the block's fill byte",
           "%s: block #%u at +0x%zx (%zu B, fill 0x%02x): byte %zu is 0x%02x", when, b->id,
           (size_t)hzf_addr(b->p), b->req, b->fill, bad, b->p[bad]);
  return false;
}

static int hzf__by_addr(const void *x, const void *y) {
  uintptr_t a = (uintptr_t)(*(const hzf_block_t *const *)x)->p;
  uintptr_t b = (uintptr_t)(*(const hzf_block_t *const *)y)->p;
  return a < b ? -1 : a > b;
}

bool hzf_model_check_all(hzf_ctx_t *c, hzf_model_t *const *models, unsigned nmodels) {
  if (!hzf_checking(c)) return true;
  hz_violation_t v;
  hz_census_t census;
  if (hz_heap_check(&v, &census)) {
    hzf_fail(c, "heap-check", "hz_heap_check passes", "%s: %s", v.invariant, v.message);
    return false;
  }
  static const hzf_block_t *all[HZF_MAX_LIVE * HZF_MAX_THREADS];
  uint64_t small = 0, large = 0;
  unsigned n = 0;
  for (unsigned k = 0; k < nmodels; k++) {
    hzf_model_t *m = models[k];
    hzf_model_t *saved = c->m;
    c->m = m;
    for (unsigned i = 0; i < m->n; i++) {
      if (!hzf_model_verify(c, i, "heap check")) return false;
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
  return true;
}
