/* The property engine: laws an allocator must obey, checked on generated cases, with the
 * failing case shrunk to a minimum and saved so it replays forever.
 *
 * A property is a C function that draws its inputs from a choice sequence (a byte
 * string) through the typed draws below, does something to the allocator, and checks the
 * law with PROP_CHECK. The engine:
 *
 *   generates  case i of a run gets its own 64-bit seed (derived from the run's printed
 *              seed); the seed fills the choice sequence with random bytes. `--seed S`
 *              reruns exactly that case.
 *   shrinks    a failing choice sequence, Hypothesis-style, on the draws it is made of:
 *              delete runs of draws (a list element is a "more" draw and the element,
 *              so deleting both drops one op), zero a draw, lower its value, sort
 *              neighbours. A candidate counts when it fails the same way and is smaller
 *              (shorter, or as long and lexicographically lower). Each candidate runs in a
 *              forked child, so a crash (an hz misuse abort, a sanitizer report, a signal)
 *              shrinks like any other failure.
 *   reports    the shrunk case as the list of steps the property took (for op programs,
 *              the op language's text form), the property's message, the seed, and a
 *              replay line; it saves the case as props/regressions/<property>-<hash>.ops.
 *   replays    every saved case (`--replay FILE`), and any byte string as a libFuzzer
 *              input: the same property builds as a fuzz target (prop_fuzz.c).
 *
 * Every byte string is a valid case: draws reduce their bytes modulo their range, and a
 * draw past the end of the sequence reads zeros, the simplest choice.
 */
#ifndef PROP_H
#define PROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prop_s prop_t;
typedef void (*prop_fn_t)(prop_t *p);

typedef struct {
  const char *name; /* realloc_laws: the targets are //props:realloc_laws{,_test,_fuzz} */
  const char *law;  /* the law in one line, printed with a failure */
  prop_fn_t fn;
} prop_def_t;

/* NULL-terminated: every property of the suite (props/registry.c). */
extern const prop_def_t *const prop_all[];

#define PROP_MAX_CHOICES 16384u /* bytes of one case's choice sequence */
#define PROP_MAX_DRAWS 4096u    /* draws recorded per case (shrinking works on these) */

/* ---- draws: every one is recorded with its label, so a counterexample can be read ---- */
/* nbytes (1..8) bytes read big-endian: lowering the first bytes lowers the value. */
uint64_t prop_draw(prop_t *p, unsigned nbytes, const char *label);
/* Uniform enough in [0, n) (n >= 1); 0 is the simplest value. */
uint64_t prop_below(prop_t *p, uint64_t n, const char *label);
bool prop_bool(prop_t *p, const char *label);
/* An index into weights[0..n): index 0 is the simplest choice. */
unsigned prop_weighted(prop_t *p, const unsigned *weights, unsigned n, const char *label);
/* A request size from every band of the domain, simplest first: tiny (0..128), small (up
 * to 4 KiB), medium (up to 64 KiB), large (up to 8 MiB), a power of two +-2, and sizes no
 * object can have (near SIZE_MAX, above PTRDIFF_MAX, above the arena). */
size_t prop_size(prop_t *p, const char *label);
/* A size that an allocation can meet (the first four bands of prop_size). */
size_t prop_size_fits(prop_t *p, const char *label);
/* An alignment from every class: powers of two from 1 to 4 MiB, 0, a non-power of two,
 * and powers of two far above a SuperSlab (8 to 256 MiB, and 512 GiB to 2^62). */
size_t prop_align(prop_t *p, const char *label);
/* A list element follows: false ends the list (a zero byte, the simplest, ends it). At
 * most `max` elements: call with the count drawn so far. */
bool prop_more(prop_t *p, unsigned count, unsigned max);
/* An op program in the fuzz targets' encoding (fuzz/hzf_ops.h; any profile decodes it):
 * a thread-count byte, then up to max_ops ops, each a prop_more and the op's 5 bytes.
 * Writes the encoded input to out (at least 1 + 5 * max_ops bytes) and returns its
 * length. */
size_t prop_ops(prop_t *p, unsigned max_ops, uint8_t *out);

/* ---- what the property did and what broke ----------------------------------------- */
/* One step of the case as a reader should see it ("realloc(#0, 17) -> #0 in place").
 * The length of a counterexample is its number of steps (an op program: its ops). */
__attribute__((format(printf, 2, 3))) void prop_step(prop_t *p, const char *fmt, ...);
/* Appends to the last step what it returned ("-> NULL (errno 12)"). A step is recorded
 * before the call it describes, so a call that crashes still shows; its result follows. */
__attribute__((format(printf, 2, 3))) void prop_result(prop_t *p, const char *fmt, ...);
/* Extra lines printed with a failure (a trace, a census). */
__attribute__((format(printf, 2, 3))) void prop_note(prop_t *p, const char *fmt, ...);
/* Fails the case. `kind` names the law's clause that broke ("contents", "errno"): a
 * shrink candidate counts only when it fails with the same kind. */
__attribute__((format(printf, 3, 4))) void prop_fail(prop_t *p, const char *kind,
                                                     const char *fmt, ...);
bool prop_failed(const prop_t *p);
/* Are steps being recorded (the final rerun of a counterexample)? Properties may skip
 * formatting otherwise. */
bool prop_reporting(const prop_t *p);

/* Checks cond; on failure fails the case with kind and message and returns from the
 * property (which must return void). */
#define PROP_CHECK(p, cond, kind, ...)    \
  do {                                    \
    if (!(cond)) {                        \
      prop_fail((p), (kind), __VA_ARGS__); \
      return;                             \
    }                                     \
  } while (0)

/* First offset in [0, n) of p whose byte is not `byte`, or n. Compares 4 KiB at a time
 * (a byte loop over multi-MiB blocks is most of a case's time). */
size_t prop_first_not(const void *p, size_t n, uint8_t byte);

/* ---- drivers ------------------------------------------------------------------------- */
/* The command line of a property binary (prop_main.c): runs `name` from `defs` (or the
 * one --property names). --help lists the flags. */
int prop_main(int argc, char **argv, const prop_def_t *const *defs, const char *name);
/* One libFuzzer input through property `def`: aborts with the report when it fails. */
int prop_fuzz_one(const prop_def_t *def, const uint8_t *data, size_t size);
const prop_def_t *prop_find(const prop_def_t *const *defs, const char *name);

/* ---- the system under test (props/env.c) ------------------------------------------ */
/* Once per process, before any case: hz's page source with fault injection, its misuse
 * hook (reports are recorded, not fatal), its initialisation. */
void prop_env_init(void);
/* After every case that passed: the heap back to a fresh process's (hz_debug_reset), so
 * every case starts alike and replays alone. False, with the reason, when it cannot be. */
bool prop_env_reset(char *why, size_t n);

#endif /* PROP_H */
