/* The contract oracle (hzf_oracle.h). Sources, per rule:
 *   C11 7.22.3: malloc(0), calloc, realloc, aligned_alloc (C17 DR 460: any size, the
 *     alignment must be a valid one; glibc >= 2.38 and hz: a power of two, else EINVAL);
 *   POSIX posix_memalign: EINVAL unless a power of two multiple of sizeof(void *);
 *     memptr is not modified on failure;
 *   glibc manual: malloc(n > PTRDIFF_MAX) fails with ENOMEM; calloc overflow is ENOMEM;
 *     realloc(p, 0) frees p and returns NULL; realloc(NULL, n) is malloc(n); memalign
 *     rounds an alignment that is not a power of two up to the next one and fails with
 *     EINVAL only above SIZE_MAX / 2 + 1; an alignment below the minimum is the minimum.
 */
#include "fuzz/hzf_oracle.h"

#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#define HZF_MAX_ALIGN alignof(max_align_t)

static bool hzf__pow2(size_t x) { return x && (x & (x - 1)) == 0; }

static hzf_contract_t hzf__sized(size_t size, size_t align) {
  hzf_contract_t k = {.size = size, .align = align < HZF_MAX_ALIGN ? HZF_MAX_ALIGN : align,
                      .err = ENOMEM};
  if (size > (size_t)PTRDIFF_MAX) k.must_fail = true;
  else if (size > HZF_ORACLE_HUGE || align > HZF_ORACLE_HUGE) k.may_fail = true;
  return k;
}

hzf_contract_t hzf_oracle(hzf_fn_t fn, size_t a, size_t b) {
  hzf_contract_t bad = {.must_fail = true, .err = EINVAL};
  switch (fn) {
    case HZF_FN_MALLOC: return hzf__sized(a, 0);
    case HZF_FN_CALLOC: {
      size_t total;
      if (__builtin_mul_overflow(a, b, &total)) return (hzf_contract_t){.must_fail = true, .err = ENOMEM};
      return hzf__sized(total, 0);
    }
    case HZF_FN_REALLOC: return hzf__sized(b, 0);
    case HZF_FN_ALIGNED_ALLOC:
      if (!hzf__pow2(a)) return bad;
      return hzf__sized(b, a);
    case HZF_FN_MEMALIGN: {
      if (a > SIZE_MAX / 2 + 1) return bad;
      size_t p = HZF_MAX_ALIGN;
      while (p < a) p <<= 1;
      return hzf__sized(b, p);
    }
    case HZF_FN_POSIX_MEMALIGN:
      if (!hzf__pow2(a) || a % sizeof(void *)) return bad;
      return hzf__sized(b, a);
  }
  return bad;
}

static size_t hzf__round(size_t n, size_t to) { return (n + to - 1) / to * to; }

size_t hzf_oracle_max_usable(size_t size, size_t align) {
  size_t n = align > HZF_MAX_ALIGN ? hzf__round(size ? size : 1, align) : size;
  if (n <= 128) return n < 16 ? 16 : hzf__round(n, 16);
  if (n <= 4096) return hzf__round(n + n / 4, 16);
  if (n <= 8192) return 8192;
  return hzf__round(n, 4096);
}

const char *hzf_fn_name(hzf_fn_t fn) {
  static const char *const names[] = {"malloc", "calloc", "realloc", "aligned_alloc",
                                      "memalign", "posix_memalign"};
  return (unsigned)fn < sizeof names / sizeof *names ? names[fn] : "?";
}
