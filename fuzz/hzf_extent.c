/* A large block's extent held to its contract (docs/INVARIANTS.md, Large blocks): the
 * fewest SuperSlabs that hold the block when it is allocated (`footprint`), and a grow
 * that stays where it is when the SuperSlabs right after the extent are free or never
 * used (`grow-in-place`). Either broken keeps every byte right: the first costs address
 * space and commit charge for every large block, the second a copy of the whole block
 * and a second extent for as long as the copy runs; nothing else in the suite sees them.
 *
 * Both read the core's SuperSlab records for what they cannot see otherwise (where a
 * block's extent ends, whether the space after it is free); the heap check holds those
 * records to the extents. The sizes are worked out here from the request alone.
 */
#include <stdatomic.h>

#include "core/pagemap.h"
#include "fuzz/hzf_exec.h"

static size_t hzf__superslabs(size_t size) {
  return size ? (size - 1) / HZ_SUPERSLAB_SIZE + 1 : 1;
}

bool hzf_extent_fits(hzf_ctx_t *c, const void *p, size_t req) {
  const hz_superslab_t *h = &hz_arena.ss[hz_ss_index(p)];
  size_t want = hzf__superslabs(req);
  if (h->len == want) return true;
  hzf_fail(c, "footprint", "a new large block's extent is the fewest SuperSlabs that hold it",
           "+0x%zx for %zu bytes: %u SuperSlabs, %zu hold it", (size_t)hzf_addr(p), req,
           h->len, want);
  return false;
}

bool hzf_extent_room(hzf_ctx_t *c, const void *p, size_t size) {
  if (hzf_free_running(c) || hzf_race_live()) return false;
  uint32_t head = hz_ss_index(p);
  const hz_superslab_t *h = &hz_arena.ss[head];
  size_t have = h->len, need = hzf__superslabs(size);
  if (size > HZ_ARENA_SIZE || need <= have) return false;
  uint32_t next = head + h->len;
  size_t extra = need - have;
  if (next == hz_arena.bump) return next + extra <= HZ_ARENA_SUPERSLABS;
  const hz_superslab_t *f = &hz_arena.ss[next];
  return next < hz_arena.bump && atomic_load(&f->kind) == HZ_SS_FREE && f->head == next &&
         f->len >= extra;
}

bool hzf_extent_grew_in_place(hzf_ctx_t *c, const void *p, const void *q, size_t size) {
  if (q == p || hzf_oom_hit(c)) return true;
  hzf_fail(c, "grow-in-place", "a large block grows in place into free SuperSlabs after it",
           "+0x%zx to %zu bytes moved to +0x%zx, with the SuperSlabs after its extent free",
           (size_t)hzf_addr(p), size, (size_t)hzf_addr(q));
  return false;
}
