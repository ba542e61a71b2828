/* Initialisation that cannot get its address space fails cleanly. With the arena's
 * reservation or one of its three table maps refused, hz says why once on stderr, and
 * every allocation entry point fails as its contract says (NULL with errno ENOMEM, or
 * ENOMEM returned and the out-parameter untouched) instead of using a half-made arena.
 * And a first use from many threads at once initialises once, and only then lets them
 * in. Each case runs in a fresh child process, because initialisation happens once per
 * process.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "core/api.h"
#include "core/hz_debug.h"
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

/* ---- the first use, from many threads at once ------------------------------------ */
enum { FIRST_USERS = 8 };
static atomic_int reservations;
static pthread_barrier_t start_line;
static hz_page_source_t slow;

/* A slow reservation: every other thread reaches hz_ensure_init while the first is
 * still inside it, which is the window a double-checked initialisation must close. */
static void *reserve_slowly(size_t size, size_t align) {
  atomic_fetch_add(&reservations, 1);
  nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
  return hz_os_mmap_source.reserve(size, align);
}

static void *first_user(void *arg) {
  size_t size = 16 + 48 * (size_t)(uintptr_t)arg;
  pthread_barrier_wait(&start_line);
  unsigned char *p = hz_malloc(size);
  if (p) memset(p, 0xA5, size);
  return p;
}

/* Starts n (at most MAX_USERS) threads running fn(i) and joins them, each one's result
 * in got[i]; exits with `code` if one cannot be started. */
enum { MAX_USERS = 16 };
static void run_threads(unsigned n, void *(*fn)(void *), void **got, int code) {
  pthread_t t[MAX_USERS];
  if (n > MAX_USERS) exit(code);
  for (uintptr_t i = 0; i < n; i++)
    if (pthread_create(&t[i], NULL, fn, (void *)i) != 0) exit(code);
  for (unsigned i = 0; i < n; i++) pthread_join(t[i], &got[i]);
}

/* A thread's block: at least `size` usable bytes, every one still `fill` (no two threads
 * were given the same memory); freed. Exits with `code` otherwise. */
static void expect_filled_block(void *p, size_t size, unsigned char fill, int code) {
  if (!p || hz_usable_size(p) < size) exit(code);
  for (size_t k = 0; k < size; k++)
    if (((unsigned char *)p)[k] != fill) exit(code + 1);
  hz_free(p);
}

/* Exits with the number of the first contract that failed; 0 when all held. */
static void initialise_from_many_threads(void) {
  slow = hz_os_mmap_source;
  slow.reserve = reserve_slowly;
  if (hz_os_set_page_source(&slow) != 0) exit(10);
  pthread_barrier_init(&start_line, NULL, FIRST_USERS);
  void *got[FIRST_USERS];
  run_threads(FIRST_USERS, first_user, got, 11);
  if (atomic_load(&reservations) != 1) exit(12); /* initialised once */
  for (unsigned i = 0; i < FIRST_USERS; i++)
    expect_filled_block(got[i], 16 + 48 * (size_t)i, 0xA5, 13); /* 13, 14 */
  hz_census_t census;
  if (hz_heap_check(NULL, &census) != 0 || census.user_blocks != 0) exit(15);
  void *p = hz_malloc(100);
  if (!p) exit(16);
  hz_free(p);
}

/* Runs a case in a fresh process (initialisation happens once per process) and expects
 * it to exit 0; otherwise prints the contract it failed, or the signal, and its stderr
 * (a ThreadSanitizer report makes the process exit 66). */
static void expect_child_passes(const char *what, void (*child)(void)) {
  char err[2048];
  int status = hz_test_run_child(child, err, sizeof err);
  HZ_REQUIRE(status != -1);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fprintf(stderr, "%s: %s %d\n%s", what,
            WIFEXITED(status) ? "contract failed (66: a ThreadSanitizer report):"
                              : "killed by signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), err);
  HZ_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

HZ_TEST(a_first_use_from_many_threads_at_once_initialises_once) {
  expect_child_passes("first use from many threads", initialise_from_many_threads);
}

/* ---- the first use, then threads that arrive after it ---------------------------- */
/* Threads started before hz initialises and arriving after it take the lock-free test
 * of the initialised state, not the lock: only that test's acquire (against the release
 * that publishes the state) orders their reads of the arena, its tables and the free
 * marker after their setup. The first call here is one hz refuses before it takes any
 * other lock (a request larger than the arena), so no lock the late threads take orders
 * them after it either. Every build checks the blocks; under ThreadSanitizer
 * (init_tsan_test) a publication that orders nothing is reported as the data race it
 * is, which no other test reaches: the fuzzers initialise hz before they start a thread. */
enum { LATE_USERS = 4 };
static pthread_barrier_t late_line;
static atomic_int first_errno;

static void *late_user(void *arg) {
  uintptr_t i = (uintptr_t)arg;
  pthread_barrier_wait(&late_line);
  if (i == 0) {
    errno = 0;
    void *huge = hz_malloc(SIZE_MAX / 2);
    atomic_store(&first_errno, huge ? -1 : errno);
    return NULL;
  }
  nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000 * (long)i}, NULL);
  size_t size = 24 + 40 * i;
  unsigned char *p = hz_malloc(size);
  if (p) memset(p, 0x5A, size);
  return p;
}

static void initialise_then_late_arrivals(void) {
  pthread_barrier_init(&late_line, NULL, LATE_USERS);
  void *got[LATE_USERS];
  run_threads(LATE_USERS, late_user, got, 21);
  if (atomic_load(&first_errno) != ENOMEM) exit(22);
  for (unsigned i = 1; i < LATE_USERS; i++)
    expect_filled_block(got[i], 24 + 40 * (size_t)i, 0x5A, 23); /* 23, 24 */
  if (hz_heap_check(NULL, NULL) != 0) exit(25);
}

HZ_TEST(threads_arriving_after_the_first_use_see_the_initialised_heap) {
  expect_child_passes("late arrivals", initialise_then_late_arrivals);
}
