/* hz: the public allocator API.
 *
 * Thread-caching malloc in the hz3/hakmem "tiny pool" design: per-thread singly linked
 * free lists per size class over slabs cut from 2 MiB SuperSlabs, with a 32-bit page tag
 * per 4 KiB page classifying any pointer in O(1). See docs/ARCHITECTURE.md.
 *
 * Every function is thread-safe. Misuse (double free; free, realloc or usable_size of a
 * foreign, interior or misaligned pointer) is reported through the error hook of
 * core/hz_debug.h and, by default, aborts with one line naming the pointer and fault.
 */
#ifndef HZ_H
#define HZ_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void *hz_malloc(size_t size);
void hz_free(void *ptr);
/* NULL with errno = ENOMEM when nmemb * size overflows. */
void *hz_calloc(size_t nmemb, size_t size);
/* As glibc: NULL ptr is malloc(size); size 0 frees ptr and returns NULL; on failure
 * returns NULL and leaves ptr untouched; contents kept up to min(old, new) size. */
void *hz_realloc(void *ptr, size_t size);
/* Usable bytes of a live block: >= the requested size and never more than the block. */
size_t hz_usable_size(const void *ptr);
/* EINVAL unless alignment is a power of two and a multiple of sizeof(void *). */
int hz_posix_memalign(void **out, size_t alignment, size_t size);
/* NULL with errno = EINVAL unless alignment is a power of two. */
void *hz_aligned_alloc(size_t alignment, size_t size);
void *hz_memalign(size_t alignment, size_t size);
/* Returns this thread's cached free blocks to their slabs, and empty slabs to the
 * shared pool. The thread keeps working normally afterwards. */
void hz_thread_flush(void);

#ifdef __cplusplus
}
#endif
#endif /* HZ_H */
