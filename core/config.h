/* hzfuzz core configuration: every compile-time knob, in one place.
 *
 * Knobs are set with -D on the compiler command line (Bazel: --copt or a config in
 * .bazelrc). There are no environment variables on the allocation path. Everything
 * not listed here is derived from these values.
 */
#ifndef HZ_CONFIG_H
#define HZ_CONFIG_H

/* HZ_DEBUG: 0 release; 1 adds HZ_ASSERT (cheap internal assertions); 2 adds
 * HZ_ASSERT_EXPENSIVE (validates a whole slab on every slow-path step); 3 also validates
 * the calling thread's whole cache on every slow-path malloc and free. Trades speed for
 * earlier detection. */
#ifndef HZ_DEBUG
#define HZ_DEBUG 0
#endif

/* HZ_SECURE: 1 (default) keeps the free marker and the block-start test on the free
 * fast path, so double, interior and misaligned frees are detected in every build; 0
 * compiles those out (foreign pointers and damaged lists are still reported: HZ_CHECK is
 * always on). Only the benchmark's "detection off" column uses 0: it trades safety for a
 * few instructions per free. */
#ifndef HZ_SECURE
#define HZ_SECURE 1
#endif

/* HZ_ARENA_SHIFT: log2 of the reserved arena (default 2^38 = 256 GiB of address space,
 * PROT_NONE until used). Bounds the heap size; the PTAG table costs 4 bytes of
 * address space per 4 KiB page of arena, committed lazily. */
#ifndef HZ_ARENA_SHIFT
#define HZ_ARENA_SHIFT 38
#endif

/* HZ_SLAB_SHIFT: log2 of a slab (default 128 KiB). Larger slabs amortise refills
 * over more blocks; smaller ones go EMPTY sooner and waste less per class per thread. */
#ifndef HZ_SLAB_SHIFT
#define HZ_SLAB_SHIFT 17
#endif

/* HZ_SLL_BYTES: the byte budget of one thread's TLS SLL for one class, bounded to
 * [HZ_SLL_MIN_COUNT, HZ_SLL_MAX_COUNT] blocks. More caching means fewer drains and
 * refills, and more memory parked per thread. */
#ifndef HZ_SLL_BYTES
#define HZ_SLL_BYTES (64u * 1024u)
#endif
#ifndef HZ_SLL_MIN_COUNT
#define HZ_SLL_MIN_COUNT 8u
#endif
#ifndef HZ_SLL_MAX_COUNT
#define HZ_SLL_MAX_COUNT 256u
#endif

/* HZ_SLL_GROW_BYTES: a class whose TLS SLL keeps running dry doubles its bound on each
 * refill, up to this many bytes (same count bounds). Programs whose working set of a
 * medium class is larger than HZ_SLL_BYTES then stop paying a refill and a drain every
 * few operations; the cost is up to this much memory parked per hot class per thread
 * (hz_thread_flush returns it and resets the bound). */
#ifndef HZ_SLL_GROW_BYTES
#define HZ_SLL_GROW_BYTES (1024u * 1024u)
#endif

/* HZ_MAX_THREADS: threads that may hold a thread cache at once (owner ids are 16-bit
 * in the page tag). A further thread fails its allocations with ENOMEM. */
#ifndef HZ_MAX_THREADS
#define HZ_MAX_THREADS 4096u
#endif

/* HZ_LARGE_CACHE_BYTES: the least the dirty cache may hold: freed extents kept committed
 * for reuse (counted in touched bytes) before the oldest are returned to the OS. Trades
 * resident memory for fewer madvise calls and page faults. The bound in force is
 * HZ_LARGE_CACHE_LIMIT, which grows with the live large blocks. */
#ifndef HZ_LARGE_CACHE_BYTES
#define HZ_LARGE_CACHE_BYTES (64u * 1024u * 1024u)
#endif

/* HZ_EXTENT_BINS: free extents of 1..HZ_EXTENT_BINS SuperSlabs (default 32: up to 64 MiB)
 * have one list per length, so a request finds a fitting extent without a search; longer
 * ones share one list that a request walks. The fuzz core takes 4, so that the shared
 * list holds the free extents of its small heaps too. */
#ifndef HZ_EXTENT_BINS
#define HZ_EXTENT_BINS 32u
#endif

/* HZ_SEED_BUG: 0 (default) or one HZ_BUG_<NAME> of core/seed_bugs.h, which re-introduces
 * that one known bug for tools/bugzoo to prove the suite catches it. Never for real use. */

/* ---- derived; do not set ---------------------------------------------------- */
/* HZ_RACE_POINTS: fuzzing builds (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, the macro
 * libFuzzer and OSS-Fuzz builds define) call a hook at each race point, a place in
 * lock-free code between a load and the CAS that depends on it, so a fuzzer can land
 * another thread's step exactly there (hz_set_race_hook). Elsewhere a race point is an
 * empty inline function. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define HZ_RACE_POINTS 1
#else
#define HZ_RACE_POINTS 0
#endif
/* HZ_LARGE_CACHE_LIMIT(live): the dirty cache's bound when the large working set is
 * `live` bytes of extents (the live large blocks, or their recent average if that is
 * more): twice that, and at least HZ_LARGE_CACHE_BYTES. A program that replaces large
 * buffers frees about as much as it is about to allocate, and best-fit reuse of sizes
 * that differ leaves free space of the order of its working set between its live
 * blocks; a bound that follows the working set lets the replacements reuse committed
 * memory instead of paying a madvise and then a page fault per page. When the program
 * frees its large blocks, the bound falls with them and the cache is given back. Past
 * the bound, the trim decommits the least recently freed extents until the cache is at
 * HZ_LARGE_CACHE_TRIM_TO of the bound, so that the next trim is a quarter of the bound
 * of frees away: decommits come in batches, not one per free. */
#define HZ_LARGE_CACHE_LIMIT(live) \
  (2 * (live) > (size_t)HZ_LARGE_CACHE_BYTES ? 2 * (live) : (size_t)HZ_LARGE_CACHE_BYTES)
#define HZ_LARGE_CACHE_TRIM_TO(limit) ((limit) - (limit) / 4)
#define HZ_PAGE_SHIFT 12
#define HZ_PAGE_SIZE ((size_t)1 << HZ_PAGE_SHIFT)
#define HZ_SUPERSLAB_SHIFT 21 /* 2 MiB: the unit taken from the arena */
#define HZ_SUPERSLAB_SIZE ((size_t)1 << HZ_SUPERSLAB_SHIFT)
#define HZ_SLAB_SIZE ((size_t)1 << HZ_SLAB_SHIFT)
#define HZ_SLABS_PER_SUPERSLAB (HZ_SUPERSLAB_SIZE / HZ_SLAB_SIZE)
#define HZ_PAGES_PER_SLAB (HZ_SLAB_SIZE >> HZ_PAGE_SHIFT)
#define HZ_ARENA_SIZE ((size_t)1 << HZ_ARENA_SHIFT)
#define HZ_ARENA_PAGES (HZ_ARENA_SIZE >> HZ_PAGE_SHIFT)
#define HZ_ARENA_SLABS (HZ_ARENA_SIZE >> HZ_SLAB_SHIFT)
#define HZ_ARENA_SUPERSLABS (HZ_ARENA_SIZE >> HZ_SUPERSLAB_SHIFT)
#define HZ_MIN_ALIGN 16u

#if HZ_SLAB_SHIFT < 16 || HZ_SLAB_SHIFT > 20
#error "HZ_SLAB_SHIFT must be in [16, 20]: a slab must hold at least one 64 KiB block"
#endif
#if HZ_ARENA_SHIFT < 24 || HZ_ARENA_SHIFT > 42
#error "HZ_ARENA_SHIFT must be in [24, 42]"
#endif
#if HZ_EXTENT_BINS < 1 || HZ_EXTENT_BINS > 1024
#error "HZ_EXTENT_BINS must be in [1, 1024]"
#endif
#if HZ_MAX_THREADS >= 0xFFFFu
#error "HZ_MAX_THREADS must fit the 16-bit owner field of a page tag"
#endif

#endif /* HZ_CONFIG_H */
