/* Layer 1 (base): compiler macros, the three assertion tiers, sanitizer shims and the
 * fault-reporting entry point every layer above uses.
 *
 *   HZ_CHECK(cond, kind, op, ptr, detail)
 *                                   always on: a caller error such as a foreign free or a
 *                                   damaged list; reported (hz_fault), never ignored. The
 *                                   expression is true when cond held.
 *   HZ_ASSERT(cond)                 HZ_DEBUG >= 1: an internal invariant, cheap to test.
 *   HZ_ASSERT_EXPENSIVE(cond)       HZ_DEBUG >= 2: an invariant whose test walks a structure.
 */
#ifndef HZ_BASE_H
#define HZ_BASE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/hz_debug.h"
#include "core/seed_bugs.h"

#define HZ_LIKELY(x) __builtin_expect(!!(x), 1)
#define HZ_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HZ_NOINLINE __attribute__((noinline))
#define HZ_COLD __attribute__((cold, noinline))
#define HZ_INLINE static inline __attribute__((always_inline))
#define HZ_TLS __thread __attribute__((tls_model("initial-exec")))
#define HZ_EXPORT __attribute__((visibility("default")))

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define HZ_ASAN 1
#include <sanitizer/asan_interface.h>
#else
#define HZ_ASAN 0
#endif
#if __has_feature(memory_sanitizer)
#define HZ_MSAN 1
#include <sanitizer/msan_interface.h>
#else
#define HZ_MSAN 0
#endif

/* Accesses to the link words of free blocks. Free blocks are poisoned under ASan (so a
 * use-after-free by the program is caught), and the allocator itself must still read
 * and write their links: these accessors are exempt from instrumentation. */
#define HZ_NO_SANITIZE __attribute__((no_sanitize("address", "memory")))

/* The invariant checkers (check.c, hz_slab_validate, hz_tcache_validate) are the
 * fuzzers' oracle, not code under test: in a fuzzing build libFuzzer traced every
 * comparison of every heap walk, 6 % of a fuzzer's CPU. The allocator's own branches,
 * which reach the same heap shapes, stay instrumented. */
#define HZ_CHECKER __attribute__((no_sanitize("coverage")))

HZ_NO_SANITIZE static inline void *hz_link_get(const void *block) {
  return *(void *const *)block;
}
HZ_NO_SANITIZE static inline void hz_link_set(void *block, void *next) {
  *(void **)block = next;
}
/* Word 1 of a free block holds the free marker (see free.c); word 0 holds the link. */
HZ_NO_SANITIZE static inline uintptr_t hz_mark_get(const void *block) {
  return ((const uintptr_t *)block)[1];
}
HZ_NO_SANITIZE static inline void hz_mark_set(void *block, uintptr_t v) {
  ((uintptr_t *)block)[1] = v;
}

/* Race points (config.h HZ_RACE_POINTS): one relaxed load and an untaken branch in a
 * fuzzing build, nothing otherwise. */
extern hz_race_hook_t _Atomic hz_race_hook;
static inline void hz_race_point(hz_race_point_t where, void *obj) {
  if (!HZ_RACE_POINTS) return;
  hz_race_hook_t h = atomic_load_explicit(&hz_race_hook, memory_order_relaxed);
  if (HZ_UNLIKELY(h != NULL)) h(where, obj);
}

/* Poisoning: compiled to nothing outside ASan/MSan builds. */
static inline void hz_poison(void *p, size_t n) {
#if HZ_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}
static inline void hz_unpoison(void *p, size_t n) {
#if HZ_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#elif HZ_MSAN
  __msan_allocated_memory(p, n); /* contents are uninitialised for the program */
#else
  (void)p;
  (void)n;
#endif
}

/* Memory the allocator knows is zero (a fresh or decommitted page): initialised for MSan. */
static inline void hz_mark_initialized(void *p, size_t n) {
#if HZ_MSAN
  __msan_unpoison(p, n);
#else
  (void)p;
  (void)n;
#endif
}

/* Fault reporting (fault.c). Calls the installed error hook, or prints one line naming
 * the pointer and the fault and aborts. Returns only when a hook is installed. */
HZ_COLD void hz_fault(hz_fault_kind_t kind, hz_op_t op, const void *ptr, const char *detail);
/* Internal corruption found by an assertion: always aborts with file and line. */
__attribute__((noreturn, cold)) void hz_panic(const char *file, int line, const char *what);

#define HZ_CHECK(cond, kind, op, ptr, detail) \
  (HZ_LIKELY(cond) ? 1 : (hz_fault((kind), (op), (ptr), (detail)), 0))

#if HZ_DEBUG >= 1
#define HZ_ASSERT(cond) \
  do { if (HZ_UNLIKELY(!(cond))) hz_panic(__FILE__, __LINE__, #cond); } while (0)
#else
#define HZ_ASSERT(cond) do { (void)sizeof(cond); } while (0)
#endif
#if HZ_DEBUG >= 2
#define HZ_ASSERT_EXPENSIVE(cond) HZ_ASSERT(cond)
#else
#define HZ_ASSERT_EXPENSIVE(cond) do { (void)sizeof(cond); } while (0)
#endif

/* Relaxed atomics for fields written by one thread and read racily by others. */
#define HZ_LOAD(p) atomic_load_explicit((p), memory_order_relaxed)
#define HZ_STORE(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)

/* A mutex that knows its holder in checked builds (HZ_DEBUG >= 1), so that the code
 * which changes what a lock guards asserts it holds it: HZ_ASSERT(hz_lock_held(&l)). A
 * lock taken too late or released too early then fails on the first thread that runs
 * the path, alone and every time, not only when another thread happens to race it (what
 * a race detector needs). The holder is only ever compared with the caller's own id, so
 * relaxed accesses are enough: a thread sees its own writes. */
typedef struct {
  pthread_mutex_t mu;
  _Atomic uintptr_t holder; /* pthread_self() of the holder, 0 when free (checked builds) */
} hz_lock_t;
#define HZ_LOCK_INIT {.mu = PTHREAD_MUTEX_INITIALIZER}
static inline void hz_lock(hz_lock_t *l) {
  pthread_mutex_lock(&l->mu);
  if (HZ_DEBUG) HZ_STORE(&l->holder, (uintptr_t)pthread_self());
}
static inline void hz_unlock(hz_lock_t *l) {
  if (HZ_DEBUG) HZ_STORE(&l->holder, 0);
  pthread_mutex_unlock(&l->mu);
}
/* Whether the calling thread holds l (checked builds; for assertions only). */
static inline bool hz_lock_held(hz_lock_t *l) {
  return HZ_LOAD(&l->holder) == (uintptr_t)pthread_self();
}
/* In a fork child, where the forking thread holds every lock: the lock as new. */
static inline void hz_lock_reinit(hz_lock_t *l) {
  pthread_mutex_init(&l->mu, NULL);
  HZ_STORE(&l->holder, 0);
}

/* The free marker: word 1 of every free block holds a per-process random value, so a
 * free that finds it there is a suspected double free (free.c). Two flag bits refine it:
 * a block waiting in a remote queue holds hz_free_mark | HZ_MARK_QUEUED, which lets the
 * owner's collection notice a block queued twice (slab.c); a block carved but never yet
 * handed out holds hz_free_mark | HZ_MARK_FRESH, so a free of it is reported as "not
 * allocated" rather than "double free". hz_free_mark has both bits clear. */
#define HZ_MARK_QUEUED ((uintptr_t)2)
#define HZ_MARK_FRESH ((uintptr_t)4)
#define HZ_MARK_FLAGS (HZ_MARK_QUEUED | HZ_MARK_FRESH)
extern uintptr_t hz_free_mark;
static inline bool hz_mark_is_free(const void *block) {
  uintptr_t mark = hz_mark_get(block);
  if (HZ_BUG(HZ_BUG_REMOTE_TWICE, mark == (hz_free_mark | HZ_MARK_QUEUED))) return false;
  return (mark & ~HZ_MARK_FLAGS) == hz_free_mark;
}

/* Slow-path event counters (hz_stats_t): relaxed global adds, never on a fast path. */
#define HZ_COUNT(field) atomic_fetch_add_explicit(&hz_counters.field, 1, memory_order_relaxed)
typedef struct {
  _Atomic uint64_t refills, drains, remote_collects, adoptions, abandons,
      slab_inits, slab_releases, superslabs_taken, superslabs_released, large_allocs,
      large_frees, faults, extents_decommitted;
} hz_counters_t;
extern hz_counters_t hz_counters;

#endif /* HZ_BASE_H */
