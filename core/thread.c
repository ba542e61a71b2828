/* Layer 7 (api): process initialisation, thread registration and exit, fork. */
#include "core/thread.h"

#include <pthread.h>

#include "core/os.h"

static struct {
  hz_lock_t lock;
  hz_tcache_t *caches[HZ_MAX_THREADS]; /* registered caches by tid */
  uint32_t free_tids[HZ_MAX_THREADS];  /* ids of exited threads, reused first */
  uint32_t nfree;
  uint32_t next_tid;                    /* ids never used yet start here */
  pthread_key_t key;                    /* its destructor runs the thread-exit flush */
} hz__threads = {.lock = HZ_LOCK_INIT, .next_tid = 1};

static pthread_mutex_t hz__init_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int hz__init_state; /* 0 not yet, 1 done, -1 failed */

void hz_threads_lock(void) { hz_lock(&hz__threads.lock); }
void hz_threads_unlock(void) { hz_unlock(&hz__threads.lock); }

hz_tcache_t *hz_thread_lookup(uint32_t tid) {
  return tid < HZ_MAX_THREADS ? hz__threads.caches[tid] : NULL;
}

uint32_t hz_thread_id_bound(void) { return hz__threads.next_tid; }

/* Registration and exit change the registry only here, under its lock: an id taken (an
 * exited thread's first) with its cache registered, or given back with its cache
 * forgotten. (hz_debug_reset rebuilds it whole, with every lock held.) */
static uint32_t hz__take_tid(hz_tcache_t *tc) {
  HZ_ASSERT(hz_lock_held(&hz__threads.lock));
  uint32_t tid = 0;
  if (hz__threads.nfree > 0) tid = hz__threads.free_tids[--hz__threads.nfree];
  else if (hz__threads.next_tid < HZ_MAX_THREADS) tid = hz__threads.next_tid++;
  if (tid) hz__threads.caches[tid] = tc;
  return tid;
}

static void hz__give_tid(uint32_t tid) {
  HZ_ASSERT(hz_lock_held(&hz__threads.lock));
  hz__threads.caches[tid] = NULL;
  hz__threads.free_tids[hz__threads.nfree++] = tid;
}

static void hz__release_tid(hz_tcache_t *tc) {
  hz_threads_lock();
  hz__give_tid(tc->tid);
  hz_threads_unlock();
  tc->tid = HZ_TID_NONE;
}

/* pthread key destructor: the thread is exiting. Its cached blocks go back to their
 * slabs, empty slabs to the pool, and slabs with live blocks are left for adoption. */
static void hz__thread_exit(void *arg) {
  hz_tcache_t *tc = arg;
  if (tc->tid == HZ_TID_NONE) return;
  tc->exiting = 1;
  hz_tcache_abandon_all(tc);
  hz__release_tid(tc);
}

/* fork(): no allocator lock may be held across it, and in the child the other threads
 * are gone, so their slabs are abandoned for the surviving thread to adopt. */
static void hz__fork_prepare(void) {
  hz_threads_lock();
  hz_pool_lock();
  hz_pagemap_lock();
}
static void hz__fork_parent(void) {
  hz_pagemap_unlock();
  hz_pool_unlock();
  hz_threads_unlock();
}
static void hz__fork_child(void) {
  hz_pagemap_reset_lock_after_fork();
  hz_pool_reset_lock_after_fork();
  hz_lock_reinit(&hz__threads.lock);
  for (uint32_t tid = 1; tid < hz__threads.next_tid; tid++) {
    hz_tcache_t *tc = hz__threads.caches[tid];
    if (tc && tc != &hz_tc) {
      hz_tcache_abandon_all(tc);
      hz__release_tid(tc);
    }
  }
}

bool hz_ensure_init(void) {
  int state = atomic_load_explicit(&hz__init_state, memory_order_acquire);
  if (HZ_LIKELY(state != 0)) return state > 0;
  pthread_mutex_lock(&hz__init_lock);
  state = atomic_load(&hz__init_state);
  if (state == 0) {
    hz_os_freeze();
    state = -1;
    /* None of these allocate, so a malloc re-entering from them cannot recurse here. */
    if (hz_pagemap_init() == 0 && pthread_key_create(&hz__threads.key, hz__thread_exit) == 0) {
      if (HZ_SECURE) hz_free_mark = (uintptr_t)hz_os_random() & ~HZ_MARK_FLAGS;
      state = 1;
    }
    atomic_store_explicit(&hz__init_state, state, memory_order_release);
    /* May allocate (glibc grows its handler list): the heap is usable by now. */
    if (state > 0) pthread_atfork(hz__fork_prepare, hz__fork_parent, hz__fork_child);
  }
  pthread_mutex_unlock(&hz__init_lock);
  return state > 0;
}

hz_tcache_t *hz_thread_cache(void) {
  hz_tcache_t *tc = &hz_tc;
  if (HZ_LIKELY(tc->tid != HZ_TID_NONE)) return tc;
  if (!hz_ensure_init()) return NULL;
  hz_threads_lock();
  uint32_t tid = hz__take_tid(tc);
  hz_threads_unlock();
  if (!tid) return NULL;
  hz_tcache_init(tc, tid);
  /* After registration: if glibc allocates for the key's storage, that allocation
   * finds this thread ready. */
  pthread_setspecific(hz__threads.key, tc);
  return tc;
}

void hz_thread_detach(void) {
  hz_tcache_t *tc = &hz_tc;
  if (tc->tid == HZ_TID_NONE) return;
  hz__thread_exit(tc);
  tc->exiting = 0; /* the thread goes on, and registers again on its next allocation */
  pthread_setspecific(hz__threads.key, NULL);
}

int hz_debug_reset(void) { return hz_debug_reset_warm(0); }

int hz_debug_reset_warm(size_t keep) {
  if (!hz_ensure_init()) return -1;
  if (hz_tc.tid != HZ_TID_NONE) hz_tcache_flush(&hz_tc);
  hz_census_t census;
  /* Queued blocks are free memory, not the program's: once the other threads are gone
   * they can only sit in abandoned slabs, which wait for an adopter to collect them. */
  if (hz_heap_check(NULL, &census) != 0 || census.user_blocks != 0 || census.large_blocks != 0 ||
      census.threads > (hz_tc.tid != HZ_TID_NONE))
    return -1;
  hz__fork_prepare(); /* every lock, in the usual order */
  hz_pagemap_reset(keep);
  hz_pool_reset();
  for (uint32_t tid = 0; tid < hz__threads.next_tid; tid++) {
    hz__threads.caches[tid] = NULL;
    atomic_store_explicit(&hz_remote_hint[tid].bits, 0, memory_order_relaxed);
  }
  hz__threads.nfree = 0;
  hz__threads.next_tid = 1;
  hz_tc.tid = HZ_TID_NONE; /* re-registers (as thread 1) on its next allocation */
  hz__fork_parent();
  return 0;
}

unsigned hz_thread_id(void) { return hz_tc.tid == HZ_TID_NONE ? 0 : hz_tc.tid; }
