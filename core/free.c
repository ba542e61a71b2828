/* Layer 7 (api): free, realloc, usable_size and pointer classification.
 *
 * Classification never trusts bytes the program can write: the range check, the page
 * tag, the slab metadata and the SuperSlab metadata decide what a pointer is. The one
 * in-band hint, the free marker in word 1 of a free block, only ever raises suspicion
 * of a double free, which is then confirmed (see hz_locate).
 */
#include <errno.h>
#include <string.h>

#include "core/api.h"

const hz_foreign_ops_t *_Atomic hz_foreign;

void hz_set_foreign_allocator(const hz_foreign_ops_t *ops) { atomic_store(&hz_foreign, ops); }

/* Is free-marked block b of slab s really free? Walks the owner's TLS SLL, the
 * freelist and the remote queue. Safe when the caller owns s, or when every other
 * thread is parked (all_threads). */
static bool hz__confirm_free(hz_slab_t *s, const void *b, uint32_t owner, bool all_threads) {
  /* Another thread's slab, or an abandoned one an adopter may be taking: its lists can
   * change under us, so trust the 64-bit random marker. */
  if (owner != hz_tc.tid && !all_threads) return true;
  /* Queued: only a remote free sets this mark and only its collection clears it, and
   * the block may wait in any thread's pending batch, which no other thread may walk. */
  if (hz_mark_get(b) == (hz_free_mark | HZ_MARK_QUEUED)) return true;
  hz_tcache_t *tc = owner == hz_tc.tid ? &hz_tc : hz_thread_lookup(owner);
  if (tc && hz_sll_contains(&tc->sll[s->cls], b)) return true;
  if (hz_slab_freelist_contains(s, b)) return true;
  uint32_t n = 0;
  for (const void *x = atomic_load_explicit(&s->remote, memory_order_acquire);
       x && n <= s->used; x = hz_link_get(x), n++)
    if (x == b) return true;
  return false;
}

hz_where_t hz_locate(const void *p, bool all_threads) {
  hz_where_t w;
  if (HZ_BUG(HZ_BUG_WHERE_UNINIT, true)) w.kind = HZ_PTR_FOREIGN;
  else w = (hz_where_t){.kind = HZ_PTR_FOREIGN};
  if (!hz_in_arena(p)) return w;
  w.kind = HZ_PTR_UNALLOCATED;
  uint32_t tag = hz_ptag_get(p);
  if (tag == 0) {
    /* The slow classification of an in-range, untagged address. */
    void *large = hz_large_block_of(p);
    if (large) {
      w.block = large;
      w.size = hz_large_usable(large);
      w.kind = p == large ? HZ_PTR_LARGE : ((uintptr_t)p & 15) ? HZ_PTR_MISALIGNED
                                                                : HZ_PTR_INTERIOR;
    } else if ((uintptr_t)p & 15) {
      w.kind = HZ_PTR_MISALIGNED;
    }
    return w;
  }
  hz_slab_t *s = hz_slab_of(p);
  w.cls = HZ_TAG_CLASS(tag);
  w.owner = HZ_TAG_OWNER(tag);
  w.slab = s;
  w.size = hz_class_size[w.cls];
  uint32_t off = (uint32_t)((uintptr_t)p & (HZ_SLAB_SIZE - 1));
  uint32_t idx = hz_class_index(w.cls, off);
  w.block = hz_slab_start(s) + (size_t)idx * w.size;
  if (idx >= HZ_LOAD(&s->carved) || idx >= s->capacity) {
    w.kind = ((uintptr_t)p & 15) ? HZ_PTR_MISALIGNED : HZ_PTR_UNALLOCATED;
    w.block = NULL;
  } else if (w.block != p) {
    w.kind = ((uintptr_t)p & 15) ? HZ_PTR_MISALIGNED : HZ_PTR_INTERIOR;
  } else if (HZ_SECURE && hz_mark_is_free(p) &&
             hz__confirm_free(s, p, w.owner, all_threads)) {
    w.kind = HZ_PTR_FREE;
    w.fresh = (hz_mark_get(p) & HZ_MARK_FRESH) != 0;
  } else {
    w.kind = HZ_PTR_SMALL;
  }
  return w;
}

void hz_report(const hz_where_t *w, const void *p, hz_op_t op) {
  switch (w->kind) {
    case HZ_PTR_FREE:
      if (w->fresh) hz_fault(HZ_FAULT_NOT_ALLOCATED, op, p, "no block was handed out here yet");
      else hz_fault(HZ_FAULT_DOUBLE_FREE, op, p, "the block is already free");
      break;
    case HZ_PTR_INTERIOR:
      hz_fault(HZ_FAULT_INTERIOR, op, p, "points inside a block, not at its start");
      break;
    case HZ_PTR_MISALIGNED:
      hz_fault(HZ_FAULT_MISALIGNED, op, p, "not 16-byte aligned");
      break;
    case HZ_PTR_UNALLOCATED: {
      const hz_superslab_t *ss = &hz_arena.ss[hz_ss_index(p)];
      bool was_large = HZ_LOAD(&ss->kind) == HZ_SS_FREE && ss->was_large &&
                       p == hz_ss_addr(hz_ss_index(p));
      if (was_large) hz_fault(HZ_FAULT_DOUBLE_FREE, op, p, "the large block is already free");
      else hz_fault(HZ_FAULT_NOT_ALLOCATED, op, p, "hz memory, but no live block starts here");
      break;
    }
    case HZ_PTR_FOREIGN:
      hz_fault(HZ_FAULT_FOREIGN, op, p, "not allocated by hz");
      break;
    default:
      break;
  }
}

static void hz__free_foreign(void *p) {
  const hz_foreign_ops_t *f = atomic_load(&hz_foreign);
  if (HZ_CHECK(f != NULL, HZ_FAULT_FOREIGN, HZ_OP_FREE, p, "not allocated by hz")) f->free(p);
}

void hz_free_slow(void *p) {
  if (!p) return;
  if (!hz_in_arena(p) || HZ_BUG(HZ_BUG_TAG0_FOREIGN, hz_ptag_get(p) == 0)) {
    hz__free_foreign(p);
    return;
  }
  hz_tcache_t *tc = &hz_tc;
  hz_where_t w = hz_locate(p, false);
  if (w.kind == HZ_PTR_LARGE) {
    hz_large_free(p);
    return;
  }
  /* Seeded DF_SLOW_PATH: "at the bound the fast path already tested the marker", so an
   * own block found free is cached by the path below anyway, double free or not. */
  if (w.kind != HZ_PTR_SMALL &&
      !HZ_BUG(HZ_BUG_DF_SLOW_PATH, w.kind == HZ_PTR_FREE && w.owner == tc->tid &&
                                       tc->sll[w.cls].count >= tc->sll[w.cls].max)) {
    hz_report(&w, p, HZ_OP_FREE);
    return;
  }
  if (w.owner != tc->tid &&
      !HZ_BUG(HZ_BUG_REMOTE_OWN_SLL,
              tc->tid != HZ_TID_NONE && tc->sll[w.cls].count < tc->sll[w.cls].max)) {
    hz_remote_free(tc, w.slab, p, w.cls);
    return;
  }
  /* Ours, and the fast path declined: the list is at its bound (or the marker was a
   * false alarm). Drain half, then cache the block. */
  hz_sll_t *l = &tc->sll[w.cls];
  if (l->count >= l->max) {
    uint32_t half = l->max / 2 ? l->max / 2 : 1;
    void *head, *tail;
    if (HZ_BUG(HZ_BUG_OVERFLOW_LEAKS, true)) hz_sll_take(l, half, &head, &tail);
    else hz_tcache_drain(tc, w.cls, half);
  }
  hz_block_in(p, w.cls);
  hz_sll_push(l, p);
  HZ_ASSERT_EXPENSIVE(HZ_DEBUG < 3 || hz_tcache_validate(tc) == NULL);
}

HZ_EXPORT void hz_free(void *p) { hz_free_fast(p); }

HZ_EXPORT size_t hz_usable_size(const void *p) {
  if (!p) return 0;
  if (!hz_in_arena(p)) {
    const hz_foreign_ops_t *f = atomic_load(&hz_foreign);
    if (HZ_CHECK(f != NULL, HZ_FAULT_FOREIGN, HZ_OP_USABLE_SIZE, p, "not allocated by hz"))
      return f->usable_size((void *)p);
    return 0;
  }
  hz_where_t w = hz_locate(p, false);
  if (HZ_BUG(HZ_BUG_USABLE_OVER, w.kind == HZ_PTR_SMALL && w.cls > HZ_CLASS_PAGE_BASE &&
                                     w.cls + 1 < HZ_NUM_CLASSES))
    return hz_class_size[w.cls + 1];
  if (w.kind == HZ_PTR_SMALL || w.kind == HZ_PTR_LARGE) return w.size;
  hz_report(&w, p, HZ_OP_USABLE_SIZE);
  return 0;
}

HZ_EXPORT void *hz_realloc(void *p, size_t size) {
  if (!p) return hz_malloc(size);
  if (!hz_in_arena(p)) {
    const hz_foreign_ops_t *f = atomic_load(&hz_foreign);
    if (HZ_CHECK(f != NULL, HZ_FAULT_FOREIGN, HZ_OP_REALLOC, p, "not allocated by hz"))
      return f->realloc(p, size);
    errno = EINVAL;
    return NULL;
  }
  hz_where_t w = hz_locate(p, false);
  if (w.kind != HZ_PTR_SMALL && w.kind != HZ_PTR_LARGE) {
    hz_report(&w, p, HZ_OP_REALLOC);
    errno = EINVAL;
    return NULL;
  }
  if (size == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
    hz_free(p);
    return NULL;
  }
  /* In place when the block stays in its class, or a large block fits its extent. */
  if (w.kind == HZ_PTR_SMALL && size <= HZ_MEDIUM_MAX && hz_size_to_class(size) == w.cls)
    return p;
  if (w.kind == HZ_PTR_LARGE && hz_large_resize(p, size)) return p;
  void *q = hz_malloc(size);
  if (!q) return NULL; /* errno is ENOMEM; p is untouched */
  memcpy(q, p, size < w.size || HZ_BUG(HZ_BUG_REALLOC_COPY, size > w.size) ? size : w.size);
  hz_free(p);
  return q;
}

hz_ptr_info_t hz_classify(const void *p) {
  hz_where_t w = hz_locate(p, true);
  hz_ptr_info_t info = {w.kind, w.block, w.size, w.slab ? (int)w.cls : -1,
                        w.slab ? w.owner : 0};
  return info;
}

const char *hz_ptr_kind_name(hz_ptr_kind_t kind) {
  static const char *const names[] = {"foreign", "small", "large", "free",
                                      "interior", "misaligned", "unallocated"};
  return (unsigned)kind < sizeof names / sizeof *names ? names[kind] : "unknown";
}
