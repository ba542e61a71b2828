/* The seeded-bug switch (core/seed_bugs.h): a clean build seeds nothing and counts
 * nothing; a build with HZ_SEED_BUG=HZ_BUG_CALLOC_DIRTY really has the bug, and its
 * reach and trigger counters say so, as do the lines it writes to stderr (the first
 * trigger's announcement, the summary with the counts). Built twice, once each way
 * (BUILD.bazel). */
#include <stdio.h>
#include <string.h>

#include "core/api.h"
#include "core/testing/hz_test.h"

/* calloc of the block a thread's TLS SLL holds alone: its link, word 0, is NULL. */
static unsigned char *calloc_of_a_used_block(void) {
  unsigned cls = hz_size_to_class(48);
  void *held[1024];
  unsigned n = 0;
  unsigned char *p = hz_malloc(48);
  while (hz_tc.sll[cls].count > 0 && n < 1024) held[n++] = hz_malloc(48);
  memset(p, 0xAB, 48);
  hz_free(p);
  unsigned char *q = hz_calloc(1, 48);
  HZ_EXPECT(q == p);
  for (unsigned i = 0; i < n; i++) hz_free(held[i]);
  return q;
}

/* Children for hz_test_run_child, which hands back what they write to stderr. */
static void hzt__calloc(void) { hz_free(calloc_of_a_used_block()); }
static void hzt__summary(void) { hz_seed_bug_print(); }

HZ_TEST(the_switch_does_what_the_build_says) {
  hz_seed_bug_info_t before = hz_seed_bug_info();
  /* The same calloc in a child first, for the line it writes: the counts it moves there
   * are the child's, so this process's first trigger is still to come below. */
  char said[256];
  HZ_EXPECT_EQ(hz_test_run_child(hzt__calloc, said, sizeof said), 0);
  unsigned char *q = calloc_of_a_used_block();
  hz_seed_bug_info_t after = hz_seed_bug_info();
  unsigned nonzero = 0;
  for (int i = 0; i < 48; i++) nonzero += q[i] != 0;
  if (HZ_SEED_BUG == HZ_BUG_NONE) {
    HZ_EXPECT_EQ(after.id, 0);
    HZ_EXPECT(strcmp(after.name, "none") == 0);
    HZ_EXPECT_EQ(after.reached, 0);
    HZ_EXPECT_EQ(nonzero, 0);
  } else {
    HZ_EXPECT_EQ(after.id, HZ_BUG_CALLOC_DIRTY);
    HZ_EXPECT(strcmp(after.name, "CALLOC_DIRTY") == 0);
    HZ_EXPECT(after.reached > before.reached);
    HZ_EXPECT_EQ(after.triggered, before.triggered + 1);
    HZ_EXPECT(nonzero > 0); /* the seeded bug: old contents past the first word */
  }
  /* The first trigger is announced at once (a crash may follow before any summary). */
  const char *announced = HZ_SEED_BUG != HZ_BUG_NONE && before.triggered == 0
                              ? "hz-seed-bug: CALLOC_DIRTY triggered for the first time\n"
                              : "";
  if (strcmp(said, announced) != 0) hz_test_fail(__FILE__, __LINE__, "the announcement", said);
  hz_free(q);
}

/* The summary the fuzz drivers print when they stop, which the bugzoo reads to count a
 * detection only when the seeded site was triggered: its numbers are the counters'. */
HZ_TEST(the_summary_line_names_the_bug_and_its_counts) {
  for (int i = 0; i < 12; i++) hz_free(calloc_of_a_used_block()); /* counts of two digits */
  hz_seed_bug_info_t info = hz_seed_bug_info();
  char said[256], want[256] = "";
  HZ_EXPECT_EQ(hz_test_run_child(hzt__summary, said, sizeof said), 0);
  if (HZ_SEED_BUG != HZ_BUG_NONE)
    snprintf(want, sizeof want, "hz-seed-bug: %s reached %llu triggered %llu\n", info.name,
             (unsigned long long)info.reached, (unsigned long long)info.triggered);
  if (strcmp(said, want) != 0) hz_test_fail(__FILE__, __LINE__, want, said);
  if (HZ_SEED_BUG != HZ_BUG_NONE) HZ_EXPECT(info.triggered >= 10);
}


