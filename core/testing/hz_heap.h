/* For tests that link the core: the whole-heap check as a test step.
 *
 *   hz_census_t c = HZ_TEST_CENSUS();   fails the test (naming the violated invariant)
 *                                       when hz_heap_check does, and returns its census
 *
 * Header-only, so hz_test itself does not depend on any one build of the core: the
 * test's own core variant provides hz_heap_check.
 */
#ifndef HZ_TESTING_HZ_HEAP_H
#define HZ_TESTING_HZ_HEAP_H

#include <stdio.h>

#include "core/hz_debug.h"
#include "core/testing/hz_test.h"

static inline hz_census_t hz_test_census_at(const char *file, int line) {
  hz_violation_t v;
  hz_census_t c;
  if (hz_heap_check(&v, &c)) {
    fprintf(stderr, "heap check: %s: %s\n", v.invariant, v.message);
    hz_test_fail(file, line, "hz_heap_check", v.invariant);
  }
  return c;
}
#define HZ_TEST_CENSUS() hz_test_census_at(__FILE__, __LINE__)

#endif
