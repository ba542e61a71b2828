/* Layer 7 (api): process initialisation and the thread registry.
 *
 * Thread ids are small integers (1..HZ_MAX_THREADS-1) because they live in the 16-bit
 * owner field of page tags. An exited thread's id is reused once its slabs have been
 * flushed and abandoned.
 */
#ifndef HZ_THREAD_H
#define HZ_THREAD_H

#include "core/tcache.h"

/* Initialises the process heap once; false when the arena cannot be reserved. */
bool hz_ensure_init(void);
/* This thread's cache, registering the thread on first use; NULL when no id is free
 * or the heap cannot be initialised. */
hz_tcache_t *hz_thread_cache(void);
/* The registered cache of thread `tid`, or NULL. Only stable while that thread is
 * parked or the caller is that thread. */
hz_tcache_t *hz_thread_lookup(uint32_t tid);
/* Every id ever handed out is below this bound, so a walk over the registered caches
 * stops here instead of at HZ_MAX_THREADS. */
uint32_t hz_thread_id_bound(void);
/* Serialises the heap check against thread registration and exit. */
void hz_threads_lock(void);
void hz_threads_unlock(void);

#endif /* HZ_THREAD_H */
