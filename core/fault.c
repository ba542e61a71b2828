/* Layer 1 (base): misuse reporting, internal panics, the free marker and counters.
 *
 * Nothing here allocates: messages are formatted into a stack buffer and written with
 * write(2), because the heap may be the thing that is broken.
 */
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "core/os.h"
#include "core/seed_bugs.h"

uintptr_t hz_free_mark = 0x5A5A5A5A5A5A5A59ull; /* replaced by a random value at init */
hz_counters_t hz_counters;

static hz_error_hook_t _Atomic hz__hook;
static void *_Atomic hz__hook_ctx;

void hz_set_error_hook(hz_error_hook_t hook, void *ctx) {
  atomic_store(&hz__hook_ctx, ctx);
  atomic_store(&hz__hook, hook);
}

hz_race_hook_t _Atomic hz_race_hook;

bool hz_set_race_hook(hz_race_hook_t hook) {
  if (!HZ_RACE_POINTS) return false;
  atomic_store(&hz_race_hook, hook);
  return true;
}

const char *hz_race_point_name(hz_race_point_t where) {
  static const char *const names[HZ_RACE_POINT_COUNT] = {
      "remote_push", "collect", "adopt", "abandon", "pool_take", "large_publish",
  };
  return (unsigned)where < HZ_RACE_POINT_COUNT ? names[where] : "unknown";
}

const char *hz_fault_name(hz_fault_kind_t kind) {
  static const char *const names[HZ_FAULT_KIND_COUNT] = {
      "none", "double free", "pointer not allocated", "foreign pointer",
      "interior pointer", "misaligned pointer", "heap corruption",
  };
  return (unsigned)kind < HZ_FAULT_KIND_COUNT ? names[kind] : "unknown fault";
}

const char *hz_op_name(hz_op_t op) {
  switch (op) {
    case HZ_OP_FREE: return "free";
    case HZ_OP_REALLOC: return "realloc";
    case HZ_OP_USABLE_SIZE: return "malloc_usable_size";
    default: return "allocator";
  }
}

typedef struct {
  char buf[240];
  size_t n;
} hz__line_t;

static void hz__put(hz__line_t *l, const char *s) {
  while (*s && l->n < sizeof l->buf - 2) l->buf[l->n++] = *s++;
}

static void hz__put_hex(hz__line_t *l, uintptr_t v) {
  char tmp[2 + 16];
  int i = (int)sizeof tmp;
  do {
    tmp[--i] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v && i > 2);
  tmp[--i] = 'x';
  tmp[--i] = '0';
  char out[sizeof tmp + 1];
  memcpy(out, tmp + i, sizeof tmp - (size_t)i);
  out[sizeof tmp - (size_t)i] = 0;
  hz__put(l, out);
}

void hz_fault(hz_fault_kind_t kind, hz_op_t op, const void *ptr, const char *detail) {
  HZ_COUNT(faults);
  hz__line_t line = {.n = 0};
  hz__put(&line, "hz: ");
  hz__put(&line, hz_fault_name(kind));
  hz__put(&line, " in ");
  hz__put(&line, hz_op_name(op));
  hz__put(&line, "(");
  hz__put_hex(&line, (uintptr_t)ptr);
  hz__put(&line, ")");
  if (detail) {
    hz__put(&line, ": ");
    hz__put(&line, detail);
  }
  line.buf[line.n] = 0;
  hz_error_hook_t hook = atomic_load(&hz__hook);
  if (hook) {
    hz_fault_t f = {kind, op, ptr, line.buf};
    hook(&f, atomic_load(&hz__hook_ctx));
    return;
  }
  line.buf[line.n++] = '\n';
  hz_os_write_stderr(line.buf, line.n);
  abort();
}

void hz_panic(const char *file, int line, const char *what) {
  hz__line_t l = {.n = 0};
  hz__put(&l, "hz: internal assertion failed at ");
  hz__put(&l, file);
  hz__put(&l, ":");
  char num[12];
  int i = (int)sizeof num - 1;
  num[i] = 0;
  unsigned v = (unsigned)line;
  do num[--i] = (char)('0' + v % 10); while ((v /= 10) && i > 0);
  hz__put(&l, num + i);
  hz__put(&l, ": ");
  hz__put(&l, what);
  l.buf[l.n++] = '\n';
  hz_os_write_stderr(l.buf, l.n);
  abort();
}

void hz_get_stats(hz_stats_t *out) {
#define HZ_READ(f) out->f = atomic_load_explicit(&hz_counters.f, memory_order_relaxed)
  HZ_READ(refills); HZ_READ(drains); HZ_READ(remote_collects); HZ_READ(adoptions);
  HZ_READ(abandons); HZ_READ(slab_inits); HZ_READ(slab_releases); HZ_READ(superslabs_taken);
  HZ_READ(superslabs_released); HZ_READ(large_allocs); HZ_READ(large_frees); HZ_READ(faults);
  HZ_READ(extents_decommitted);
#undef HZ_READ
}

/* ---- seeded bugs ---------------------------------------------------------------- */
static _Atomic uint64_t hz__bug_reached, hz__bug_triggered;

#define HZ__BUG_NAME(id, name, what) [id] = #name,
#define HZ__BUG_WHAT(id, name, what) [id] = what,
static const char *const hz__bug_names[HZ_BUG_COUNT] = {"none", HZ_SEED_BUG_LIST(HZ__BUG_NAME)};
static const char *const hz__bug_whats[HZ_BUG_COUNT] = {"", HZ_SEED_BUG_LIST(HZ__BUG_WHAT)};
#undef HZ__BUG_NAME
#undef HZ__BUG_WHAT

static void hz__put_dec(hz__line_t *l, uint64_t v) {
  char num[24];
  int i = (int)sizeof num - 1;
  num[i] = 0;
  do num[--i] = (char)('0' + v % 10); while ((v /= 10) && i > 0);
  hz__put(l, num + i);
}

bool hz_seed_bug_log(bool cond) {
  atomic_fetch_add_explicit(&hz__bug_reached, 1, memory_order_relaxed);
  /* The first trigger is announced at once: a crash may follow before any report. */
  if (cond && atomic_fetch_add_explicit(&hz__bug_triggered, 1, memory_order_relaxed) == 0) {
    hz__line_t l = {.n = 0};
    hz__put(&l, "hz-seed-bug: ");
    hz__put(&l, hz__bug_names[HZ_SEED_BUG]);
    hz__put(&l, " triggered for the first time\n");
    hz_os_write_stderr(l.buf, l.n);
  }
  return cond;
}

hz_seed_bug_info_t hz_seed_bug_info(void) {
  hz_seed_bug_info_t info = {HZ_SEED_BUG, hz__bug_names[HZ_SEED_BUG], hz__bug_whats[HZ_SEED_BUG],
                             atomic_load(&hz__bug_reached), atomic_load(&hz__bug_triggered)};
  return info;
}

void hz_seed_bug_print(void) {
  if (HZ_SEED_BUG == HZ_BUG_NONE) return;
  hz__line_t l = {.n = 0};
  hz__put(&l, "hz-seed-bug: ");
  hz__put(&l, hz__bug_names[HZ_SEED_BUG]);
  hz__put(&l, " reached ");
  hz__put_dec(&l, atomic_load(&hz__bug_reached));
  hz__put(&l, " triggered ");
  hz__put_dec(&l, atomic_load(&hz__bug_triggered));
  hz__put(&l, "\n");
  hz_os_write_stderr(l.buf, l.n);
}
