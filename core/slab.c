/* Layer 4 (slab): carving, the freelist and the remote queue of one slab. */
#include "core/slab.h"

#include <string.h>

void hz_slab_init(hz_slab_t *s, unsigned cls, uint32_t owner) {
  HZ_ASSERT(s->state == HZ_SLAB_POOLED && s->used == 0);
  HZ_ASSERT(atomic_load(&s->remote) == NULL);
  unsigned prev_cls = s->cls, prev_carved = HZ_LOAD(&s->carved);
  s->cls = (uint16_t)cls;
  s->capacity = hz_class_capacity[cls];
  s->freelist = NULL;
  s->free_count = 0;
  s->used = 0;
  HZ_STORE(&s->carved, 0);
  s->next = s->prev = NULL;
  hz_poison(hz_slab_start(s), HZ_SLAB_SIZE);
  hz_slab_set_owner(s, owner);
  if (HZ_BUG(HZ_BUG_STALE_TAG, prev_carved > 0 && prev_cls != cls))
    hz_ptag_set_range(hz_slab_start(s), HZ_PAGES_PER_SLAB, HZ_TAG(owner, prev_cls));
  HZ_COUNT(slab_inits);
}

uint32_t hz_slab_take(hz_slab_t *s, uint32_t n, void **head, void **tail) {
  void *h = NULL, *t = NULL;
  uint32_t k = 0;
  /* Freelist first: those blocks were used recently and are likely still cached. */
  for (void *b = s->freelist; k < n && b; k++) {
    void *next = hz_link_get(b);
    if (t) hz_link_set(t, b);
    else h = b;
    t = b;
    b = next;
    s->freelist = next;
  }
  s->free_count -= k;
  uint32_t reused = k;
  /* Then carve: blocks past `carved` have never been handed out. */
  uint32_t carved = HZ_LOAD(&s->carved), size = hz_slab_block_size(s);
  unsigned char *base = hz_slab_start(s);
  for (; k < n && carved < s->capacity; k++, carved++) {
    void *b = base + (size_t)carved * size;
    /* Free from birth, and never handed out: freeing it is caught as not allocated. */
    if (HZ_SECURE) hz_mark_set(b, hz_free_mark | HZ_MARK_FRESH);
    if (t) hz_link_set(t, b);
    else h = b;
    t = b;
  }
  HZ_STORE(&s->carved, carved);
  if (t) hz_link_set(t, NULL);
  s->used += HZ_BUG(HZ_BUG_USED_SKIPS_SLL, reused > 0) ? k - reused : k;
  *head = h;
  *tail = t;
  HZ_ASSERT(s->used == carved - s->free_count);
  return k;
}

bool hz_slab_remote_push(hz_slab_t *s, void *head, void *tail) {
  void *old = atomic_load_explicit(&s->remote, memory_order_relaxed);
  bool retry = false;
  do {
    /* Re-linked on every retry: the head may have moved. */
    if (!HZ_BUG(HZ_BUG_CAS_NO_RELINK, retry)) hz_link_set(tail, old);
    retry = true;
    hz_race_point(HZ_RACE_REMOTE_PUSH, s); /* another free may move the head here */
    /* Sequentially consistent, not only release: the owner load after it must not pass
     * it (pool.c, hz_pool_abandon). On x86 the CAS is a full barrier either way. */
  } while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, head, memory_order_seq_cst,
                                                  memory_order_relaxed));
  return old == NULL;
}

uint32_t hz_slab_collect_take(hz_slab_t *s, uint32_t want, void **head, void **tail,
                              uint32_t *taken) {
  *taken = 0;
  if (atomic_load_explicit(&s->remote, memory_order_relaxed) == NULL) return 0;
  void *b = atomic_exchange_explicit(&s->remote, NULL, memory_order_acquire);
  /* Only an owner's collect: the reclaim of an abandoned slab (owner 0) runs under the
   * pool lock, where no other thread's step may be made to wait. */
  if (HZ_RACE_POINTS && atomic_load_explicit(&s->owner, memory_order_relaxed) != 0)
    hz_race_point(HZ_RACE_COLLECT, s);
  unsigned char *base = hz_slab_start(s);
  void *h = NULL, *t = NULL;
  uint32_t n = 0, kept = 0;
  while (b) {
    /* Every queued block counts in `used` and is a carved block start, so anything
     * else is a stray link into user data: stop rather than corrupt the freelist. The
     * blocks kept for the caller stay in `used`, so used - kept bounds the walk. */
    uint32_t off = (uint32_t)((unsigned char *)b - base);
    uint32_t idx = hz_class_index(s->cls, off);
    if (!HZ_CHECK(s->used > kept && (unsigned char *)b >= base && off < HZ_SLAB_SIZE &&
                      idx * hz_slab_block_size(s) == off && idx < HZ_LOAD(&s->carved),
                  HZ_FAULT_CORRUPTION, HZ_OP_INTERNAL, b, "remote queue links outside its blocks"))
      break;
    /* Each queued block carries the queued mark until it is collected: meeting one
     * without it means the block was queued twice (racing double frees), which would
     * put a cycle on the freelist. */
    if (HZ_SECURE && !HZ_CHECK(hz_mark_get(b) == (hz_free_mark | HZ_MARK_QUEUED),
                               HZ_FAULT_DOUBLE_FREE, HZ_OP_FREE, b,
                               "the block was queued for its owner twice"))
      break;
    if (HZ_SECURE) hz_mark_set(b, hz_free_mark);
    void *next = hz_link_get(b);
    if (kept < want) {
      /* Straight to the caller's cache: one pass over blocks another core wrote,
       * instead of onto the freelist and off it again. */
      if (t) hz_link_set(t, b);
      else h = b;
      t = b;
      kept++;
    } else {
      hz_slab_put(s, b);
    }
    b = next;
    n++;
  }
  if (t) hz_link_set(t, NULL);
  if (head) *head = h, *tail = t;
  *taken = kept;
  if (n) HZ_COUNT(remote_collects);
  return n;
}

void hz_slab_set_owner(hz_slab_t *s, uint32_t owner) {
  /* An abandoned slab changes hands only under the pool lock: a remote free that finds
   * it ownerless reclaims it under that lock, deciding by its owner and state. */
  HZ_ASSERT(s->state != HZ_SLAB_ABANDONED || hz_pool_held());
  atomic_store_explicit(&s->owner, owner, memory_order_release);
  hz_ptag_set_range(hz_slab_start(s), HZ_PAGES_PER_SLAB, HZ_TAG(owner, s->cls));
}

bool hz_slab_freelist_contains(const hz_slab_t *s, const void *b) {
  uint32_t n = 0;
  for (const void *x = s->freelist; x && n <= s->free_count; x = hz_link_get(x), n++)
    if (x == b) return true;
  return false;
}

/* Walks a list of blocks of slab s, marking each in `seen`; returns NULL or the rule. */
HZ_CHECKER static const char *hz__walk(const hz_slab_t *s, const void *b, uint32_t limit, uint8_t *seen,
                            uint32_t *count) {
  const unsigned char *base = hz_slab_start(s);
  uint32_t size = hz_slab_block_size(s), carved = HZ_LOAD(&s->carved), n = 0;
  for (; b; b = hz_link_get(b)) {
    const unsigned char *p = b;
    if (p < base || p >= base + HZ_SLAB_SIZE) return "a free list links outside its slab";
    uint32_t off = (uint32_t)(p - base), idx = off / size;
    if (idx * size != off) return "a free list links to the middle of a block";
    if (idx >= carved) return "a free list holds a never-carved block";
    if (seen[idx >> 3] & (1u << (idx & 7))) return "a block is on a free list twice (or a cycle)";
    seen[idx >> 3] |= (uint8_t)(1u << (idx & 7));
    if (++n > limit) return "a free list is longer than its count";
  }
  *count = n;
  return NULL;
}

HZ_CHECKER const char *hz_slab_validate(const hz_slab_t *s) {
  if (s->state < HZ_SLAB_ACTIVE || s->state > HZ_SLAB_ABANDONED) return "slab is not owned";
  if (s->cls >= HZ_NUM_CLASSES) return "slab class out of range";
  uint32_t carved = HZ_LOAD(&s->carved);
  if (s->capacity != hz_class_capacity[s->cls]) return "capacity == class capacity";
  if (carved > s->capacity) return "carved <= capacity";
  if (s->used != carved - s->free_count) return "used == carved - free_count";
  uint8_t seen[HZ_SLAB_SIZE / 16 / 8];
  memset(seen, 0, sizeof seen);
  uint32_t nfree = 0, nremote = 0;
  const char *why = hz__walk(s, s->freelist, s->free_count, seen, &nfree);
  if (why) return why;
  if (nfree != s->free_count) return "free_count == length(freelist)";
  why = hz__walk(s, atomic_load_explicit(&s->remote, memory_order_acquire), s->used, seen,
                 &nremote);
  if (why) return why;
  uint32_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
  if ((s->state == HZ_SLAB_ABANDONED) != (owner == 0)) return "owner == 0 iff abandoned";
  uint32_t tag = HZ_TAG(owner, s->cls);
  const unsigned char *base = hz_slab_start(s);
  for (size_t i = 0; i < HZ_PAGES_PER_SLAB; i++)
    if (hz_ptag_get(base + (i << HZ_PAGE_SHIFT)) != tag)
      return "ptag[page] == (owner << 16) | (class + 1) for every page of an owned slab";
  return NULL;
}
