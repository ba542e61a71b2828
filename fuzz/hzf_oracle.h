/* The contract oracle: what C11, POSIX and glibc's manual say each allocation call must
 * do, written from those documents and not from hz's tables, so a bug in the tables
 * cannot make the oracle agree with it.
 *
 * Outcomes of a call:
 *   must fail  the documents require failure whatever memory is free (EINVAL for a bad
 *              alignment, ENOMEM for an overflowing calloc or a size no object can have);
 *   may fail   ENOMEM is a correct answer (a request no machine here can hold, or one made
 *              while fault injection refuses memory), and so is a block;
 *   succeed    a block of at least `size` bytes aligned to `align`, whose usable size
 *              stays within the waste bound of hzf_oracle_max_usable.
 */
#ifndef HZF_ORACLE_H
#define HZF_ORACLE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
  HZF_FN_MALLOC = 0,
  HZF_FN_CALLOC,         /* (nmemb, size) */
  HZF_FN_REALLOC,        /* (ptr is live or NULL, size) */
  HZF_FN_ALIGNED_ALLOC,  /* (alignment, size) */
  HZF_FN_MEMALIGN,       /* (alignment, size) */
  HZF_FN_POSIX_MEMALIGN, /* (alignment, size): the result is the error, *out untouched */
} hzf_fn_t;

typedef struct {
  bool must_fail, may_fail;
  int err;      /* errno (posix_memalign: its result) when it fails: EINVAL or ENOMEM */
  size_t size;  /* bytes a success provides */
  size_t align; /* alignment a success honours (at least alignof(max_align_t)) */
} hzf_contract_t;

/* A request above this can never be met on this machine (64 GiB): ENOMEM is allowed. */
#define HZF_ORACLE_HUGE ((size_t)1 << 36)

/* The contract of fn(a, b): malloc(a); calloc(a, b); realloc(_, b) with a = 0 for a NULL
 * ptr; the aligned functions (alignment a, size b). */
hzf_contract_t hzf_oracle(hzf_fn_t fn, size_t a, size_t b);

/* The most usable bytes an allocator may give for `size` bytes aligned to `align`
 * without wasting more than the documented bound (docs/INVARIANTS.md, "Waste"): up to
 * 128 B a 16-byte granule; up to 4 KiB a quarter of the request; up to 8 KiB one 8 KiB
 * block; above, whole 4 KiB pages. An aligned request is bounded as a request of its
 * size rounded up to the alignment. */
size_t hzf_oracle_max_usable(size_t size, size_t align);

const char *hzf_fn_name(hzf_fn_t fn);

#endif /* HZF_ORACLE_H */
