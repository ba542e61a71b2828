/* Initialisation that cannot get its address space fails cleanly. With the arena's
 * reservation or one of its three table maps refused, hz says why once on stderr, and
 * every allocation entry point fails as its contract says (NULL with errno ENOMEM, or
 * ENOMEM returned and the out-parameter untouched) instead of using a half-made arena.
 * Each case runs in a fresh child process, because initialisation happens once per
 * process.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/api.h"
#include "core/os.h"
#include "core/testing/hz_test.h"

static int refused;   /* the page-source call that fails: 0 the reservation, n the n-th map */
static int maps_seen; /* maps asked for so far */
static hz_page_source_t refusing;

static void *reserve_or_refuse(size_t size, size_t align) {
  return refused == 0 ? NULL : hz_os_mmap_source.reserve(size, align);
}

static void *map_or_refuse(size_t size) {
  return ++maps_seen == refused ? NULL : hz_os_mmap_source.map(size);
}

/* Exits with the number of the first contract that failed; 0 when all held. */
static void allocate_without_an_arena(void) {
  refusing = hz_os_mmap_source;
  refusing.reserve = reserve_or_refuse;
  refusing.map = map_or_refuse;
  if (hz_os_set_page_source(&refusing) != 0) exit(10);
  errno = 0;
  if (hz_malloc(16) != NULL || errno != ENOMEM) exit(11);
  errno = 0;
  if (hz_calloc(4, 4) != NULL || errno != ENOMEM) exit(12);
  errno = 0;
  if (hz_malloc((size_t)1 << 20) != NULL || errno != ENOMEM) exit(13);
  void *out = &refusing;
  if (hz_posix_memalign(&out, 64, 64) != ENOMEM || out != &refusing) exit(14);
  errno = 0;
  if (hz_realloc(NULL, 32) != NULL || errno != ENOMEM) exit(15);
  hz_free(NULL);
  if (hz_ensure_init()) exit(16); /* a failed initialisation stays failed */
}

HZ_TEST(a_refused_reservation_or_table_map_fails_every_allocation) {
  for (refused = 0; refused <= 3; refused++) {
    maps_seen = 0;
    char err[512];
    int status = hz_test_run_child(allocate_without_an_arena, err, sizeof err);
    HZ_EXPECT(status != -1 && WIFEXITED(status));
    if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      fprintf(stderr, "refusing call %d: contract %d failed\n", refused, WEXITSTATUS(status));
      HZ_EXPECT(WEXITSTATUS(status) == 0);
    }
    HZ_EXPECT(strstr(err, "hz: cannot reserve the arena or its tables") != NULL);
  }
}
