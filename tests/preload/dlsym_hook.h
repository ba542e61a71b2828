/* What dlsym_hook.c saw while the preload shim resolved its next allocator, for the
 * start-up test's program (startup.c) to check after the fact. */
#ifndef HZ_TESTS_PRELOAD_DLSYM_HOOK_H_
#define HZ_TESTS_PRELOAD_DLSYM_HOOK_H_

#include <stddef.h>

typedef struct {
  unsigned refused;  /* allocator names answered with NULL (HZT_DLSYM=none) */
  unsigned lookups;  /* allocator names forwarded (HZT_DLSYM=boot) */
  void *boot_block;  /* a bootstrap block of boot_size bytes of 0xcd, for realloc */
  size_t boot_size;
  void *boot_spare;  /* another, of 24 bytes of 0xee, for free */
} hzt_hook_report_t;

/* Exported by libdlsym_hook.so; the program looks it up with dlsym(RTLD_DEFAULT, ...). */
hzt_hook_report_t *hzt_hook_report(void);
typedef hzt_hook_report_t *hzt_hook_report_fn(void);

#endif
