/* Running a decoded program against hz: the reference model, the op implementations
 * and the executor that schedules them on real threads.
 *
 *   hzf_model.c   the shadow heap (every live block, its size, owner and fill byte) and
 *                 the checks that compare hz with it
 *   hzf_run_ops.c one function per op kind: do it, then check what hz did
 *   hzf_race.c    the race op: another worker's step at a core race point
 *   hzf_exec.c    threads: the deterministic baton, the free-running mode, the watchdog,
 *                 setup and teardown of one input, and the failure report
 */
#ifndef HZF_EXEC_H
#define HZF_EXEC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/hz_debug.h"
#include "fuzz/hzf_ops.h"

/* Harness code that is not under test and must not steer the fuzzer: loops over the
 * model's bytes and blocks (a third of the CPU went to __sanitizer_cov_trace_cmp8 in
 * them) and code whose path depends on the clock. */
#define HZF_NO_COVERAGE __attribute__((no_sanitize("coverage")))

#define HZF_MAX_LIVE 2048u  /* live blocks the model tracks; further allocations are skipped */
#define HZF_MAX_LARGE 8u    /* live large blocks (each at least 2 MiB) */
#define HZF_GRAVE 64u       /* recently freed addresses kept for stale-pointer ops */

/* Exit code of the replay driver and tools when a check fails (the libFuzzer binary
 * aborts instead, so libFuzzer saves the input). */
#define HZF_EXIT_FINDING 86
#define HZF_EXIT_HANG 87

typedef enum {
  HZF_MODE_BATON = 0, /* N threads, one op at a time by passing a baton: deterministic */
  HZF_MODE_FREE,      /* the same per-thread op lists run concurrently between barriers */
  HZF_MODE_DIRECT,    /* every op on the calling thread (exit becomes flush): the baseline */
} hzf_mode_t;

typedef struct {
  hzf_mode_t mode;
  bool unchecked;      /* skip the model's checks (contents, overlap, heap check): benchmark */
  FILE *trace;         /* when set, one line per op with what it did */
  unsigned hang_ms;    /* watchdog limit for one op; 0: HZF_HANG_MS or 10000 */
  bool abort_on_hang;  /* libFuzzer: abort() so the input is saved as a crash */
  /* Called once on a finding (the watchdog's too) before the report: saves the input
   * where a replay can find it and returns the one-line replay command, or NULL. */
  const char *(*save)(void);
} hzf_options_t;

typedef struct {
  bool failed;
  unsigned op;         /* index of the failing op; nops means the end-of-input teardown */
  char check[40];      /* the model check that failed: "contents", "overlap", "heap-check" */
  char invariant[200]; /* the rule it violated, as docs/INVARIANTS.md states it */
  char expected[200];
  char actual[300];
  uint64_t ops_run;    /* ops executed (a burst counts each block) */
} hzf_result_t;

typedef struct {
  uint32_t id;
  unsigned char *p;
  size_t req, cap;    /* requested and expected usable size */
  uint8_t fill, thread, large;
} hzf_block_t;

#define HZF_MAX_HELD 4u  /* blocks a racing thread holds out of b[] (hzf_race.c) */

typedef struct {
  hzf_block_t b[HZF_MAX_LIVE];
  unsigned n, nlarge;
  /* Live blocks taken out of b[] for a racing thread to free: no op picks them, but they
   * are live, so "is this address live?" must still see them (hzf_model_held). */
  hzf_block_t held[HZF_MAX_HELD];
  unsigned nheld;
  uintptr_t grave[HZF_GRAVE];
  size_t grave_req[HZF_GRAVE]; /* the size each buried block was asked for */
  unsigned ngrave, grave_pos;
} hzf_model_t;

struct hzf_exec_s;

/* What one op sees while it runs. */
typedef struct {
  struct hzf_exec_s *ex;
  hzf_model_t *m;
  const hzf_op_t *op;
  unsigned index, slot;
  uint64_t oom_mark; /* this thread's injected refusals when the op started (hzf_oom.h) */
  bool check_now;    /* set by an op that changed the heap's structure or took a failure
                      * path: the executor runs the full check after it, sampled or not */
  char note[256];
  size_t note_len;
} hzf_ctx_t;

/* ---- model (hzf_model.c) -------------------------------------------------------- */
void hzf_model_reset(hzf_model_t *m);
/* Ids start again from 0, and no address counts as handed out (the executor calls it
 * before each input). */
void hzf_model_restart_ids(void);
/* Records that hz handed out a block at p (every allocation result passes here). */
void hzf_model_handed(const void *p);
/* Records that hz may have handed out every slot of p's slab (a sweep carves whole
 * slabs: their addresses would fill the set above). */
void hzf_model_handed_slab(const void *p);
/* Could hz have handed out a block starting at p during this input? Exact until the set
 * fills, then always true. A free of a slot never handed out is "not allocated", never a
 * "double free". */
bool hzf_model_maybe_handed(const void *p);
/* Expected usable size of a request of `size` bytes aligned to `align` (16: malloc),
 * and whether hz serves it as a large block. */
size_t hzf_expected_usable(size_t size, size_t align, bool *large);
/* Checks a new block (non-NULL, aligned, usable size, no overlap), fills it and adds it.
 * The expected usable size follows from req and align, and must lie within the contract
 * oracle's bounds (hzf_oracle.h). NULL is accepted, with errno ENOMEM, only when fault
 * injection refused this thread memory during the op. Returns its index or -1 (NULL,
 * failure recorded, or the model is full and the block was given back). */
int hzf_model_add(hzf_ctx_t *c, void *p, size_t req, size_t align, bool zeroed);
void hzf_model_remove(hzf_model_t *m, unsigned i);
/* Would a request of size/align be a large block while the model holds its maximum? */
bool hzf_model_large_full(const hzf_model_t *m, size_t size, size_t align);
/* Index of the pick-th live block, -1 when none. */
int hzf_model_pick(const hzf_model_t *m, unsigned pick);
/* Verifies block i's contents against its fill byte; false (and a failure) when damaged. */
bool hzf_model_verify(hzf_ctx_t *c, unsigned i, const char *when);
/* The same for a block held outside the model. */
bool hzf_model_verify_block(hzf_ctx_t *c, const hzf_block_t *b, const char *when);
/* Writes the block's fill byte over the bytes the model checks: all of a block up to
 * 8 KiB, else its first and last 4 KiB. */
void hzf_model_fill(hzf_block_t *b);
/* First byte below `limit` of the checked bytes of a req-byte block at p that is not
 * `fill`, or req when there is none. Fill 0 means calloc memory, whose bytes between a
 * large block's windows are known too: a word of every page is sampled. Live blocks
 * never have fill 0. */
size_t hzf_model_first_bad(const unsigned char *p, size_t req, uint8_t fill, size_t limit);
/* Does [p, p+n) overlap a live block of b[] other than `except`? Its index or -1. */
int hzf_model_overlap(const hzf_model_t *m, const void *p, size_t n, int except);
/* Does [p, p+n) overlap a block a racing thread holds? Its held[] index or -1. */
int hzf_model_held(const hzf_model_t *m, const void *p, size_t n);
/* "Is this address live?": the live or held block [p, p+n) overlaps, or NULL. */
const hzf_block_t *hzf_model_live(const hzf_model_t *m, const void *p, size_t n);
/* A new block [p, p+n) must overlap no live or held block: fails c ("overlap") if it does. */
bool hzf_model_disjoint(hzf_ctx_t *c, const void *p, size_t n);
/* Records a freed (or moved) block of req bytes: stale-pointer ops aim at its address,
 * and a size of mode "freed" (hzf_size_freed) asks for its size again. */
void hzf_model_bury(hzf_model_t *m, const void *p, size_t req);
/* The size a malloc-like op asks for: hzf_size_of, or a freed block's size. */
size_t hzf_model_size(const hzf_model_t *m, unsigned mode, unsigned arg);
/* hz_heap_check (its census into *census, which may be NULL), a violation reported as a
 * "heap-check" failure naming the invariant. */
bool hzf_model_heap_ok(hzf_ctx_t *c, hz_census_t *census);
/* Whole-heap check, census against the model(s), no overlap, every block's contents (all
 * checked bytes when `full`, else the first and last 64 bytes of each block) and, under
 * ASan, every recently freed address no live block covers reads as poisoned. `models` are
 * all the models there are, at a point where no thread runs an op. */
bool hzf_model_check_all(hzf_ctx_t *c, hzf_model_t *const *models, unsigned nmodels, bool full);

/* Retention: after the teardown (every block freed, every thread exited, one flush) the heap is
 * back to its empty state: no slab owned or abandoned, no block cached or queued, at most
 * the one warm SuperSlab of pooled slabs. Memory that is free but kept where nothing will
 * reuse it shows up here and nowhere else. */
bool hzf_model_check_empty(hzf_ctx_t *c);

/* After hz_debug_reset: the tables the old heap used (`bump` SuperSlabs, `tids` thread
 * ids) read as zero, and no list, SuperSlab or thread is left over, as in a fresh
 * process. */
bool hzf_model_check_reset(hzf_ctx_t *c, uint32_t bump, uint32_t tids);

/* The dirty-cache rule (docs/INVARIANTS.md, extents): no byte of a free extent past its
 * dirty prefix holds data. Reads every resident page there; run while every thread is
 * parked (the explicit check op and the end of each input). */
bool hzf_model_check_free_extents(hzf_ctx_t *c);

/* ---- the large blocks' dirty cache (hzf_trim.c) ------------------------------- */
/* Its bound, the large blocks' cost contract (docs/INVARIANTS.md, free extents): right
 * after a large block's free or an extent shrink, which end with a trim, the committed
 * bytes of free extents are at most HZ_LARGE_CACHE_LIMIT of the large working set. Not an
 * invariant between such events (an allocation moves the working set without a trim), so
 * an op calls it just after its call that released an extent; nothing is checked while
 * another thread may act (the free-running mode, an armed race) or after a refused
 * decommit, which leaves the cache over its bound until the next trim. First, the
 * average that bound follows must be within the arena's used span ("working-set"). */
bool hzf_trim_bounded(hzf_ctx_t *c, const char *after);
/* The trim's own decisions, at every decommit the page source is asked for: only over
 * the bound, down to HZ_LARGE_CACHE_TRIM_TO of it, least recently freed first.
 * hzf_trim_install hooks the page source (once, before any thread starts);
 * hzf_trim_watch(on) starts watching afresh (the executor, at each input: on unless the
 * threads run at once) or stops (before the reset); hzf_trim_kept reports, as the op's
 * finding, what the op's trims broke. */
void hzf_trim_install(void);
void hzf_trim_watch(bool on);
bool hzf_trim_kept(hzf_ctx_t *c);

/* ---- a large block's extent (hzf_extent.c) ------------------------------------ */
/* `footprint`: a new large block at p, of req bytes, has the fewest SuperSlabs that hold
 * it. */
bool hzf_extent_fits(hzf_ctx_t *c, const void *p, size_t req);
/* Before a realloc of the large block p to `size`: whether it must grow in place (it
 * needs more SuperSlabs, and those right after its extent are free or never used), when
 * one thread is in hz (not the free-running mode, no race armed). After it,
 * hzf_extent_grew_in_place holds such a realloc, once it returned a block, to returning p
 * (`grow-in-place`), unless a commit was refused. */
bool hzf_extent_room(hzf_ctx_t *c, const void *p, size_t size);
bool hzf_extent_grew_in_place(hzf_ctx_t *c, const void *p, const void *q, size_t size);

/* ---- faults seen by this thread (hzf_model.c) --------------------------------- */
typedef struct {
  unsigned count;
  hz_fault_kind_t kind;
  hz_op_t op;
  const void *ptr;
  char message[160];
} hzf_faults_t;
void hzf_faults_install(void);
hzf_faults_t *hzf_faults(void); /* this thread's record; cleared before every op */
/* The op must not have reported a fault. */
bool hzf_expect_no_fault(hzf_ctx_t *c, const char *what);
/* The op must have reported exactly one fault, of one of the kinds in `allowed`
 * (a bit per hz_fault_kind_t). */
bool hzf_expect_fault(hzf_ctx_t *c, unsigned allowed, hz_op_t op, const char *what);
#define HZF_BIT(kind) (1u << (kind))

/* ---- failures and notes (hzf_exec.c) ------------------------------------------ */
__attribute__((format(printf, 4, 5))) void hzf_fail(hzf_ctx_t *c, const char *check,
                                                    const char *expected, const char *fmt, ...);
/* After hzf_fail: names the violated rule more exactly than the check's default (the
 * heap checker's own invariant string). */
void hzf_fail_invariant(hzf_ctx_t *c, const char *invariant);
bool hzf_failed(const hzf_ctx_t *c);
bool hzf_checking(const hzf_ctx_t *c);
bool hzf_tracing(const hzf_ctx_t *c);
bool hzf_free_running(const hzf_ctx_t *c);
/* One thread at a time in hz (the baton mode), with worker threads to race. */
bool hzf_baton(const hzf_ctx_t *c);
unsigned hzf_nthreads(const hzf_ctx_t *c);
/* The calling worker's thread slot, or -1 off the workers. */
int hzf_worker_slot(void);
/* Baton mode: runs fn(arg) on worker `slot` (parked, not the caller) and waits for it. */
void hzf_exec_on(unsigned slot, void (*fn)(void *), void *arg);
__attribute__((format(printf, 2, 3))) void hzf_note(hzf_ctx_t *c, const char *fmt, ...);
/* Arena offset for traces, so a replay prints the same text in every process. */
uintptr_t hzf_addr(const void *p);
void hzf_count_ops(hzf_ctx_t *c, unsigned n);
/* The running op is still making progress though it has not returned (a fork op whose
 * child is busy): the watchdog starts counting again. */
void hzf_heartbeat(hzf_ctx_t *c);
/* The watchdog's limit for one op (HZF_HANG_MS, default 10 000 ms). */
unsigned hzf_hang_ms(const hzf_ctx_t *c);

/* Did fault injection refuse this thread memory since the op started? */
bool hzf_oom_hit(const hzf_ctx_t *c);
/* An allocation returned NULL: accepted (true) when the op hit injected refusals and
 * errno (`err`) is ENOMEM; otherwise a finding. */
bool hzf_expect_oom(hzf_ctx_t *c, int err, const char *what);

/* ---- ops (hzf_run_ops.c, hzf_run_edge.c) ---------------------------------------- */
/* The API contract at its edges (hzf_oracle.h): zero sizes, sizes no object can have,
 * every shape of calloc overflow, every class of alignment, realloc to 0 and in place. */
void hzf_op_edge(hzf_ctx_t *c);
/* One aligned allocation (fn 0 aligned_alloc, 1 memalign, 2 posix_memalign) held to the
 * contract oracle; a block it returns joins the model. */
void hzf_aligned_call(hzf_ctx_t *c, unsigned fn, size_t align, size_t size);
/* After a failed realloc of block i: it is still live, the same size, its bytes intact. */
void hzf_realloc_kept(hzf_ctx_t *c, unsigned i);
/* Arms (or disarms) fault injection at the OS boundary (hzf_oom.h). */
void hzf_op_oom(hzf_ctx_t *c);
/* The checker audit (hzf_audit.c), with every worker parked: breaks one rule of the heap
 * check on the live heap, requires hz_heap_check to report exactly that rule, and restores
 * every byte it changed. */
void hzf_op_audit(hzf_ctx_t *c);
/* Sets a class's TLS SLL fill level: empty, one below its bound, at it, or one over. */
void hzf_op_fill(hzf_ctx_t *c);
/* Forks while every worker is parked (the executor runs it). The child, with only this
 * thread left, checks that every model block kept its contents, frees some of them,
 * allocates and frees blocks of its own and runs the heap check; the parent reads its
 * verdict through a pipe, and kills a child that does not finish (a lock left held across
 * fork). Then the parent goes on with the heap the fork handlers gave back. */
void hzf_op_fork(hzf_ctx_t *c, hzf_model_t *const *models, unsigned nmodels);
/* A forked child's run (hzf_run_child): what it wrote to its pipe, NUL-terminated, its
 * wait status, and NULL or why it was given up and killed. */
#define HZF_CHILD_OUT 1024u
typedef struct {
  char out[HZF_CHILD_OUT];
  size_t len;
  int status;
  const char *stuck;
} hzf_child_t;
/* Runs child(arg, out) in a process forked with every worker parked (the fork op's, the
 * report audit's); `out` is the write end of a pipe, and the child never returns (it
 * exits or dies). A race armed for the op and an armed refusal stay in the parent. The
 * child is judged by its progress, not by the clock: on a loaded machine a healthy child
 * can wait seconds for a CPU. One that neither runs, nor waits to run, nor gains CPU time
 * for 5 s is stuck (a lock held across fork); one that has run for the watchdog's limit
 * in CPU time is spinning. While it progresses, the watchdog hears so. False when no
 * child could be made (pipe or fork refused). */
bool hzf_run_child(hzf_ctx_t *c, void (*child)(void *arg, int out), void *arg, hzf_child_t *r);
/* The report audit (hzf_report.c), once per process at the first check op, with every
 * worker parked: a forked child reports a misuse without a hook and fails an assertion,
 * and must write the documented line and die of SIGABRT. */
void hzf_op_report_audit(hzf_ctx_t *c);

/* Runs one op on the calling thread (which is the op's thread). Ops that involve every
 * thread (REUSE's flushes, EXIT) have their per-thread halves called by the executor. */
void hzf_op_run(hzf_ctx_t *c);
/* REUSE, first half: free the blocks of the chosen scope. */
void hzf_op_reuse_free(hzf_ctx_t *c);
/* After a reuse's flush: the acting thread allocates blocks of another class. */
void hzf_op_recarve(hzf_ctx_t *c);
/* Thread flush with its check (every SLL empty afterwards). */
void hzf_op_flush(hzf_ctx_t *c);
/* `takes-nothing`: a free or an exit moves none of hz's counters of memory taken
 * (refills, adoptions, slab cuts, SuperSlabs, large blocks). Judged when `alone` (no other
 * thread in hz), outside the free-running mode and with no race armed. */
typedef struct {
  bool on;
  hz_stats_t before;
} hzf_takes_t;
void hzf_takes_begin(const hzf_ctx_t *c, hzf_takes_t *t, bool alone);
bool hzf_takes_nothing(hzf_ctx_t *c, const hzf_takes_t *t, const char *what);
/* hz_thread_detach (hz's thread-exit path on a thread that goes on), held to
 * `takes-nothing` outside the free-running mode. */
void hzf_thread_exit(hzf_ctx_t *c, const char *what);

/* ---- races at the core's race points (hzf_race.c) -------------------------------- */
/* Installs the race hook (a no-op in a build without race points). */
void hzf_race_install(void);
/* The race op: arms the next op (sel & 7 the point, 6-7 the first reached; sel >> 3 the
 * step; thread the racing thread; pick and arg & 15 the blocks it frees; arg >> 4 the
 * size it allocates). */
void hzf_op_race(hzf_ctx_t *c);
/* Around every op (the executor calls them): the armed op's blocks leave the model
 * before it runs and come back after it unless the race freed them. */
void hzf_race_begin(hzf_ctx_t *c);
void hzf_race_end(hzf_ctx_t *c);
/* Before each input: nothing armed. */
void hzf_race_reset(void);
/* A race is armed on the op running now (it may fire, or has fired, during it). */
bool hzf_race_live(void);
/* The racing free of a free op: when this thread's next remote push reaches its race
 * point, the block is freed there (NULL disarms). */
void hzf_race_inline(void *block);
bool hzf_race_inline_fired(void);
/* Teardown: frees every live block, checking each. */
void hzf_free_everything(hzf_ctx_t *c, hzf_model_t *m);

/* ---- the executor (hzf_exec.c) ------------------------------------------------ */
/* Decodes and runs one input. Returns 0, or 1 with the failure in *res. */
int hzf_run(const hzf_profile_t *p, const uint8_t *data, size_t size, const hzf_options_t *opt,
            hzf_result_t *res);
/* The program last decoded by hzf_run (for reports). */
const hzf_program_t *hzf_last_program(void);
/* The op running now, or -1 between inputs (for sanitizer death reports). */
int hzf_current_op(void);
/* Prints the decoded ops up to the failing one, the check, expected and actual, and the
 * machine-readable line "HZFUZZ-FINDING: <check> op #<i> ...". */
void hzf_report(FILE *f, const hzf_program_t *prog, const hzf_result_t *res, const char *replay);

#endif /* HZF_EXEC_H */
