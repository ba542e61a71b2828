/* What runs at the core's race points (core/hz_debug.h, HZ_RACE_POINTS): races in the
 * baton mode, pauses in the free-running mode, and the growth check at every pool take.
 *
 * A race op arms the op after it: when that op's thread reaches the chosen race point
 * (a remote push between link and CAS, an owner's collect, an adoption, an abandonment,
 * a pool take, a large block's publication; or whichever comes first), it stops there,
 * and another worker thread takes one step of its own: frees blocks it was handed (and
 * publishes them or not), flushes, leaves hz as at exit, or allocates and frees. Then
 * the first thread goes on. Point, thread, step and blocks all come from the input, so
 * one mechanism puts any other thread's step inside any lock-free window the core
 * declares, and the model checks the outcome like any other op's.
 *
 * The blocks the racing thread frees leave the model when the armed op starts (it can
 * neither pick them nor check them while they are in flight) and come back after it if
 * the race never fired. All of that runs while one thread at a time is in hz; in the
 * free-running mode, where threads race for real, a race op only pauses its thread's
 * next op at the race point, to widen the window for the others (below).
 *
 * The older "racing free" of a free op (hzf_free_races) is here too: the free of a
 * block of the same slab, made on the racing thread itself at its remote push.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/api.h"
#include "fuzz/hzf_exec.h"
#include "fuzz/hzf_oom.h"

typedef enum {
  HZF_STEP_FREE_PUBLISH, /* free the held blocks, then flush: they land in the queues now */
  HZF_STEP_FREE,         /* free them; remote ones wait in the racing thread's batches */
  HZF_STEP_FLUSH,        /* hz_thread_flush */
  HZF_STEP_EXIT,         /* free them, then leave hz as at thread exit */
  HZF_STEP_DETACH,       /* leave hz as at exit, holding nothing */
  HZF_STEP_CHURN,        /* allocate a block, write it, free it */
} hzf_step_t; /* hzf_race_step_of: the order of hzf_decode.c's names */

/* What a race op armed, for the op after it. */
static struct {
  bool armed;      /* set by the race op, cleared when it fires or its op ends */
  bool live;       /* the armed op is running */
  unsigned op;     /* index of the armed op */
  int point;       /* hz_race_point_t, or -1 for the first one reached */
  unsigned racer;  /* requested racing thread */
  hzf_step_t step;
  unsigned want;   /* blocks to hold */
  unsigned pick;
  bool same_thread_blocks; /* hold blocks the armed op's thread allocated */
  bool whole_slab;         /* hold the picked block's slab-mates too: the step empties it */
  size_t churn_size;
  hzf_ctx_t *ctx;  /* the armed op's, while it runs */
  bool fired;
  hz_stats_t before; /* the counters when the armed op started */
} hzf__race;

static bool hzf__hooked; /* the core has race points and calls the hook */

/* Growth before adoption, seen at the pool-take race point. A refill adopts its class's
 * abandoned slabs, one after another, before it cuts a fresh slab from the pool
 * (docs/INVARIANTS.md, "Thread caches"): an abandoned slab nobody adopts keeps its free
 * blocks, and its remote frees, from every later refill, and the heap grows instead. The
 * core cannot assert it, since in a free-running program another thread may abandon a
 * slab between the adoption loop and the take; with one thread in hz at a time, the
 * classes with an abandoned slab at the take are exactly what the loop left behind. The
 * slab is cut for its class only after the race point, so its class is read at the next
 * race point or at the op's end, and a failure is reported at the op's end. */
static struct {
  _Atomic bool watch;     /* an op of the baton or direct mode is running */
  const hz_slab_t *slab;  /* the last take's slab, not yet looked at */
  uint64_t waiting;       /* bit c: class c had an abandoned slab at that take */
  const hz_slab_t *grown; /* the first slab cut while its class's abandoned slab waited */
  unsigned grown_cls;
} hzf__growth;
_Static_assert(HZ_NUM_CLASSES <= 64, "one bit per class in hzf__growth.waiting");

static uint64_t hzf__abandoned_classes(void) {
  uint64_t m = 0;
  for (unsigned k = 0; k < HZ_NUM_CLASSES; k++)
    if (hz_pool_abandoned(k)->head) m |= (uint64_t)1 << k;
  return m;
}

/* The last take's slab has its class by now: hz_slab_init ran right after its hook. */
static void hzf__growth_settle(void) {
  const hz_slab_t *s = hzf__growth.slab;
  if (!s) return;
  hzf__growth.slab = NULL;
  if (!hzf__growth.grown && s->cls < HZ_NUM_CLASSES && (hzf__growth.waiting >> s->cls & 1)) {
    hzf__growth.grown = s;
    hzf__growth.grown_cls = s->cls;
  }
}

static bool hzf__growth_watched(void) {
  return atomic_load_explicit(&hzf__growth.watch, memory_order_relaxed);
}

/* The racing free of a free op: armed on the freeing thread only. */
static _Thread_local void *hzf__inline_block;

void hzf_race_inline(void *block) { hzf__inline_block = block; }
bool hzf_race_inline_fired(void) { return hzf__inline_block == NULL; }

/* In the free-running mode the other threads run for real, and a race op widens a
 * window for them instead: this thread's next op, at its chosen race point (or the
 * first reached), sleeps 1 + arg % 256 microseconds, long enough for another thread's
 * op to land there (a window of a few stores otherwise closes before any other thread
 * is scheduled). TSan then judges what the two did without a lock between them. */
static _Thread_local struct {
  bool armed, live, fired;
  int point;
  unsigned usec;
} hzf__pause;

static void hzf__pause_arm(hzf_ctx_t *c) {
  hzf__pause.armed = true;
  hzf__pause.point = hzf_race_point_of(c->op->sel);
  hzf__pause.usec = 1 + c->op->arg % 256;
  hzf_note(c, "this thread's next op pauses %u us at %s", hzf__pause.usec,
           hzf__pause.point < 0 ? "the first race point it reaches"
                                : hz_race_point_name((hz_race_point_t)hzf__pause.point));
}

static void hzf__pause_at(hz_race_point_t where) {
  if (!hzf__pause.live || hzf__pause.fired) return;
  if (hzf__pause.point >= 0 && (hz_race_point_t)hzf__pause.point != where) return;
  hzf__pause.fired = true;
  struct timespec ts = {0, (long)hzf__pause.usec * 1000};
  nanosleep(&ts, NULL);
}

void hzf_op_race(hzf_ctx_t *c) {
  const hzf_op_t *o = c->op;
  if (hzf_free_running(c)) {
    hzf__pause_arm(c);
    return;
  }
  if (!hzf_baton(c) || hzf_nthreads(c) < 2) {
    hzf_note(c, "nothing to race (one thread at a time only in the baton mode)");
    return;
  }
  hzf__race.armed = true;
  hzf__race.op = c->index + 1;
  hzf__race.point = hzf_race_point_of(o->sel);
  hzf__race.racer = o->thread;
  hzf__race.step = (hzf_step_t)hzf_race_step_of(o->sel);
  bool frees = hzf__race.step == HZF_STEP_FREE_PUBLISH || hzf__race.step == HZF_STEP_FREE ||
               hzf__race.step == HZF_STEP_EXIT;
  /* 1 + arg & 3 blocks; a whole slab's, up to the most a race holds. */
  hzf__race.want = !frees ? 0 : (o->arg & 8) ? HZF_MAX_HELD : 1 + (o->arg & 3);
  hzf__race.same_thread_blocks = (o->arg & 4) != 0;
  hzf__race.whole_slab = (o->arg & 8) != 0;
  hzf__race.pick = o->pick;
  hzf__race.churn_size = 1 + (o->arg >> 4) % 4096u;
  hzf_note(c, "armed for op #%u", hzf__race.op);
}

/* Moves the blocks the racing thread will free from b[] to held[], so the armed op can
 * neither pick them nor check them while they are in flight: `want` blocks from the
 * pick-th on (the waiting thread's, if asked), or with whole_slab the first of those and
 * its slab-mates, so that the step can empty a slab at the race point. */
static void hzf__hold(hzf_ctx_t *c, unsigned hitter) {
  hzf_model_t *m = c->m;
  unsigned take[HZF_MAX_HELD], n = 0;
  const void *slab = NULL;
  for (unsigned k = 0; k < m->n && n < hzf__race.want; k++) {
    unsigned i = (hzf__race.pick + k) % m->n;
    if (hzf__race.same_thread_blocks && m->b[i].thread != hitter && k + 1 < m->n) continue;
    if (slab && (m->b[i].large || hz_slab_of(m->b[i].p) != slab)) continue;
    if (!slab && hzf__race.whole_slab && !m->b[i].large) slab = hz_slab_of(m->b[i].p);
    take[n++] = i;
  }
  /* Highest index first: removing one moves the last block into its place. */
  for (unsigned a = 0; a < n; a++)
    for (unsigned b = a + 1; b < n; b++)
      if (take[b] > take[a]) {
        unsigned t = take[a];
        take[a] = take[b], take[b] = t;
      }
  m->nheld = 0;
  for (unsigned k = 0; k < n; k++) {
    unsigned i = take[k];
    m->held[m->nheld++] = m->b[i];
    m->nlarge -= m->b[i].large;
    m->b[i] = m->b[--m->n];
  }
}

void hzf_race_begin(hzf_ctx_t *c) {
  /* Free-running threads never write the growth state: only its flag, when it changes. */
  bool watch = !hzf_free_running(c);
  if (hzf__growth_watched() != watch)
    atomic_store_explicit(&hzf__growth.watch, watch, memory_order_relaxed);
  if (hzf__pause.armed && c->op->kind != HZF_RACE) {
    hzf__pause.armed = false;
    hzf__pause.live = true;
    hzf__pause.fired = false;
  }
  if (!hzf__race.armed) return;
  if (c->index != hzf__race.op || c->op->kind == HZF_FORK || c->op->kind == HZF_RACE) {
    hzf__race.armed = false;
    return;
  }
  hzf__race.fired = false;
  hzf__race.ctx = c;
  hz_get_stats(&hzf__race.before);
  hzf__hold(c, c->op->thread);
  hzf__race.live = true;
}

/* The slow-path counter (hz_stats_t) that moves exactly when a thread goes through race
 * point `point`, or NULL where there is none: a remote push counts nothing, and a collect
 * counts the reclaim of an abandoned slab too, which passes no race point (slab.c). */
static const char *hzf__point_event(int point, const hz_stats_t *s, uint64_t *n) {
  switch (point) {
    case HZ_RACE_ADOPT: *n = s->adoptions; return "adoptions";
    case HZ_RACE_ABANDON: *n = s->abandons; return "abandons";
    case HZ_RACE_POOL_TAKE: *n = s->slab_inits; return "slab_inits";
    case HZ_RACE_LARGE_PUBLISH: *n = s->large_allocs; return "large_allocs";
    default: return NULL;
  }
}

/* Race-point liveness: an armed race that did not fire, while its op made the event of
 * its point (or, armed for the first point reached, of any point) happen, means the op
 * went through that code without reaching the race point: a point compiled out, moved
 * off the path, or behind a condition. Every race would then test nothing, silently. In
 * the baton mode only the armed op's thread is in hz until the race fires, so the
 * counters moved for that op alone. */
static void hzf__check_fired(hzf_ctx_t *c) {
  if (hzf__race.fired || !hzf__hooked || hzf_failed(c)) return;
  hz_stats_t now;
  hz_get_stats(&now);
  for (int p = 0; p < (int)HZ_RACE_POINT_COUNT; p++) {
    uint64_t was, is;
    const char *event = hzf__point_event(p, &hzf__race.before, &was);
    if (!event || (hzf__race.point >= 0 && hzf__race.point != p)) continue;
    hzf__point_event(p, &now, &is);
    if (is != was) {
      hzf_fail(c, "race-point", "an armed race fires when its op passes the race point",
               "the op made %llu %s, each past %s, and the race point never ran",
               (unsigned long long)(is - was), event, hz_race_point_name((hz_race_point_t)p));
      return;
    }
  }
}

/* Every op's end, with no race armed too: the last take settled, and a fresh slab cut
 * while its class's abandoned slab waited reported as this op's finding. */
static void hzf__growth_end(hzf_ctx_t *c) {
  if (!hzf__growth_watched()) return;
  hzf__growth_settle();
  const hz_slab_t *s = hzf__growth.grown;
  hzf__growth.grown = NULL;
  atomic_store_explicit(&hzf__growth.watch, false, memory_order_relaxed);
  if (s && !hzf_failed(c))
    hzf_fail(c, "growth", "the refill adopts its class's abandoned slabs before it cuts one",
             "a fresh slab (+0x%zx) cut for class %u (%zu B) while an abandoned slab of the "
             "class waited", (size_t)hzf_addr(hz_slab_start(s)), hzf__growth.grown_cls,
             hz_size_class_size(hzf__growth.grown_cls));
}

/* Blocks the race did not free go back to the model as they were (or, if the armed op
 * filled it, are freed here). */
void hzf_race_end(hzf_ctx_t *c) {
  hzf__growth_end(c);
  if (hzf__pause.live && !hzf__pause.fired && hzf_tracing(c)) hzf_note(c, " (no pause)");
  hzf__pause.live = false;
  if (!hzf__race.live) return;
  hzf__check_fired(c);
  hzf__race.live = hzf__race.armed = false;
  hzf__race.ctx = NULL;
  hzf_model_t *m = c->m;
  for (unsigned k = 0; k < m->nheld; k++) {
    hzf_block_t *b = &m->held[k];
    if (m->n < HZF_MAX_LIVE && (!b->large || m->nlarge < HZF_MAX_LARGE)) {
      m->b[m->n++] = *b;
      m->nlarge += b->large;
    } else if (hzf_model_verify_block(c, b, "before free")) {
      hzf_faults()->count = 0;
      hz_free(b->p);
      hzf_expect_no_fault(c, "free");
      hzf_model_bury(m, b->p, b->req);
    }
  }
  m->nheld = 0;
  if (!hzf__race.fired && hzf_tracing(c)) hzf_note(c, " (the race did not fire)");
}

bool hzf_race_live(void) { return hzf__race.live; }

void hzf_race_reset(void) {
  hzf__pause.armed = hzf__pause.live = false; /* the executor's thread's; workers' lapse */
  hzf__race.armed = hzf__race.live = false;
  hzf__race.ctx = NULL;
  hzf__growth.slab = hzf__growth.grown = NULL;
}

/* The racing thread's step. Runs on that thread while the armed op's thread waits. */
static void hzf__step(void *arg) {
  hzf_ctx_t *armed = arg, c = *armed;
  c.slot = hzf_worker_slot();
  c.oom_mark = hzf_oom_thread_refusals();
  hzf_faults()->count = 0;
  hzf_step_t step = hzf__race.step;
  hzf_model_t *m = c.m;
  for (; m->nheld > 0 && !hzf_failed(&c); m->nheld--) {
    hzf_block_t *b = &m->held[m->nheld - 1];
    if (!hzf_model_verify_block(&c, b, "before racing free")) break;
    hz_free(b->p);
    if (!hzf_expect_no_fault(&c, "racing free")) break;
    hzf_model_bury(m, b->p, b->req);
    hzf_note(armed, "#%u ", b->id);
  }
  if (step == HZF_STEP_FREE_PUBLISH || step == HZF_STEP_FLUSH) {
    hz_thread_flush();
    hzf_expect_no_fault(&c, "racing flush");
  } else if (step == HZF_STEP_EXIT || step == HZF_STEP_DETACH) {
    hz_thread_detach();
    hzf_expect_no_fault(&c, "racing exit");
  } else if (step == HZF_STEP_CHURN) {
    size_t n = hzf__race.churn_size;
    errno = 0;
    unsigned char *p = hz_malloc(n);
    if (!p) {
      hzf_expect_oom(&c, errno, "racing malloc");
      return;
    }
    hzf_model_handed(p); /* a neighbour op may meet its slot again, free */
    if (!hzf_model_disjoint(&c, p, n)) return;
    memset(p, 0xC3, n);
    if (hz_usable_size(p) < n)
      hzf_fail(&c, "usable-size", "requested <= usable", "racing malloc of %zu B: usable %zu", n,
               hz_usable_size(p));
    hz_free(p);
    hzf_expect_no_fault(&c, "racing free");
  }
}

static void hzf__race_step_hook(hz_race_point_t where, void *obj) {
  void *q = hzf__inline_block;
  if (q && where == HZ_RACE_REMOTE_PUSH) {
    hzf__inline_block = NULL;
    hz_free(q);
    /* A remote free waits in this thread's batch for its slab: the flush publishes it,
     * so its push lands inside the push that reached this point, as another thread's
     * would (reaching the race point again, with nothing armed). */
    hz_thread_flush();
    return;
  }
  (void)obj;
  if (!hzf__race.live || hzf__race.fired) return;
  if (hzf__race.point >= 0 && (hz_race_point_t)hzf__race.point != where) return;
  hzf_ctx_t *c = hzf__race.ctx;
  int self = hzf_worker_slot();
  unsigned n = hzf_nthreads(c), racer = hzf__race.racer % n;
  if ((int)racer == self) racer = (racer + 1) % n;
  hzf__race.fired = true; /* before the step: its own race points pass through */
  hzf_note(c, "[at %s, t%u %s ", hz_race_point_name(where), racer,
           hzf_race_step_name((unsigned)hzf__race.step << 3));
  hzf_exec_on(racer, hzf__step, c);
  hzf_note(c, "] ");
}

/* The growth state is read before the racing step (which may abandon slabs) and the
 * take recorded after it (the step's own takes, through this hook, are settled first). */
static void hzf__race_hook(hz_race_point_t where, void *obj) {
  if (!hzf__growth_watched()) {
    hzf__pause_at(where);
    hzf__race_step_hook(where, obj);
    return;
  }
  hzf__growth_settle();
  uint64_t waiting = where == HZ_RACE_POOL_TAKE ? hzf__abandoned_classes() : 0;
  hzf__race_step_hook(where, obj);
  if (where == HZ_RACE_POOL_TAKE) {
    hzf__growth_settle();
    hzf__growth.slab = obj;
    hzf__growth.waiting = waiting;
  }
}

void hzf_race_install(void) { hzf__hooked = hz_set_race_hook(hzf__race_hook); }
