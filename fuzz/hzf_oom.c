/* The fault-injecting page source (hzf_oom.h). Counters are atomics: in the free-running
 * mode several threads may grow the heap at once. */
#include "fuzz/hzf_oom.h"

#include <stdatomic.h>
#include <stdbool.h>

#include "core/os.h"

static _Atomic int hzf__mode = HZF_OOM_DISARM;
static _Atomic long hzf__countdown; /* calls of the armed kind left before the first refusal */
static _Thread_local uint64_t hzf__refusals;

/* Should this call (a commit, or a decommit) be refused? */
static bool hzf__refuse(bool decommit) {
  int mode = atomic_load_explicit(&hzf__mode, memory_order_acquire);
  if (mode == HZF_OOM_DISARM || (mode == HZF_OOM_DECOMMIT) != decommit) return false;
  long left = atomic_fetch_sub(&hzf__countdown, 1) - 1;
  if (left > 0) return false;
  if (left < 0 && mode != HZF_OOM_FROM) return false; /* a one-shot already fired */
  hzf__refusals++;
  return true;
}

/* A refusal is the kernel's: the real call, made one byte past the page start, which
 * mprotect and madvise refuse (EINVAL) without touching a page. So the OS layer's own
 * failure path runs too (its result, and the errno it must keep or set), not only the
 * core's above it. */
static int hzf__commit(void *p, size_t size) {
  if (hzf__refuse(false)) p = (char *)p + 1;
  return hz_os_mmap_source.commit(p, size);
}

static hzf_decommit_watch_t *hzf__watch;

void hzf_oom_watch_decommits(hzf_decommit_watch_t *watch) { hzf__watch = watch; }

static int hzf__decommit(void *p, size_t size) {
  if (hzf__watch) hzf__watch(p, size);
  if (hzf__refuse(true)) p = (char *)p + 1;
  return hz_os_mmap_source.decommit(p, size);
}

/* reserve, map and unmap are never refused: they run once at initialisation (and the
 * heap check maps its scratch), where a refusal would only stop the whole run. */
static hz_page_source_t hzf__source;

int hzf_oom_install(void) {
  /* Installed already (the property engine installs it before the executor does). */
  if (hz_os_pages() == &hzf__source) return 0;
  hzf__source = hz_os_mmap_source;
  hzf__source.commit = hzf__commit;
  hzf__source.decommit = hzf__decommit;
  return hz_os_set_page_source(&hzf__source);
}

void hzf_oom_arm(hzf_oom_mode_t mode, unsigned n) {
  atomic_store(&hzf__countdown, (long)(n ? n : 1));
  atomic_store_explicit(&hzf__mode, (int)mode, memory_order_release);
}

void hzf_oom_reset(void) { hzf_oom_arm(HZF_OOM_DISARM, 1); }

uint64_t hzf_oom_thread_refusals(void) { return hzf__refusals; }

const char *hzf_oom_describe(hzf_oom_mode_t mode) {
  switch (mode) {
    case HZF_OOM_ONCE: return "refuse one commit";
    case HZF_OOM_FROM: return "refuse every commit from";
    case HZF_OOM_DECOMMIT: return "refuse one decommit";
    default: return "disarm";
  }
}
