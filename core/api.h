/* Layer 7 (api): the fast paths and what alloc.c, free.c and the preload shim share.
 *
 * Each fast path is a static inline function with one unlikely exit to a noinline
 * slow function. Disabled features (HZ_SECURE=0, no sanitizer) compile to empty inline
 * helpers, so there is no #if inside a fast path.
 */
#ifndef HZ_API_H
#define HZ_API_H

#include "core/hz.h"
#include "core/remote.h"
#include "core/thread.h"

/* Where a foreign pointer goes: the preload shim installs the next allocator here.
 * Without one, a foreign pointer is a HZ_FAULT_FOREIGN misuse. */
typedef struct {
  void (*free)(void *);
  void *(*realloc)(void *, size_t);
  size_t (*usable_size)(void *);
} hz_foreign_ops_t;
void hz_set_foreign_allocator(const hz_foreign_ops_t *ops);
extern const hz_foreign_ops_t *_Atomic hz_foreign;

/* A block leaves the allocator: visible to sanitizers, free marker cleared. */
HZ_INLINE void hz_block_out(void *b, unsigned cls) {
  hz_unpoison(b, hz_class_size[cls]);
  if (HZ_SECURE) hz_mark_set(b, 0);
}
/* A block comes back: marked free, hidden from the program under ASan. */
HZ_INLINE void hz_block_in(void *b, unsigned cls) {
  if (HZ_SECURE) hz_mark_set(b, hz_free_mark);
  hz_poison(b, hz_class_size[cls]);
}

/* The fast free's misuse test, on a pointer tagged with class cls: it is a block start
 * inside the carved part of its slab, and not marked free. Three predictable branches
 * with HZ_SECURE, none without; the slow path diagnoses whichever failed. */
HZ_INLINE bool hz_free_ok(const void *p, unsigned cls) {
  if (!HZ_SECURE) return true;
  uint32_t off = (uint32_t)((uintptr_t)p & (HZ_SLAB_SIZE - 1));
  uint32_t idx = hz_class_index(cls, off);
  return idx * hz_class_size[cls] == off && idx < HZ_LOAD(&hz_slab_of(p)->carved) &&
         !hz_mark_is_free(p);
}

HZ_NOINLINE void *hz_malloc_slow(size_t size);
HZ_NOINLINE void hz_free_slow(void *p);

/* Branch budget: size <= medium max, size <= table max (inside hz_size_to_class), list
 * non-empty. No call, no atomic, no slab metadata touched. */
HZ_INLINE void *hz_malloc_fast(size_t size) {
  if (HZ_LIKELY(size <= HZ_MEDIUM_MAX)) {
    unsigned cls = hz_size_to_class(size);
    hz_sll_t *l = &hz_tc.sll[cls];
    void *b = l->head;
    if (HZ_LIKELY(b != NULL)) {
      l->head = hz_link_get(b);
      l->count--;
      hz_block_out(b, cls);
      return b;
    }
  }
  return hz_malloc_slow(size);
}

/* Branch budget: in arena, tag owner == this thread, hz_free_ok (3 with HZ_SECURE),
 * list below its bound. An unregistered thread has tid HZ_TID_NONE, which no tag holds;
 * tag 0 (large, free or foreign memory) has owner 0, which no thread has. */
HZ_INLINE void hz_free_fast(void *p) {
  hz_tcache_t *tc = &hz_tc;
  if (HZ_LIKELY(hz_in_arena(p))) {
    uint32_t tag = hz_ptag_get(p);
    if (HZ_LIKELY(HZ_TAG_OWNER(tag) == tc->tid)) {
      unsigned cls = HZ_TAG_CLASS(tag);
      hz_sll_t *l = &tc->sll[cls];
      if (HZ_LIKELY(hz_free_ok(p, cls) && l->count < l->max)) {
        hz_block_in(p, cls);
        hz_sll_push(l, p);
        return;
      }
    }
  }
  hz_free_slow(p);
}

/* A block of class cls for this thread, or NULL with errno ENOMEM. */
void *hz_malloc_class(unsigned cls);

/* What a pointer is, found without trusting any byte the program can write. */
typedef struct {
  hz_ptr_kind_t kind;
  void *block;
  size_t size; /* usable size of the block */
  unsigned cls;
  uint32_t owner;
  hz_slab_t *slab; /* slab blocks only */
  bool fresh;      /* HZ_PTR_FREE: carved but never handed out (HZ_MARK_FRESH) */
} hz_where_t;

/* Classifies p. A block carrying the free marker is confirmed free by walking the
 * caller's own lists when it owns the slab (or `all_threads`, at quiescence), and
 * trusted to the 64-bit random marker otherwise. */
hz_where_t hz_locate(const void *p, bool all_threads);
/* Reports the misuse that a non-live classification means for `op`. */
void hz_report(const hz_where_t *w, const void *p, hz_op_t op);

#endif /* HZ_API_H */
