/* The checker audit: the check op first shows the heap check a broken heap.
 *
 * Every other op judges hz with hz_heap_check, and a correct core never shows that
 * checker a broken heap, so a checker that stops seeing one of its rules passes every
 * input: the fuzz suite would go on "finding nothing" with part of its oracle gone (the
 * mutation runs found such checkers only through unit tests). So each check op, with
 * every worker parked, first breaks one rule of docs/INVARIANTS.md on the live heap,
 * chosen by the op's fields among the objects the heap holds now (a slab, a SuperSlab,
 * a free extent, a thread's cache, list or pending batch), requires hz_heap_check to
 * report exactly that rule, and puts every byte it changed back; the op's ordinary full
 * check then runs on the restored heap.
 *
 * Each probe changes only fields (and the link or mark words of free blocks) so that the
 * rule it breaks is the first the check meets in its own order (check.c: SuperSlabs and
 * their slabs, free extents, threads, accounting, lists); a probe names the rule it
 * expects, so a checker that reports the wrong rule fails too. A probe with nothing to
 * break in this heap passes to the next one, so every check op audits something.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api.h"
#include "core/thread.h"
#include "fuzz/hzf_exec.h"

/* The most words one probe changes: a slab's page tags and a few fields. */
#define HZF_AUDIT_WRITES ((unsigned)HZ_PAGES_PER_SLAB + 16u)
/* Probes one check op runs, from the one its arg names on: each costs a heap check, and
 * all of them at every check op cost a tenth of a fuzzer's exec/s. Across an input's
 * check ops (and the seeds: audit_test) every probe runs. */
#define HZF_AUDIT_PER_OP 8u
/* Candidates a probe chooses among (the first ones, in heap order, if there are more). */
#define HZF_AUDIT_CANDS 1024u

typedef struct {
  unsigned n;
  struct {
    unsigned char *at;
    unsigned len;
    unsigned char old[sizeof(uintptr_t)];
  } w[HZF_AUDIT_WRITES];
} hzf__edits_t;

/* Byte copies that may touch free blocks, which ASan poisons: the links and marks the
 * core's own accessors read unsanitised. */
HZ_NO_SANITIZE static void hzf__copy(volatile unsigned char *to, const volatile unsigned char *from,
                                     unsigned n) {
  for (unsigned i = 0; i < n; i++) to[i] = from[i];
}

/* Writes n bytes of val at `at`, keeping the old bytes for hzf__undo. */
static void hzf__put(hzf__edits_t *e, void *at, const void *val, unsigned n) {
  if (e->n == HZF_AUDIT_WRITES) { /* each probe's writes are bounded above */
    fprintf(stderr, "hzf_audit: a probe changed more than %u words\n", HZF_AUDIT_WRITES);
    abort();
  }
  e->w[e->n].at = at;
  e->w[e->n].len = n;
  hzf__copy(e->w[e->n].old, at, n);
  e->n++;
  hzf__copy(at, val, n);
}

static void hzf__undo(hzf__edits_t *e) {
  while (e->n > 0) {
    e->n--;
    hzf__copy(e->w[e->n].at, e->w[e->n].old, e->w[e->n].len);
  }
}

#define HZF_PUT(e, field, value)                   \
  do {                                             \
    __typeof__(field) v_ = (value);                \
    hzf__put((e), (void *)&(field), &v_, sizeof v_); \
  } while (0)

/* Word 0 (the link) or word 1 (the mark) of a free block. */
static void hzf__put_word(hzf__edits_t *e, void *block, unsigned word, uintptr_t v) {
  hzf__put(e, (uintptr_t *)block + word, &v, sizeof v);
}
/* An atomic 32-bit field (HZF_PUT cannot declare a plain copy of one). */
static void hzf__put32(hzf__edits_t *e, _Atomic uint32_t *at, uint32_t v) {
  hzf__put(e, (void *)at, &v, sizeof v);
}
static void hzf__put_ptag(hzf__edits_t *e, const void *page, uint32_t tag) {
  hzf__put32(e, &hz_arena.ptag[((uintptr_t)page - hz_arena.base) >> HZ_PAGE_SHIFT], tag);
}

/* ---- what the heap holds ----------------------------------------------------------- */
typedef struct {
  void *item[HZF_AUDIT_CANDS];
  unsigned aux[HZF_AUDIT_CANDS];
  unsigned n;
} hzf__cands_t;

static void hzf__cand(hzf__cands_t *c, void *item, unsigned aux) {
  if (c->n == HZF_AUDIT_CANDS) return;
  c->item[c->n] = item;
  c->aux[c->n++] = aux;
}

/* The candidate `pick` chooses, or NULL when there is none. */
static void *hzf__choose(const hzf__cands_t *c, unsigned pick, unsigned *aux) {
  if (c->n == 0) return NULL;
  unsigned k = pick % c->n;
  if (aux) *aux = c->aux[k];
  return c->item[k];
}

static bool hzf__owned(const hz_slab_t *s) {
  return s->state >= HZ_SLAB_ACTIVE && s->state <= HZ_SLAB_ABANDONED;
}
static bool hzf__has_free(const hz_slab_t *s) {
  return s->free_count > 0 || HZ_LOAD(&s->carved) < s->capacity;
}
static unsigned char *hzf__block(const hz_slab_t *s, uint32_t idx) {
  return hz_slab_start(s) + (size_t)idx * hz_slab_block_size(s);
}

typedef enum {
  HZF_SLABS_OWNED,    /* active, partial, full or abandoned */
  HZF_SLABS_IN_LIST,  /* owned by a live thread (not abandoned) */
  HZF_SLABS_ACTIVE,
  HZF_SLABS_POOLED,
  HZF_SLABS_FREELIST, /* owned, with a non-empty freelist */
  HZF_SLABS_UNCARVED, /* owned, not yet carved to capacity */
  HZF_SLABS_WITH_FREE,  /* ACTIVE or PARTIAL with a free block */
  HZF_SLABS_NONE_FREE,  /* ACTIVE or FULL without one */
  HZF_SLABS_FULL_QUEUED, /* FULL, with blocks in its remote queue */
  HZF_SLABS_QUEUED,     /* not slabs: the blocks in owned slabs' remote queues */
} hzf_slab_set_t;

static bool hzf__in_set(const hz_slab_t *s, hzf_slab_set_t set) {
  switch (set) {
    case HZF_SLABS_OWNED: return hzf__owned(s);
    case HZF_SLABS_IN_LIST: return hzf__owned(s) && s->state != HZ_SLAB_ABANDONED;
    case HZF_SLABS_ACTIVE: return s->state == HZ_SLAB_ACTIVE;
    case HZF_SLABS_POOLED: return s->state == HZ_SLAB_POOLED;
    case HZF_SLABS_FREELIST: return hzf__owned(s) && s->freelist != NULL;
    case HZF_SLABS_UNCARVED: return hzf__owned(s) && HZ_LOAD(&s->carved) < s->capacity;
    case HZF_SLABS_WITH_FREE:
      return (s->state == HZ_SLAB_ACTIVE || s->state == HZ_SLAB_PARTIAL) && hzf__has_free(s);
    case HZF_SLABS_NONE_FREE:
      return (s->state == HZ_SLAB_ACTIVE || s->state == HZ_SLAB_FULL) && !hzf__has_free(s);
    case HZF_SLABS_FULL_QUEUED: return s->state == HZ_SLAB_FULL && atomic_load(&s->remote);
    case HZF_SLABS_QUEUED: return false;
  }
  return false;
}

static void hzf__slabs(hzf__cands_t *c, hzf_slab_set_t set) {
  for (uint32_t i = 0; i < hz_arena.bump; i++) {
    if (atomic_load(&hz_arena.ss[i].kind) != HZ_SS_SLABS) continue;
    for (size_t k = 0; k < HZ_SLABS_PER_SUPERSLAB; k++) {
      hz_slab_t *s = hz_slab_of((char *)hz_ss_addr(i) + (k << HZ_SLAB_SHIFT));
      if (hzf__in_set(s, set)) hzf__cand(c, s, 0);
      for (void *b = set == HZF_SLABS_QUEUED && hzf__owned(s) ? atomic_load(&s->remote) : NULL;
           b; b = hz_link_get(b))
        hzf__cand(c, b, 0);
    }
  }
}

static hz_slab_t *hzf__slab(unsigned pick, hzf_slab_set_t set) {
  static hzf__cands_t c;
  c.n = 0;
  hzf__slabs(&c, set);
  return hzf__choose(&c, pick, NULL);
}

typedef enum {
  HZF_SS_SLABS,     /* cut into slabs */
  HZF_SS_EXTENT,    /* any SuperSlab of a free extent or large block */
  HZF_SS_FREE_HEAD, /* the head of a free extent */
  HZF_SS_LONG_FREE_HEAD, /* the head of a free extent of two SuperSlabs or more */
} hzf_ss_set_t;

static hz_superslab_t *hzf__superslab(unsigned pick, hzf_ss_set_t set) {
  static hzf__cands_t c;
  c.n = 0;
  for (uint32_t i = 0; i < hz_arena.bump; i++) {
    hz_superslab_t *ss = &hz_arena.ss[i];
    uint32_t k = atomic_load(&ss->kind);
    bool in = set == HZF_SS_SLABS    ? k == HZ_SS_SLABS
              : set == HZF_SS_EXTENT ? k == HZ_SS_FREE || k == HZ_SS_LARGE
                                     : k == HZ_SS_FREE && ss->head == i &&
                                           (set == HZF_SS_FREE_HEAD || ss->len >= 2);
    if (in) hzf__cand(&c, ss, 0);
  }
  return hzf__choose(&c, pick, NULL);
}

/* What every registered thread's cache offers a probe. */
typedef enum {
  HZF_OF_CACHE,      /* the cache itself */
  HZF_OF_SLL,        /* a TLS SLL: the cache, aux its class */
  HZF_OF_FULL_SLL,   /* the same, holding a block */
  HZF_OF_LIST,       /* a partial or full slab list */
  HZF_OF_FULL_LIST,  /* the same, holding a slab */
  HZF_OF_BATCH,      /* an empty pending remote batch */
  HZF_OF_FULL_BATCH, /* a pending remote batch holding blocks */
  HZF_OF_BATCHED,    /* a block in a pending remote batch */
} hzf_of_thread_t;

static void hzf__threads(hzf__cands_t *c, hzf_of_thread_t of) {
  for (uint32_t tid = 1, bound = hz_thread_id_bound(); tid < bound; tid++) {
    hz_tcache_t *tc = hz_thread_lookup(tid);
    if (!tc) continue;
    if (of == HZF_OF_CACHE) hzf__cand(c, tc, 0);
    for (unsigned k = 0; k < HZ_NUM_CLASSES; k++) {
      if (of == HZF_OF_SLL || (of == HZF_OF_FULL_SLL && tc->sll[k].head)) hzf__cand(c, tc, k);
      hz_slab_list_t *lists[2] = {&tc->partial[k], &tc->full[k]};
      for (int l = 0; l < 2; l++)
        if (of == HZF_OF_LIST || (of == HZF_OF_FULL_LIST && lists[l]->head))
          hzf__cand(c, lists[l], 0);
    }
    for (unsigned i = 0; i < HZ_REMOTE_SLOTS; i++) {
      hz_remote_batch_t *q = &tc->pending[i];
      if ((of == HZF_OF_BATCH && !q->slab) || (of == HZF_OF_FULL_BATCH && q->slab))
        hzf__cand(c, q, 0);
      for (void *b = q->head; of == HZF_OF_BATCHED && b; b = hz_link_get(b)) hzf__cand(c, b, 0);
    }
  }
}

/* The candidate `pick` chooses among what the threads offer (aux: an SLL's class). */
static void *hzf__of_threads(unsigned pick, hzf_of_thread_t of, unsigned *aux) {
  static hzf__cands_t c;
  c.n = 0;
  hzf__threads(&c, of);
  return hzf__choose(&c, pick, aux);
}

/* A free block waiting for its owner: in a slab's remote queue or a pending batch. */
static void *hzf__queued_block(unsigned pick) {
  static hzf__cands_t c;
  c.n = 0;
  hzf__slabs(&c, HZF_SLABS_QUEUED);
  hzf__threads(&c, HZF_OF_BATCHED);
  return hzf__choose(&c, pick, NULL);
}

/* ---- the probes ------------------------------------------------------------------- */
/* Each breaks one rule of the heap it finds and returns that rule as hz_heap_check words
 * it, or NULL (nothing changed) when this heap holds nothing it applies to. */
typedef const char *(*hzf_probe_fn)(hzf__edits_t *e, unsigned pick);

/* An owned slab's numbers, checked by hz_slab_validate in this order. */
static const char *hzf__probe_capacity(hzf__edits_t *e, unsigned pick) {
  hz_slab_t *s = hzf__slab(pick, HZF_SLABS_OWNED);
  if (!s) return NULL;
  HZF_PUT(e, s->capacity, s->capacity + 1);
  return "capacity == class capacity";
}
static const char *hzf__probe_carved(hzf__edits_t *e, unsigned pick) {
  hz_slab_t *s = hzf__slab(pick, HZF_SLABS_OWNED);
  if (!s) return NULL;
  hzf__put32(e, &s->carved, s->capacity + 1 + pick % 3);
  return "carved <= capacity";
}
static const char *hzf__probe_used(hzf__edits_t *e, unsigned pick) {
  hz_slab_t *s = hzf__slab(pick, HZF_SLABS_OWNED);
  if (!s) return NULL;
  HZF_PUT(e, s->used, pick & 1 || s->used == 0 ? s->used + 1 : s->used - 1);
  return "used == carved - free_count";
}
/* free_count one more (or less) than the freelist holds, used kept in step. */
static const char *hzf__probe_free_count(hzf__edits_t *e, unsigned pick) {
  bool less = pick & 1;
  hz_slab_t *s = hzf__slab(pick >> 1, less ? HZF_SLABS_FREELIST : HZF_SLABS_OWNED);
  if (!s || (!less && s->used == 0)) return NULL;
  HZF_PUT(e, s->free_count, less ? s->free_count - 1 : s->free_count + 1);
  HZF_PUT(e, s->used, less ? s->used + 1 : s->used - 1);
  return less ? "a free list is longer than its count" : "free_count == length(freelist)";
}
/* A freelist whose first link leaves the slab, lands mid-block or on an uncarved slot,
 * or whose last block links back to its first. */
static const char *hzf__probe_freelist(hzf__edits_t *e, unsigned pick) {
  switch (pick % 4) {
    case 0: {
      hz_slab_t *s = hzf__slab(pick / 4, HZF_SLABS_OWNED);
      if (!s) return NULL;
      HZF_PUT(e, s->freelist, (void *)(hz_slab_start(s) + HZ_SLAB_SIZE + 16 * (pick / 4 % 4)));
      return "a free list links outside its slab";
    }
    case 1: {
      hz_slab_t *s = hzf__slab(pick / 4, HZF_SLABS_OWNED);
      if (!s || hz_slab_block_size(s) < 32) return NULL;
      HZF_PUT(e, s->freelist, (void *)(hzf__block(s, pick / 4 % s->capacity) + 16));
      return "a free list links to the middle of a block";
    }
    case 2: {
      hz_slab_t *s = hzf__slab(pick / 4, HZF_SLABS_UNCARVED);
      if (!s) return NULL;
      uint32_t carved = HZ_LOAD(&s->carved);
      HZF_PUT(e, s->freelist, (void *)hzf__block(s, carved + pick / 4 % (s->capacity - carved)));
      return "a free list holds a never-carved block";
    }
    default: {
      hz_slab_t *s = hzf__slab(pick / 4, HZF_SLABS_FREELIST);
      if (!s) return NULL;
      void *last = s->freelist;
      while (hz_link_get(last)) last = hz_link_get(last);
      hzf__put_word(e, last, 0, (uintptr_t)s->freelist);
      return "a block is on a free list twice (or a cycle)";
    }
  }
}
static const char *hzf__probe_owner(hzf__edits_t *e, unsigned pick) {
  hz_slab_t *s = hzf__slab(pick, HZF_SLABS_OWNED);
  if (!s) return NULL;
  hzf__put32(e, &s->owner, atomic_load(&s->owner) ? 0 : 1);
  return "owner == 0 iff abandoned";
}
static const char *hzf__probe_ptag(hzf__edits_t *e, unsigned pick) {
  hz_slab_t *s = hzf__slab(pick, pick & 1 ? HZF_SLABS_OWNED : HZF_SLABS_POOLED);
  if (!s) return NULL;
  size_t page_no = (size_t)(pick >> 1) % HZ_PAGES_PER_SLAB;
  const unsigned char *page = hz_slab_start(s) + (page_no << HZ_PAGE_SHIFT);
  hzf__put_ptag(e, page, hz_ptag_get(page) ^ (1u << (pick % 16)));
  return pick & 1 ? "ptag[page] == (owner << 16) | (class + 1) for every page of an owned slab"
                  : "ptag[page] == 0 for every page of a pooled slab";
}
/* Where a slab is filed against what it holds. */
static const char *hzf__probe_filed(hzf__edits_t *e, unsigned pick) {
  bool full = pick & 1;
  hz_slab_t *s = hzf__slab(pick >> 1, full ? HZF_SLABS_WITH_FREE : HZF_SLABS_NONE_FREE);
  if (!s) return NULL;
  HZF_PUT(e, s->state, (uint8_t)(full ? HZ_SLAB_FULL : HZ_SLAB_PARTIAL));
  return full ? "a FULL slab has no free block (free_count == 0, carved == capacity)"
              : "a PARTIAL slab has a free block (free_count > 0 or carved < capacity)";
}
/* A live thread's slab handed to an id no thread holds, its tags with it. */
static const char *hzf__probe_unregistered(hzf__edits_t *e, unsigned pick) {
  hz_slab_t *s = hzf__slab(pick, HZF_SLABS_IN_LIST);
  uint32_t tid = 1;
  while (tid < HZ_MAX_THREADS && hz_thread_lookup(tid)) tid++;
  if (!s || tid == HZ_MAX_THREADS) return NULL;
  hzf__put32(e, &s->owner, tid);
  for (size_t i = 0; i < HZ_PAGES_PER_SLAB; i++)
    hzf__put_ptag(e, hz_slab_start(s) + (i << HZ_PAGE_SHIFT), HZ_TAG(tid, s->cls));
  return "an owned slab's owner is a registered thread";
}
static const char *hzf__probe_pooled(hzf__edits_t *e, unsigned pick) {
  hz_slab_t *s = hzf__slab(pick, HZF_SLABS_POOLED);
  if (!s) return NULL;
  switch (pick % 3) {
    case 0: HZF_PUT(e, s->used, 1u + pick % 5); break;
    case 1: HZF_PUT(e, s->free_count, 1u + pick % 5); break;
    default: hzf__put32(e, &s->owner, 1 + pick % 3);
  }
  return "a pooled slab has used == 0, an empty freelist, owner == 0 and an empty remote queue";
}
static const char *hzf__probe_slabs_pooled(hzf__edits_t *e, unsigned pick) {
  hz_superslab_t *ss = hzf__superslab(pick, HZF_SS_SLABS);
  if (!ss) return NULL;
  HZF_PUT(e, ss->slabs_pooled, pick & 1 || ss->slabs_pooled == 0 ? ss->slabs_pooled + 1
                                                                 : ss->slabs_pooled - 1);
  return "slabs_pooled == number of pooled slabs of the SuperSlab";
}
/* A free extent or large block: its heads, tags, slab states and kind. */
static const char *hzf__probe_extent(hzf__edits_t *e, unsigned pick) {
  hz_superslab_t *ss = hzf__superslab(pick / 4, HZF_SS_EXTENT);
  if (!ss) return NULL;
  uint32_t i = (uint32_t)(ss - hz_arena.ss);
  switch (pick % 4) {
    case 0: HZF_PUT(e, ss->head, i + 1 + pick / 4 % 3); /* past itself */
      return "every SuperSlab of an extent names its head, whose len covers it";
    case 1: {
      size_t page_no = (size_t)(pick / 4) % (HZ_SUPERSLAB_SIZE / HZ_PAGE_SIZE);
      hzf__put_ptag(e, (char *)hz_ss_addr(i) + (page_no << HZ_PAGE_SHIFT), 1u << (pick % 16));
      return "ptag[page] == 0 for every page of a free extent or large block";
    }
    case 2: {
      size_t slab_no = (size_t)(pick / 4) % HZ_SLABS_PER_SUPERSLAB;
      hz_slab_t *s = hz_slab_of((char *)hz_ss_addr(i) + (slab_no << HZ_SLAB_SHIFT));
      HZF_PUT(e, s->state, (uint8_t)(HZ_SLAB_POOLED + pick / 4 % 5));
      return "every slab of a free extent or large block is UNCUT";
    }
    default: {
      hzf__put32(e, &ss->kind, pick / 4 % 2 ? HZ_SS_UNUSED : HZ_SS_LARGE + 1 + pick / 8 % 8);
      return "every SuperSlab below the bump is free, slabs or large";
    }
  }
}
/* The free extent lists and the arena's sums. */
static const char *hzf__probe_extent_lists(hzf__edits_t *e, unsigned pick) {
  switch (pick % 4) {
    case 0:
      HZF_PUT(e, hz_arena.dirty_bytes, hz_arena.dirty_bytes + HZ_PAGE_SIZE * (1 + pick / 4 % 3));
      return "dirty_bytes == sum of the free extents' dirty prefixes";
    case 1:
      HZF_PUT(e, hz_arena.large_bytes, hz_arena.large_bytes + HZ_SUPERSLAB_SIZE);
      return "large_bytes == extent bytes of the live large blocks";
    default: {
      hz_superslab_t *h = hzf__superslab(pick / 4, HZF_SS_FREE_HEAD);
      if (!h) return NULL;
      if (pick % 4 == 2) {
        HZF_PUT(e, h->dirty, ((size_t)h->len << HZ_SUPERSLAB_SHIFT) + 1 + pick / 4 % HZ_PAGE_SIZE);
        return "dirty <= len * SuperSlab size";
      }
      HZF_PUT(e, h->prev, h->prev ? NULL : h);
      return "a free extent list links free extent heads (prev/next agree)";
    }
  }
}
static const char *hzf__probe_tid(hzf__edits_t *e, unsigned pick) {
  hz_tcache_t *tc = hzf__of_threads(pick, HZF_OF_CACHE, NULL);
  if (!tc) return NULL;
  HZF_PUT(e, tc->tid, tc->tid + 1 + pick % 7);
  return "a registered cache's tid is its registry slot";
}
/* A TLS SLL's count against its length and bound. */
static const char *hzf__probe_sll_count(hzf__edits_t *e, unsigned pick) {
  unsigned k, how = pick % 3;
  hz_tcache_t *tc = hzf__of_threads(pick / 3, how ? HZF_OF_FULL_SLL : HZF_OF_SLL, &k);
  if (!tc) return NULL;
  hz_sll_t *l = &tc->sll[k];
  if (how == 0) {
    HZF_PUT(e, l->count, l->count + 1);
    return "count == length(head) (list shorter than its count)";
  }
  if (how == 1) {
    HZF_PUT(e, l->count, l->count - 1);
    return "count == length(head) (list longer: a cycle or stray link)";
  }
  HZF_PUT(e, l->max, l->count - 1);
  return "sll.count <= sll.max";
}
/* A slot of a slab that was never carved, pushed on a TLS SLL: of another thread's or
 * class's slab, or of the list's own (never carved, so no list links through it and its
 * link word is free to write). */
static const char *hzf__probe_sll_stray(hzf__edits_t *e, unsigned pick) {
  unsigned k;
  hz_tcache_t *tc = hzf__of_threads(pick, HZF_OF_SLL, &k);
  hz_slab_t *s = hzf__slab(pick >> 8, HZF_SLABS_UNCARVED);
  if (!tc || !s) return NULL;
  uint32_t carved = HZ_LOAD(&s->carved);
  void *b = hzf__block(s, carved + pick % (s->capacity - carved));
  hz_sll_t *l = &tc->sll[k];
  hzf__put_word(e, b, 0, (uintptr_t)l->head);
  HZF_PUT(e, l->head, b);
  HZF_PUT(e, l->count, l->count + 1);
  if (l->count > l->max) HZF_PUT(e, l->max, l->count); /* the bound is checked first */
  return HZ_TAG(atomic_load(&s->owner), s->cls) == HZ_TAG(tc->tid, k)
             ? "a TLS SLL holds only carved block starts"
             : "a TLS SLL holds only blocks of its class from its thread's slabs";
}
/* A TLS SLL's last block also appended to its slab's freelist (used kept in step: the
 * block counts as used while cached, so used >= 1). */
static const char *hzf__probe_twice(hzf__edits_t *e, unsigned pick) {
  unsigned k;
  hz_tcache_t *tc = hzf__of_threads(pick, HZF_OF_FULL_SLL, &k);
  if (!tc) return NULL;
  void *b = tc->sll[k].head;
  while (hz_link_get(b)) b = hz_link_get(b);
  hz_slab_t *s = hz_slab_of(b);
  if (s->state == HZ_SLAB_FULL) return NULL; /* a free block would break its filing first */
  if (!s->freelist) {
    HZF_PUT(e, s->freelist, b);
  } else {
    void *last = s->freelist;
    while (hz_link_get(last)) last = hz_link_get(last);
    hzf__put_word(e, last, 0, (uintptr_t)b);
  }
  HZF_PUT(e, s->free_count, s->free_count + 1);
  HZF_PUT(e, s->used, s->used - 1);
  return "a free block is in exactly one list";
}
/* Sets or clears slab s's class bit in its owner's remote hint. */
static void hzf__put_hint(hzf__edits_t *e, const hz_slab_t *s, bool on) {
  _Atomic uint64_t *bits = &hz_remote_hint[atomic_load(&s->owner)].bits;
  uint64_t bit = (uint64_t)1 << s->cls, v = on ? atomic_load(bits) | bit : atomic_load(bits) & ~bit;
  hzf__put(e, (void *)bits, &v, sizeof v);
}
/* A probe of another rule that files a slab as FULL keeps the remote-hint rule, which
 * hz__check_slab reaches first: a FULL slab whose queue holds a block gets its class's
 * bit in its owner's hint, as a push into that queue would have set it. */
static void hzf__put_full(hzf__edits_t *e, hz_slab_t *s) {
  HZF_PUT(e, s->state, (uint8_t)HZ_SLAB_FULL);
  if (atomic_load(&s->remote)) hzf__put_hint(e, s, true);
}
/* A thread's slab lists: the active slab's filing, a list's count and members. */
static const char *hzf__probe_owner_lists(hzf__edits_t *e, unsigned pick) {
  unsigned how = pick % 5;
  if (how == 0) {
    hz_slab_t *s = hzf__slab(pick / 5, HZF_SLABS_ACTIVE);
    if (!s) return NULL;
    if (hzf__has_free(s)) HZF_PUT(e, s->state, (uint8_t)HZ_SLAB_PARTIAL);
    else hzf__put_full(e, s);
    return "the active slab has its class, state ACTIVE and this owner";
  }
  hz_slab_list_t *l = hzf__of_threads(pick / 5, how == 1 ? HZF_OF_LIST : HZF_OF_FULL_LIST, NULL);
  if (!l) return NULL;
  hz_slab_t *s = l->head;
  switch (how) {
    case 1: HZF_PUT(e, l->count, l->count + 1); return "slab list shorter than its count";
    case 2: HZF_PUT(e, l->count, l->count - 1); return "slab list longer than its count";
    case 3:
      HZF_PUT(e, s->list, (uint8_t)(s->list == HZ_LIST_FULL ? HZ_LIST_PARTIAL : HZ_LIST_FULL));
      return "a slab on an owner list has that list's class and state";
    default: /* its first slab taken off it: owned, but on none of the thread's lists */
      HZF_PUT(e, l->head, s->next);
      if (s->next) HZF_PUT(e, s->next->prev, NULL);
      HZF_PUT(e, l->count, l->count - 1);
      return "every slab a thread owns is on exactly one of its lists";
  }
}
/* Pending remote batches and the queued mark. */
static const char *hzf__probe_batches(hzf__edits_t *e, unsigned pick) {
  switch (pick % 4) {
    case 0: {
      hz_remote_batch_t *q = hzf__of_threads(pick / 4, HZF_OF_FULL_BATCH, NULL);
      if (!q) return NULL;
      HZF_PUT(e, q->count, q->count + 1);
      return q->count > q->limit ? "a remote batch holds 1..limit blocks"
                                 : "a remote batch chains count blocks of its slab";
    }
    case 1: {
      hz_remote_batch_t *q = hzf__of_threads(pick / 4, HZF_OF_BATCH, NULL);
      if (!q) return NULL;
      HZF_PUT(e, q->count, 1u);
      return "an empty remote batch has no blocks";
    }
    case 2: {
      hz_tcache_t *tc = hzf__of_threads(pick / 4, HZF_OF_CACHE, NULL);
      if (!tc) return NULL;
      HZF_PUT(e, tc->npending, tc->npending + 1);
      return "npending == the number of non-empty remote batches";
    }
    default: {
      if (!HZ_SECURE) return NULL;
      void *b = hzf__queued_block(pick / 4);
      if (!b) return NULL;
      hzf__put_word(e, b, 1, hz_free_mark | (pick / 4 & 1 ? HZ_MARK_FRESH : 0));
      return "a block in a remote batch or queue carries the queued mark";
    }
  }
}
/* A full slab's remote frees hidden from its owner: its class's bit of the hint cleared. */
static const char *hzf__probe_hint(hzf__edits_t *e, unsigned pick) {
  hz_slab_t *s = hzf__slab(pick, HZF_SLABS_FULL_QUEUED);
  if (!s) return NULL;
  hzf__put_hint(e, s, false);
  return "a FULL slab whose remote queue holds a block has its class's bit in its owner's "
         "remote hint";
}
/* The pool's list one short of its count, or an abandoned slab taken off its list. */
static const char *hzf__probe_pool_lists(hzf__edits_t *e, unsigned pick) {
  if (pick & 1) {
    hz_slab_list_t *pool = (hz_slab_list_t *)hz_pool_list();
    if (pool->count == 0) return NULL;
    HZF_PUT(e, pool->count, pool->count - 1);
    return "the pool holds exactly the pooled slabs";
  }
  for (unsigned i = 0; i < HZ_NUM_CLASSES; i++) {
    hz_slab_list_t *l = (hz_slab_list_t *)hz_pool_abandoned((pick / 2 + i) % HZ_NUM_CLASSES);
    if (!l->head) continue;
    hz_slab_t *s = l->head;
    HZF_PUT(e, l->head, s->next);
    if (s->next) HZF_PUT(e, s->next->prev, NULL);
    HZF_PUT(e, l->count, l->count - 1);
    return "the abandoned lists hold exactly the abandoned slabs";
  }
  return NULL;
}

static void hzf__bin_remove(hzf__edits_t *e, hz_superslab_t *h, unsigned bin) {
  if (h->prev) HZF_PUT(e, h->prev->next, h->next);
  else HZF_PUT(e, hz_arena.free_bins[bin], h->next);
  if (h->next) HZF_PUT(e, h->next->prev, h->prev);
}
static void hzf__bin_insert(hzf__edits_t *e, hz_superslab_t *h, unsigned bin) {
  hz_superslab_t *first = hz_arena.free_bins[bin];
  HZF_PUT(e, h->next, first);
  HZF_PUT(e, h->prev, NULL);
  if (first) HZF_PUT(e, first->prev, h);
  HZF_PUT(e, hz_arena.free_bins[bin], h);
}
static unsigned hzf__bin_of(uint32_t len) { return len <= HZ_EXTENT_BINS ? len : 0; }

/* A free extent of two or more SuperSlabs split in two well-formed free extents, each in
 * the bin of its length, the dirty prefix shared out: only coalescing is broken. */
static const char *hzf__probe_split(hzf__edits_t *e, unsigned pick) {
  hz_superslab_t *h = hzf__superslab(pick, HZF_SS_LONG_FREE_HEAD);
  if (!h) return NULL;
  uint32_t len = h->len, tail_len = 1 + pick % (len - 1 < 24 ? len - 1 : 24), k = len - tail_len;
  hz_superslab_t *t = h + k;
  size_t first = (size_t)k << HZ_SUPERSLAB_SHIFT, dirty = h->dirty;
  hzf__bin_remove(e, h, hzf__bin_of(len));
  HZF_PUT(e, h->len, k);
  HZF_PUT(e, h->dirty, dirty < first ? dirty : first);
  for (uint32_t j = 0; j < tail_len; j++) HZF_PUT(e, t[j].head, (uint32_t)(t - hz_arena.ss));
  HZF_PUT(e, t->len, tail_len);
  HZF_PUT(e, t->dirty, dirty > first ? dirty - first : 0);
  HZF_PUT(e, t->dirty_since, h->dirty_since);
  hzf__bin_insert(e, h, hzf__bin_of(k));
  hzf__bin_insert(e, t, hzf__bin_of(tail_len));
  return "free extents are coalesced: no free extent touches another";
}

static const struct {
  const char *name;
  hzf_probe_fn fn;
} hzf__probes[] = {
    {"capacity", hzf__probe_capacity},
    {"carved", hzf__probe_carved},
    {"used", hzf__probe_used},
    {"free_count", hzf__probe_free_count},
    {"freelist", hzf__probe_freelist},
    {"owner", hzf__probe_owner},
    {"page tag", hzf__probe_ptag},
    {"filing", hzf__probe_filed},
    {"unregistered owner", hzf__probe_unregistered},
    {"pooled slab", hzf__probe_pooled},
    {"slabs_pooled", hzf__probe_slabs_pooled},
    {"extent", hzf__probe_extent},
    {"extent lists", hzf__probe_extent_lists},
    {"cache tid", hzf__probe_tid},
    {"sll count", hzf__probe_sll_count},
    {"sll stray block", hzf__probe_sll_stray},
    {"block in two lists", hzf__probe_twice},
    {"owner lists", hzf__probe_owner_lists},
    {"remote batches", hzf__probe_batches},
    {"pool lists", hzf__probe_pool_lists},
    {"split extent", hzf__probe_split},
    {"remote hint", hzf__probe_hint},
};
#define HZF_NPROBES (sizeof hzf__probes / sizeof hzf__probes[0])
_Static_assert(HZF_NPROBES <= 32, "a trace names the probes that ran as a 32-bit set");

unsigned hzf_audit_probe_count(void) { return HZF_NPROBES; }
const char *hzf_audit_probe_name(unsigned i) {
  return i < HZF_NPROBES ? hzf__probes[i].name : "?";
}

void hzf_op_audit(hzf_ctx_t *c) {
  hz_violation_t v;
  static hzf__edits_t e;
  unsigned first = c->op->arg % HZF_NPROBES, pick = c->op->pick | (unsigned)c->op->sel << 8 |
                                                    (unsigned)(c->op->arg / HZF_NPROBES) << 14;
  unsigned ran = 0;
  uint32_t set = 0;
  for (unsigned k = 0; k < HZF_NPROBES && ran < HZF_AUDIT_PER_OP && !hzf_failed(c); k++) {
    unsigned p = (first + k) % HZF_NPROBES;
    e.n = 0;
    const char *rule = hzf__probes[p].fn(&e, pick);
    if (!rule) {
      hzf__undo(&e);
      continue;
    }
    int bad = hz_heap_check(&v, NULL);
    hzf__undo(&e);
    ran++;
    set |= 1u << p;
    if (!bad)
      hzf_fail(c, "checker-audit", rule, "probe '%s' broke the rule; hz_heap_check passed",
               hzf__probes[p].name);
    /* Another rule: unless the heap was broken before the probe (then that is the finding,
     * as the op's ordinary check would have reported it), the check misnamed this one. */
    else if (strcmp(v.invariant, rule) != 0 && hzf_model_heap_ok(c, NULL))
      hzf_fail(c, "checker-audit", rule,
               "probe '%s' broke the rule; hz_heap_check reported: %s: %s", hzf__probes[p].name,
               v.invariant, v.message);
  }
  hzf_note(c, "audit: %u of %u probes broke their rule, and the check named each (set 0x%x)",
           ran, (unsigned)HZF_NPROBES, (unsigned)set);
}
