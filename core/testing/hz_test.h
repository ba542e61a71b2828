/* A minimal test harness for the C tests of hzfuzz.
 *
 *   HZ_TEST(name) { HZ_EXPECT(cond); HZ_EXPECT_EQ(a, b); HZ_REQUIRE(cond); }
 *
 * Tests register themselves; main (hz_test.c) runs them in order, or those whose name
 * contains argv[1], and ends with the line "N passed, N failed". HZ_REQUIRE ends the
 * current test on failure; HZ_EXPECT records the failure and continues.
 */
#ifndef HZ_TESTING_HZ_TEST_H
#define HZ_TESTING_HZ_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef void (*hz_test_fn)(void);
void hz_test_register(const char *name, hz_test_fn fn);
void hz_test_fail(const char *file, int line, const char *expr, const char *detail);
extern int hz_test_current_failed;

/* Runs child() in a forked process with its stderr captured into out (NUL-terminated,
 * at most cap - 1 bytes); the child exits 0 if child() returns. Returns the wait status
 * (for WIFSIGNALED and friends), or -1 when the process could not be started. For tests
 * whose subject ends the process: an abort on misuse, a sanitizer report. */
int hz_test_run_child(void (*child)(void), char *out, size_t cap);

#define HZ_TEST(name)                                                            \
  static void name(void);                                                        \
  __attribute__((constructor)) static void hz_test_reg_##name(void) {            \
    hz_test_register(#name, name);                                               \
  }                                                                              \
  static void name(void)

#define HZ_EXPECT(cond)                                                          \
  do {                                                                           \
    if (!(cond)) hz_test_fail(__FILE__, __LINE__, #cond, NULL);                  \
  } while (0)

#define HZ_REQUIRE(cond)                                                         \
  do {                                                                           \
    if (!(cond)) {                                                               \
      hz_test_fail(__FILE__, __LINE__, #cond, NULL);                             \
      return;                                                                    \
    }                                                                            \
  } while (0)

#define HZ_EXPECT_EQ(a, b)                                                       \
  do {                                                                           \
    uintmax_t hz_a_ = (uintmax_t)(a), hz_b_ = (uintmax_t)(b);                    \
    if (hz_a_ != hz_b_) {                                                        \
      char hz_d_[96];                                                            \
      snprintf(hz_d_, sizeof hz_d_, "%ju != %ju", hz_a_, hz_b_);                 \
      hz_test_fail(__FILE__, __LINE__, #a " == " #b, hz_d_);                     \
    }                                                                            \
  } while (0)

#endif
