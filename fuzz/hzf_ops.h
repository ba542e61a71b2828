/* The hzfuzz op language: bytes -> a program of allocator operations.
 *
 * Shared by every fuzz target, the replay driver and the tools, so one input means one
 * program everywhere. The encoding (docs/FUZZING.md) is part of the corpus format:
 *
 *   byte 0          header: nthreads = min + b % (max - min + 1) for the target
 *   then 5 bytes per op:
 *     k             kind = profile->table[k] (each target weights the kinds)
 *     s             thread = (s & 3) % nthreads; sel = s >> 2 (6 variant bits)
 *     p             pick: which live block (p % live), class, or source
 *     a0 a1         arg = a0 | a1 << 8 (size, count, offset...)
 *
 * Every byte string is a valid program: a short last op is padded with zeros, and
 * every field is reduced modulo its range when it is used, so no input can make the
 * harness itself fail.
 */
#ifndef HZF_OPS_H
#define HZF_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HZF_OP_BYTES 5u
#define HZF_MAX_THREADS 4u
#define HZF_MAX_OPS 2048u

typedef enum {
  HZF_MALLOC = 0,  /* malloc, optionally a burst of many of one size */
  HZF_CALLOC,      /* calloc; sel bit 5 asks for an overflowing nmemb * size */
  HZF_MEMALIGN,    /* aligned_alloc, memalign, posix_memalign; valid and invalid alignments */
  HZF_REALLOC,     /* grow, shrink, to 0, of NULL, to an absolute size */
  HZF_FREE,        /* any, another thread's, own, or newest block; a burst; racing */
  HZF_USABLE,      /* malloc_usable_size of a live block */
  HZF_WRITE,       /* verify a block's contents and refill it with a new byte */
  HZF_SLL_POP,     /* internal: pop blocks from this thread's TLS SLL (refilling it) */
  HZF_SLL_PUSH,    /* internal: push own-slab live blocks onto this thread's TLS SLL */
  HZF_SLL_SPLICE,  /* internal: take k blocks off a TLS SLL, maybe reverse, splice back */
  HZF_SLL_DRAIN,   /* internal: hz_tcache_drain of one class */
  HZF_FLUSH,       /* hz_thread_flush */
  HZF_EXIT,        /* the thread exits (its slabs are abandoned) and a new one replaces it:
                    * a pthread exit one time in eight, else hz_thread_detach */
  HZF_REUSE,       /* free a whole class (or everything), flush every thread: slabs go EMPTY */
  HZF_FOREIGN,     /* free/realloc/usable_size of memory hz never gave out */
  HZF_INTERIOR,    /* free/realloc/usable_size of an interior or misaligned address */
  HZF_DOUBLE_FREE, /* free a block, then free/realloc/usable_size it again */
  HZF_STALE,       /* free/realloc/usable_size through a stale pointer to a freed block */
  HZF_CLASSIFY,    /* hz_classify of live, interior, misaligned, foreign, stale pointers */
  HZF_CHECK,       /* the checker audit (a probe breaks one heap rule; the heap check must
                      name it), then the whole-heap check and full content verification */
  HZF_EDGE,        /* the API contract's edges: 0 and impossible sizes, calloc overflow
                      shapes, every class of alignment, realloc to 0 and in place */
  HZF_OOM,         /* fault injection: refuse the n-th commit, every commit from the n-th,
                      or the n-th decommit; or disarm */
  HZF_FILL,        /* set a class's TLS SLL to empty, its bound - 1, its bound, or one over;
                      sel bit 2 first runs a steady loop of the class and judges its cost,
                      bit 3 a sweep: a whole slab's worth allocated, checked and freed */
  HZF_FORK,        /* fork with every thread parked: the child checks, allocates and frees */
  HZF_RACE,        /* arm the next op: at a core race point another thread takes a step
                      (frees, publishes, flushes, exits, allocates) while it waits */
  HZF_KIND_COUNT
} hzf_kind_t;

typedef struct {
  uint8_t kind;   /* hzf_kind_t */
  uint8_t thread; /* 0 .. nthreads-1 */
  uint8_t sel;    /* 6 variant bits */
  uint8_t pick;
  uint16_t arg;
} hzf_op_t;

/* A fuzz target's view of the language: which op kinds it draws, how often, and how
 * many threads it runs. The weights are part of the corpus encoding: changing them
 * re-maps the kind byte of every stored input of that target. */
typedef struct {
  const char *name; /* "tls_sll": the target is <name>_fuzzer, its corpus corpus/<name>_fuzzer */
  uint8_t weights[HZF_KIND_COUNT];
  uint8_t min_threads, max_threads;
} hzf_profile_t;

typedef struct {
  const hzf_profile_t *profile;
  unsigned nthreads;
  unsigned nops;
  hzf_op_t ops[HZF_MAX_OPS];
} hzf_program_t;

extern const hzf_profile_t hzf_profile_tls_sll, hzf_profile_alloc, hzf_profile_realloc,
    hzf_profile_reuse, hzf_profile_ptag, hzf_profile_mt, hzf_profile_shim;
/* NULL-terminated list of every profile. */
extern const hzf_profile_t *const hzf_profiles[];
/* By profile name, or by target name ("tls_sll" or "tls_sll_fuzzer"); NULL if none. */
const hzf_profile_t *hzf_profile_find(const char *name);

const char *hzf_kind_name(unsigned kind);
/* The kind a k byte means for this profile. */
unsigned hzf_kind_of_byte(const hzf_profile_t *p, uint8_t k);

/* Decodes data into *out (never fails; at most HZF_MAX_OPS ops). */
void hzf_decode(const hzf_profile_t *p, const uint8_t *data, size_t size, hzf_program_t *out);

/* One line describing op i as decoded, without running it ("t1 free any #pick 7"). */
void hzf_describe(const hzf_program_t *prog, unsigned i, char *buf, size_t n);

/* The text form, one op a line: "t<thread> <kind> sel=<n> pick=<n> arg=<n>  # what".
 * hzf_write_text prints it; hzf_parse_text turns it back into bytes (round trip). */
void hzf_write_text(FILE *f, const hzf_program_t *prog);
/* Returns the number of bytes written to out (at most cap), or -1 with a message in
 * err naming the line. */
long hzf_parse_text(const hzf_profile_t *p, const char *text, uint8_t *out, size_t cap,
                    char *err, size_t errn);

/* Size requested by a malloc-like op from its 2 size-mode bits and 16-bit arg: 0 a
 * class boundary +-3, 1 tiny (0..256), 2 any slab size (even args: a uniform 16-byte
 * granule up to 4 KiB; odd args: a power-of-two band of 0..64 KiB), 3 large (args below
 * 2^15: above 64 KiB in 2 KiB steps; from 2^15: a multiple of a page, a slab or half a
 * SuperSlab, -1, 0 or +1).
 * One mode-0 arg in four (arg >> 14 == 3) means "the size of the k-th most recently
 * freed block" instead, k = arg & 3, so that a later op asks for the size an earlier
 * free gave back and gets the same block again (the model resolves it; with nothing
 * freed yet it is the class boundary). */
size_t hzf_size_of(unsigned mode, unsigned arg);
/* A realloc's new size relative to the old (sel bit 3): old + or - (bit 4) arg % 4096
 * for args below 2^15; from 2^15, twice (up to 4 MiB old) or half (bit 4) the old size,
 * -1, 0 or +1 (arg % 4096 % 3). Never 0: realloc to 0 is its own variant. */
size_t hzf_realloc_relative(size_t old, unsigned sel, unsigned arg);
/* k when mode and arg mean "the k-th most recently freed block's size", else -1. */
int hzf_size_freed(unsigned mode, unsigned arg);
/* Does a free op race (arg & 7 == 7)? Its first block's remote push is raced by the
 * free of another live block of the same slab, landed between the link and the CAS
 * (core race point HZ_RACE_REMOTE_PUSH). */
static inline int hzf_free_races(unsigned arg) { return (arg & 7) == 7; }
/* Is an exit op a real pthread exit (sel & 7 == 0), or hz_thread_detach, which runs
 * hz's same thread-exit path on a thread that goes on? */
int hzf_exit_is_real(unsigned sel);
/* Whether a fork op forks (one in sixteen, by variant bits 2-5; bits 0-1 are the child's). */
int hzf_fork_is_real(unsigned sel);
/* A race op's fields: the point its next op waits at (sel & 7; -1, from 6 and 7, is
 * the first point reached), and the step the racing thread takes there (sel >> 3, one of
 * HZF_RACE_STEPS, named for traces). */
int hzf_race_point_of(unsigned sel);
#define HZF_RACE_STEPS 6u
unsigned hzf_race_step_of(unsigned sel);
const char *hzf_race_step_name(unsigned sel);
/* A check op's audit probe (hzf_audit.c): arg % count picks the first one tried. */
unsigned hzf_audit_probe_count(void);
const char *hzf_audit_probe_name(unsigned i);
/* Burst length of malloc and free: 1, or 2..256 when sel bit 2 is set. */
unsigned hzf_burst_of(unsigned sel);
/* Burst length of calloc, from its pick byte: 1, or 2..256 when bit 7 is set. */
unsigned hzf_calloc_burst_of(unsigned pick);
/* A fill op's steady loop (sel bit 2): its width, 1..HZ_SLL_MIN_COUNT blocks, from arg. */
unsigned hzf_steady_width(unsigned arg);
/* A fill op's sweep (sel bit 3): the order it frees in, from arg (0 last first, 1 first
 * first, 2 evens first), and that order's name for traces. */
unsigned hzf_sweep_order(unsigned arg);
const char *hzf_sweep_order_name(unsigned order);

#endif /* HZF_OPS_H */
