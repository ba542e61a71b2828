/* The seeded-bug switch (core/seed_bugs.h): a clean build seeds nothing and counts
 * nothing; a build with HZ_SEED_BUG=HZ_BUG_CALLOC_DIRTY really has the bug, and its
 * reach and trigger counters say so. Built twice, once each way (BUILD.bazel). */
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

HZ_TEST(the_switch_does_what_the_build_says) {
  hz_seed_bug_info_t before = hz_seed_bug_info();
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
  hz_free(q);
}


