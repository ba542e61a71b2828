/* Laws of the allocation API a program sees: sizes and alignment, realloc, calloc, and
 * agreement with glibc's malloc. The expected outcomes come from the contract oracle
 * (fuzz/hzf_oracle.h), written from C11, POSIX and glibc's manual, never from hz's own
 * size-class tables. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/hz.h"
#include "core/hz_debug.h"
#include "fuzz/hzf_oom.h"
#include "fuzz/hzf_oracle.h"
#include "props/laws.h"

/* A block's pattern: 64 KiB of noise, repeated, started at an offset that depends on the
 * block's tag, so a byte moved to a wrong offset or taken from another block is noticed.
 * Written and compared 64 KiB at a time (a byte loop over 8 MiB blocks was most of a case). */
enum { LAWS_NOISE = 1 << 16 };
static unsigned char laws__noise[2 * LAWS_NOISE];

/* The pattern's bytes from offset i on: LAWS_NOISE of them are contiguous. */
static const unsigned char *laws__pattern_at(size_t i, unsigned tag) {
  if (!laws__noise[0]) {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < LAWS_NOISE; k++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      laws__noise[k] = laws__noise[k + LAWS_NOISE] = (unsigned char)(x | 1);
    }
  }
  return laws__noise + (i + (size_t)tag * 4099u) % LAWS_NOISE;
}

static void laws__pattern(unsigned char *p, size_t from, size_t to, unsigned tag) {
  for (size_t i = from; i < to;) {
    size_t k = to - i < LAWS_NOISE ? to - i : LAWS_NOISE;
    memcpy(p + i, laws__pattern_at(i, tag), k);
    i += k;
  }
}

/* First offset in [0, n) not holding the pattern, or n. */
static size_t laws__first_bad(const unsigned char *p, size_t n, unsigned tag) {
  for (size_t i = 0; i < n;) {
    const unsigned char *src = laws__pattern_at(i, tag);
    size_t k = n - i < LAWS_NOISE ? n - i : LAWS_NOISE;
    if (memcmp(p + i, src, k) != 0) {
      while (p[i] == *src) i++, src++;
      return i;
    }
    i += k;
  }
  return n;
}

/* ---- size and alignment -------------------------------------------------------------- */

/* One call of fn(a, b) held to the oracle; returns the block (already checked) or NULL. */
static void *laws__call(prop_t *p, hzf_fn_t fn, size_t a, size_t b) {
  void *r = NULL;
  int err = 0;
  void *const untouched = (void *)(uintptr_t)0x5eed;
  void *out = untouched;
  if (fn == HZF_FN_MALLOC) prop_step(p, "malloc(%zu)", a);
  else if (fn == HZF_FN_REALLOC) prop_step(p, "realloc(NULL, %zu)", b);
  else prop_step(p, "%s(%zu, %zu)", hzf_fn_name(fn), a, b);
  errno = 0;
  switch (fn) {
    case HZF_FN_MALLOC: r = hz_malloc(a); err = errno; break;
    case HZF_FN_CALLOC: r = hz_calloc(a, b); err = errno; break;
    case HZF_FN_REALLOC: r = hz_realloc(NULL, b); err = errno; break;
    case HZF_FN_ALIGNED_ALLOC: r = hz_aligned_alloc(a, b); err = errno; break;
    case HZF_FN_MEMALIGN: r = hz_memalign(a, b); err = errno; break;
    case HZF_FN_POSIX_MEMALIGN:
      err = hz_posix_memalign(&out, a, b);
      r = err ? NULL : out;
      break;
  }
  hzf_contract_t k = hzf_oracle(fn, a, b);
  prop_result(p, "-> %s (errno %d)", r ? "a block" : "NULL", err);
  if (fn == HZF_FN_POSIX_MEMALIGN && err) {
    if (out != untouched) {
      prop_fail(p, "out-param", "posix_memalign failed with %d but wrote %p to *out", err, out);
      return NULL;
    }
  }
  if (k.must_fail) {
    if (r) {
      prop_fail(p, "must-fail", "%s(%zu, %zu) must fail with %s, returned a block",
                hzf_fn_name(fn), a, b, k.err == EINVAL ? "EINVAL" : "ENOMEM");
      hz_free(r);
    } else if (err != k.err) {
      prop_fail(p, "errno", "%s(%zu, %zu) failed with error %d, the contract says %d",
                hzf_fn_name(fn), a, b, err, k.err);
    }
    return NULL;
  }
  if (!r) {
    if (!k.may_fail || err != ENOMEM)
      prop_fail(p, "null", "%s(%zu, %zu) returned NULL (error %d) for a request that fits",
                hzf_fn_name(fn), a, b, err);
    return NULL;
  }
  size_t usable = hz_usable_size(r);
  size_t align = k.align;
  if ((uintptr_t)r % align != 0) {
    prop_fail(p, "alignment", "%s(%zu, %zu) = %p is not aligned to %zu", hzf_fn_name(fn), a, b,
              r, align);
  } else if (usable < k.size) {
    prop_fail(p, "usable-short", "%s(%zu, %zu): usable size %zu < the %zu bytes asked for",
              hzf_fn_name(fn), a, b, usable, k.size);
  } else if (usable > hzf_oracle_max_usable(k.size, align)) {
    prop_fail(p, "waste", "%s(%zu, %zu): usable size %zu exceeds the waste bound %zu",
              hzf_fn_name(fn), a, b, usable, hzf_oracle_max_usable(k.size, align));
  }
  if (prop_failed(p)) {
    hz_free(r);
    return NULL;
  }
  /* Every usable byte belongs to the program: writing them all lets ASan object to a
   * usable size that overstates the block. */
  memset(r, 0xa5, usable);
  return r;
}

static void size_alignment(prop_t *p) {
  static const unsigned fw[] = {4, 2, 1, 2, 2, 2};
  for (unsigned i = 0; prop_more(p, i, 8) && !prop_failed(p); i++) {
    hzf_fn_t fn = (hzf_fn_t)prop_weighted(p, fw, 6, "fn");
    size_t a = 0, b = 0;
    switch (fn) {
      case HZF_FN_MALLOC: a = prop_size(p, "size"); break;
      case HZF_FN_CALLOC:
        a = (size_t)prop_below(p, 64, "nmemb");
        b = prop_size(p, "size");
        /* Keep the memory a case touches bounded; products no object can have stay. */
        if (b <= (8u << 20) && a * b > (16u << 20)) a = 1;
        break;
      case HZF_FN_REALLOC: b = prop_size(p, "size"); break;
      default:
        a = prop_align(p, "align");
        b = prop_size(p, "size");
        break;
    }
    void *r = laws__call(p, fn, a, b);
    if (r) hz_free(r);
  }
  if (prop_failed(p)) return;
  /* Usable size is monotone in the request. */
  size_t n1 = prop_size_fits(p, "n1");
  size_t n2 = n1 + (size_t)prop_below(p, 1u << 16, "delta");
  void *b1 = hz_malloc(n1), *b2 = hz_malloc(n2);
  size_t u1 = b1 ? hz_usable_size(b1) : 0, u2 = b2 ? hz_usable_size(b2) : 0;
  prop_step(p, "usable_size(malloc(%zu)) = %zu, usable_size(malloc(%zu)) = %zu", n1, u1, n2, u2);
  hz_free(b1);
  hz_free(b2);
  PROP_CHECK(p, b1 && b2, "null", "malloc(%zu) or malloc(%zu) returned NULL", n1, n2);
  PROP_CHECK(p, u1 <= u2, "monotone", "usable_size(malloc(%zu)) = %zu > usable_size(malloc(%zu)) = %zu",
             n1, u1, n2, u2);
}

/* ---- realloc ----------------------------------------------------------------------------- */

static void realloc_laws(prop_t *p) {
  unsigned tag = 1;
  size_t n = prop_size_fits(p, "size");
  unsigned char *b = hz_malloc(n);
  prop_step(p, "p = malloc(%zu)", n);
  PROP_CHECK(p, b, "null", "malloc(%zu) returned NULL", n);
  laws__pattern(b, 0, n, tag);
  static const unsigned w[] = {6, 2, 2, 1, 1};
  for (unsigned i = 0; prop_more(p, i, 8) && !prop_failed(p); i++) {
    unsigned kind = prop_weighted(p, w, 5, "realloc kind");
    size_t m = 0;
    unsigned char *q;
    if (kind == 0) { /* to any size an allocation can have */
      m = prop_size_fits(p, "new size");
      prop_step(p, "p = realloc(p, %zu)", m);
      errno = 0;
      q = hz_realloc(b, m);
      prop_result(p, "%s", q == b ? "in place" : q ? "moved" : "-> NULL");
      if (m == 0) {
        /* Documented as glibc's: the block is freed and NULL returned. */
        PROP_CHECK(p, q == NULL, "realloc-0", "realloc(p, 0) returned %p, not NULL", (void *)q);
        b = hz_malloc(n = 0);
        prop_step(p, "p = malloc(0)");
        PROP_CHECK(p, b, "null", "malloc(0) returned NULL");
        continue;
      }
      PROP_CHECK(p, q, "null", "realloc(p, %zu) of a %zu-byte block returned NULL", m, n);
    } else if (kind == 1) { /* to its own usable size: nothing to do, so in place */
      m = hz_usable_size(b);
      prop_step(p, "p = realloc(p, usable_size(p) = %zu)", m);
      q = hz_realloc(b, m);
      prop_result(p, "%s", q == b ? "in place" : "moved");
      PROP_CHECK(p, q == b, "in-place", "realloc(p, usable_size(p) = %zu) moved the block", m);
    } else if (kind == 2 || kind == 3) { /* the OS refuses memory, or no object can be that big */
      size_t before = hz_usable_size(b);
      if (kind == 2) {
        unsigned nth = 1 + (unsigned)prop_below(p, 3, "nth commit");
        m = prop_size_fits(p, "new size") | 1; /* not 0: realloc(p, 0) frees */
        hzf_oom_arm(HZF_OOM_FROM, nth);
        prop_step(p, "every commit from the %u%s refused; p = realloc(p, %zu)", nth,
                  nth == 1 ? "st" : nth == 2 ? "nd" : "rd", m);
      } else {
        m = prop_size(p, "impossible size") | ((size_t)1 << 62);
        prop_step(p, "p = realloc(p, %zu)", m);
      }
      errno = 0;
      q = hz_realloc(b, m);
      int err = errno;
      prop_result(p, "%s", q == b ? "in place" : q ? "moved" : "-> NULL");
      hzf_oom_reset();
      if (!q) {
        PROP_CHECK(p, err == ENOMEM, "errno", "a failed realloc(p, %zu) set errno %d, not ENOMEM", m, err);
        PROP_CHECK(p, hz_usable_size(b) == before, "kept",
                   "after a failed realloc the old block's usable size is %zu, was %zu",
                   hz_usable_size(b), before);
        size_t bad = laws__first_bad(b, n, tag);
        PROP_CHECK(p, bad == n, "contents", "a failed realloc changed byte %zu of the old block", bad);
        continue;
      }
      PROP_CHECK(p, kind == 2, "must-fail", "realloc(p, %zu) returned a block", m);
      if (m == 0) {
        b = hz_malloc(n = 0);
        PROP_CHECK(p, b, "null", "malloc(0) returned NULL");
        continue;
      }
    } else { /* grow or shrink by a little: the in-place paths */
      size_t u = hz_usable_size(b);
      size_t d = (size_t)prop_below(p, 64, "delta");
      m = prop_bool(p, "grow") ? u + d : (u > d ? u - d : 1);
      prop_step(p, "p = realloc(p, %zu) (usable was %zu)", m, u);
      q = hz_realloc(b, m);
      prop_result(p, "%s", q == b ? "in place" : q ? "moved" : "-> NULL");
      PROP_CHECK(p, q, "null", "realloc(p, %zu) returned NULL", m);
    }
    size_t keep = n < m ? n : m;
    size_t bad = laws__first_bad(q, keep, tag);
    PROP_CHECK(p, bad == keep, "contents",
               "realloc from %zu to %zu bytes lost byte %zu of the %zu it must keep", n, m, bad, keep);
    PROP_CHECK(p, hz_usable_size(q) >= m, "usable-short", "realloc(p, %zu) gave usable size %zu", m,
               hz_usable_size(q));
    b = q;
    n = m;
    laws__pattern(b, 0, n, ++tag);
  }
  hz_free(b);
}

/* ---- calloc ------------------------------------------------------------------------------ */

static void calloc_law(prop_t *p) {
  enum { KEEP = 16 };
  unsigned char *held[KEEP] = {0};
  size_t held_n[KEEP] = {0};
  static const unsigned w[] = {4, 3, 1, 4, 2};
  for (unsigned i = 0; prop_more(p, i, 24) && !prop_failed(p); i++) {
    unsigned kind = prop_weighted(p, w, 5, "step");
    unsigned slot = (unsigned)prop_below(p, KEEP, "slot");
    if (kind == 0) { /* dirty memory: what a later calloc may be handed */
      size_t n = prop_size_fits(p, "size");
      /* Each step is recorded before it runs, so a crash in it still shows it. */
      prop_step(p, "b%u = malloc(%zu), filled with 0xdb", slot, n);
      hz_free(held[slot]);
      held[slot] = hz_malloc(n);
      held_n[slot] = held[slot] ? n : 0;
      if (held[slot]) memset(held[slot], 0xdb, n);
    } else if (kind == 1) {
      prop_step(p, "free(b%u)", slot);
      hz_free(held[slot]);
      held[slot] = NULL;
    } else if (kind == 2) {
      hz_thread_flush();
      prop_step(p, "flush the thread cache");
    } else if (kind == 3) {
      size_t total = prop_size_fits(p, "bytes");
      size_t nmemb = 1 + (size_t)prop_below(p, 16, "nmemb");
      size_t size = total / nmemb;
      prop_step(p, "b%u = calloc(%zu, %zu), then its bytes checked and set to 0xdb", slot, nmemb,
                size);
      hz_free(held[slot]);
      errno = 0;
      unsigned char *c = hz_calloc(nmemb, size);
      held[slot] = c;
      held_n[slot] = 0;
      PROP_CHECK(p, c, "null", "calloc(%zu, %zu) returned NULL (errno %d)", nmemb, size, errno);
      size_t bytes = nmemb * size, k = prop_first_not(c, bytes, 0);
      PROP_CHECK(p, k == bytes, "zero", "calloc(%zu, %zu): byte %zu of %zu is 0x%02x, not 0",
                 nmemb, size, k, bytes, c[k]);
      memset(c, 0xdb, bytes);
      held_n[slot] = bytes;
    } else { /* nmemb * size overflows, in every shape, or is exactly SIZE_MAX */
      size_t a, b;
      switch (prop_below(p, 4, "shape")) {
        case 0: /* wraps to a small product */
          a = 2 + (size_t)prop_below(p, 1000, "a");
          b = SIZE_MAX / a + 1 + (size_t)prop_below(p, 16, "b");
          break;
        case 1: /* wraps to a product larger than both operands */
          a = ((size_t)1 << 32) + (size_t)prop_below(p, 1u << 20, "a");
          b = ((size_t)1 << 33) + (size_t)prop_below(p, 1u << 20, "b");
          break;
        case 2:
          a = SIZE_MAX;
          b = 2 + (size_t)prop_below(p, 1u << 16, "b");
          break;
        default: /* no overflow: SIZE_MAX exactly, which no object can have */
          a = 3;
          b = SIZE_MAX / 3;
          break;
      }
      if (prop_bool(p, "swap")) {
        size_t t = a;
        a = b;
        b = t;
      }
      prop_step(p, "calloc(%zu, %zu)", a, b);
      errno = 0;
      void *c = hz_calloc(a, b);
      int err = errno;
      if (c) hz_free(c);
      PROP_CHECK(p, !c && err == ENOMEM, "overflow",
                 "calloc(%zu, %zu) must give NULL and ENOMEM: gave %s, errno %d", a, b,
                 c ? "a block" : "NULL", err);
    }
  }
  for (unsigned k = 0; k < KEEP; k++) hz_free(held[k]);
}

/* ---- differential: hz against glibc ------------------------------------------------------- */

/* glibc's own allocator, reached under its internal names so a sanitizer's interposed
 * malloc does not stand in for it. (ASan intercepts __libc_memalign too, so the aligned
 * calls have no glibc side here: size_alignment holds them to the oracle.) */
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void __libc_free(void *);

static void differential(prop_t *p) {
  enum { SLOTS = 8 };
  struct {
    unsigned char *h, *g;
    size_t n;
  } s[SLOTS] = {{0}};
  static const unsigned w[] = {4, 2, 4, 3, 2};
  for (unsigned i = 0; prop_more(p, i, 16) && !prop_failed(p); i++) {
    unsigned kind = prop_weighted(p, w, 5, "call");
    unsigned k = (unsigned)prop_below(p, SLOTS, "slot");
    unsigned char *h = NULL, *g = NULL;
    int he = 0, ge = 0;
    size_t n = 0;
    if (kind == 1 && s[k].h) { /* free both; nothing observable but what follows */
      prop_step(p, "free(b%u)", k);
      hz_free(s[k].h);
      __libc_free(s[k].g);
      s[k].h = s[k].g = NULL;
      continue;
    }
    if (kind == 2 && s[k].h) { /* realloc a live block */
      n = prop_size(p, "size");
      prop_step(p, "b%u = realloc(b%u, %zu)", k, k, n);
      errno = 0;
      h = hz_realloc(s[k].h, n);
      he = errno;
      errno = 0;
      g = __libc_realloc(s[k].g, n);
      ge = errno;
      prop_result(p, "-> hz %s, glibc %s", h ? "a block" : "NULL", g ? "a block" : "NULL");
      if (n == 0) { /* both document it: the block is freed and NULL returned */
        if (g) __libc_free(g);
        if (h) hz_free(h);
        s[k].h = s[k].g = NULL;
        PROP_CHECK(p, !h, "realloc-0", "hz realloc(p, 0) returned a block, glibc %s",
                   g ? "a block" : "NULL");
        continue;
      }
      /* A side that failed still holds its old block. */
      if (h) s[k].h = h;
      if (g) s[k].g = g;
      PROP_CHECK(p, !h == !g && (h || he == ge), "outcome",
                 "realloc(b%u, %zu): hz gave %s (errno %d), glibc %s (errno %d)", k, n,
                 h ? "a block" : "NULL", he, g ? "a block" : "NULL", ge);
      if (!h) continue;
      size_t keep = s[k].n < n ? s[k].n : n;
      PROP_CHECK(p, memcmp(h, g, keep) == 0, "contents",
                 "after realloc(b%u, %zu) hz and glibc hold different bytes in the first %zu", k, n,
                 keep);
      PROP_CHECK(p, hz_usable_size(h) >= n, "usable-short", "realloc: hz usable size %zu < %zu",
                 hz_usable_size(h), n);
      laws__pattern(h, keep, n, i);
      memcpy(g + keep, h + keep, n - keep);
      s[k].n = n;
      continue;
    }
    /* A new block: malloc, calloc or realloc(NULL, n) (malloc by another name). */
    hz_free(s[k].h);
    __libc_free(s[k].g);
    s[k].h = s[k].g = NULL;
    size_t a = kind == 3 ? (size_t)prop_below(p, 64, "nmemb") : 0;
    n = prop_size(p, "size");
    if (kind == 3 && n <= (8u << 20) && a * n > (16u << 20)) a = 1;
    const char *what = kind == 3 ? "calloc" : kind == 4 ? "realloc(NULL)" : "malloc";
    if (kind == 3) prop_step(p, "b%u = calloc(%zu, %zu)", k, a, n);
    else if (kind == 4) prop_step(p, "b%u = realloc(NULL, %zu)", k, n);
    else prop_step(p, "b%u = malloc(%zu)", k, n);
    errno = 0;
    h = kind == 3 ? hz_calloc(a, n) : kind == 4 ? hz_realloc(NULL, n) : hz_malloc(n);
    he = errno;
    errno = 0;
    g = kind == 3 ? __libc_calloc(a, n) : kind == 4 ? __libc_realloc(NULL, n) : __libc_malloc(n);
    ge = errno;
    prop_result(p, "-> hz %s, glibc %s", h ? "a block" : "NULL", g ? "a block" : "NULL");
    if (kind == 3) {
      n = (a && n <= SIZE_MAX / a) ? a * n : 0;
      if (h && g && memcmp(h, g, n) != 0)
        prop_fail(p, "contents", "calloc(%zu, ...) memory differs (hz not zero?)", a);
    }
    if (!h != !g || (!h && he != ge)) {
      if (h) hz_free(h);
      if (g) __libc_free(g);
      prop_fail(p, "outcome", "%s(%zu, %zu): hz gave %s (errno %d), glibc %s (errno %d)", what, a,
                n, h ? "a block" : "NULL", he, g ? "a block" : "NULL", ge);
      break;
    }
    if (h && hz_usable_size(h) < n) {
      prop_fail(p, "usable-short", "%s: hz usable size %zu < %zu", what, hz_usable_size(h), n);
      hz_free(h);
      __libc_free(g);
      break;
    }
    if (h) {
      /* The same bytes on both sides, so later reallocs compare what they kept. */
      laws__pattern(h, 0, n, i);
      memcpy(g, h, n);
    }
    s[k].h = h;
    s[k].g = g;
    s[k].n = n;
  }
  for (unsigned k = 0; k < SLOTS; k++) {
    hz_free(s[k].h);
    __libc_free(s[k].g);
  }
}

const prop_def_t prop_size_alignment = {
    "size_alignment",
    "every call meets the C/POSIX contract: must-fail calls fail with the right errno, a block "
    "is aligned, usable >= n within the waste bound, and usable size is monotone in n",
    size_alignment};
const prop_def_t prop_realloc_laws = {
    "realloc_laws",
    "realloc keeps min(old, new) bytes, realloc(p, usable_size(p)) stays in place, a failed "
    "realloc (OS refusal, impossible size) leaves p intact with ENOMEM",
    realloc_laws};
const prop_def_t prop_calloc_law = {
    "calloc_law",
    "calloc memory is zero after any history of dirty blocks, frees and flushes; every shape of "
    "nmemb * size overflow gives NULL and ENOMEM",
    calloc_law};
const prop_def_t prop_differential = {
    "differential",
    "a single-thread program sees the same outcomes (block or NULL, errno, contents) from hz as "
    "from glibc's malloc in the same process",
    differential};
