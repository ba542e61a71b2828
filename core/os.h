/* Layer 0 (os): every system call the allocator makes, behind one interface.
 *
 * The page source is a table of functions so that a test or fuzzer can substitute its
 * own (for example one that fails commits, to drive the out-of-memory paths). It must be
 * installed before the first allocation; afterwards it is fixed for the process.
 */
#ifndef HZ_OS_H
#define HZ_OS_H

#include <stddef.h>
#include <stdint.h>

typedef struct hz_page_source_s {
  /* Reserve address space: no access, no memory. Result aligned to `align` (a power
   * of two, at least the page size), or NULL. */
  void *(*reserve)(size_t size, size_t align);
  /* Make reserved pages readable and writable. 0 on success. */
  int (*commit)(void *p, size_t size);
  /* Give the memory back; the pages stay accessible and read as zero afterwards. 0 on
   * success; -1 when the OS refused, and the pages may still hold their old data. */
  int (*decommit)(void *p, size_t size);
  /* Readable, writable, zeroed memory for metadata, not counted against the
   * commit limit and populated lazily. NULL on failure. */
  void *(*map)(size_t size);
  void (*unmap)(void *p, size_t size);
} hz_page_source_t;

/* The mmap-backed page source used unless a test installs another. */
extern const hz_page_source_t hz_os_mmap_source;

/* The page source in force. */
const hz_page_source_t *hz_os_pages(void);
/* Install a page source; returns 0, or -1 once the heap is initialised. */
int hz_os_set_page_source(const hz_page_source_t *src);
/* Marks the page source as fixed (called by heap initialisation). */
void hz_os_freeze(void);

/* Which pages of [p, p + size) (page aligned) are resident: bit 0 of vec[i] for page i,
 * as mincore reports them. 0 on success, -1 when the kernel refuses. */
int hz_os_resident(const void *p, size_t size, unsigned char *vec);

/* 64 random bits from the kernel, or a mix of addresses and time if it refuses. */
uint64_t hz_os_random(void);
/* Writes to standard error without allocating. */
void hz_os_write_stderr(const char *s, size_t n);

#endif /* HZ_OS_H */
