/* Laws of the heap as a whole: the model agrees with hz on any program, the same program
 * replays alike, the schedule of non-racing threads does not matter, freed memory comes
 * back, misuse is contained, an exited thread's blocks live on. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

#include "core/config.h"
#include "core/pagemap.h"
#include "core/hz.h"
#include "core/hz_debug.h"
#include "fuzz/hzf_api.h"
#include "fuzz/hzf_exec.h"
#include "props/laws.h"

/* ---- op programs through the fuzz harness -------------------------------------------- */

/* The profiles this binary can run: all but the shim's, which needs the shim linked in
 * (fuzz/hzf_api.h) and comes last. */
static unsigned laws__nprofiles(void) {
  unsigned n = 0;
  while (hzf_profiles[n] && hzf_api_available(hzf_profiles[n])) n++;
  return n;
}

/* Draws a profile and an op program; its ops are the case's steps. */
static size_t laws__program(prop_t *p, unsigned max_ops, const hzf_profile_t **prof, uint8_t *in,
                            hzf_program_t *prog) {
  *prof = hzf_profiles[prop_below(p, laws__nprofiles(), "profile")];
  size_t n = prop_ops(p, max_ops, in);
  hzf_decode(*prof, in, n, prog);
  for (unsigned i = 0; i < prog->nops; i++) {
    char d[200];
    if (prop_reporting(p)) hzf_describe(prog, i, d, sizeof d);
    else d[0] = 0;
    prop_step(p, "%s", d);
  }
  if (prop_reporting(p))
    prop_note(p, "(the %s_fuzzer profile, %u threads; the ops above as the fuzz targets run them)",
              (*prof)->name, prog->nthreads);
  return n;
}

static hzf_program_t laws__prog;
static uint8_t laws__in[1 + HZF_OP_BYTES * 64];

static void model_agreement(prop_t *p) {
  const hzf_profile_t *prof;
  size_t n = laws__program(p, 48, &prof, laws__in, &laws__prog);
  hzf_options_t opt = {.mode = HZF_MODE_BATON};
  hzf_result_t res;
  memset(&res, 0, sizeof res);
  if (hzf_run(prof, laws__in, n, &opt, &res) != 0) {
    prop_fail(p, res.check[0] ? res.check : "model",
              "op #%u (%s): %s; expected: %s; hz: %s", res.op + 1,
              res.op < laws__prog.nops ? "as listed" : "the end-of-input teardown", res.invariant,
              res.expected, res.actual);
  }
}

/* The trace of one run, addresses as arena offsets (hzf_addr), in a string. */
static char *laws__traced_run(const hzf_profile_t *prof, const uint8_t *in, size_t n, int *failed) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  hzf_options_t opt = {.mode = HZF_MODE_BATON, .trace = f};
  hzf_result_t res;
  memset(&res, 0, sizeof res);
  *failed = hzf_run(prof, in, n, &opt, &res);
  fclose(f);
  return text;
}

static void replay_determinism(prop_t *p) {
  const hzf_profile_t *prof;
  size_t n = laws__program(p, 32, &prof, laws__in, &laws__prog);
  int f1 = 0, f2 = 0;
  char *t1 = laws__traced_run(prof, laws__in, n, &f1);
  if (f1) {
    free(t1);
    prop_fail(p, "model", "the program failed the model's checks (see model_agreement)");
    return;
  }
  char *t2 = laws__traced_run(prof, laws__in, n, &f2);
  bool same = t1 && t2 && strcmp(t1, t2) == 0;
  if (!same && t1 && t2) {
    size_t k = 0;
    while (t1[k] && t1[k] == t2[k]) k++;
    while (k > 0 && t1[k - 1] != '\n') k--;
    prop_fail(p, "trace", "the second run's trace differs from the first's at: '%.120s' vs '%.120s'",
              t1 + k, t2 + k);
  }
  free(t1);
  free(t2);
  if (prop_failed(p) || f2) {
    if (f2) prop_fail(p, "model", "the program passed once and failed when run again");
    return;
  }
  /* The same direct allocations after a reset land at the same addresses. */
  enum { N = 16 };
  size_t sizes[N];
  unsigned k = 0;
  while (k < N && prop_more(p, k, N)) sizes[k++] = prop_size_fits(p, "size");
  void *a[N], *b[N];
  for (unsigned r = 0; r < 2; r++) {
    void **out = r ? b : a;
    for (unsigned i = 0; i < k; i++) out[i] = hz_malloc(sizes[i]);
    for (unsigned i = 0; i < k; i++) hz_free(out[i]);
    char why[200];
    PROP_CHECK(p, prop_env_reset(why, sizeof why), "reset", "%s", why);
  }
  for (unsigned i = 0; i < k; i++) {
    prop_step(p, "malloc(%zu) -> arena+%#lx, after a reset arena+%#lx", sizes[i],
              (unsigned long)hzf_addr(a[i]), (unsigned long)hzf_addr(b[i]));
    PROP_CHECK(p, a[i] == b[i], "address",
               "malloc #%u (%zu bytes) returned arena+%#lx, and after hz_debug_reset arena+%#lx", i,
               sizes[i], (unsigned long)hzf_addr(a[i]), (unsigned long)hzf_addr(b[i]));
  }
}

/* ---- threads driven by a schedule ------------------------------------------------------ */

enum { LAWS_THREADS = 3, LAWS_SLOTS = 4, LAWS_ACTS = 12 };

typedef struct {
  uint8_t kind; /* 0 malloc, 1 free, 2 realloc, 3 write */
  uint8_t slot;
  size_t size;
} laws_act_t;

typedef struct laws_team_s laws_team_t;
typedef struct {
  laws_team_t *team;
  unsigned id;
  sem_t go;
  laws_act_t acts[LAWS_ACTS];
  unsigned nacts, next;
  unsigned char *b[LAWS_SLOTS];
  size_t n[LAWS_SLOTS];
  uint8_t fill[LAWS_SLOTS];
  bool quit;
} laws_worker_t;

struct laws_team_s {
  laws_worker_t w[LAWS_THREADS];
  unsigned nthreads;
  sem_t done;
  pthread_t tid[LAWS_THREADS];
};

static void laws__act(laws_worker_t *w, const laws_act_t *a) {
  unsigned s = a->slot;
  switch (a->kind) {
    case 0:
      hz_free(w->b[s]);
      w->b[s] = hz_malloc(a->size);
      w->n[s] = w->b[s] ? a->size : 0;
      break;
    case 1:
      hz_free(w->b[s]);
      w->b[s] = NULL;
      w->n[s] = 0;
      break;
    case 2: {
      if (!w->b[s]) break;
      unsigned char *q = hz_realloc(w->b[s], a->size ? a->size : 1);
      if (q) {
        w->b[s] = q;
        if (a->size > w->n[s]) memset(q + w->n[s], w->fill[s], a->size - w->n[s]);
        w->n[s] = a->size ? a->size : 1;
      }
      return;
    }
    default: break;
  }
  w->fill[s] = (uint8_t)(w->id * 64 + s * 16 + a->size);
  if (w->b[s]) memset(w->b[s], w->fill[s], w->n[s]);
}

static void *laws__worker(void *arg) {
  laws_worker_t *w = arg;
  for (;;) {
    while (sem_wait(&w->go) != 0) {
    }
    if (w->quit) {
      for (unsigned s = 0; s < LAWS_SLOTS; s++) hz_free(w->b[s]);
      hz_thread_flush();
      sem_post(&w->team->done);
      return NULL;
    }
    laws__act(w, &w->acts[w->next++]);
    sem_post(&w->team->done);
  }
}

static void laws__turn(laws_team_t *t, unsigned k) {
  sem_post(&t->w[k].go);
  while (sem_wait(&t->done) != 0) {
  }
}

typedef struct {
  hz_census_t census;
  size_t usable[LAWS_THREADS][LAWS_SLOTS];
  uint64_t sum[LAWS_THREADS][LAWS_SLOTS];
} laws_outcome_t;

/* Runs every worker's acts in the order `order` names threads, then records the heap. */
static bool laws__run_team(laws_team_t *t, const unsigned *order, unsigned len, laws_outcome_t *o) {
  sem_init(&t->done, 0, 0);
  for (unsigned k = 0; k < t->nthreads; k++) {
    t->w[k].team = t;
    t->w[k].next = 0;
    t->w[k].quit = false;
    memset(t->w[k].b, 0, sizeof t->w[k].b);
    memset(t->w[k].n, 0, sizeof t->w[k].n);
    sem_init(&t->w[k].go, 0, 0);
    if (pthread_create(&t->tid[k], NULL, laws__worker, &t->w[k]) != 0) return false;
  }
  for (unsigned i = 0; i < len; i++) laws__turn(t, order[i]);
  /* Every worker is parked: the heap can be walked. */
  memset(o, 0, sizeof *o);
  hz_violation_t v;
  bool ok = hz_heap_check(&v, &o->census) == 0;
  for (unsigned k = 0; k < t->nthreads; k++)
    for (unsigned s = 0; s < LAWS_SLOTS; s++) {
      laws_worker_t *w = &t->w[k];
      o->usable[k][s] = w->b[s] ? hz_usable_size(w->b[s]) : 0;
      /* Every byte of a slot holds its fill (laws__act): the fill where that holds,
       * else a marker no fill can equal. */
      o->sum[k][s] = !w->b[s] ? 0
                     : prop_first_not(w->b[s], w->n[s], w->fill[s]) == w->n[s] ? w->fill[s]
                                                                               : UINT64_MAX;
    }
  for (unsigned k = 0; k < t->nthreads; k++) {
    t->w[k].quit = true;
    laws__turn(t, k);
    pthread_join(t->tid[k], NULL);
    sem_destroy(&t->w[k].go);
  }
  sem_destroy(&t->done);
  return ok;
}

/* A schedule: an interleaving of the workers' acts, each worker's in its own order. */
static unsigned laws__schedule(prop_t *p, const laws_team_t *t, unsigned *order) {
  unsigned left[LAWS_THREADS], len = 0, total = 0;
  for (unsigned k = 0; k < t->nthreads; k++) total += left[k] = t->w[k].nacts;
  while (len < total) {
    unsigned k = (unsigned)prop_below(p, t->nthreads, "turn");
    while (left[k] == 0) k = (k + 1) % t->nthreads;
    left[k]--;
    order[len++] = k;
  }
  return len;
}

static void schedule_independence(prop_t *p) {
  static laws_team_t team;
  memset(&team, 0, sizeof team);
  team.nthreads = 2 + (unsigned)prop_below(p, LAWS_THREADS - 1, "threads");
  for (unsigned k = 0; k < team.nthreads; k++) {
    laws_worker_t *w = &team.w[k];
    w->id = k;
    static const unsigned aw[] = {4, 2, 2, 1};
    for (w->nacts = 0; prop_more(p, w->nacts, LAWS_ACTS);) {
      laws_act_t *a = &w->acts[w->nacts++];
      a->kind = (uint8_t)prop_weighted(p, aw, 4, "act");
      a->slot = (uint8_t)prop_below(p, LAWS_SLOTS, "slot");
      a->size = a->kind == 0 || a->kind == 2 ? prop_size_fits(p, "size") : 0;
      if (a->size > (1u << 20)) a->size &= (1u << 20) - 1; /* keep cases quick */
      static const char *const names[] = {"malloc", "free", "realloc", "write"};
      prop_step(p, "t%u: %s slot %u%s%zu", k, names[a->kind], a->slot,
                a->kind == 0 || a->kind == 2 ? " size " : "", a->size);
    }
  }
  unsigned order[2][LAWS_THREADS * LAWS_ACTS];
  unsigned len = 0;
  for (unsigned r = 0; r < 2; r++) len = laws__schedule(p, &team, order[r]);
  if (prop_reporting(p)) {
    char s[2][LAWS_THREADS * LAWS_ACTS * 3 + 1];
    for (unsigned r = 0; r < 2; r++) {
      size_t k = 0;
      for (unsigned i = 0; i < len; i++) k += (size_t)snprintf(s[r] + k, sizeof s[r] - k, "t%u ", order[r][i]);
      s[r][k] = 0;
    }
    prop_note(p, "schedule A: %s", s[0]);
    prop_note(p, "schedule B: %s", s[1]);
  }
  static laws_outcome_t out[2];
  for (unsigned r = 0; r < 2; r++) {
    PROP_CHECK(p, laws__run_team(&team, order[r], len, &out[r]), "heap-check",
               "the heap check failed after schedule %c", 'A' + r);
    char why[200];
    PROP_CHECK(p, prop_env_reset(why, sizeof why), "reset", "after schedule %c: %s", 'A' + r, why);
  }
  const hz_census_t *a = &out[0].census, *b = &out[1].census;
  PROP_CHECK(p,
             a->user_blocks == b->user_blocks && a->large_blocks == b->large_blocks &&
                 a->large_bytes == b->large_bytes,
             "census",
             "schedule A leaves %llu slab blocks and %llu large blocks (%llu bytes), schedule B "
             "%llu and %llu (%llu bytes)",
             (unsigned long long)a->user_blocks, (unsigned long long)a->large_blocks,
             (unsigned long long)a->large_bytes, (unsigned long long)b->user_blocks,
             (unsigned long long)b->large_blocks, (unsigned long long)b->large_bytes);
  for (unsigned k = 0; k < team.nthreads; k++)
    for (unsigned s = 0; s < LAWS_SLOTS; s++) {
      PROP_CHECK(p, out[0].usable[k][s] == out[1].usable[k][s], "usable",
                 "t%u slot %u: usable size %zu under schedule A, %zu under B", k, s,
                 out[0].usable[k][s], out[1].usable[k][s]);
      PROP_CHECK(p, out[0].sum[k][s] == out[1].sum[k][s], "contents",
                 "t%u slot %u holds different bytes under schedule A and B", k, s);
    }
}

/* ---- conservation ---------------------------------------------------------------------- */

static uint64_t laws__mapped(const hz_census_t *c) {
  return (c->superslabs_slab + c->superslabs_large) * (uint64_t)HZ_SUPERSLAB_SIZE;
}

/* Bytes of the arena the kernel holds pages for: mincore over every SuperSlab ever handed
 * out. This is committed memory as the machine sees it, whatever hz believes it
 * committed or gave back. */
static uint64_t laws__resident(void) {
  static unsigned char vec[HZ_ARENA_PAGES / 64]; /* up to 1/64 of the arena per call */
  uint64_t bytes = 0;
  size_t used = (size_t)hz_arena.bump << HZ_SUPERSLAB_SHIFT;
  for (size_t off = 0; off < used; off += sizeof vec * HZ_PAGE_SIZE) {
    size_t len = used - off < sizeof vec * HZ_PAGE_SIZE ? used - off : sizeof vec * HZ_PAGE_SIZE;
    if (mincore((void *)(hz_arena.base + off), len, vec) != 0) return UINT64_MAX;
    for (size_t i = 0; i < len / HZ_PAGE_SIZE; i++) bytes += (vec[i] & 1) * HZ_PAGE_SIZE;
  }
  return bytes;
}

/* The documented bound (docs/PROPERTIES.md): the arena's resident bytes are at most twice
 * the live usable bytes, plus one slab per size class in use, plus the large-block cache,
 * plus one SuperSlab of slack. */
static uint64_t laws__bound(uint64_t live, unsigned classes) {
  return 2 * live + (uint64_t)classes * HZ_SLAB_SIZE + HZ_LARGE_CACHE_BYTES + HZ_SUPERSLAB_SIZE;
}

static void conservation(prop_t *p) {
  enum { N = 48 };
  size_t sizes[N];
  uint8_t order[N];
  unsigned n = 0;
  while (n < N && prop_more(p, n, N)) {
    sizes[n] = prop_size_fits(p, "size");
    order[n] = (uint8_t)prop_below(p, N, "free position");
    n++;
  }
  unsigned rounds = 2 + (unsigned)prop_below(p, 3, "rounds");
  prop_step(p, "%u rounds of: allocate %u blocks, free them all, flush", rounds, n);
  for (unsigned i = 0; i < n; i++) prop_note(p, "block %u: %zu bytes", i, sizes[i]);
  unsigned char *b[N];
  uint64_t first_mapped = 0;
  for (unsigned r = 0; r < rounds; r++) {
    uint64_t live = 0;
    bool classes[256] = {false};
    unsigned nclasses = 0;
    for (unsigned i = 0; i < n; i++) {
      b[i] = hz_malloc(sizes[i]);
      PROP_CHECK(p, b[i], "null", "round %u: malloc(%zu) returned NULL", r, sizes[i]);
      size_t u = hz_usable_size(b[i]);
      memset(b[i], (int)(r + 1), u < 4096 ? u : 4096);
      live += u;
      int c = hz_size_to_class_checked(sizes[i]);
      if (c >= 0 && c < 256 && !classes[c]) classes[c] = true, nclasses++;
    }
    hz_census_t k;
    hz_violation_t v;
    PROP_CHECK(p, hz_heap_check(&v, &k) == 0, "heap-check", "round %u, all blocks live: %s", r,
               v.message);
    uint64_t mapped = laws__mapped(&k), resident = laws__resident();
    PROP_CHECK(p, resident <= laws__bound(live, nclasses), "committed",
               "round %u: %llu bytes of the arena resident for %llu live usable bytes in %u "
               "classes (bound %llu)",
               r, (unsigned long long)resident, (unsigned long long)live, nclasses,
               (unsigned long long)laws__bound(live, nclasses));
    /* Free in the drawn order (a permutation by stable sort of the positions). */
    bool freed[N] = {false};
    for (unsigned pos = 0; pos < N; pos++)
      for (unsigned i = 0; i < n; i++)
        if (!freed[i] && order[i] == pos) hz_free(b[i]), freed[i] = true;
    hz_thread_flush();
    PROP_CHECK(p, hz_heap_check(&v, &k) == 0, "heap-check", "round %u, all freed: %s", r, v.message);
    PROP_CHECK(p,
               k.user_blocks == 0 && k.large_blocks == 0 && k.cached_blocks == 0 &&
                   k.queued_blocks == 0 && k.slabs_owned == 0 && k.slabs_abandoned == 0 &&
                   k.superslabs_slab <= 1,
               "retention",
               "round %u, everything freed and flushed: %llu blocks held, %llu large, %llu cached, "
               "%llu queued, %llu slabs owned, %llu abandoned, %llu slab SuperSlabs (the empty heap "
               "has none of these but one SuperSlab of pooled slabs)",
               r, (unsigned long long)k.user_blocks, (unsigned long long)k.large_blocks,
               (unsigned long long)k.cached_blocks, (unsigned long long)k.queued_blocks,
               (unsigned long long)k.slabs_owned, (unsigned long long)k.slabs_abandoned,
               (unsigned long long)k.superslabs_slab);
    /* A steady workload must not make the heap grow round after round. */
    if (r == 0) first_mapped = mapped;
    PROP_CHECK(p, mapped <= first_mapped, "growth",
               "round %u mapped %llu bytes at its peak, round 0 %llu: the same workload grew the heap",
               r, (unsigned long long)mapped, (unsigned long long)first_mapped);
  }
}

/* ---- misuse ------------------------------------------------------------------------------- */

static void misuse_contained(prop_t *p) {
  enum { N = 8 };
  unsigned char *b[N];
  size_t n[N];
  unsigned k = 1 + (unsigned)prop_below(p, N, "blocks");
  for (unsigned i = 0; i < k; i++) {
    n[i] = prop_size_fits(p, "size");
    if (n[i] == 0) n[i] = 1;
    prop_step(p, "b%u = malloc(%zu)", i, n[i]);
    b[i] = hz_malloc(n[i]);
    PROP_CHECK(p, b[i], "null", "malloc(%zu) returned NULL", n[i]);
    memset(b[i], 0x40 + (int)i, n[i]);
  }
  static const char *const kinds[] = {"double free", "interior pointer", "misaligned pointer",
                                      "foreign pointer", "stale pointer"};
  static const char *const ops[] = {"free", "realloc", "malloc_usable_size"};
  unsigned kind = (unsigned)prop_below(p, 5, "misuse");
  unsigned op = (unsigned)prop_below(p, 3, "through");
  unsigned i = (unsigned)prop_below(p, k, "victim");
  static unsigned char foreign[64] __attribute__((aligned(16)));
  unsigned char *bad;
  unsigned allowed; /* the fault kinds that name this misuse */
  bool gone = false; /* the victim is no longer live */
  switch (kind) {
    case 0:
      prop_step(p, "free(b%u)", i);
      hz_free(b[i]);
      gone = true;
      bad = b[i];
      /* A freed slab block is free (double free); a large block's extent, or an emptied
       * slab already given back, is no block at all. */
      allowed = HZF_BIT(HZ_FAULT_DOUBLE_FREE) | HZF_BIT(HZ_FAULT_NOT_ALLOCATED);
      break;
    case 1: {
      /* A 16-byte aligned address inside the block, past its start; a block of 16 usable
       * bytes or fewer has none, and gets the first misaligned one instead. */
      size_t u = hz_usable_size(b[i]);
      if (u <= 16) {
        bad = b[i] + 8;
        allowed = HZF_BIT(HZ_FAULT_MISALIGNED);
        kind = 2;
        break;
      }
      bad = b[i] + 16 * (1 + (size_t)prop_below(p, (u - 1) / 16, "offset"));
      allowed = HZF_BIT(HZ_FAULT_INTERIOR);
      break;
    }
    case 2:
      bad = b[i] + 1 + prop_below(p, 15, "offset");
      allowed = HZF_BIT(HZ_FAULT_MISALIGNED);
      break;
    case 3:
      bad = foreign + 16 * prop_below(p, 4, "offset");
      allowed = HZF_BIT(HZ_FAULT_FOREIGN);
      break;
    default:
      prop_step(p, "free(b%u)", i);
      hz_free(b[i]);
      gone = true;
      bad = b[i];
      /* Other allocations and frees in between: one may land on b's address, but it is
       * freed again, so the address is never live when the stale pointer is used. */
      for (unsigned j = 0; j < 4; j++) {
        size_t m = prop_size_fits(p, "between");
        prop_step(p, "free(malloc(%zu))", m);
        unsigned char *x = hz_malloc(m);
        prop_result(p, "%s", x == bad ? "at the stale address" : "");
        hz_free(x);
      }
      allowed = HZF_BIT(HZ_FAULT_DOUBLE_FREE) | HZF_BIT(HZ_FAULT_NOT_ALLOCATED);
      break;
  }
  prop_step(p, "%s of a %s (b%u%+td)", ops[op], kinds[kind], i, bad - b[i]);
  hzf_faults_t *f = hzf_faults();
  memset(f, 0, sizeof *f);
  errno = 0;
  if (op == 0) {
    hz_free(bad);
  } else if (op == 1) {
    void *r = hz_realloc(bad, 32);
    int err = errno;
    if (r && r != bad) hz_free(r);
    PROP_CHECK(p, r == NULL && err == EINVAL, "realloc-result",
               "realloc of a %s returned %p (errno %d), not NULL with EINVAL", kinds[kind], r, err);
  } else {
    size_t u = hz_usable_size(bad);
    PROP_CHECK(p, u == 0, "usable-result", "malloc_usable_size of a %s returned %zu, not 0",
               kinds[kind], u);
  }
  PROP_CHECK(p, f->count == 1, "reported", "%s of a %s: %u misuse reports, expected one", ops[op],
             kinds[kind], f->count);
  PROP_CHECK(p, (allowed >> f->kind) & 1, "fault-kind", "%s of a %s was reported as %s",
             ops[op], kinds[kind], hz_fault_name(f->kind));
  hz_violation_t v;
  PROP_CHECK(p, hz_heap_check(&v, NULL) == 0, "heap-check", "after the misuse: %s (%s)", v.message,
             v.invariant);
  for (unsigned j = 0; j < k; j++) {
    if (gone && j == i) continue;
    size_t x = prop_first_not(b[j], n[j], (uint8_t)(0x40 + j));
    PROP_CHECK(p, x == n[j], "contents", "after the misuse b%u's byte %zu changed", j, x);
  }
  /* Later allocations behave: a few of each band, written and freed. */
  for (unsigned j = 0; j < 4; j++) {
    size_t m = prop_size_fits(p, "after");
    unsigned char *x = hz_malloc(m);
    PROP_CHECK(p, x, "null", "after the misuse malloc(%zu) returned NULL", m);
    memset(x, 0x77, m);
    hz_free(x);
  }
  for (unsigned j = 0; j < k; j++)
    if (!(gone && j == i)) hz_free(b[j]);
}

/* ---- thread exit ---------------------------------------------------------------------------- */

typedef struct {
  unsigned n;
  size_t size[16];
  unsigned char *b[16];
} laws_exit_t;

static void *laws__exit_worker(void *arg) {
  laws_exit_t *e = arg;
  for (unsigned i = 0; i < e->n; i++) {
    e->b[i] = hz_malloc(e->size[i]);
    if (e->b[i]) memset(e->b[i], 0x30 + (int)i, e->size[i]);
  }
  return NULL; /* exits holding them: its slabs are abandoned */
}

static void *laws__free_worker(void *arg) {
  laws_exit_t *e = arg;
  for (unsigned i = 0; i < e->n; i++) hz_free(e->b[i]);
  return NULL;
}

static void thread_exit(prop_t *p) {
  static laws_exit_t e;
  memset(&e, 0, sizeof e);
  while (e.n < 16 && prop_more(p, e.n, 16)) {
    e.size[e.n] = prop_size_fits(p, "size");
    if (e.size[e.n] > (1u << 20)) e.size[e.n] &= (1u << 20) - 1;
    e.n++;
  }
  bool elsewhere = prop_bool(p, "freed by another new thread");
  unsigned rounds = 2;
  uint64_t mapped[2] = {0, 0};
  for (unsigned r = 0; r < rounds; r++) {
    prop_step(p, "a thread allocates %u blocks and exits; %s verifies and frees them", e.n,
              elsewhere ? "another new thread" : "the main thread");
    pthread_t t;
    PROP_CHECK(p, pthread_create(&t, NULL, laws__exit_worker, &e) == 0, "setup", "pthread_create");
    pthread_join(t, NULL);
    hz_census_t k;
    hz_violation_t v;
    PROP_CHECK(p, hz_heap_check(&v, &k) == 0, "heap-check", "after the thread exited: %s", v.message);
    mapped[r] = laws__mapped(&k);
    for (unsigned i = 0; i < e.n; i++) {
      PROP_CHECK(p, e.b[i], "null", "malloc(%zu) returned NULL in the exiting thread", e.size[i]);
      hz_ptr_info_t info = hz_classify(e.b[i]);
      PROP_CHECK(p, info.kind == HZ_PTR_SMALL || info.kind == HZ_PTR_LARGE, "live",
                 "block %u of the exited thread is classified %s, not live", i,
                 hz_ptr_kind_name(info.kind));
      size_t x = prop_first_not(e.b[i], e.size[i], (uint8_t)(0x30 + i));
      PROP_CHECK(p, x == e.size[i], "contents", "block %u of the exited thread: byte %zu changed",
                 i, x);
    }
    if (elsewhere) {
      PROP_CHECK(p, pthread_create(&t, NULL, laws__free_worker, &e) == 0, "setup", "pthread_create");
      pthread_join(t, NULL);
    } else {
      laws__free_worker(&e);
    }
    hz_thread_flush();
    PROP_CHECK(p, hz_heap_check(&v, &k) == 0, "heap-check", "after the frees: %s", v.message);
    PROP_CHECK(p,
               k.user_blocks == 0 && k.large_blocks == 0 && k.slabs_abandoned == 0 &&
                   k.queued_blocks == 0,
               "reclaimed",
               "every block of the exited thread freed: still %llu blocks held, %llu large, %llu "
               "abandoned slabs, %llu queued blocks",
               (unsigned long long)k.user_blocks, (unsigned long long)k.large_blocks,
               (unsigned long long)k.slabs_abandoned, (unsigned long long)k.queued_blocks);
  }
  /* The second round's memory is the first's, reused: the heap did not grow. */
  PROP_CHECK(p, mapped[1] <= mapped[0], "reuse",
             "the second thread's blocks took %llu bytes of SuperSlabs, the first's %llu: the "
             "exited thread's memory was not reused",
             (unsigned long long)mapped[1], (unsigned long long)mapped[0]);
}

const prop_def_t prop_model_agreement = {
    "model_agreement",
    "any op program leaves hz and the reference model in agreement (the fuzz targets' checks)",
    model_agreement};
const prop_def_t prop_replay_determinism = {
    "replay_determinism",
    "the same program gives the same trace twice, and the same allocations after a reset land "
    "at the same addresses",
    replay_determinism};
const prop_def_t prop_schedule_independence = {
    "schedule_independence",
    "threads that share no block end with the same census, usable sizes and contents under any "
    "interleaving",
    schedule_independence};
const prop_def_t prop_conservation = {
    "conservation",
    "after freeing everything and flushing the heap is empty; a steady workload does not grow "
    "it; mapped memory stays within the documented bound of live bytes",
    conservation};
const prop_def_t prop_misuse_contained = {
    "misuse_contained",
    "a double, interior, misaligned, foreign or stale free/realloc/usable_size is reported once, "
    "as what it is, and leaves the heap consistent and other blocks intact",
    misuse_contained};
const prop_def_t prop_thread_exit = {
    "thread_exit",
    "an exited thread's blocks stay live and intact, are freeable from any thread, and their "
    "memory is reused",
    thread_exit};
