/* hz_pages_clear and its two users: clearing memory costs what the memory holds, not its
 * length. A page the kernel holds is cleared in place and stays held; a page it does not
 * hold is decommitted, never faulted in. Each test reads residency (mincore) before it
 * reads contents, since reading a page may map it. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/api.h"
#include "core/testing/hz_test.h"

enum { PAGE = 4096, PAGES = 64 };

static unsigned char vec[(8u << 20) / PAGE];

/* Pages of [p, p + pages * PAGE) the kernel holds. */
static unsigned resident(void *p, unsigned pages) {
  if (mincore(p, (size_t)pages * PAGE, vec) != 0) return ~0u;
  unsigned n = 0;
  for (unsigned i = 0; i < pages; i++) n += vec[i] & 1;
  return n;
}

static unsigned nonzero_bytes(const unsigned char *p, size_t n) {
  unsigned bad = 0;
  for (size_t i = 0; i < n; i++) bad += p[i] != 0;
  return bad;
}

static unsigned char *fresh_mapping(void) {
  void *p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

HZ_TEST(held_pages_are_cleared_in_place_and_the_rest_is_never_faulted_in) {
  unsigned char *m = fresh_mapping();
  HZ_REQUIRE(m != NULL);
  /* Pages 0-3 and 10 hold data, page 20 is held but already zero, the rest never used. */
  memset(m, 0x5a, 4 * PAGE);
  m[10 * PAGE + PAGE - 1] = 1;
  m[20 * PAGE] = 1;
  m[20 * PAGE] = 0;
  HZ_REQUIRE(resident(m, PAGES) == 6);
  hz_pages_clear(m, PAGES * PAGE, SIZE_MAX);
  HZ_EXPECT_EQ(resident(m, PAGES), 6); /* nothing given back, nothing faulted in */
  HZ_EXPECT_EQ(nonzero_bytes(m, PAGES * PAGE), 0);
  munmap(m, PAGES * PAGE);
}

HZ_TEST(past_the_keep_budget_held_pages_are_decommitted) {
  unsigned char *m = fresh_mapping();
  HZ_REQUIRE(m != NULL);
  memset(m, 0x5a, 2 * PAGE);              /* a run of 2 pages: within a 3-page budget */
  memset(m + 8 * PAGE, 0x5a, 4 * PAGE);   /* a run of 4: past what is left of it */
  HZ_REQUIRE(resident(m, PAGES) == 6);
  hz_pages_clear(m, PAGES * PAGE, 3 * PAGE);
  HZ_EXPECT_EQ(resident(m, 2), 2);
  HZ_EXPECT_EQ(resident(m + 8 * PAGE, 4), 0);
  HZ_EXPECT_EQ(nonzero_bytes(m, PAGES * PAGE), 0);
  /* No budget at all: everything is decommitted, as a plain reset does. */
  memset(m, 0x5a, PAGES * PAGE);
  hz_pages_clear(m, PAGES * PAGE, 0);
  HZ_EXPECT_EQ(resident(m, PAGES), 0);
  HZ_EXPECT_EQ(nonzero_bytes(m, PAGES * PAGE), 0);
  munmap(m, PAGES * PAGE);
}

/* The large block the next test reuses: 4 MiB, its first and last page written. */
static unsigned char *written_at_both_ends(size_t size) {
  unsigned char *p = hz_malloc(size);
  if (p) {
    memset(p, 0x33, PAGE);
    memset(p + size - PAGE, 0x33, PAGE);
  }
  return p;
}

HZ_TEST(calloc_of_a_reused_extent_clears_what_its_old_block_wrote_and_faults_nothing_in) {
  HZ_REQUIRE(hz_debug_reset() == 0);
  const size_t size = 4u << 20;
  unsigned char *p = written_at_both_ends(size);
  HZ_REQUIRE(p != NULL);
  hz_free(p); /* kept committed in the dirty cache, its whole size counted as written */
  unsigned char *q = hz_calloc(1, size);
  HZ_REQUIRE(q == p);
  unsigned pages = (unsigned)(size / PAGE);
  /* Only the two pages the old block wrote are held: a memset of the dirty prefix would
   * have faulted in all 1024. */
  HZ_EXPECT(resident(q, pages) <= 2);
  HZ_EXPECT_EQ(nonzero_bytes(q, PAGE), 0);
  HZ_EXPECT_EQ(nonzero_bytes(q + size - PAGE, PAGE), 0);
  hz_free(q);
}

HZ_TEST(a_warm_reset_keeps_what_fits_its_budget_resident_and_zero) {
  HZ_REQUIRE(hz_debug_reset() == 0);
  const size_t size = 1u << 20;
  unsigned char *p = hz_malloc(size);
  HZ_REQUIRE(p != NULL);
  memset(p, 0x44, size);
  hz_free(p);
  HZ_REQUIRE(hz_debug_reset_warm(64u << 20) == 0);
  HZ_EXPECT_EQ(resident(p, size / PAGE), size / PAGE);
  unsigned char *q = hz_malloc(size);
  HZ_REQUIRE(q == p);
  HZ_EXPECT_EQ(nonzero_bytes(q, size), 0);
  hz_free(q);
  /* A cold reset gives every page back. */
  HZ_REQUIRE(hz_debug_reset() == 0);
  HZ_EXPECT_EQ(resident(p, size / PAGE), 0);
}

/* Whether the kernel may read p: write(2) from an address it may not read fails with
 * EFAULT instead of faulting the test. */
static int readable(const void *p) {
  int fd[2];
  if (pipe(fd) != 0) return -1;
  int ok = write(fd[1], p, 1) == 1;
  close(fd[0]);
  close(fd[1]);
  return ok;
}

/* Never-used arena is reserved, not committed: growing a block in place into it must
 * commit all of the growth. The fuzzers' per-input reset leaves the arena it used
 * committed, so only growth past everything a process has used shows a short commit. */
HZ_TEST(a_block_grown_in_place_past_all_used_arena_is_committed_to_its_last_byte) {
  HZ_REQUIRE(hz_debug_reset() == 0);
  unsigned char *p = hz_malloc(1u << 20); /* the first extent after a reset: at the bump */
  HZ_REQUIRE(p != NULL);
  const size_t size = (size_t)256 << 20; /* far past what the tests before used */
  unsigned char *q = hz_realloc(p, size);
  HZ_REQUIRE(q != NULL);
  HZ_EXPECT(q == p);
  HZ_EXPECT_EQ(readable(q + size - 1), 1);
  HZ_EXPECT_EQ(readable(q + size / 2), 1);
  hz_free(q);
}
