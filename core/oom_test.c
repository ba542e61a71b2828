/* Out of memory, on a core built with a 64 MiB arena: allocations fail with ENOMEM,
 * nothing is corrupted, and everything works again once memory is freed. Also a page
 * source that refuses to commit. */
#include <errno.h>
#include <string.h>

#include "core/api.h"
#include "core/os.h"
#include "core/testing/hz_test.h"

static int refuse_commits;
static int counted_commits;

static int commit_or_refuse(void *p, size_t size) {
  if (refuse_commits) return -1;
  counted_commits++;
  return hz_os_mmap_source.commit(p, size);
}

static hz_page_source_t failing_source;

HZ_TEST(a_page_source_that_refuses_commits_gives_enomem) {
  /* Runs first, before anything allocated: the page source is still replaceable. */
  failing_source = hz_os_mmap_source;
  failing_source.commit = commit_or_refuse;
  HZ_REQUIRE(hz_os_set_page_source(&failing_source) == 0);
  refuse_commits = 1;
  errno = 0;
  HZ_EXPECT(hz_malloc(100) == NULL);
  HZ_EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  HZ_EXPECT(hz_malloc(1 << 20) == NULL);
  HZ_EXPECT_EQ(errno, ENOMEM);
  refuse_commits = 0;
  void *p = hz_malloc(100);
  HZ_EXPECT(p != NULL);
  HZ_EXPECT(counted_commits > 0);
  hz_free(p);
  /* Once the heap exists, its page source is fixed. */
  HZ_EXPECT_EQ(hz_os_set_page_source(&hz_os_mmap_source), -1);
  HZ_EXPECT(hz_heap_check(NULL, NULL) == 0);
}

HZ_TEST(large_blocks_run_out_cleanly) {
  enum { MAX = 64 };
  void *p[MAX];
  int n = 0;
  errno = 0;
  while (n < MAX && (p[n] = hz_malloc(1 << 20)) != NULL) n++;
  HZ_EXPECT(n < MAX);               /* 64 MiB arena: 32 SuperSlabs */
  HZ_EXPECT(n >= 20);
  HZ_EXPECT_EQ(errno, ENOMEM);
  HZ_EXPECT(hz_heap_check(NULL, NULL) == 0);
  for (int i = 0; i < n; i++) hz_free(p[i]);
  void *again = hz_malloc(1 << 20);
  HZ_EXPECT(again != NULL);
  hz_free(again);
}

HZ_TEST(small_blocks_run_out_cleanly_and_recover) {
  enum { MAX = 40000 };
  static void *p[MAX];
  int n = 0;
  errno = 0;
  while (n < MAX && (p[n] = hz_malloc(2000)) != NULL) {
    memset(p[n], n & 0xFF, 2000);
    n++;
  }
  HZ_EXPECT(n < MAX);
  HZ_EXPECT_EQ(errno, ENOMEM);
  hz_census_t c;
  HZ_EXPECT(hz_heap_check(NULL, &c) == 0);
  HZ_EXPECT_EQ(c.user_blocks, (uint64_t)n);
  /* Other classes fail too (no slab left), without corrupting anything. */
  HZ_EXPECT(hz_malloc(30000) == NULL);
  int intact = 1;
  for (int i = 0; i < n; i++)
    if (((unsigned char *)p[i])[1999] != (i & 0xFF)) intact = 0;
  HZ_EXPECT(intact);
  for (int i = 0; i < n; i++) hz_free(p[i]);
  hz_thread_flush();
  void *other = hz_malloc(30000); /* freed slabs serve another class */
  HZ_EXPECT(other != NULL);
  hz_free(other);
  HZ_EXPECT(hz_heap_check(NULL, &c) == 0);
  HZ_EXPECT_EQ(c.user_blocks, 0);
}

HZ_TEST(aligned_large_blocks_reuse_freed_extents) {
  /* 4 MiB aligned to 4 MiB, 100 times: a 64 MiB arena holds 16 at once, so each round
   * must find its extent among the freed ones. */
  for (int i = 0; i < 100; i++) {
    void *p = hz_aligned_alloc(4 << 20, 4 << 20);
    HZ_REQUIRE(p != NULL);
    HZ_EXPECT_EQ((uintptr_t)p % (4 << 20), 0);
    hz_free(p);
  }
  /* Mixed with unaligned blocks that fragment the free extents. */
  void *a = hz_malloc(3 << 20), *b = hz_aligned_alloc(8 << 20, 1 << 20), *c = hz_malloc(5 << 20);
  HZ_EXPECT(a && b && c);
  HZ_EXPECT_EQ((uintptr_t)b % (8 << 20), 0);
  hz_free(a);
  hz_free(b);
  hz_free(c);
  for (int i = 0; i < 50; i++) {
    void *p = hz_aligned_alloc(8 << 20, 2 << 20);
    HZ_REQUIRE(p != NULL);
    hz_free(p);
  }
  HZ_EXPECT(hz_heap_check(NULL, NULL) == 0);
}
