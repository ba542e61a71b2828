/* The entry points the ops call: hz's own API, or the preload shim's malloc family.
 *
 * Every profile but one drives hz_malloc & co. directly. The shim profile (shim_fuzzer)
 * drives the preload shim instead: core/preload.c, built into the binaries that link
 * hzf_api_shim.c with every exported name prefixed, so that it does not interpose on the
 * process's malloc, which the sanitizer owns. The same op language, model and oracle
 * then reach what a preloaded program calls: the whole malloc family, valloc, pvalloc,
 * reallocarray and cfree included, and the shim's two behaviours of its own:
 *   - a pointer outside hz's arena goes to the next allocator (glibc) for free, realloc
 *     and malloc_usable_size, so the foreign op passes it blocks of that allocator;
 *   - when hz cannot allocate (fault injection refused it memory), the shim falls back
 *     to the next allocator, so a result outside the arena is a success, which
 *     hzf_fallback holds to the contract and gives back.
 * The executor selects the table for each input's profile (hzf_api_select).
 */
#ifndef HZF_API_H
#define HZF_API_H

#include <stdbool.h>
#include <stddef.h>

#include "core/api.h"
#include "fuzz/hzf_exec.h"

typedef struct {
  const char *name; /* "hz" or "shim", for traces */
  bool shim;
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void (*free)(void *);
  void *(*aligned_alloc)(size_t, size_t);
  void *(*memalign)(size_t, size_t);
  int (*posix_memalign)(void **, size_t, size_t);
  size_t (*usable_size)(void *);
  /* The shim's own entry points; NULL in hz's table. */
  void *(*valloc)(size_t);
  void *(*pvalloc)(size_t);
  void *(*reallocarray)(void *, size_t, size_t);
  void (*cfree)(void *);
  /* What hz routes foreign pointers to while this table is in force. */
  const hz_foreign_ops_t *foreign;
} hzf_api_t;

/* Calls fn(p), a table's free, with a sentinel in errno, and keeps the first change
 * for hzf_api_errno_changed (free never changes errno: POSIX.1-2024, glibc 2.33). */
void hzf_api_free_kept(void (*fn)(void *), void *p);
/* The errno a free through a table left on this thread since the last call (-1 for 0),
 * or 0 when every free kept it. The executor asks after every op. */
int hzf_api_errno_changed(void);

/* Sets errno, before an op's call, to what a program may have left there: 0, ENOMEM,
 * EINVAL or ERANGE, by the op's index. No call may behave differently for it (the shim
 * tests errno == ENOMEM after hz fails, so a stale ENOMEM once sent a realloc(p, 0) that
 * had freed p down its fallback). A call that must set errno is still seen to, except
 * when the preset is the very value it must set (one op in four for ENOMEM or EINVAL). */
void hzf_errno_in(const hzf_ctx_t *c);

/* The table in force for the running input. */
extern const hzf_api_t *hzf_api;

/* The shim's table when the binary links hzf_api_shim.c, else NULL (a weak default). */
const hzf_api_t *hzf_shim_table(void);
/* Can this binary run profile p? (The shim profile needs the shim linked in.) */
bool hzf_api_available(const hzf_profile_t *p);
/* Before an input of profile p: its table, and hz's foreign-pointer routing to match
 * (the shim's for the shim, none for hz: a foreign pointer is then a misuse report).
 * False when the binary cannot run p. */
bool hzf_api_select(const hzf_profile_t *p);

/* The next allocator's malloc and malloc_usable_size (dlsym RTLD_NEXT from the
 * executable: glibc's, under the sanitizers too), the allocator the shim routes foreign
 * pointers to: NULL and 0 when the process has none. Its blocks are freed through the shim. */
void *hzf_next_malloc(size_t size);
size_t hzf_next_usable_size(void *p);

/* A result outside hz's arena, from an allocation of `req` bytes aligned to `align`. For
 * hz that is a finding ("foreign-result"). For the shim it is its fallback, allowed only
 * when fault injection refused hz memory during the op or the request is one hz may
 * refuse (`may_refuse`): the block must be aligned, hold `req` bytes (zero when
 * `zeroed`), and be freed through the shim without a fault. Either way the block is gone
 * afterwards; returns false when a check failed. */
bool hzf_fallback(hzf_ctx_t *c, void *p, size_t req, size_t align, bool zeroed,
                  bool may_refuse);

/* A NULL from an allocation of `req` bytes aligned to `align`. For the shim, beyond C11:
 * a request hz is refused goes to the next allocator, so with hz refused memory during the
 * op, a NULL is the next allocator's failure as well, which for a request of at most
 * HZF_NEXT_SURE bytes (aligned to at most as much) it is not ("shim-fallback"). True
 * when the NULL may stand; for hz, always (its NULL is hzf_model's to judge). */
#define HZF_NEXT_SURE ((size_t)64 << 20)
bool hzf_shim_null_ok(hzf_ctx_t *c, size_t req, size_t align, int err);

/* The foreign op in the shim: a block of the next allocator passed to free (call 0),
 * realloc (1), malloc_usable_size (2) or cfree (3) goes to that allocator (realloc keeping
 * its bytes, usable size that allocator's answer), and hz reports nothing. Any other
 * memory outside the arena is the next allocator's to judge, and glibc aborts on it. */
void hzf_foreign_routed(hzf_ctx_t *c, unsigned call);

/* The shim's realloc of model block i returned q outside the arena: it moved the block to
 * the next allocator and freed it in hz. The first min(old, size) bytes must have come
 * along; block i leaves the model and q is held to hzf_fallback. */
bool hzf_fallback_realloc(hzf_ctx_t *c, unsigned i, void *q, size_t size, bool may_refuse);

#endif /* HZF_API_H */
