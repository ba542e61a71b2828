/* Planted properties for the engine's own test (engine_test.sh): failures with a known
 * smallest counterexample, so the test can hold the shrinker to it. */
#include <stdlib.h>

#include "props/prop.h"

/* Fails when any element of a drawn list is 700 or more: the minimum is the one-element
 * list [700]. */
static void planted_max(prop_t *p) {
  for (unsigned i = 0; prop_more(p, i, 20); i++) {
    unsigned x = (unsigned)prop_below(p, 1000, "x");
    prop_step(p, "x = %u", x);
    PROP_CHECK(p, x < 700, "too-big", "element %u is %u", i, x);
  }
}

/* Crashes (abort) when an element after the first is 700 or more: the minimum is [0, 700],
 * found through forked children that die. */
static void planted_crash(prop_t *p) {
  for (unsigned i = 0; prop_more(p, i, 20); i++) {
    unsigned x = (unsigned)prop_below(p, 1000, "x");
    prop_step(p, "x = %u", x);
    if (i > 0 && x >= 700) abort();
  }
}

/* Always holds. */
static void planted_ok(prop_t *p) {
  for (unsigned i = 0; prop_more(p, i, 20); i++) prop_step(p, "x = %u", (unsigned)prop_below(p, 1000, "x"));
}

static const prop_def_t max_def = {"planted_max", "no element is 700 or more", planted_max};
static const prop_def_t crash_def = {"planted_crash", "no element after the first is 700 or more",
                                     planted_crash};
static const prop_def_t ok_def = {"planted_ok", "always holds", planted_ok};

const prop_def_t *const prop_all[] = {&max_def, &crash_def, &ok_def, NULL};

int main(int argc, char **argv) { return prop_main(argc, argv, prop_all, NULL); }
