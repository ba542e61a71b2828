/* The mmap page source touches only its own mappings. An aligned reservation maps more
 * than it needs and unmaps the slack at both ends; a wrong length there unmaps whatever
 * the program (or another library) mapped next to it, which no allocator behaviour
 * shows until that memory is used. The test builds that neighbourhood on purpose: it
 * frees a hole exactly the size the reservation will map, between two guard mappings,
 * so the kernel's first fit puts the reservation there, and checks that the guards
 * survive and that the slack is really gone. */
#include <errno.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/os.h"
#include "core/testing/hz_test.h"

enum { HZ_GUARD = 1 << 16 };

/* mincore's residency vector, one byte a page: room for the largest range asked about. */
static unsigned char hz__vec[(64u << 20) / 4096];

/* Whether every page of [p, p + n) is mapped (mincore fails with ENOMEM otherwise). */
static int mapped(void *p, size_t n) { return mincore(p, n, hz__vec) == 0; }
/* Whether no page of [p, p + n) is: one page at a time, as one unmapped page fails all. */
static int unmapped(void *p, size_t n) {
  for (size_t off = 0; off < n; off += 4096)
    if (mincore((char *)p + off, 4096, hz__vec) == 0 || errno != ENOMEM) return 0;
  return 1;
}

/* One try: returns the reservation, and whether it took the hole between the guards
 * (then the slack on both sides must be unmapped). The guards must survive either way. */
static char *reserve_between_guards(size_t size, size_t align, int *in_hole) {
  size_t total = size + align; /* what the source maps before it trims */
  char *area = mmap(NULL, total + 2 * HZ_GUARD, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  *in_hole = 0;
  if (area == MAP_FAILED) return NULL;
  char *lo = area, *hi = area + HZ_GUARD + total;
  munmap(area + HZ_GUARD, total); /* the hole; the guards stay */

  char *r = hz_os_mmap_source.reserve(size, align);
  HZ_EXPECT(r != NULL);
  if (r) {
    HZ_EXPECT_EQ((uintptr_t)r % align, 0);
    HZ_EXPECT(mapped(r, size));
  }
  HZ_EXPECT(mapped(lo, HZ_GUARD));
  HZ_EXPECT(mapped(hi, HZ_GUARD));
  if (r && r > lo && r + size < hi) {
    *in_hole = 1;
    HZ_EXPECT(unmapped(lo + HZ_GUARD, (size_t)(r - (lo + HZ_GUARD))));
    HZ_EXPECT(unmapped(r + size, (size_t)(hi - (r + size))));
  }
  munmap(lo, HZ_GUARD);
  munmap(hi, HZ_GUARD);
  return r;
}

/* The kernel fills the highest hole that fits first, so a try that lands elsewhere
 * keeps its reservation (filling that hole) and the next try comes lower. Returns
 * whether a try took the hole. */
static int check_reserve(size_t size, size_t align) {
  char *kept[16];
  unsigned n = 0;
  int in_hole = 0;
  while (n < 16 && !in_hole) {
    char *r = reserve_between_guards(size, align, &in_hole);
    if (!r) break;
    kept[n++] = r;
  }
  if (!in_hole)
    fprintf(stderr, "os_test: %zu bytes aligned %zu never took the hole; only the guards "
                    "were checked\n", size, align);
  while (n) munmap(kept[--n], size);
  return in_hole;
}

HZ_TEST(an_aligned_reservation_unmaps_only_its_own_slack) {
  /* Lengths that are not multiples of 2 MiB: the kernel aligns those of anonymous
   * mappings to huge pages and would not use an exact hole. Both ends get trimmed. */
  int hits = check_reserve(((size_t)4 << 20) + 12288, (size_t)2 << 20) +
             check_reserve(((size_t)1 << 20) + 4096, (size_t)4 << 20) +
             check_reserve((size_t)2 << 20, 4096);
  HZ_EXPECT(hits > 0); /* else the slack was never checked on this kernel */
}

/* A program may run with its error stream closed: a report to it must fail quietly and
 * return, not retry forever. In a child, with an alarm for the retry loop. */
HZ_TEST(a_report_to_a_closed_error_stream_returns) {
  pid_t pid = fork();
  HZ_REQUIRE(pid >= 0);
  if (pid == 0) {
    alarm(5);
    close(2);
    static const char msg[] = "hz: nobody reads this\n";
    errno = 0;
    hz_os_write_stderr(msg, sizeof msg - 1);
    _exit(errno == 0 ? 0 : 3); /* and errno is the caller's, not write's EBADF */
  }
  int status = 0;
  HZ_REQUIRE(waitpid(pid, &status, 0) == pid);
  HZ_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
