/* The large blocks' dirty cache held to its policy (config.h, HZ_LARGE_CACHE_LIMIT;
 * core/pagemap.c, the trim). Freed extents stay committed until the cache passes its
 * bound, twice the large working set and at least HZ_LARGE_CACHE_BYTES; the trim then
 * decommits the dirty prefixes of the extents freed longest ago until the cache is back
 * under HZ_LARGE_CACHE_TRIM_TO of the bound.
 *
 * A check for each side of that policy. `dirty-bound`, after each large free, shrink or
 * move: the cache is within its bound once the trim has run (a trim that never runs,
 * stops early or undercounts leaves it over); before it `working-set`: the average that
 * bound follows is within the arena's used span. `trim`, at every decommit the page
 * source is asked for: a decommit of a free extent's dirty prefix is a trim's, and it
 * happens only while the cache is over its bound (a trim's first decommit) or still over
 * the trim's target (the ones after it), and it takes the extent freed longest ago. A
 * cache decommitted too early, too deep or youngest first keeps every byte right and only
 * costs system calls and page faults in the next round of allocations; nothing else in
 * the suite sees it.
 *
 * The working set, the bound and the target are written out here as config.h documents
 * them (the live large bytes or their recent average, whichever is more; twice that and
 * at least HZ_LARGE_CACHE_BYTES; three quarters of the bound), from the knob and the
 * arena's two records, rather than taken from hz_large_working_set and the two macros:
 * a wrong working set or macro in the core is then a wrong trim, not a wrong oracle.
 * hz_heap_check holds large_bytes to the live blocks' extents.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "core/pagemap.h"
#include "fuzz/hzf_exec.h"
#include "fuzz/hzf_oom.h"

static size_t hzf__working_set(void) {
  return hz_arena.large_bytes > hz_arena.large_avg ? hz_arena.large_bytes
                                                   : hz_arena.large_avg;
}
static size_t hzf__bound(size_t ws) {
  size_t least = HZ_LARGE_CACHE_BYTES;
  return ws > least / 2 ? 2 * ws : least;
}
static size_t hzf__target(size_t bound) { return bound - bound / 4; }

bool hzf_trim_bounded(hzf_ctx_t *c, const char *after) {
  if (hzf_free_running(c) || hzf_race_live() || hzf_oom_hit(c)) return true;
  /* The bound follows the average, so the average is held first: it averages live large
   * bytes, each within the part of the arena handed out so far, and so is within it too
   * (an update that wraps or drifts makes a bound that never trims, or always does). */
  size_t span = (size_t)hz_arena.bump << HZ_SUPERSLAB_SHIFT;
  if (hz_arena.large_avg > span) {
    hzf_fail(c, "working-set", "large_avg <= the arena's used span (bump SuperSlabs)",
             "after %s: large_avg %zu, span %zu (%zu live)", after, hz_arena.large_avg, span,
             hz_arena.large_bytes);
    return false;
  }
  size_t ws = hzf__working_set(), limit = hzf__bound(ws);
  if (hz_arena.dirty_bytes <= limit) return true;
  hzf_fail(c, "dirty-bound", "dirty_bytes <= HZ_LARGE_CACHE_LIMIT(working set) after a trim",
           "after %s: %zu dirty bytes, bound %zu (working set %zu)", after,
           hz_arena.dirty_bytes, limit, ws);
  return false;
}

/* The trim watch. Its state is written only by the thread that decommits, with the arena
 * lock held (every trim runs under it), and read by the op's thread after the op: in the
 * modes that watch, one thread is in hz at a time and the baton orders the two. */
static struct {
  _Atomic bool on;   /* one thread in hz at a time: not the free-running mode */
  uint64_t clock;    /* hz_arena.clock at the last trim decommit seen (the extent free
                        whose trim it was); UINT64_MAX, which the clock never reaches,
                        before the first */
  char finding[320]; /* the first broken rule, for the op that saw it */
} hzf__trim;

/* The free extent with a dirty prefix freed before h's, or NULL. A walk of every
 * SuperSlab rather than of the core's free bins, so that it judges their search. */
static const hz_superslab_t *hzf__older_dirty(const hz_superslab_t *h) {
  for (uint32_t j = 0; j < hz_arena.bump; j++) {
    const hz_superslab_t *o = &hz_arena.ss[j];
    if (atomic_load(&o->kind) == HZ_SS_FREE && o->head == j && o->dirty &&
        o->dirty_since < h->dirty_since)
      return o;
  }
  return NULL;
}

/* The page source's decommit watch (hzf_oom.h): runs before the call, so the cache's
 * dirty_bytes still counts the extent being decommitted. */
static void hzf__decommit_seen(void *p, size_t size) {
  (void)size;
  if (!atomic_load_explicit(&hzf__trim.on, memory_order_relaxed) || hzf__trim.finding[0])
    return;
  if (!hz_in_arena(p) || (hzf_addr(p) & (HZ_SUPERSLAB_SIZE - 1))) return;
  /* Only a trim decommits a free extent: a large calloc clears its own, live extent, and
   * the reset (not watched) the whole arena. */
  uint32_t i = hz_ss_index(p);
  if (i >= hz_arena.bump) return;
  const hz_superslab_t *h = &hz_arena.ss[i];
  if (atomic_load(&h->kind) != HZ_SS_FREE || h->head != i || !h->dirty) return;
  bool first = hzf__trim.clock != hz_arena.clock;
  hzf__trim.clock = hz_arena.clock;
  size_t ws = hzf__working_set(), limit = hzf__bound(ws);
  size_t target = hzf__target(limit), dirty = hz_arena.dirty_bytes;
  const hz_superslab_t *older = hzf__older_dirty(h);
  if (first ? dirty <= limit : dirty <= target)
    snprintf(hzf__trim.finding, sizeof hzf__trim.finding,
             "a trim decommitted the extent at +0x%zx (%zu dirty bytes) with the cache at "
             "%zu bytes, not over %s %zu (working set %zu: %zu live, average %zu)",
             (size_t)hzf_addr(p), h->dirty, dirty, first ? "its bound" : "the trim's target",
             first ? limit : target, ws, hz_arena.large_bytes, hz_arena.large_avg);
  else if (older)
    snprintf(hzf__trim.finding, sizeof hzf__trim.finding,
             "a trim decommitted the extent at +0x%zx (dirty since free %llu) while the "
             "one at +0x%zx had been dirty longer (since free %llu)",
             (size_t)hzf_addr(p), (unsigned long long)h->dirty_since,
             (size_t)hzf_addr(hz_ss_addr((uint32_t)(older - hz_arena.ss))),
             (unsigned long long)older->dirty_since);
}

void hzf_trim_install(void) { hzf_oom_watch_decommits(hzf__decommit_seen); }

void hzf_trim_watch(bool on) {
  hzf__trim.clock = UINT64_MAX;
  hzf__trim.finding[0] = 0;
  atomic_store_explicit(&hzf__trim.on, on, memory_order_relaxed);
}

bool hzf_trim_kept(hzf_ctx_t *c) {
  if (!hzf__trim.finding[0]) return true;
  if (!hzf_failed(c))
    hzf_fail(c, "trim", "the dirty cache is trimmed only over its bound, down to its "
             "target, least recently freed first", "%s", hzf__trim.finding);
  hzf__trim.finding[0] = 0;
  return false;
}
