/* Layer 4 (slab): the shared pool of empty slabs and the lists of abandoned slabs.
 *
 * Both are global and guarded by one mutex: they are touched only when a thread has
 * exhausted its own slabs, when a slab goes EMPTY, and at thread exit.
 */
#include <pthread.h>

#include "core/slab.h"

static struct {
  hz_lock_t lock;
  hz_slab_list_t empty;                         /* POOLED slabs, any SuperSlab */
  hz_slab_list_t abandoned[HZ_NUM_CLASSES];     /* ABANDONED slabs by class */
  uint32_t empty_superslabs;                    /* SuperSlabs whose every slab is pooled */
  _Atomic uint32_t abandoned_total;             /* lets hz_pool_adopt skip the lock */
} hz__pool = {.lock = HZ_LOCK_INIT};

void hz_pool_lock(void) { hz_lock(&hz__pool.lock); }
void hz_pool_unlock(void) { hz_unlock(&hz__pool.lock); }
bool hz_pool_held(void) { return hz_lock_held(&hz__pool.lock); }
void hz_pool_reset_lock_after_fork(void) { hz_lock_reinit(&hz__pool.lock); }
void hz_pool_reset(void) {
  HZ_ASSERT(hz_pool_held());
  hz__pool.empty = (hz_slab_list_t){NULL, 0};
  for (unsigned c = 0; c < HZ_NUM_CLASSES; c++) hz__pool.abandoned[c] = (hz_slab_list_t){NULL, 0};
  hz__pool.empty_superslabs = 0;
  atomic_store_explicit(&hz__pool.abandoned_total, 0, memory_order_relaxed);
}
const hz_slab_list_t *hz_pool_list(void) { return &hz__pool.empty; }
const hz_slab_list_t *hz_pool_abandoned(unsigned cls) { return &hz__pool.abandoned[cls]; }
uint32_t hz_pool_empty_superslabs(void) { return hz__pool.empty_superslabs; }

/* Every list and count here changes under the pool lock, and says so. */
static void hz__push(hz_slab_list_t *l, hz_slab_t *s) {
  HZ_ASSERT(hz_pool_held());
  s->prev = NULL;
  s->next = l->head;
  if (l->head) l->head->prev = s;
  l->head = s;
  l->count++;
}

static void hz__remove(hz_slab_list_t *l, hz_slab_t *s) {
  HZ_ASSERT(hz_pool_held());
  if (s->prev) s->prev->next = s->next;
  else l->head = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  l->count--;
}

static hz_superslab_t *hz__ss_of(hz_slab_t *s) {
  return &hz_arena.ss[hz_ss_index(hz_slab_start(s))];
}

/* Cuts a new SuperSlab into pooled slabs (pool lock held). */
static bool hz__grow(void) {
  HZ_ASSERT(hz_pool_held());
  size_t dirty; /* slabs are carved anew and their blocks are never trusted to be zero */
  uint32_t idx = hz_extent_alloc(1, 1, HZ_SS_SLABS, &dirty);
  if (idx == HZ_NO_EXTENT) return false;
  unsigned char *base = hz_ss_addr(idx);
  for (size_t i = HZ_SLABS_PER_SUPERSLAB; i-- > 0;) {
    hz_slab_t *s = hz_slab_of(base + (i << HZ_SLAB_SHIFT));
    s->state = HZ_SLAB_POOLED;
    s->used = s->free_count = 0;
    hz__push(&hz__pool.empty, s);
  }
  hz_arena.ss[idx].slabs_pooled = HZ_SLABS_PER_SUPERSLAB;
  hz__pool.empty_superslabs++;
  return true;
}

hz_slab_t *hz_pool_take(void) {
  hz_pool_lock();
  hz_slab_t *s = hz__pool.empty.head;
  if (!s && hz__grow()) s = hz__pool.empty.head;
  if (s) {
    hz__remove(&hz__pool.empty, s);
    hz_superslab_t *ss = hz__ss_of(s);
    if (ss->slabs_pooled-- == HZ_SLABS_PER_SUPERSLAB) hz__pool.empty_superslabs--;
  }
  hz_pool_unlock();
  return s;
}

/* Returns a SuperSlab all of whose slabs are pooled to the arena (pool lock held). */
static void hz__release_superslab(hz_superslab_t *ss) {
  HZ_ASSERT(hz_pool_held());
  uint32_t idx = (uint32_t)(ss - hz_arena.ss);
  unsigned char *base = hz_ss_addr(idx);
  for (size_t i = 0; i < HZ_SLABS_PER_SUPERSLAB; i++) {
    hz_slab_t *s = hz_slab_of(base + (i << HZ_SLAB_SHIFT));
    hz__remove(&hz__pool.empty, s);
    s->state = HZ_SLAB_UNCUT;
  }
  ss->slabs_pooled = 0;
  hz_extent_free(idx, false, HZ_SUPERSLAB_SIZE);
}

/* Pools an emptied slab (pool lock held). */
static void hz__pool_locked(hz_slab_t *s) {
  HZ_ASSERT(hz_pool_held());
  HZ_ASSERT(s->used == 0 && atomic_load(&s->remote) == NULL);
  /* Untag first: from here a stale free of one of its blocks is "not allocated". */
  atomic_store_explicit(&s->owner, 0, memory_order_release);
  hz_ptag_set_range(hz_slab_start(s), HZ_PAGES_PER_SLAB, 0);
  hz_poison(hz_slab_start(s), HZ_SLAB_SIZE);
  s->freelist = NULL; /* its blocks are gone with it; hz_slab_init starts carving anew */
  s->free_count = 0;
  s->state = HZ_SLAB_POOLED;
  hz__push(&hz__pool.empty, s);
  hz_superslab_t *ss = hz__ss_of(s);
  if (++ss->slabs_pooled == HZ_SLABS_PER_SUPERSLAB) {
    /* Keep one empty SuperSlab warm; give further ones back to the OS. */
    if (hz__pool.empty_superslabs >= 1) hz__release_superslab(ss);
    else hz__pool.empty_superslabs++;
  }
  HZ_COUNT(slab_releases);
}

void hz_pool_put(hz_slab_t *s) {
  hz_pool_lock();
  hz__pool_locked(s);
  hz_pool_unlock();
}

/* Collects an abandoned slab's queue and pools the slab if that emptied it (pool lock
 * held, the slab on its abandoned list). */
static void hz__reclaim_locked(hz_slab_t *s) {
  HZ_ASSERT(hz_pool_held());
  hz_slab_collect(s);
  if (s->used == 0) {
    hz__remove(&hz__pool.abandoned[s->cls], s);
    atomic_fetch_sub_explicit(&hz__pool.abandoned_total, 1, memory_order_relaxed);
    hz__pool_locked(s);
  }
}

void hz_pool_reclaim(hz_slab_t *s) {
  hz_pool_lock();
  /* Under the lock nobody can adopt it, so its owner-written fields are ours once it is
   * abandoned. The owner first: while a thread owns the slab it writes `state` without
   * this lock, and owner == 0 (acquire) orders every write its last owner made before. */
  if (atomic_load_explicit(&s->owner, memory_order_acquire) == 0 &&
      (s->state == HZ_SLAB_ABANDONED || HZ_BUG(HZ_BUG_RECLAIM_IN_TRANSIT, true)))
    hz__reclaim_locked(s);
  hz_pool_unlock();
}

void hz_pool_abandon(hz_slab_t *s) {
  hz_slab_set_owner(s, 0);
  /* Frees landing here find no owner and a slab not yet abandoned: they queue their
   * blocks and leave the reclaim to the listing below. */
  hz_race_point(HZ_RACE_ABANDON, s);
  hz_pool_lock();
  s->state = HZ_SLAB_ABANDONED;
  hz__push(&hz__pool.abandoned[s->cls], s);
  atomic_fetch_add_explicit(&hz__pool.abandoned_total, 1, memory_order_relaxed);
  HZ_COUNT(abandons);
  /* Without this, a slab whose last blocks were freed in that window would wait,
   * retained, for a thread to allocate its class again. The fence pairs with the remote
   * push's sequentially consistent CAS and owner load (tcache.c): of "queue the block,
   * then read the owner" and "clear the owner, then read the queue", at least one side
   * sees the other's write, so either the freeing thread or this one reclaims. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&s->remote, memory_order_relaxed) != NULL) hz__reclaim_locked(s);
  hz_pool_unlock();
}

hz_slab_t *hz_pool_adopt(unsigned cls, uint32_t owner) {
  if (atomic_load_explicit(&hz__pool.abandoned_total, memory_order_relaxed) == 0) return NULL;
  hz_pool_lock();
  hz_slab_t *s = hz__pool.abandoned[cls].head;
  if (s) {
    hz__remove(&hz__pool.abandoned[cls], s);
    atomic_fetch_sub_explicit(&hz__pool.abandoned_total, 1, memory_order_relaxed);
    hz_slab_set_owner(s, owner);
    HZ_COUNT(adoptions);
  }
  hz_pool_unlock();
  return s;
}
