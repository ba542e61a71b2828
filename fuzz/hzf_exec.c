/* The executor: one input, N real threads, one deterministic interleaving.
 *
 * Baton mode: worker threads (persistent across inputs, so each has a real hz thread
 * cache) sleep on their own semaphore. The scheduler hands the baton to the thread the
 * next op names; that thread runs its consecutive ops and hands the baton back. Only one
 * thread is ever inside hz, so the interleaving is the input's and the whole-heap check
 * may run between any two ops.
 *
 * Free mode: the ops between two barriers are split by thread and the threads run their
 * lists at once, each against its own part of the model; at each barrier every thread
 * is parked, the heap is checked, and some blocks change hands so the next round frees
 * them from another thread while their owner is busy. This is the mode for TSan.
 *
 * The watchdog turns "no progress" into a finding: an op that does not finish within
 * the limit (a cycle in a free list, a lost wake-up, a deadlock) is reported with the
 * ops so far instead of leaving the fuzzer to time out with nothing to show.
 */
#include "fuzz/hzf_exec.h"

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/api.h"
#include "fuzz/hzf_api.h"
#include "fuzz/hzf_death.h"
#include "fuzz/hzf_oom.h"
#include "fuzz/hzf_proc.h"

enum { HZF_CMD_RUN, HZF_CMD_LIST, HZF_CMD_FLUSH, HZF_CMD_REUSE, HZF_CMD_RECARVE, HZF_CMD_DETACH,
       HZF_CMD_EXIT, HZF_CMD_CALL };

typedef struct {
  pthread_t th;
  sem_t go;
  unsigned slot;
  int cmd;
  void (*fn)(void *); /* HZF_CMD_CALL */
  void *arg;
  bool alive;
  unsigned list[HZF_MAX_OPS]; /* free mode: this thread's ops until the barrier */
  unsigned nlist;
} hzf_worker_t;

typedef struct hzf_exec_s {
  hzf_options_t opt;
  hzf_program_t prog;
  hzf_model_t model;                    /* baton and direct modes */
  hzf_model_t tmodel[HZF_MAX_THREADS];  /* free mode: one part per thread */
  hzf_result_t *res;
  pthread_mutex_t fail_lock;
  _Atomic bool failed;
  sem_t done;
  sem_t nested; /* HZF_CMD_CALL: a worker's step run inside another worker's op */
  unsigned next; /* baton: the next op to run */
  unsigned check_every;
  bool check_all; /* HZF_CHECK=every: the full check after every op */
  unsigned reuse_op; /* the REUSE op a worker is asked to run */
  unsigned forks;    /* fork ops this input has run */
  bool pinned;       /* this input's baton threads share one CPU (hzf__pin) */
  _Atomic uint64_t ops;
  /* watchdog: it reads these, never opt (which each input overwrites) */
  _Atomic unsigned hang_ms;
  _Atomic bool abort_on_hang;
  _Atomic unsigned cur_op;
  _Atomic int64_t last_ms;
  _Atomic bool busy;
} hzf_exec_t;

static hzf_exec_t hzf__ex = {.fail_lock = PTHREAD_MUTEX_INITIALIZER};
static bool hzf__keep_heap; /* HZF_KEEP_HEAP: no hz_debug_reset between inputs */
/* Resident arena bytes the reset clears in place instead of decommitting. Pages stay
 * resident once touched, so every reset reads all of them (about 1 ms for 16 MiB). What
 * successive inputs touch differs: with 16 MiB kept, tls_sll_fuzzer took twice the page
 * faults and alloc_fuzzer 18 % more CPU than with 64 MiB; 256 MiB gained nothing more
 * (4 MiB blocks are filled only in 4 KiB windows at each end). */
#define HZF_RESET_KEEP ((size_t)64 << 20)
static hzf_worker_t hzf__workers[HZF_MAX_THREADS];
static _Thread_local int hzf__slot = -1;

/* Waits for a semaphore, spinning briefly first when `spin`. A baton hand-over is a few
 * microseconds of work on the other side; sleeping in the kernel and being woken for
 * each one cost more than the ops themselves. sem_post makes no system call when nobody
 * sleeps, so a hand-over caught while spinning costs two atomic operations. Only the
 * executor spins (for `done`): idle workers spinning on their own semaphores took the
 * CPU from the one worker with work on this 2-core machine. Threads that share one CPU
 * (hzf__pin) never spin: the spinner would hold the only CPU the other side may use. */
#define HZF_SPIN_NS 100000L
#if defined(__x86_64__) || defined(__i386__)
#define HZF_CPU_RELAX() __builtin_ia32_pause()
#else
#define HZF_CPU_RELAX() ((void)0)
#endif
HZF_NO_COVERAGE static void hzf__wait(sem_t *s, bool spin) {
  struct timespec t0, t;
  if (spin) clock_gettime(CLOCK_MONOTONIC, &t0);
  for (unsigned n = 0; spin; n++) {
    if (sem_trywait(s) == 0) return;
    HZF_CPU_RELAX();
    if (n % 16 != 15) continue;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > HZF_SPIN_NS) break;
  }
  while (sem_wait(s) != 0) {}
}

/* ---- failures, notes, progress ------------------------------------------------- */
/* The rule each model check holds hz to (docs/INVARIANTS.md, "API contract"), so a
 * report names what was violated, not only where. */
static const struct {
  const char *check, *rule;
} hzf__rules[] = {
    {"null-result", "a successful allocation is non-NULL"},
    {"alignment", "a successful allocation is aligned: 16 bytes, or the requested power of two"},
    {"usable-size", "requested <= hz_usable_size(p) <= block size"},
    {"overlap", "no live block overlaps another"},
    {"contents", "a block keeps its contents while live"},
    {"realloc-prefix", "realloc keeps min(old, new) bytes"},
    {"calloc-zero", "calloc memory is zero"},
    {"calloc-overflow", "calloc overflow gives NULL with ENOMEM"},
    {"bad-alignment", "an invalid alignment gives EINVAL"},
    {"realloc-zero", "realloc(p, 0) frees p and returns NULL"},
    {"misuse-not-reported", "every misuse is reported exactly once"},
    {"misuse-reported-twice", "every misuse is reported exactly once"},
    {"misuse-wrong-kind", "every misuse is reported with one of the expected kinds"},
    {"misuse-message", "a misuse report is the line \"hz: <fault> in <call>(0x<pointer>): <detail>\""},
    {"false-fault", "correct use is never reported"},
    {"misuse-result", "after a reported misuse the call has no effect: NULL with EINVAL "
                      "(realloc), 0 (usable_size)"},
    {"foreign-write", "hz never writes memory it does not own"},
    {"census", "the census's blocks held by the program equal the model's live blocks"},
    {"sll", "TLS SLL: count == length(head), and count <= max between operations"},
    {"flush", "a flush leaves every TLS SLL of the thread empty"},
    {"classify", "hz_classify names a pointer's kind, containing block and size"},
    {"thread-cache", "a thread can register with hz while ids are free"},
    {"hang", "every op completes (no cycle in a free list, no lost wake-up, no deadlock)"},
    {"heap-check", "hz_heap_check passes"},
    {"race-point", "an armed race fires when its op goes through its race point"},
    {"checker-audit", "hz_heap_check reports each rule it checks when that rule is broken"},
    {"report-audit", "without an error hook, a misuse report or an internal assertion writes "
                     "its one documented line to stderr, then aborts"},
    {"reset", "after an input's teardown the program holds no block and only the caller a "
              "cache, and hz_debug_reset leaves hz as a fresh process has it"},
    {"free-extent-zero", "every byte of a free extent at or past its dirty prefix reads as zero"},
    {"retention", "after every block is freed, every thread exits and one thread flushes "
                  "(adopting what the exits abandoned), no slab is owned or abandoned and no "
                  "block is cached or queued"},
    {"waste", "usable size <= the oracle's bound for the request (docs/INVARIANTS.md, waste)"},
    {"oom-errno", "an allocation that fails for want of memory returns NULL with errno ENOMEM"},
    {"out-param", "posix_memalign leaves *memptr untouched when it fails"},
    {"realloc-failed", "a failed realloc leaves the old block live, the same size, unchanged"},
    {"realloc-in-place", "realloc(p, usable_size(p)) returns p"},
    {"huge-request", "a request that overflows or exceeds PTRDIFF_MAX fails with ENOMEM"},
    {"fork-child", "after fork the child's heap works: blocks intact, allocation, free, check"},
    {"amortization", "a warm thread cache serves a steady loop of one class alone: no hz "
                     "counter but faults moves (docs/INVARIANTS.md, Amortization)"},
    {"takes-nothing", "a free or a thread's exit gives back and takes nothing: no refill, "
                      "adoption, slab cut, SuperSlab or large block"},
    {"growth", "a refill cuts a fresh slab only when no abandoned slab of its class waits "
               "to be adopted"},
    {"pool-count", "count == length for the pooled slabs' list and each abandoned list"},
    {"dirty-bound", "after a large block's free or an extent shrink, the free extents' "
                    "committed bytes are within HZ_LARGE_CACHE_LIMIT of the large working set"},
    {"footprint", "a new large block's extent is the fewest SuperSlabs that hold it"},
    {"grow-in-place", "a large block's realloc grows in place when the SuperSlabs after its "
                      "extent are free or never used"},
    {"working-set", "the large bytes' recent average, which the dirty cache's bound follows, "
                    "is within the arena's used span, as each value it averages is"},
    {"trim", "a trim decommits only while the dirty cache is over HZ_LARGE_CACHE_LIMIT of the "
             "working set (its first decommit) or over HZ_LARGE_CACHE_TRIM_TO of that (the "
             "next), the extent freed longest ago first"},
    {"cache-bound", "a thread caches HZ_SLL_MIN_COUNT to max(HZ_SLL_MIN_COUNT, "
                    "min(HZ_SLL_MAX_COUNT, HZ_SLL_GROW_BYTES / size)) blocks of a class"},
    {"batch-bound", "a thread publishes a remote batch on reaching max(1, min(HZ_REMOTE_BATCH_"
                    "BLOCKS, HZ_REMOTE_BATCH_BYTES / size)) blocks, kept in its slab's slot"},
};

static void hzf__set_rule(hzf_result_t *r) {
  snprintf(r->invariant, sizeof r->invariant, "%s", r->expected);
  for (size_t i = 0; i < sizeof hzf__rules / sizeof hzf__rules[0]; i++)
    if (strcmp(hzf__rules[i].check, r->check) == 0)
      snprintf(r->invariant, sizeof r->invariant, "%s", hzf__rules[i].rule);
}

void hzf_fail(hzf_ctx_t *c, const char *check, const char *expected, const char *fmt, ...) {
  hzf_exec_t *ex = c->ex;
  pthread_mutex_lock(&ex->fail_lock);
  if (!ex->failed) {
    hzf_result_t *r = ex->res;
    r->failed = true;
    r->op = c->index;
    snprintf(r->check, sizeof r->check, "%s", check);
    snprintf(r->expected, sizeof r->expected, "%s", expected);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->actual, sizeof r->actual, fmt, ap);
    va_end(ap);
    hzf__set_rule(r);
    atomic_store(&ex->failed, true);
  }
  pthread_mutex_unlock(&ex->fail_lock);
}

void hzf_fail_invariant(hzf_ctx_t *c, const char *invariant) {
  pthread_mutex_lock(&c->ex->fail_lock);
  if (c->ex->res->failed && c->ex->res->op == c->index)
    snprintf(c->ex->res->invariant, sizeof c->ex->res->invariant, "%s", invariant);
  pthread_mutex_unlock(&c->ex->fail_lock);
}

bool hzf_failed(const hzf_ctx_t *c) { return atomic_load_explicit(&c->ex->failed, memory_order_relaxed); }
bool hzf_checking(const hzf_ctx_t *c) { return !c->ex->opt.unchecked; }
bool hzf_tracing(const hzf_ctx_t *c) { return c->ex->opt.trace != NULL; }
bool hzf_free_running(const hzf_ctx_t *c) { return c->ex->opt.mode == HZF_MODE_FREE; }
bool hzf_baton(const hzf_ctx_t *c) { return c->ex->opt.mode == HZF_MODE_BATON; }
unsigned hzf_nthreads(const hzf_ctx_t *c) { return c->ex->prog.nthreads; }
int hzf_worker_slot(void) { return hzf__slot; }

void hzf_note(hzf_ctx_t *c, const char *fmt, ...) {
  if (!c->ex->opt.trace || c->note_len >= sizeof c->note - 1) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(c->note + c->note_len, sizeof c->note - c->note_len, fmt, ap);
  va_end(ap);
  if (k > 0) c->note_len += (size_t)k;
  if (c->note_len >= sizeof c->note - 1) {
    c->note_len = sizeof c->note - 1;
    memcpy(c->note + sizeof c->note - 4, "...", 4);
  }
}

uintptr_t hzf_addr(const void *p) {
  return p && hz_in_arena(p) ? (uintptr_t)p - hz_arena.base : (uintptr_t)p;
}

void hzf_count_ops(hzf_ctx_t *c, unsigned n) {
  atomic_fetch_add_explicit(&c->ex->ops, n, memory_order_relaxed);
}

/* Milliseconds on `clock`: CLOCK_MONOTONIC for progress, CLOCK_PROCESS_CPUTIME_ID for the
 * CPU time the watchdog weighs it against. */
HZF_NO_COVERAGE static int64_t hzf__ms(clockid_t clock) { /* the watchdog calls it */
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hzf__progress(hzf_exec_t *ex, unsigned op) {
  atomic_store_explicit(&ex->cur_op, op, memory_order_relaxed);
  atomic_store_explicit(&ex->last_ms, hzf__ms(CLOCK_MONOTONIC), memory_order_relaxed);
}

void hzf_heartbeat(hzf_ctx_t *c) { hzf__progress(c->ex, c->index); }

unsigned hzf_hang_ms(const hzf_ctx_t *c) { return atomic_load(&c->ex->hang_ms); }

static hzf_ctx_t hzf__ctx(hzf_exec_t *ex, unsigned index, unsigned slot, hzf_model_t *m) {
  hzf_ctx_t c = {.ex = ex, .m = m, .index = index, .slot = slot, .note_len = 0};
  c.op = index < ex->prog.nops ? &ex->prog.ops[index] : NULL;
  c.oom_mark = hzf_oom_thread_refusals(); /* the calling thread is the one that acts */
  c.note[0] = 0;
  return c;
}

static void hzf__trace(hzf_ctx_t *c) {
  FILE *f = c->ex->opt.trace;
  if (!f || !c->op) return;
  char what[160];
  hzf_describe(&c->ex->prog, c->index, what, sizeof what);
  fprintf(f, "#%-4u %-44s -> %s\n", c->index, what, c->note_len ? c->note : "ok");
}

/* ---- the watchdog -------------------------------------------------------------- */
/* Not coverage-instrumented, like hzf__wait: how often it wakes depends on the clock, and
 * counters that vary with timing would make libFuzzer's feedback, and so a fixed-seed
 * run, differ from one run to the next. */
/* An op that makes no progress for the limit hangs when the process has spent half the
 * limit in CPU time since (a cycle in a free list), or when none of its threads runs or
 * waits to run (a deadlock, a lost wake-up). Otherwise it is waiting for a CPU on a loaded
 * machine, and gets up to five limits before it counts as hung all the same. */
HZF_NO_COVERAGE static void *hzf__watchdog(void *arg) {
  hzf_exec_t *ex = arg;
  pid_t me = gettid();
  int64_t seen = -1;
  int64_t cpu_then = 0;
  for (;;) {
    usleep(50 * 1000);
    if (!atomic_load(&ex->busy)) continue;
    int64_t last = atomic_load(&ex->last_ms);
    if (last != seen) seen = last, cpu_then = hzf__ms(CLOCK_PROCESS_CPUTIME_ID);
    int64_t idle = hzf__ms(CLOCK_MONOTONIC) - last, limit = (int64_t)atomic_load(&ex->hang_ms);
    if (idle < limit) continue;
    int64_t used = hzf__ms(CLOCK_PROCESS_CPUTIME_ID) - cpu_then;
    bool busy = hzf_proc_self_busy(me);
    if (used < limit / 2 && busy && idle < 5 * limit) continue;
    hzf_ctx_t c = hzf__ctx(ex, atomic_load(&ex->cur_op), 0, NULL);
    hzf_fail(&c, "hang", "every op completes",
             "op #%u made no progress for %lld ms, using %lld ms of CPU (%s)", c.index,
             (long long)idle, (long long)used,
             used >= limit / 2 ? "spinning: a cycle in a free list?"
             : busy            ? "its threads waited that long for a CPU"
                               : "its threads sleep: a deadlock or a lost wake-up");
    const char *replay = ex->opt.save ? ex->opt.save() : NULL;
    hzf_report(stderr, &ex->prog, ex->res, replay ? replay : "bazel run //tools:repro -- FILE");
    fflush(NULL);
    if (atomic_load(&ex->abort_on_hang)) abort();
    /* The raw system call, not _exit: TSan's exit hook waits for its thread registry,
     * which a thread stuck inside a report holds, and the process never ended. */
    syscall(SYS_exit_group, HZF_EXIT_HANG);
  }
  return NULL;
}

/* ---- workers ------------------------------------------------------------------- */
static bool hzf__due(const hzf_exec_t *ex, unsigned i) {
  return !ex->opt.unchecked && ((i + 1) % ex->check_every == 0 || i + 1 == ex->prog.nops);
}

/* Whether the check after op i compares every byte the model filled, not only the edges
 * of each block: after the last op, after an op that asked for it (hzf_ctx_t.check_now),
 * and after every op with HZF_CHECK=every. */
static bool hzf__full(const hzf_exec_t *ex, unsigned i, bool asked) {
  return asked || ex->check_all || i + 1 == ex->prog.nops;
}

static bool hzf__executor_kind(unsigned kind) {
  return kind == HZF_EXIT || kind == HZF_REUSE || kind == HZF_CHECK || kind == HZF_FORK;
}

/* In the free-running mode an exit that only leaves hz (hz_thread_detach, seven exits in
 * eight) is the thread's own op, run among the others' concurrent ops: its slabs are
 * abandoned while other threads free into them, collect and adopt, which is the
 * handshake of hz_pool_abandon and the remote push (a seq_cst fence against a CAS and an
 * owner load; docs/ARCHITECTURE.md) that only real concurrency, and TSan, can judge. At a
 * barrier, with every other thread parked, that handshake has nobody to race. A real
 * pthread exit needs the executor to start the replacement thread. */
static bool hzf__free_epoch_op(const hzf_op_t *o) {
  return !hzf__executor_kind(o->kind) || (o->kind == HZF_EXIT && !hzf_exit_is_real(o->sel));
}

/* What every op is held to, whatever it did: a sanitizer report the process went on
 * after is this op's finding (or an earlier one's, in a free-running input), and so is a
 * free that changed errno. */
static void hzf__after_any_op(hzf_ctx_t *c) {
  char actual[300];
  if (hzf_death_went_on(actual, sizeof actual, (int)c->index))
    hzf_fail(c, "sanitizer", "no sanitizer report", "%s", actual);
  hzf_trim_kept(c);
  int e = hzf_api_errno_changed();
  if (e)
    hzf_fail(c, "errno-kept", "free leaves errno as it was (POSIX.1-2024)",
             "a free changed errno to %d (%s)", e > 0 ? e : 0, e > 0 ? strerror(e) : "0");
}

/* Runs one op on this thread, then (when due) the whole-model check. */
static void hzf__run_one(hzf_exec_t *ex, unsigned i, unsigned slot, hzf_model_t *m, bool check) {
  hzf__progress(ex, i);
  hzf_ctx_t c = hzf__ctx(ex, i, slot, m);
  hzf_race_begin(&c);
  hzf_op_run(&c);
  hzf_race_end(&c);
  hzf__trace(&c);
  hzf__after_any_op(&c);
  if (check && (hzf__due(ex, i) || c.check_now) && !ex->failed && !ex->opt.unchecked) {
    hzf_model_t *one = m;
    hzf_model_check_all(&c, &one, 1, hzf__full(ex, i, c.check_now));
  }
  hzf__progress(ex, i);
}

static void *hzf__worker_main(void *arg) {
  hzf_worker_t *w = arg;
  hzf_exec_t *ex = &hzf__ex;
  hzf__slot = (int)w->slot;
  for (;;) {
    while (sem_wait(&w->go) != 0) {}
    if (w->cmd == HZF_CMD_EXIT) return NULL; /* hz's key destructor abandons our slabs */
    if (w->cmd == HZF_CMD_CALL) {
      w->fn(w->arg);
      sem_post(&ex->nested);
      continue;
    }
    if (w->cmd == HZF_CMD_RUN) {
      unsigned i = ex->next;
      while (i < ex->prog.nops && !ex->failed && ex->prog.ops[i].thread == w->slot &&
             !hzf__executor_kind(ex->prog.ops[i].kind))
        hzf__run_one(ex, i++, w->slot, &ex->model, true);
      ex->next = i;
    } else if (w->cmd == HZF_CMD_LIST) {
      for (unsigned k = 0; k < w->nlist && !ex->failed; k++)
        hzf__run_one(ex, w->list[k], w->slot, &ex->tmodel[w->slot], false);
    } else if (w->cmd == HZF_CMD_FLUSH) {
      hzf_ctx_t c = hzf__ctx(ex, ex->next, w->slot, NULL);
      hzf_faults()->count = 0;
      hzf_op_flush(&c);
    } else if (w->cmd == HZF_CMD_REUSE) {
      hzf_model_t *m = ex->opt.mode == HZF_MODE_FREE ? &ex->tmodel[w->slot] : &ex->model;
      hzf_ctx_t c = hzf__ctx(ex, ex->reuse_op, w->slot, m);
      hzf_faults()->count = 0;
      hzf_op_reuse_free(&c);
      hzf__trace(&c);
    } else if (w->cmd == HZF_CMD_DETACH) {
      /* The executor sends it with every other worker parked. */
      hzf_ctx_t c = hzf__ctx(ex, ex->next, w->slot, NULL);
      hzf_faults()->count = 0;
      hzf_thread_exit(&c, "an exit (hz_thread_detach)");
    } else if (w->cmd == HZF_CMD_RECARVE) {
      hzf_ctx_t c = hzf__ctx(ex, ex->reuse_op, w->slot, &ex->model);
      hzf_faults()->count = 0;
      hzf_op_recarve(&c);
      hzf__trace(&c);
    }
    sem_post(&ex->done);
  }
}

static void hzf__spawn(unsigned slot) {
  hzf_worker_t *w = &hzf__workers[slot];
  w->slot = slot;
  if (pthread_create(&w->th, NULL, hzf__worker_main, w) != 0) {
    fprintf(stderr, "hzfuzz: cannot create worker thread %u\n", slot);
    abort();
  }
  w->alive = true;
}

static void hzf__call(hzf_exec_t *ex, unsigned slot, int cmd) {
  hzf__workers[slot].cmd = cmd;
  sem_post(&hzf__workers[slot].go);
  hzf__wait(&ex->done, !ex->pinned);
}

void hzf_exec_on(unsigned slot, void (*fn)(void *), void *arg) {
  hzf_worker_t *w = &hzf__workers[slot];
  if (!w->alive || (int)slot == hzf__slot) return;
  w->fn = fn;
  w->arg = arg;
  w->cmd = HZF_CMD_CALL;
  sem_post(&w->go);
  hzf__wait(&hzf__ex.nested, !hzf__ex.pinned);
}

/* Thread exit and restart: the old thread's cache is flushed and its slabs abandoned by
 * hz's thread-exit hook; the new thread registers (reusing the id) on first use. */
static void hzf__exit_restart(hzf_exec_t *ex, unsigned slot) {
  hzf_worker_t *w = &hzf__workers[slot];
  w->cmd = HZF_CMD_EXIT;
  sem_post(&w->go);
  pthread_join(w->th, NULL);
  hzf__spawn(slot);
  (void)ex;
}

/* Every worker leaves hz as if it exited (its cache was flushed by the teardown, so
 * nothing is abandoned) but stays alive for the next input: a new thread per input cost
 * three quarters of the run time under ASan. */
static void hzf__detach_workers(hzf_exec_t *ex) {
  for (unsigned t = 0; t < HZF_MAX_THREADS; t++)
    if (hzf__workers[t].alive) hzf__call(ex, t, HZF_CMD_DETACH);
}

static void hzf__flush_all(hzf_exec_t *ex) {
  if (ex->opt.mode == HZF_MODE_DIRECT) {
    hzf_ctx_t c = hzf__ctx(ex, ex->next, 0, &ex->model);
    hzf_faults()->count = 0;
    hzf_op_flush(&c);
    return;
  }
  /* Two rounds: a thread's flush publishes its pending remote batches into slabs whose
   * owners may have flushed already in this round; the second round collects them. */
  for (int round = 0; round < 2; round++)
    for (unsigned t = 0; t < ex->prog.nthreads && !ex->failed; t++)
      hzf__call(ex, t, HZF_CMD_FLUSH);
}

/* The end of every input: each worker leaves hz through its thread-exit path (its
 * cache drained, its pending remote batches published, its slabs collected and the
 * non-empty ones abandoned), then this thread flushes, adopting whatever was abandoned.
 * So every input ends with an exit of every thread in whatever state the ops left it,
 * and the retention check after it sees what an exit loses or strands. */
static void hzf__exit_all(hzf_exec_t *ex) {
  if (ex->opt.mode == HZF_MODE_DIRECT) {
    hzf__flush_all(ex);
    return;
  }
  for (unsigned t = 0; t < ex->prog.nthreads && !ex->failed; t++)
    hzf__call(ex, t, HZF_CMD_DETACH);
  if (ex->failed) return;
  hzf_ctx_t c = hzf__ctx(ex, ex->next, 0, &ex->model);
  hzf_faults()->count = 0;
  if (!hz_thread_cache()) {
    hzf_fail(&c, "thread-cache", "a thread can register with hz", "no thread cache");
    return;
  }
  hzf_op_flush(&c);
}

/* The ops the executor runs itself, because they involve every thread. */
static void hzf__executor_op(hzf_exec_t *ex, unsigned i) {
  const hzf_op_t *o = &ex->prog.ops[i];
  hzf__progress(ex, i);
  hzf_model_t *models[HZF_MAX_THREADS] = {&ex->model};
  unsigned nm = 1;
  if (ex->opt.mode == HZF_MODE_FREE)
    for (nm = 0; nm < ex->prog.nthreads; nm++) models[nm] = &ex->tmodel[nm];
  hzf_ctx_t c = hzf__ctx(ex, i, o->thread, models[0]);
  ex->next = i;
  hzf_faults()->count = 0;
  hzf_race_begin(&c);
  if (o->kind == HZF_FORK) {
    /* At most one fork per input, and one fork op in sixteen: a fork costs tens of
     * milliseconds here (page tables copied, then a write fault for every page either
     * side writes afterwards, in this input and the next), more than the rest of the
     * input together; a second child runs the same paths as the first, and the child's
     * coverage never reaches the fuzzer, so forking more often teaches it nothing. */
    if (!hzf_fork_is_real(o->sel)) hzf_note(&c, "no fork: fifteen fork ops in sixteen do not");
    else if (ex->forks++ == 0) hzf_op_fork(&c, models, nm); /* every worker is parked */
    else hzf_note(&c, "fork skipped: one per input");
  } else if (o->kind == HZF_EXIT) {
    /* hz sees the same exit either way: its key destructor and hz_thread_detach both run
     * the thread-exit path (flush, publish, abandon, release the id), and the thread's
     * next allocation registers a new one. A real pthread exit and create costs ~450 us,
     * the detach a few; one exit in eight is real, so the path through pthread's own
     * destructors stays covered. */
    bool real = hzf_exit_is_real(o->sel);
    if (ex->opt.mode == HZF_MODE_DIRECT) hzf_op_flush(&c);
    else if (real) hzf__exit_restart(ex, o->thread);
    else hzf__call(ex, o->thread, HZF_CMD_DETACH);
    hzf_note(&c, "thread %u %s; a new thread takes its place", o->thread,
             real ? "exited" : "left hz as at exit");
  } else if (o->kind == HZF_REUSE) {
    ex->reuse_op = i;
    if (ex->opt.mode == HZF_MODE_DIRECT) {
      hzf_faults()->count = 0;
      hzf_op_reuse_free(&c);
    } else if (ex->opt.mode == HZF_MODE_FREE) {
      for (unsigned t = 0; t < ex->prog.nthreads; t++) hzf__call(ex, t, HZF_CMD_REUSE);
    } else {
      hzf__call(ex, o->thread, HZF_CMD_REUSE);
    }
    hzf__flush_all(ex);
    if (ex->opt.mode == HZF_MODE_DIRECT) {
      hzf_faults()->count = 0;
      hzf_op_recarve(&c);
    } else if (ex->opt.mode == HZF_MODE_BATON && !ex->failed) {
      hzf__call(ex, o->thread, HZF_CMD_RECARVE);
    }
  } else if (o->kind == HZF_CHECK && !ex->opt.unchecked) {
    hzf_op_audit(&c);
    hzf_op_report_audit(&c);
  }
  hzf_race_end(&c);
  if (o->kind != HZF_REUSE || ex->opt.mode == HZF_MODE_DIRECT) hzf__trace(&c);
  /* Exits, reuses and forks change the heap's structure (abandoned and pooled slabs,
   * locks taken and released): always
   * followed by the full check. */
  bool full = o->kind == HZF_CHECK || o->kind == HZF_EXIT || o->kind == HZF_REUSE ||
              o->kind == HZF_FORK;
  if (!ex->failed && !ex->opt.unchecked && (full || hzf__due(ex, i)))
    if (hzf_model_check_all(&c, models, nm, hzf__full(ex, i, full)) && o->kind == HZF_CHECK)
      hzf_model_check_free_extents(&c);
  atomic_fetch_add_explicit(&ex->ops, 1, memory_order_relaxed);
  hzf__progress(ex, i);
}

/* ---- one CPU for the baton ------------------------------------------------------ */
/* In the baton mode one thread runs at a time, and every hand-over wakes a sleeping
 * thread. Left alone, the kernel wakes it on the other, idle CPU: an inter-processor
 * interrupt and that CPU's way out of idle (in a VM, through the hypervisor). That was a
 * third of mt_fuzzer's wall time (docs/FUZZING.md, "Measured"). With all of an input's
 * baton threads on one CPU, a hand-over is a context switch on that CPU. The executor is
 * pinned only while an input runs, to the CPU it is on when the input starts, and gets
 * its own mask back after it: between inputs the scheduler may move it, so two fuzzer
 * processes (libFuzzer -jobs, the bugzoo, a soak) still spread over the CPUs. The free
 * mode runs its threads at once and is never pinned. */
static cpu_set_t hzf__home; /* the executor's mask when the first input started */
static bool hzf__home_known, hzf__workers_pinned;

static void hzf__mask_workers(const cpu_set_t *m) {
  for (unsigned t = 0; t < HZF_MAX_THREADS; t++)
    if (hzf__workers[t].alive) pthread_setaffinity_np(hzf__workers[t].th, sizeof *m, m);
}

/* Workers spawned while the executor is pinned (a real exit's new thread) inherit its
 * mask, so they share the CPU too. */
static void hzf__pin(hzf_exec_t *ex) {
  ex->pinned = false;
  if (!hzf__home_known)
    hzf__home_known = pthread_getaffinity_np(pthread_self(), sizeof hzf__home, &hzf__home) == 0;
  if (!hzf__home_known) return;
  if (ex->opt.mode != HZF_MODE_BATON) {
    if (hzf__workers_pinned) hzf__mask_workers(&hzf__home);
    hzf__workers_pinned = false;
    return;
  }
  int cpu = sched_getcpu();
  if (cpu < 0 || !CPU_ISSET(cpu, &hzf__home)) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (pthread_setaffinity_np(pthread_self(), sizeof one, &one) != 0) return;
  hzf__mask_workers(&one);
  hzf__workers_pinned = ex->pinned = true;
}

static void hzf__unpin(hzf_exec_t *ex) {
  if (ex->pinned) pthread_setaffinity_np(pthread_self(), sizeof hzf__home, &hzf__home);
  ex->pinned = false;
}

/* ---- the three modes ----------------------------------------------------------- */
static void hzf__run_direct(hzf_exec_t *ex) {
  for (unsigned i = 0; i < ex->prog.nops && !ex->failed; i++) {
    if (hzf__executor_kind(ex->prog.ops[i].kind)) hzf__executor_op(ex, i);
    else hzf__run_one(ex, i, ex->prog.ops[i].thread, &ex->model, true);
  }
}

static void hzf__run_baton(hzf_exec_t *ex) {
  for (unsigned i = 0; i < ex->prog.nops && !ex->failed;) {
    if (hzf__executor_kind(ex->prog.ops[i].kind)) {
      hzf__executor_op(ex, i++);
      continue;
    }
    ex->next = i;
    hzf__call(ex, ex->prog.ops[i].thread, HZF_CMD_RUN);
    i = ex->next;
  }
}

/* At a barrier: every third block of each thread moves to the next thread, which will
 * free or realloc it while its allocating thread is busy with its own ops. */
static void hzf__hand_over(hzf_exec_t *ex) {
  unsigned n = ex->prog.nthreads;
  if (n < 2) return;
  for (unsigned t = 0; t < n; t++) {
    hzf_model_t *from = &ex->tmodel[t], *to = &ex->tmodel[(t + 1) % n];
    for (unsigned i = from->n; i-- > 0;) {
      if (i % 3 || to->n == HZF_MAX_LIVE || (from->b[i].large && to->nlarge == HZF_MAX_LARGE))
        continue;
      to->b[to->n++] = from->b[i];
      to->nlarge += from->b[i].large;
      from->nlarge -= from->b[i].large;
      from->b[i] = from->b[--from->n];
    }
  }
}

static void hzf__run_free(hzf_exec_t *ex) {
  const unsigned epoch = 64;
  hzf_model_t *models[HZF_MAX_THREADS];
  for (unsigned t = 0; t < ex->prog.nthreads; t++) models[t] = &ex->tmodel[t];
  for (unsigned i = 0; i < ex->prog.nops && !ex->failed;) {
    if (!hzf__free_epoch_op(&ex->prog.ops[i])) {
      hzf__executor_op(ex, i++);
      continue;
    }
    unsigned j = i;
    for (unsigned t = 0; t < ex->prog.nthreads; t++) hzf__workers[t].nlist = 0;
    for (; j < ex->prog.nops && j - i < epoch && hzf__free_epoch_op(&ex->prog.ops[j]); j++) {
      hzf_worker_t *w = &hzf__workers[ex->prog.ops[j].thread];
      w->list[w->nlist++] = j;
    }
    for (unsigned t = 0; t < ex->prog.nthreads; t++) {
      hzf__workers[t].cmd = HZF_CMD_LIST;
      sem_post(&hzf__workers[t].go);
    }
    for (unsigned t = 0; t < ex->prog.nthreads; t++)
      hzf__wait(&ex->done, true);
    hzf_ctx_t c = hzf__ctx(ex, j - 1, 0, models[0]);
    if (!ex->failed && !ex->opt.unchecked)
      hzf_model_check_all(&c, models, ex->prog.nthreads, false);
    hzf__hand_over(ex);
    i = j;
  }
}

/* ---- one input ------------------------------------------------------------------ */
int hzf_run(const hzf_profile_t *p, const uint8_t *data, size_t size, const hzf_options_t *opt,
            hzf_result_t *res) {
  static bool started;
  hzf_exec_t *ex = &hzf__ex;
  memset(res, 0, sizeof *res);
  ex->opt = *opt;
  if (!ex->opt.hang_ms) {
    const char *env = getenv("HZF_HANG_MS");
    ex->opt.hang_ms = env && atoi(env) > 0 ? (unsigned)atoi(env) : 10000;
  }
  atomic_store(&ex->hang_ms, ex->opt.hang_ms);
  atomic_store(&ex->abort_on_hang, ex->opt.abort_on_hang);
  ex->res = res;
  atomic_store(&ex->failed, false);
  atomic_store(&ex->ops, 0);
  ex->forks = 0;
  hzf_decode(p, data, size, &ex->prog);
  if (!hzf_api_select(p)) {
    res->failed = true;
    snprintf(res->check, sizeof res->check, "setup");
    snprintf(res->invariant, sizeof res->invariant, "the binary can run the input's profile");
    snprintf(res->expected, sizeof res->expected, "the preload shim linked in");
    snprintf(res->actual, sizeof res->actual, "profile %s needs the shim, and this binary "
             "does not carry it (shim_fuzzer's binaries and //tools:repro do)", p->name);
    return 1;
  }
  if (ex->opt.mode == HZF_MODE_DIRECT) ex->prog.nthreads = 1;
  /* Every op is followed by the whole-heap check on short inputs; long ones sample
   * (HZF_CHECK=every checks fully after every op, for replays). */
  ex->check_every = ex->prog.nops <= 32 || ex->check_all ? 1 : 16;
  hzf_oom_reset();
  hzf_race_reset();
  hzf_trim_watch(ex->opt.mode != HZF_MODE_FREE);
  hzf_model_reset(&ex->model);
  hzf_model_restart_ids();
  for (unsigned t = 0; t < HZF_MAX_THREADS; t++) hzf_model_reset(&ex->tmodel[t]);
  if (!started) {
    started = true;
    const char *keep = getenv("HZF_KEEP_HEAP");
    hzf__keep_heap = keep && *keep && strcmp(keep, "0") != 0;
    const char *chk = getenv("HZF_CHECK");
    if (chk && *chk && strcmp(chk, "every") != 0 && strcmp(chk, "sampled") != 0)
      fprintf(stderr, "hzfuzz: HZF_CHECK=%s is not 'every' or 'sampled'; sampling\n", chk);
    ex->check_all = chk && strcmp(chk, "every") == 0;
    /* Before hz's first allocation: the page source that OOM ops arm. */
    if (hzf_oom_install() != 0)
      fprintf(stderr, "hzfuzz: hz was initialised before the harness; OOM ops inject nothing\n");
    /* Before any op: an arena address must mean the arena (see HZF_FOREIGN). */
    hz_ensure_init();
    hzf_faults_install();
    hzf_race_install();
    hzf_trim_install();
    sem_init(&ex->done, 0, 0);
    sem_init(&ex->nested, 0, 0);
    for (unsigned t = 0; t < HZF_MAX_THREADS; t++) sem_init(&hzf__workers[t].go, 0, 0);
    pthread_t wd;
    if (pthread_create(&wd, NULL, hzf__watchdog, ex) == 0) pthread_detach(wd);
  }
  if (ex->opt.mode != HZF_MODE_DIRECT)
    for (unsigned t = 0; t < ex->prog.nthreads; t++)
      if (!hzf__workers[t].alive) hzf__spawn(t);
  hzf__pin(ex);
  hzf__progress(ex, 0);
  atomic_store(&ex->busy, true);
  switch (ex->opt.mode) {
    case HZF_MODE_DIRECT: hzf__run_direct(ex); break;
    case HZF_MODE_FREE: hzf__run_free(ex); break;
    default: hzf__run_baton(ex); break;
  }
  hzf_oom_reset(); /* the teardown must not fail for want of memory */
  if (!ex->failed) {
    /* Teardown: give everything back and check the heap holds nothing for the program. */
    hzf_ctx_t c = hzf__ctx(ex, ex->prog.nops, 0, &ex->model);
    hzf__progress(ex, ex->prog.nops);
    hzf_model_t *models[HZF_MAX_THREADS + 1] = {&ex->model};
    unsigned nm = 1;
    for (unsigned t = 0; t < HZF_MAX_THREADS; t++) models[nm++] = &ex->tmodel[t];
    for (unsigned k = 0; k < nm; k++) hzf_free_everything(&c, models[k]);
    ex->next = ex->prog.nops;
    hzf__exit_all(ex);
    hzf__after_any_op(&c);
    if (!ex->failed && !ex->opt.unchecked && hzf_model_check_all(&c, models, nm, false) &&
        hzf_model_check_free_extents(&c))
      hzf_model_check_empty(&c);
    /* The next input starts from the heap a fresh process has (same addresses, same
     * thread ids), so whatever an input does replays alone, in repro or a minimizer,
     * exactly as it ran here. HZF_KEEP_HEAP=1 lets state build up across inputs instead
     * (faster, and some bugs need a long history; a finding then may not replay alone).
     * The reset clears the pages this input touched in place rather than decommitting
     * them: refaulting them was a fifth of the run time. */
    if (!ex->failed && !hzf__keep_heap) {
      hzf__detach_workers(ex);
      uint32_t bump = hz_arena.bump, tids = hz_thread_id_bound();
      hzf_trim_watch(false); /* the reset decommits free extents wholesale */
      if (hz_debug_reset_warm(HZF_RESET_KEEP) != 0)
        hzf_fail(&c, "reset", "the heap holds no block and no thread cache after the input",
                 "hz_debug_reset refused: blocks or thread caches remain after the teardown");
      else if (!ex->opt.unchecked)
        hzf_model_check_reset(&c, bump, tids);
    }
  }
  hzf__unpin(ex);
  atomic_store(&ex->busy, false);
  res->ops_run = atomic_load(&ex->ops);
  return res->failed ? 1 : 0;
}

const hzf_program_t *hzf_last_program(void) { return &hzf__ex.prog; }

int hzf_current_op(void) {
  return atomic_load(&hzf__ex.busy) ? (int)atomic_load(&hzf__ex.cur_op) : -1;
}

void hzf_report(FILE *f, const hzf_program_t *prog, const hzf_result_t *res, const char *replay) {
  unsigned upto = res->op < prog->nops ? res->op : prog->nops;
  fprintf(f, "\n==== hzfuzz: %s at op #%u of %u (%s_fuzzer, %u threads) ====\n", res->check,
          res->op, prog->nops, prog->profile->name, prog->nthreads);
  fprintf(f, "ops up to the failing one, as decoded (tools/repro shows what each did):\n");
  unsigned first = upto > 300 ? upto - 300 : 0;
  if (first) fprintf(f, "  ... %u earlier ops\n", first);
  char what[160];
  for (unsigned i = first; i <= upto && i < prog->nops; i++) {
    hzf_describe(prog, i, what, sizeof what);
    fprintf(f, "%s #%-4u %s\n", i == res->op ? ">" : " ", i, what);
  }
  if (res->op >= prog->nops) fprintf(f, "> (end of input: freeing every block, flushing, checking)\n");
  fprintf(f, "check:     %s\ninvariant: %s\nexpected:  %s\nactual:    %s\n", res->check,
          res->invariant[0] ? res->invariant : res->expected, res->expected, res->actual);
  fprintf(f, "HZFUZZ-FINDING: %s op #%u: %s\n", res->check, res->op, res->actual);
  if (replay) fprintf(f, "replay:    %s\n", replay);
  fflush(f);
}
