/* Layer 5 (TLS cache): refill, drain, flush and exit of one thread's cache.
 *
 * Refill order for class c, cheapest first: the active slab (freelist, then carving),
 * its remote queue, an owned partial slab, owned full slabs that received remote frees,
 * an abandoned slab, an empty slab from the shared pool, a new SuperSlab.
 */
#include "core/tcache.h"

HZ_TLS hz_tcache_t hz_tc = {.tid = HZ_TID_NONE};
hz_remote_hint_t hz_remote_hint[HZ_MAX_THREADS];

static void hz__list_push(hz_slab_list_t *l, hz_slab_t *s, uint8_t which) {
  s->prev = NULL;
  s->next = l->head;
  if (l->head) l->head->prev = s;
  l->head = s;
  l->count++;
  s->list = which;
}

static void hz__list_remove(hz_slab_list_t *l, hz_slab_t *s) {
  if (s->prev) s->prev->next = s->next;
  else l->head = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  l->count--;
  s->list = HZ_LIST_NONE;
}

static hz_slab_list_t *hz__list_of(hz_tcache_t *tc, hz_slab_t *s) {
  return s->list == HZ_LIST_PARTIAL ? &tc->partial[s->cls] : &tc->full[s->cls];
}

static void hz__file(hz_tcache_t *tc, hz_slab_t *s) {
  bool has_free = s->free_count > 0 || HZ_LOAD(&s->carved) < s->capacity;
  s->state = has_free ? HZ_SLAB_PARTIAL : HZ_SLAB_FULL;
  hz__list_push(has_free ? &tc->partial[s->cls] : &tc->full[s->cls], s,
                has_free ? HZ_LIST_PARTIAL : HZ_LIST_FULL);
}

void hz_tcache_init(hz_tcache_t *tc, uint32_t tid) {
  for (unsigned c = 0; c < HZ_NUM_CLASSES; c++) {
    tc->sll[c] = (hz_sll_t){NULL, 0, hz_class_sll_max[c]};
    tc->active[c] = NULL;
    tc->partial[c] = tc->full[c] = (hz_slab_list_t){NULL, 0};
  }
  tc->exiting = 0;
  tc->npending = 0;
  for (unsigned i = 0; i < HZ_REMOTE_SLOTS; i++) tc->pending[i] = (hz_remote_batch_t){0};
  atomic_store_explicit(&hz_remote_hint[tid].bits, 0, memory_order_relaxed);
  tc->tid = tid; /* last: the free fast path keys on it */
}

/* Full slabs whose queue went non-empty since the last look get their remote frees. */
static void hz__collect_full(hz_tcache_t *tc, unsigned cls) {
  uint64_t bit = (uint64_t)1 << cls;
  if (!(HZ_LOAD(&hz_remote_hint[tc->tid].bits) & bit)) return;
  atomic_fetch_and_explicit(&hz_remote_hint[tc->tid].bits, ~bit, memory_order_acquire);
  for (hz_slab_t *s = tc->full[cls].head, *next; s; s = next) {
    next = s->next;
    if (hz_slab_collect(s)) {
      hz__list_remove(&tc->full[cls], s);
      hz__file(tc, s);
    }
  }
}

/* The next slab to allocate class cls from, or NULL when memory is exhausted. */
static hz_slab_t *hz__next_slab(hz_tcache_t *tc, unsigned cls) {
  hz__collect_full(tc, cls);
  hz_slab_t *s = tc->partial[cls].head;
  if (s) {
    hz__list_remove(&tc->partial[cls], s);
    return s;
  }
  while ((s = hz_pool_adopt(cls, tc->tid)) != NULL) {
    hz_race_point(HZ_RACE_ADOPT, s);
    hz_slab_collect(s);
    if (s->free_count > 0 || HZ_LOAD(&s->carved) < s->capacity) return s;
    hz__file(tc, s); /* still full: keep it owned, its remote frees will come */
  }
  /* Growth: a fresh slab only when this thread holds no slab of the class with a free
   * block; one passed over keeps its free blocks from every later refill. */
  HZ_ASSERT(tc->active[cls] == NULL && tc->partial[cls].head == NULL);
  s = hz_pool_take();
  if (s) {
    hz_race_point(HZ_RACE_POOL_TAKE, s);
    hz_slab_init(s, cls, tc->tid);
  }
  return s;
}

bool hz_tcache_refill(hz_tcache_t *tc, unsigned cls) {
  hz_sll_t *l = &tc->sll[cls];
  /* Running dry again: this thread's working set of the class outgrew the bound, so the
   * list earns twice the room (tcmalloc grows its per-class lists the same way). */
  if (l->max < hz_class_sll_cap[cls])
    l->max = 2 * l->max < hz_class_sll_cap[cls] ? 2 * l->max : hz_class_sll_cap[cls];
  uint32_t want = l->max / 2 ? l->max / 2 : 1;
  if (HZ_BUG(HZ_BUG_PLAIN_COUNTER, true)) (*(uint64_t *)&hz_counters.refills)++;
  else HZ_COUNT(refills);
  for (;;) {
    hz_slab_t *s = tc->active[cls];
    if (s) {
      void *head, *tail;
      uint32_t k = hz_slab_take(s, want, &head, &tail);
      if (k) {
        hz_sll_splice(l, head, tail, k);
        HZ_ASSERT_EXPENSIVE(hz_slab_validate(s) == NULL);
        return true;
      }
      uint32_t taken;
      if (hz_slab_collect_take(s, want, &head, &tail, &taken)) {
        if (taken) {
          hz_sll_splice(l, head, tail, taken);
          HZ_ASSERT_EXPENSIVE(hz_slab_validate(s) == NULL);
          return true;
        }
        continue;
      }
      tc->active[cls] = NULL;
      hz__file(tc, s);
    }
    s = hz__next_slab(tc, cls);
    if (!s) return false;
    s->state = HZ_SLAB_ACTIVE;
    tc->active[cls] = s;
  }
}

/* Returns block b, cached by tc, to its slab; pools the slab if it went EMPTY. */
static void hz__return(hz_tcache_t *tc, void *b) {
  hz_slab_t *s = hz_slab_of(b);
  hz_slab_put(s, b);
  if (s->state == HZ_SLAB_FULL) {
    hz__list_remove(&tc->full[s->cls], s);
    s->state = HZ_SLAB_PARTIAL;
    hz__list_push(&tc->partial[s->cls], s, HZ_LIST_PARTIAL);
  }
  /* used == 0: no thread cache, remote queue or program holds a block of it. The
   * active slab stays: the next refill would only take it straight back. */
  if ((s->used == 0 || HZ_BUG(HZ_BUG_LARSON, s->used == 1)) && s->state == HZ_SLAB_PARTIAL) {
    hz__list_remove(&tc->partial[s->cls], s);
    hz_pool_put(s);
  }
}

void hz_tcache_drain(hz_tcache_t *tc, unsigned cls, uint32_t n) {
  hz_sll_t *l = &tc->sll[cls];
  HZ_COUNT(drains);
  void *b;
  while (n-- > 0 && (b = hz_sll_pop(l)) != NULL) {
    hz__return(tc, b);
    if (HZ_BUG(HZ_BUG_DRAIN_PUSHBACK, n == 0 && l->count < l->max)) hz_sll_push(l, b);
    if (HZ_BUG(HZ_BUG_STALE_NEXT, n > 0 && l->head != NULL)) l->head = hz_link_get(b);
  }
}

static void hz__pool_if_empty(hz_tcache_t *tc, hz_slab_t *s) {
  if (s->used != 0) return;
  if (s->state == HZ_SLAB_ACTIVE) tc->active[s->cls] = NULL;
  else hz__list_remove(hz__list_of(tc, s), s);
  hz_pool_put(s);
}

/* Collects remote frees of every owned slab of cls, pooling those that went empty. */
static void hz__collect_all(hz_tcache_t *tc, unsigned cls) {
  if (tc->active[cls]) {
    hz_slab_collect(tc->active[cls]);
    hz__pool_if_empty(tc, tc->active[cls]);
  }
  hz_slab_list_t *lists[2] = {&tc->partial[cls], &tc->full[cls]};
  for (int i = 0; i < 2; i++) {
    for (hz_slab_t *s = lists[i]->head, *next; s; s = next) {
      next = s->next;
      if (hz_slab_collect(s) && s->list == HZ_LIST_FULL) {
        hz__list_remove(&tc->full[cls], s);
        hz__file(tc, s);
      }
      hz__pool_if_empty(tc, s);
    }
  }
}

/* Adopts every abandoned slab of cls: the blocks other threads freed into it since its
 * owner exited wait in its remote queue, and only an owner collects them. Without this a
 * program whose threads come and go keeps those slabs until a refill of the same class
 * happens to adopt them; with it, a flush leaves no freed memory behind. */
static void hz__reclaim_abandoned(hz_tcache_t *tc, unsigned cls) {
  hz_slab_t *s;
  while ((s = hz_pool_adopt(cls, tc->tid)) != NULL) {
    hz_race_point(HZ_RACE_ADOPT, s);
    hz_slab_collect(s);
    if (s->used == 0) hz_pool_put(s);
    else hz__file(tc, s);
  }
}

void hz_tcache_push_remote(hz_slab_t *s, void *head, void *tail) {
  /* Read before the push: once the blocks are published the owner may collect them,
   * pool the emptied slab, and another thread cut it for another class (TSan saw that
   * write race with a read of `cls` made after the push). */
  unsigned cls = s->cls;
  bool was_empty = hz_slab_remote_push(s, head, tail);
  /* seq_cst: ordered after the push's CAS (hz_pool_abandon says why). */
  uint32_t owner = atomic_load_explicit(&s->owner, memory_order_seq_cst);
  /* Abandoned: no owner will collect, so this batch may have emptied it for good. Takes
   * the pool lock, but only for frees into slabs of threads that exited. */
  if (owner == 0) hz_pool_reclaim(s);
  /* The queue was empty: tell the owner, who only scans full slabs with a hint set. */
  else if (was_empty && owner < HZ_MAX_THREADS)
    atomic_fetch_or_explicit(&hz_remote_hint[owner].bits, (uint64_t)1 << cls,
                             memory_order_release);
}

void hz_tcache_publish(hz_tcache_t *tc, hz_remote_batch_t *q) {
  HZ_ASSERT(q->slab && q->count > 0);
  hz_slab_t *s = q->slab;
  void *head = q->head, *tail = q->tail;
  /* Emptied before the push: a step landed at the push's race point may free into this
   * thread's batches again. */
  if (!HZ_BUG(HZ_BUG_BATCH_TWICE, q->count >= q->limit)) {
    *q = (hz_remote_batch_t){0};
    tc->npending--;
  }
  hz_tcache_push_remote(s, head, tail);
}

void hz_tcache_flush(hz_tcache_t *tc) {
  if (tc->tid == HZ_TID_NONE) return;
  for (unsigned i = 0; tc->npending > 0 && i < HZ_REMOTE_SLOTS; i++) {
    if (!tc->pending[i].slab) continue;
    if (HZ_BUG(HZ_BUG_BATCH_EXIT_LOST, tc->exiting != 0)) {
      tc->pending[i] = (hz_remote_batch_t){0};
      tc->npending--;
    } else {
      hz_tcache_publish(tc, &tc->pending[i]);
    }
  }
  atomic_store_explicit(&hz_remote_hint[tc->tid].bits, 0, memory_order_relaxed);
  for (unsigned c = 0; c < HZ_NUM_CLASSES; c++) {
    if (!HZ_BUG(HZ_BUG_EXIT_KEEPS_SLL, tc->exiting && tc->sll[c].count > 0))
      hz_tcache_drain(tc, c, UINT32_MAX);
    hz__collect_all(tc, c);
    /* An exiting thread would only abandon them again. */
    if (!tc->exiting) hz__reclaim_abandoned(tc, c);
    tc->sll[c].max = hz_class_sll_max[c]; /* the grown room goes back with the blocks */
  }
}

void hz_tcache_abandon_all(hz_tcache_t *tc) {
  hz_tcache_flush(tc);
  for (unsigned c = 0; c < HZ_NUM_CLASSES; c++) {
    if (tc->active[c]) {
      hz_pool_abandon(tc->active[c]);
      tc->active[c] = NULL;
    }
    hz_slab_list_t *lists[2] = {&tc->partial[c], &tc->full[c]};
    for (int i = 0; i < 2; i++) {
      hz_slab_t *s;
      while ((s = lists[i]->head) != NULL) {
        hz__list_remove(lists[i], s);
        hz_pool_abandon(s);
      }
    }
  }
}

HZ_CHECKER static const char *hz__validate_list(const hz_tcache_t *tc, const hz_slab_list_t *l,
                                     unsigned cls, uint8_t state, uint8_t which) {
  uint32_t n = 0;
  for (const hz_slab_t *s = l->head; s; s = s->next) {
    if (++n > l->count) return "slab list longer than its count";
    if (s->cls != cls || s->state != state || s->list != which)
      return "a slab on an owner list has that list's class and state";
    if (atomic_load(&s->owner) != tc->tid) return "a slab on an owner list is owned by it";
    const char *why = hz_slab_validate(s);
    if (why) return why;
  }
  return n == l->count ? NULL : "slab list shorter than its count";
}

/* The pending batches: each chain as long as its count, of blocks of its slab. */
static const char *hz__validate_pending(const hz_tcache_t *tc) {
  uint32_t nonempty = 0;
  for (unsigned i = 0; i < HZ_REMOTE_SLOTS; i++) {
    const hz_remote_batch_t *q = &tc->pending[i];
    if (!q->slab) {
      if (q->count || q->head || q->tail) return "an empty remote batch has no blocks";
      continue;
    }
    nonempty++;
    if (q->count == 0 || q->count > q->limit) return "a remote batch holds 1..limit blocks";
    uint32_t n = 0;
    const void *last = NULL;
    for (const void *b = q->head; b; last = b, b = hz_link_get(b))
      if (++n > q->count || hz_slab_index(b) != hz_slab_index(hz_slab_start(q->slab)))
        return "a remote batch chains count blocks of its slab";
    if (n != q->count || last != q->tail) return "a remote batch chains count blocks of its slab";
  }
  return nonempty == tc->npending ? NULL : "npending == the number of non-empty remote batches";
}

HZ_CHECKER const char *hz_tcache_validate(const hz_tcache_t *tc) {
  const char *pending = hz__validate_pending(tc);
  if (pending) return pending;
  for (unsigned c = 0; c < HZ_NUM_CLASSES; c++) {
    const char *why = hz_sll_validate(&tc->sll[c]);
    if (!why && tc->sll[c].count > tc->sll[c].max) why = "sll.count <= sll.max";
    if (!why && tc->active[c]) {
      const hz_slab_t *a = tc->active[c];
      if (a->cls != c || a->state != HZ_SLAB_ACTIVE || atomic_load(&a->owner) != tc->tid)
        why = "the active slab has its class, state ACTIVE and this owner";
      else why = hz_slab_validate(a);
    }
    if (!why) why = hz__validate_list(tc, &tc->partial[c], c, HZ_SLAB_PARTIAL, HZ_LIST_PARTIAL);
    if (!why) why = hz__validate_list(tc, &tc->full[c], c, HZ_SLAB_FULL, HZ_LIST_FULL);
    if (why) return why;
  }
  return NULL;
}
