/* The shrinker (prop_case.h), Hypothesis-style on the draws a failing sequence is made
 * of: delete runs of draws, zero or lower one, sort neighbours. A candidate counts when it
 * fails the same way (the same kind) and is smaller in the shortlex order; each runs in a
 * forked child, so a crash shrinks like any other failure.
 */
#include <string.h>

#include "props/prop_case.h"
/* Shortlex: fewer bytes, or as many and lexicographically lower. */
static bool prop__smaller(const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
  if (na != nb) return na < nb;
  return memcmp(a, b, na) < 0;
}

/* Keeps the run just made of b as the best: the bytes it read, with any it read past the
 * end written out as the zeros it saw, so every draw of the best is a whole block. */
void prop__take(prop_shrink_t *s, const uint8_t *b, size_t n) {
  size_t used = prop__sh->used < PROP_MAX_CHOICES ? prop__sh->used : PROP_MAX_CHOICES;
  memmove(s->best, b, used < n ? used : n);
  if (used > n) memset(s->best + n, 0, used - n);
  s->nbest = used;
  s->nblocks = 0;
  for (unsigned i = 0; i < prop__sh->nblocks; i++) {
    prop_block_t bl = prop__sh->blocks[i];
    if (bl.start >= used) break;
    if (bl.start + bl.len > used) bl.len = (uint32_t)(used - bl.start);
    s->blocks[s->nblocks++] = bl;
  }
}

/* Runs a candidate; keeps it when it fails the same way and is smaller. */
static bool prop__try(prop_shrink_t *s, const uint8_t *b, size_t n) {
  if (prop__now() > s->deadline) return false;
  if (!prop__smaller(b, n, s->best, s->nbest)) return false;
  uint64_t h = prop__hash(b, n) ^ n;
  uint64_t *slot = &s->tried[h % (sizeof s->tried / sizeof s->tried[0])];
  if (*slot == h) return false;
  *slot = h;
  s->runs++;
  if (!prop__run_child(s->def, b, n, false, true)) return false;
  /* A candidate that ran out of choices is not smaller, only cut short (its last draws
   * read zeros the shortlex order did not count). */
  if (prop__sh->overrun || strcmp(prop__sh->kind, s->kind) != 0) return false;
  prop__take(s, b, n);
  s->accepted++;
  return true;
}

static uint8_t prop__cand[PROP_MAX_CHOICES];

/* best with bytes [from, to) removed. */
static bool prop__try_delete(prop_shrink_t *s, size_t from, size_t to) {
  size_t n = 0;
  memcpy(prop__cand, s->best, from);
  n = from;
  memcpy(prop__cand + n, s->best + to, s->nbest - to);
  n += s->nbest - to;
  return prop__try(s, prop__cand, n);
}

/* best with block i's bytes replaced by the big-endian value v. */
static bool prop__try_value(prop_shrink_t *s, unsigned i, uint64_t v) {
  prop_block_t bl = s->blocks[i];
  memcpy(prop__cand, s->best, s->nbest);
  for (unsigned k = 0; k < bl.len; k++)
    prop__cand[bl.start + bl.len - 1 - k] = k < 8 ? (uint8_t)(v >> (8 * k)) : 0;
  return prop__try(s, prop__cand, s->nbest);
}

static uint64_t prop__value(const prop_shrink_t *s, unsigned i) {
  prop_block_t bl = s->blocks[i];
  uint64_t v = 0;
  for (unsigned k = 0; k < bl.len && k < 8; k++) v = v << 8 | s->best[bl.start + k];
  return v;
}

void prop__shrink(prop_shrink_t *s) {
  bool progress = true;
  while (progress && prop__now() < s->deadline) {
    progress = false;
    /* Delete runs of draws, longest first: whole list elements go as a pair. */
    static const unsigned runs[] = {8, 4, 3, 2, 1};
    for (unsigned r = 0; r < sizeof runs / sizeof runs[0]; r++) {
      unsigned k = runs[r];
      for (unsigned i = s->nblocks >= k ? s->nblocks - k + 1 : 0; i-- > 0;) {
        if (i + k > s->nblocks) continue;
        size_t from = s->blocks[i].start, to = s->blocks[i + k - 1].start + s->blocks[i + k - 1].len;
        if (prop__try_delete(s, from, to)) progress = true;
      }
    }
    /* Each draw lowered: to zero, else by bisection on its value (a draw reduces its
     * value modulo its range, so lower is simpler). */
    for (unsigned i = 0; i < s->nblocks; i++) {
      uint64_t v = prop__value(s, i);
      if (v == 0) continue;
      if (prop__try_value(s, i, 0)) {
        progress = true;
        continue;
      }
      uint64_t lo = 1, hi = v; /* hi fails; find a smaller failing value */
      for (unsigned probes = 0; lo < hi && probes < 24 && i < s->nblocks; probes++) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (prop__try_value(s, i, mid)) {
          hi = mid;
          progress = true;
        } else {
          lo = mid + 1;
        }
      }
    }
    /* Sort: neighbouring draws of one width in ascending order. */
    for (unsigned i = 0; i + 1 < s->nblocks; i++) {
      prop_block_t a = s->blocks[i], b = s->blocks[i + 1];
      if (a.len != b.len || memcmp(s->best + a.start, s->best + b.start, a.len) <= 0) continue;
      memcpy(prop__cand, s->best, s->nbest);
      memcpy(prop__cand + a.start, s->best + b.start, a.len);
      memcpy(prop__cand + b.start, s->best + a.start, a.len);
      if (prop__try(s, prop__cand, s->nbest)) progress = true;
    }
  }
}
