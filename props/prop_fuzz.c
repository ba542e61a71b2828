/* The libFuzzer entry of property PROP_NAME: the input is the property's choice
 * sequence, so campaigns and ClusterFuzzLite run properties like any fuzz target. */
#include <stdio.h>
#include <stdlib.h>

#include "props/prop.h"

#ifndef PROP_NAME
#error "PROP_NAME must name a property"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const prop_def_t *def;
  if (!def) def = prop_find(prop_all, PROP_NAME);
  if (!def) {
    fprintf(stderr, "prop: no property '%s' in this build\n", PROP_NAME);
    abort();
  }
  return prop_fuzz_one(def, data, size);
}
