/* Layer 5 (TLS cache): the thread-local singly linked list of free blocks of one class.
 *
 * A self-contained component: it knows nothing of slabs or threads, so a fuzzer can
 * drive push/pop/splice/take on its own list and check the invariant
 *     count == length(head)  and  count <= max (outside the moment of a drain).
 * Links live in word 0 of each block and are accessed with hz_link_get/set.
 */
#ifndef HZ_TLS_SLL_H
#define HZ_TLS_SLL_H

#include <stdbool.h>

#include "core/base.h"

typedef struct {
  void *head;
  uint32_t count;
  uint32_t max; /* the cache's bound: a free that finds count == max drains first */
} hz_sll_t;

HZ_INLINE void hz_sll_push(hz_sll_t *l, void *b) {
  hz_link_set(b, l->head);
  l->head = b;
  l->count++;
}

HZ_INLINE void *hz_sll_pop(hz_sll_t *l) {
  void *b = l->head;
  if (b) {
    l->head = hz_link_get(b);
    l->count--;
  }
  return b;
}

/* Prepends the NULL-terminated chain head..tail of n blocks. */
HZ_INLINE void hz_sll_splice(hz_sll_t *l, void *head, void *tail, uint32_t n) {
  hz_link_set(tail, l->head);
  l->head = head;
  l->count += n;
}

/* Detaches the first min(n, count) blocks as a NULL-terminated chain. Trusts the links,
 * not the count, to end the walk: a count larger than the list cannot walk into data. */
HZ_INLINE uint32_t hz_sll_take(hz_sll_t *l, uint32_t n, void **head, void **tail) {
  void *h = l->head, *t = NULL;
  uint32_t k = 0;
  for (void *b = h; k < n && b; k++) {
    t = b;
    b = hz_link_get(b);
  }
  if (t) {
    l->head = hz_link_get(t);
    hz_link_set(t, NULL);
  }
  l->count -= k;
  *head = k ? h : NULL;
  *tail = t;
  return k;
}

/* Linear search; used to confirm a suspected double free and by the checks. */
static inline bool hz_sll_contains(const hz_sll_t *l, const void *b) {
  uint32_t n = 0;
  for (const void *x = l->head; x && n <= l->count; x = hz_link_get(x), n++)
    if (x == b) return true;
  return false;
}

/* NULL when count == length(head) and the list has no cycle; else the rule broken. */
static inline const char *hz_sll_validate(const hz_sll_t *l) {
  uint32_t n = 0;
  for (const void *x = l->head; x; x = hz_link_get(x))
    if (++n > l->count) return "count == length(head) (list longer: a cycle or stray link)";
  return n == l->count ? NULL : "count == length(head) (list shorter than its count)";
}

#endif /* HZ_TLS_SLL_H */
