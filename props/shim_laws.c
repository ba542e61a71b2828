/* The preload shim's contract (core/preload.c): every symbol of the malloc family a
 * preloaded program calls, on hz blocks and on foreign ones.
 *
 * The shim is compiled into this binary with its exported names prefixed (hzshim_malloc,
 * hzshim_free, ...: props/BUILD.bazel), so it can be driven without interposing on the
 * process's own malloc (which the sanitizer runtime owns). Everything else is the shim as
 * it ships: its next allocator is what RTLD_NEXT finds after this executable, glibc's, so
 * a foreign block here is one glibc handed out (__libc_malloc), exactly as in a preloaded
 * program; and its fallback to glibc when hz cannot allocate runs under injected OS
 * refusals.
 *
 * The law: each call meets the contract oracle (fuzz/hzf_oracle.h) or its glibc manual
 * page (valloc, pvalloc, reallocarray, cfree); a block is usable, aligned and intact until
 * freed through any entry point; a foreign block is routed to glibc for free, realloc and
 * malloc_usable_size, never reported as misuse and never corrupted; hz never reports a
 * fault for a correct call.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "core/hz_debug.h"
#include "fuzz/hzf_exec.h"
#include "fuzz/hzf_oom.h"
#include "fuzz/hzf_oracle.h"
#include "props/prop.h"

/* The shim's entry points under their prefixed names. */
void *hzshim_malloc(size_t);
void hzshim_free(void *);
void hzshim_cfree(void *);
void *hzshim_calloc(size_t, size_t);
void *hzshim_realloc(void *, size_t);
void *hzshim_reallocarray(void *, size_t, size_t);
size_t hzshim_malloc_usable_size(void *);
int hzshim_posix_memalign(void **, size_t, size_t);
void *hzshim_aligned_alloc(size_t, size_t);
void *hzshim_memalign(size_t, size_t);
void *hzshim_valloc(size_t);
void *hzshim_pvalloc(size_t);

void *__libc_malloc(size_t);

enum { SLOTS = 8 };
typedef struct {
  unsigned char *p;
  size_t n;
  uint8_t fill;
} shim_slot_t;

static const char *const shim__alloc_names[] = {
    "malloc", "calloc", "valloc", "pvalloc", "memalign", "aligned_alloc", "posix_memalign",
    "realloc(NULL)", "reallocarray(NULL)", "glibc's malloc (a foreign block)"};

/* Sizes a case can afford to fill: the domain's bands below 1 MiB, and the sizes no
 * object can have (which must fail before anything is touched). */
static size_t shim__size(prop_t *p) {
  size_t n = prop_size(p, "size");
  return n > (1u << 20) && n < ((size_t)1 << 36) ? n & ((1u << 20) - 1) : n;
}

/* A new block through one entry point; checks what the call returned. Returns the block
 * or NULL (a failure the contract allows, or a recorded property failure). */
static unsigned char *shim__alloc(prop_t *p, unsigned fn, size_t *size_out) {
  size_t n = shim__size(p), a = 0, b = 0, want = n, align = 16;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void *r = NULL;
  int err = 0;
  hzf_contract_t k = {0};
  bool known = true; /* the oracle (or its manual page) decides must-fail / may-fail */
  prop_step(p, "%s(%zu ...)", shim__alloc_names[fn], n);
  errno = 0;
  switch (fn) {
    case 0: r = hzshim_malloc(n); k = hzf_oracle(HZF_FN_MALLOC, n, 0); break;
    case 1:
      a = (size_t)prop_below(p, 8, "nmemb");
      r = hzshim_calloc(a, n);
      k = hzf_oracle(HZF_FN_CALLOC, a, n);
      want = a && n <= SIZE_MAX / a ? a * n : 0;
      break;
    case 2: /* valloc(n) is memalign(page size, n) */
      r = hzshim_valloc(n);
      k = hzf_oracle(HZF_FN_MEMALIGN, page, n);
      align = page;
      break;
    case 3: { /* pvalloc rounds n up to whole pages, and 0 to one page */
      r = hzshim_pvalloc(n);
      size_t rounded = n > SIZE_MAX - (page - 1) ? 0 : (n + page - 1) & ~(page - 1);
      k = n > SIZE_MAX - (page - 1) ? hzf_oracle(HZF_FN_MALLOC, SIZE_MAX, 0)
                                     : hzf_oracle(HZF_FN_MEMALIGN, page, rounded ? rounded : page);
      want = rounded ? rounded : page;
      align = page;
      break;
    }
    case 4:
    case 5:
      b = prop_align(p, "align");
      r = fn == 4 ? hzshim_memalign(b, n) : hzshim_aligned_alloc(b, n);
      k = hzf_oracle(fn == 4 ? HZF_FN_MEMALIGN : HZF_FN_ALIGNED_ALLOC, b, n);
      align = k.align;
      break;
    case 6: {
      b = prop_align(p, "align");
      void *const untouched = (void *)(uintptr_t)0x5eed;
      void *out = untouched;
      err = hzshim_posix_memalign(&out, b, n);
      k = hzf_oracle(HZF_FN_POSIX_MEMALIGN, b, n);
      align = k.align;
      if (err) {
        if (out != untouched)
          prop_fail(p, "out-param", "posix_memalign(%zu, %zu) failed with %d but wrote *out", b, n,
                    err);
        r = NULL;
      } else {
        r = out;
      }
      break;
    }
    case 7: r = hzshim_realloc(NULL, n); k = hzf_oracle(HZF_FN_MALLOC, n, 0); break;
    case 8:
      a = 1 + (size_t)prop_below(p, 4, "nmemb");
      r = hzshim_reallocarray(NULL, a, n);
      want = n <= SIZE_MAX / a ? a * n : 0;
      k = n <= SIZE_MAX / a ? hzf_oracle(HZF_FN_MALLOC, a * n, 0) : hzf_oracle(HZF_FN_CALLOC, a, n);
      break;
    default:
      n = n > (1u << 20) ? 64 : n;
      r = __libc_malloc(n);
      want = n;
      known = false;
      break;
  }
  if (fn != 6) err = errno;
  if (prop_reporting(p)) /* hz_classify is not free: only for the report */
    prop_result(p, "(nmemb %zu, align %zu) -> %s", a, b,
                r ? (hz_classify(r).kind == HZ_PTR_FOREIGN ? "a foreign block" : "an hz block")
                  : "NULL");
  if (prop_failed(p)) return NULL;
  if (known && k.must_fail) {
    if (r) {
      prop_fail(p, "must-fail", "%s(n %zu, a %zu, b %zu) must fail, returned a block",
                shim__alloc_names[fn], n, a, b);
      hzshim_free(r);
    } else if (err != k.err) {
      prop_fail(p, "errno", "%s(n %zu, a %zu, b %zu) failed with %d, the contract says %d",
                shim__alloc_names[fn], n, a, b, err, k.err);
    }
    return NULL;
  }
  if (!r) {
    /* Under injected refusals hz gives up and the shim falls back to glibc, so NULL is
     * allowed only where no allocator could serve the request. */
    if (known && !k.may_fail)
      prop_fail(p, "null", "%s(n %zu, a %zu, b %zu) returned NULL (error %d)", shim__alloc_names[fn],
                n, a, b, err);
    else if (known && err != ENOMEM)
      prop_fail(p, "errno", "%s(n %zu) failed with %d, not ENOMEM", shim__alloc_names[fn], n, err);
    return NULL;
  }
  size_t usable = hzshim_malloc_usable_size(r);
  if (align < 16) align = 16;
  if ((uintptr_t)r % align != 0 || usable < want) {
    prop_fail(p, (uintptr_t)r % align ? "alignment" : "usable-short",
              "%s(n %zu, a %zu, b %zu) = %p: alignment %zu wanted, usable %zu of %zu",
              shim__alloc_names[fn], n, a, b, r, align, usable, want);
    hzshim_free(r);
    return NULL;
  }
  if (want > ((size_t)1 << 30)) {
    /* Only a machine that overcommits without limit gets here (a request beyond the arena
     * that the fallback met): nothing to learn from filling it. */
    hzshim_free(r);
    return NULL;
  }
  if (fn == 1 && prop_first_not(r, want, 0) != want) {
    prop_fail(p, "calloc-zero", "calloc(%zu, %zu) memory is not zero", a, n);
    hzshim_free(r);
    return NULL;
  }
  *size_out = want;
  return r;
}

static void shim_contract(prop_t *p) {
  shim_slot_t s[SLOTS] = {{0}};
  static const unsigned w[] = {6, 3, 3, 1, 2, 1, 1};
  static const unsigned aw[] = {4, 2, 1, 1, 2, 1, 1, 1, 1, 3};
  hzf_faults_t *f = hzf_faults();
  memset(f, 0, sizeof *f);
  for (unsigned i = 0; prop_more(p, i, 24) && !prop_failed(p); i++) {
    unsigned kind = prop_weighted(p, w, 7, "step");
    unsigned k = (unsigned)prop_below(p, SLOTS, "slot");
    shim_slot_t *b = &s[k];
    if (kind == 0 || (!b->p && kind != 5 && kind != 6)) { /* a new block in slot k */
      if (b->p) hzshim_free(b->p);
      b->p = NULL;
      unsigned fn = prop_weighted(p, aw, 10, "entry point");
      size_t n = 0;
      unsigned char *r = shim__alloc(p, fn, &n);
      if (!r) continue;
      b->p = r;
      b->n = n;
      b->fill = (uint8_t)(0x21 + i);
      memset(r, b->fill, n);
    } else if (kind == 1) { /* free it, through free or cfree */
      bool c = prop_bool(p, "cfree");
      prop_step(p, "%s(b%u)", c ? "cfree" : "free", k);
      size_t bad = prop_first_not(b->p, b->n, b->fill);
      PROP_CHECK(p, bad == b->n, "contents", "b%u's byte %zu changed before it was freed", k, bad);
      if (c) hzshim_cfree(b->p);
      else hzshim_free(b->p);
      b->p = NULL;
    } else if (kind == 2) { /* realloc or reallocarray to a new size */
      bool arr = prop_bool(p, "reallocarray");
      size_t n = shim__size(p), nmemb = arr ? 1 + (size_t)prop_below(p, 4, "nmemb") : 1;
      bool over = arr && n > SIZE_MAX / nmemb;
      size_t m = over ? 0 : n * nmemb;
      if (arr) prop_step(p, "b%u = reallocarray(b%u, %zu, %zu)", k, k, nmemb, n);
      else prop_step(p, "b%u = realloc(b%u, %zu)", k, k, n);
      errno = 0;
      unsigned char *q = arr ? hzshim_reallocarray(b->p, nmemb, n) : hzshim_realloc(b->p, n);
      int err = errno;
      prop_result(p, "-> %s", q ? (q == b->p ? "in place" : "moved") : "NULL");
      if (!over && m == 0) { /* realloc(p, 0), and so reallocarray, frees p (glibc's contract) */
        PROP_CHECK(p, !q, "realloc-0", "realloc(b%u, 0) returned a block", k);
        b->p = NULL;
        continue;
      }
      if (!q) {
        hzf_contract_t c = hzf_oracle(HZF_FN_MALLOC, over ? SIZE_MAX : m, 0);
        PROP_CHECK(p, over || c.must_fail || c.may_fail, "null",
                   "realloc of b%u to %zu bytes returned NULL (errno %d)", k, m, err);
        PROP_CHECK(p, err == ENOMEM, "errno", "a failed realloc set errno %d", err);
        size_t bad = prop_first_not(b->p, b->n, b->fill);
        PROP_CHECK(p, bad == b->n, "kept", "a failed realloc changed b%u's byte %zu", k, bad);
        continue;
      }
      size_t keep = b->n < m ? b->n : m, bad = prop_first_not(q, keep, b->fill);
      PROP_CHECK(p, bad == keep, "contents", "realloc of b%u lost byte %zu of %zu", k, bad, keep);
      PROP_CHECK(p, hzshim_malloc_usable_size(q) >= m, "usable-short",
                 "realloc of b%u to %zu bytes: usable %zu", k, m, hzshim_malloc_usable_size(q));
      b->p = q;
      b->n = m;
      memset(q, b->fill, m);
    } else if (kind == 3) { /* malloc_usable_size: at least what was asked, all writable */
      prop_step(p, "malloc_usable_size(b%u)", k);
      size_t u = hzshim_malloc_usable_size(b->p);
      prop_result(p, "= %zu", u);
      PROP_CHECK(p, u >= b->n, "usable-short", "malloc_usable_size(b%u) = %zu < %zu", k, u, b->n);
      memset(b->p + b->n, 0x7e, u - b->n);
    } else if (kind == 4) { /* the OS refuses hz memory: the shim must fall back */
      unsigned nth = 1 + (unsigned)prop_below(p, 4, "nth commit");
      hzf_oom_arm(HZF_OOM_FROM, nth);
      prop_step(p, "every commit from the %u%s refused", nth, nth == 1 ? "st" : "th");
    } else if (kind == 5) {
      hzf_oom_reset();
      prop_step(p, "commits allowed again");
    } else { /* free(NULL), realloc to the same size */
      prop_step(p, "free(NULL)");
      hzshim_free(NULL);
    }
    PROP_CHECK(p, f->count == 0, "false-fault", "hz reported %s for a correct call: %s",
               hz_fault_name(f->kind), f->message);
  }
  hzf_oom_reset();
  for (unsigned k = 0; k < SLOTS; k++) hzshim_free(s[k].p);
  PROP_CHECK(p, f->count == 0, "false-fault", "hz reported %s for a correct free: %s",
             hz_fault_name(f->kind), f->message);
}

const prop_def_t prop_shim_contract = {
    "shim_contract",
    "every malloc-family symbol of the preload shim meets its contract on hz and foreign "
    "blocks, falls back to glibc when hz cannot allocate, and routes foreign pointers to it",
    shim_contract};

const prop_def_t *const prop_all[] = {&prop_shim_contract, NULL};
