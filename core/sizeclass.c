/* Layer 3 (size classes). The granule table is generated from the class list (the
 * sizeclass test re-derives it from hz_class_size for every size). */
#include "core/sizeclass.h"

/* hz_class_of_granule[g] = smallest class with size >= 16 * g (g = 0 maps to 16). */
const uint8_t hz_class_of_granule[HZ_SMALL_MAX / 16 + 1] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 9, 10, 10, 11,
    11, 12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15,
    15, 16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 17, 17, 17,
    17, 18, 18, 18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19,
    19, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
    20, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21,
    21, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22,
    22, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23,
    23, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24,
    24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24,
    24, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25,
    25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25,
    25, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
    26, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27,
    27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27,
    27,
};

#define HZ_INV(s) ((((uint64_t)1 << 40) / (s)) + 1)
#define HZ_CAP(s) ((uint32_t)(HZ_SLAB_SIZE / (s)))
/* TLS SLL bound: HZ_SLL_BYTES worth of blocks, clamped to [MIN, MAX] blocks. */
#define HZ_SLLMAX(s)                                                    \
  (HZ_SLL_BYTES / (s) > HZ_SLL_MAX_COUNT   ? HZ_SLL_MAX_COUNT           \
   : HZ_SLL_BYTES / (s) < HZ_SLL_MIN_COUNT ? HZ_SLL_MIN_COUNT           \
                                           : HZ_SLL_BYTES / (s))
#define HZ_SLLCAP(s)                                                         \
  (HZ_SLL_GROW_BYTES / (s) > HZ_SLL_MAX_COUNT   ? HZ_SLL_MAX_COUNT            \
   : HZ_SLL_GROW_BYTES / (s) < HZ_SLLMAX(s)     ? HZ_SLLMAX(s)                \
                                                : HZ_SLL_GROW_BYTES / (s))
#define HZ_EACH(F)                                                                  \
  F(16), F(32), F(48), F(64), F(80), F(96), F(112), F(128), F(160), F(192), F(224), \
  F(256), F(320), F(384), F(448), F(512), F(640), F(768), F(896), F(1024),           \
  F(1280), F(1536), F(1792), F(2048), F(2560), F(3072), F(3584), F(4096), F(8192),   \
  F(12288), F(16384), F(20480), F(24576), F(28672), F(32768), F(36864), F(40960),    \
  F(45056), F(49152), F(53248), F(57344), F(61440), F(65536)

#define HZ_SIZE(s) (s)
const uint32_t hz_class_size[HZ_NUM_CLASSES] = {HZ_EACH(HZ_SIZE)};
const uint64_t hz_class_inverse[HZ_NUM_CLASSES] = {HZ_EACH(HZ_INV)};
const uint32_t hz_class_capacity[HZ_NUM_CLASSES] = {HZ_EACH(HZ_CAP)};
const uint32_t hz_class_sll_max[HZ_NUM_CLASSES] = {HZ_EACH(HZ_SLLMAX)};
const uint32_t hz_class_sll_cap[HZ_NUM_CLASSES] = {HZ_EACH(HZ_SLLCAP)};

int hz_class_for_aligned(size_t size, size_t align) {
  if (size > HZ_MEDIUM_MAX) return -1;
  for (unsigned c = hz_size_to_class(size); c < HZ_NUM_CLASSES; c++)
    if ((hz_class_size[c] & (align - 1)) == 0) return (int)c;
  return -1;
}

unsigned hz_size_class_count(void) { return HZ_NUM_CLASSES; }
size_t hz_size_class_size(unsigned cls) { return cls < HZ_NUM_CLASSES ? hz_class_size[cls] : 0; }
int hz_size_to_class_checked(size_t size) {
  return size <= HZ_MEDIUM_MAX ? (int)hz_size_to_class(size) : -1;
}
size_t hz_large_threshold(void) { return HZ_MEDIUM_MAX; }
