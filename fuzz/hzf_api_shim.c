/* The shim profile's entry points: the preload shim's malloc family (core/preload.c, built
 * beside this file with every exported name prefixed hzshim_, fuzz/BUILD.bazel). In the
 * binaries that link it (shim_fuzzer's, repro), hzf_shim_table overrides the weak default
 * of hzf_api.c. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>

#include "fuzz/hzf_api.h"
#include "fuzz/hzf_oracle.h"

void *hzshim_malloc(size_t size);
void hzshim_free(void *p);
void hzshim_cfree(void *p);
void *hzshim_calloc(size_t nmemb, size_t size);
void *hzshim_realloc(void *p, size_t size);
void *hzshim_reallocarray(void *p, size_t nmemb, size_t size);
size_t hzshim_malloc_usable_size(void *p);
int hzshim_posix_memalign(void **out, size_t alignment, size_t size);
void *hzshim_aligned_alloc(size_t alignment, size_t size);
void *hzshim_memalign(size_t alignment, size_t size);
void *hzshim_valloc(size_t size);
void *hzshim_pvalloc(size_t size);

/* With vm.overcommit_memory=1 the next allocator grants any size, and the shim's calloc
 * fallback then zeroes it: a request past what the oracle calls huge (64 GiB) would write
 * that much. Such a calloc fails here instead, as it does under the kernel's default
 * heuristic. */
static void *hzf__calloc(size_t nmemb, size_t size) {
  static _Atomic int always = -1;
  if (always < 0) {
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    always = f && fgetc(f) == '1';
    if (f) fclose(f);
  }
  size_t total;
  if (always && !__builtin_mul_overflow(nmemb, size, &total) && total > HZF_ORACLE_HUGE) {
    errno = ENOMEM;
    return NULL;
  }
  return hzshim_calloc(nmemb, size);
}

static void hzf__free(void *p) { hzf_api_free_kept(hzshim_free, p); }
static void hzf__cfree(void *p) { hzf_api_free_kept(hzshim_cfree, p); }

static hzf_api_t hzf__shim = {
    .name = "shim",
    .shim = true,
    .malloc = hzshim_malloc,
    .calloc = hzf__calloc,
    .realloc = hzshim_realloc,
    .free = hzf__free,
    .aligned_alloc = hzshim_aligned_alloc,
    .memalign = hzshim_memalign,
    .posix_memalign = hzshim_posix_memalign,
    .usable_size = hzshim_malloc_usable_size,
    .valloc = hzshim_valloc,
    .pvalloc = hzshim_pvalloc,
    .reallocarray = hzshim_reallocarray,
    .cfree = hzf__cfree,
};

/* The shim's constructor (priority 101) installed its foreign-pointer routing in hz;
 * keep it for the shim's inputs and take it out for everyone else's (hzf_api_select puts
 * it back), so that linking the shim changes nothing for the other profiles. */
__attribute__((constructor(102))) static void hzf__take_routing(void) {
  hzf__shim.foreign = atomic_load(&hz_foreign);
  hz_set_foreign_allocator(NULL);
}

const hzf_api_t *hzf_shim_table(void) { return &hzf__shim; }
