/* Every misuse is detected, reported exactly once through the error hook with the right
 * kind, operation and pointer, and leaves the heap consistent; correct calls never are.
 * Without a hook, the process prints one line and aborts. */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/api.h"
#include "core/testing/hz_test.h"

static struct {
  int count;
  hz_fault_t last;
  char message[256];
} faults;

static void on_fault(const hz_fault_t *f, void *ctx) {
  (void)ctx;
  faults.count++;
  faults.last = *f;
  strncpy(faults.message, f->message, sizeof faults.message - 1);
}

static void arm(void) {
  memset(&faults, 0, sizeof faults);
  hz_set_error_hook(on_fault, NULL);
}

/* Exactly one fault of `kind` in `op` on `ptr` since arm(), and a consistent heap. */
static void expect_one(hz_fault_kind_t kind, hz_op_t op, const void *ptr) {
  HZ_EXPECT_EQ(faults.count, 1);
  HZ_EXPECT_EQ(faults.last.kind, kind);
  HZ_EXPECT_EQ(faults.last.op, op);
  HZ_EXPECT(faults.last.ptr == ptr);
  HZ_EXPECT(strstr(faults.message, hz_fault_name(kind)) != NULL);
  hz_violation_t v;
  int bad = hz_heap_check(&v, NULL);
  if (bad) fprintf(stderr, "%s: %s\n", v.invariant, v.message);
  HZ_EXPECT_EQ(bad, 0);
  hz_set_error_hook(NULL, NULL);
}

HZ_TEST(double_free_from_the_thread_cache) {
  arm();
  void *p = hz_malloc(40);
  hz_free(p);
  hz_free(p);
  expect_one(HZ_FAULT_DOUBLE_FREE, HZ_OP_FREE, p);
}

HZ_TEST(double_free_from_the_freelist) {
  arm();
  void *keep = hz_malloc(40), *p = hz_malloc(40);
  hz_free(p);
  hz_thread_flush(); /* p moves to the slab freelist; keep holds the slab */
  hz_free(p);
  expect_one(HZ_FAULT_DOUBLE_FREE, HZ_OP_FREE, p);
  hz_free(keep);
}

HZ_TEST(free_of_a_carved_block_never_handed_out_is_not_allocated) {
  arm();
  char *p = hz_malloc(170); /* class 192, first used here: a fresh slab */
  /* The next block was carved into the cache by the refill but never handed out: it is
   * free, yet no block was ever allocated there, so this is no double free. */
  char *next = p + 192;
  HZ_REQUIRE(hz_classify(next).kind == HZ_PTR_FREE);
  hz_free(next);
  expect_one(HZ_FAULT_NOT_ALLOCATED, HZ_OP_FREE, next);
  /* Once handed out and freed, the same slot is a double free. */
  char *q = hz_malloc(170);
  HZ_REQUIRE(q == next);
  hz_free(q);
  arm();
  hz_free(q);
  expect_one(HZ_FAULT_DOUBLE_FREE, HZ_OP_FREE, q);
  hz_free(p);
}

static void *free_it(void *p) {
  hz_free(p);
  return NULL;
}

HZ_TEST(double_free_across_threads) {
  arm();
  void *keep = hz_malloc(64), *p = hz_malloc(64);
  pthread_t t;
  pthread_create(&t, NULL, free_it, p); /* a remote free: into the slab's queue */
  pthread_join(t, NULL);
  HZ_EXPECT_EQ(faults.count, 0);
  hz_free(p); /* the owner frees it again: found in the remote queue */
  expect_one(HZ_FAULT_DOUBLE_FREE, HZ_OP_FREE, p);
  arm();
  pthread_create(&t, NULL, free_it, p); /* and another thread, a third time */
  pthread_join(t, NULL);
  expect_one(HZ_FAULT_DOUBLE_FREE, HZ_OP_FREE, p);
  hz_free(keep);
}

HZ_TEST(a_block_queued_twice_is_caught_when_its_owner_collects) {
  /* Two racing remote frees of one block both pass the marker test and both push it:
   * the queue then links the block to itself. Build that state directly. */
  void *keep = hz_malloc(144), *p = hz_malloc(144);
  hz_slab_t *s = hz_slab_of(p);
  arm();
  hz_mark_set(p, hz_free_mark | HZ_MARK_QUEUED);
  hz_slab_remote_push(s, p, p);
  hz_slab_remote_push(s, p, p);
  HZ_EXPECT_EQ(hz_slab_collect(s), 1); /* collected once, the repeat refused */
  expect_one(HZ_FAULT_DOUBLE_FREE, HZ_OP_FREE, p);
  HZ_EXPECT(hz_slab_validate(s) == NULL);
  hz_free(keep);
}

HZ_TEST(double_free_of_a_large_block) {
  arm();
  void *p = hz_malloc(1 << 20);
  hz_free(p);
  hz_free(p);
  expect_one(HZ_FAULT_DOUBLE_FREE, HZ_OP_FREE, p);
}

HZ_TEST(free_of_a_block_whose_slab_was_pooled) {
  arm();
  void *p = hz_malloc(3000);
  hz_free(p);
  hz_thread_flush(); /* the slab is empty and goes back to the pool */
  hz_free(p);
  expect_one(HZ_FAULT_NOT_ALLOCATED, HZ_OP_FREE, p);
}

HZ_TEST(interior_and_misaligned_frees) {
  char *p = hz_malloc(100), *big = hz_malloc(200000);
  arm();
  hz_free(p + 16);
  expect_one(HZ_FAULT_INTERIOR, HZ_OP_FREE, p + 16);
  arm();
  hz_free(p + 1);
  expect_one(HZ_FAULT_MISALIGNED, HZ_OP_FREE, p + 1);
  arm();
  hz_free(big + 4096);
  expect_one(HZ_FAULT_INTERIOR, HZ_OP_FREE, big + 4096);
  HZ_EXPECT_EQ(hz_classify(p).kind, HZ_PTR_SMALL); /* the victims are untouched */
  HZ_EXPECT_EQ(hz_classify(big).kind, HZ_PTR_LARGE);
  hz_free(p);
  hz_free(big);
}

HZ_TEST(foreign_pointers_without_a_foreign_allocator) {
  int local;
  static int global;
  arm();
  hz_free(&local);
  expect_one(HZ_FAULT_FOREIGN, HZ_OP_FREE, &local);
  arm();
  HZ_EXPECT(hz_realloc(&global, 10) == NULL);
  expect_one(HZ_FAULT_FOREIGN, HZ_OP_REALLOC, &global);
  arm();
  HZ_EXPECT_EQ(hz_usable_size(&global), 0);
  expect_one(HZ_FAULT_FOREIGN, HZ_OP_USABLE_SIZE, &global);
}

HZ_TEST(realloc_and_usable_size_of_freed_or_interior_pointers) {
  char *keep = hz_malloc(80), *p = hz_malloc(80);
  hz_free(p);
  arm();
  HZ_EXPECT(hz_realloc(p, 200) == NULL);
  expect_one(HZ_FAULT_DOUBLE_FREE, HZ_OP_REALLOC, p);
  arm();
  HZ_EXPECT_EQ(hz_usable_size(keep + 32), 0);
  expect_one(HZ_FAULT_INTERIOR, HZ_OP_USABLE_SIZE, keep + 32);
  hz_free(keep);
}

HZ_TEST(correct_use_is_never_reported) {
  arm();
  void *p[1000];
  for (int i = 0; i < 1000; i++) p[i] = hz_malloc((size_t)(i * 37 % 5000));
  for (int i = 0; i < 1000; i += 2) p[i] = hz_realloc(p[i], (size_t)(i * 91 % 90000));
  for (int i = 0; i < 1000; i++) HZ_EXPECT(hz_usable_size(p[i]) > 0 || p[i] == NULL);
  for (int i = 999; i >= 0; i--) hz_free(p[i]);
  hz_thread_flush();
  HZ_EXPECT_EQ(faults.count, 0);
  hz_set_error_hook(NULL, NULL);
}

static void double_free_without_hook(void) {
  void *p = hz_malloc(24);
  hz_free(p);
  hz_free(p); /* aborts */
}

HZ_TEST(without_a_hook_a_misuse_prints_one_line_and_aborts) {
  char out[512];
  int status = hz_test_run_child(double_free_without_hook, out, sizeof out);
  HZ_REQUIRE(status != -1);
  HZ_EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  static const char prefix[] = "hz: double free in free(0x";
  HZ_EXPECT(strncmp(out, prefix, sizeof prefix - 1) == 0);
  HZ_EXPECT(strchr(out, '\n') == out + strlen(out) - 1); /* one line */
}

static void internal_assertion(void) { hz_panic("core/slab.c", 1234, "s->used <= s->capacity"); }

/* What a user pastes into a bug report when the heap is already broken: the file, the
 * line and the condition, on one line, then an abort. */
HZ_TEST(an_internal_assertion_names_its_file_line_and_condition) {
  char out[512];
  int status = hz_test_run_child(internal_assertion, out, sizeof out);
  HZ_REQUIRE(status != -1);
  HZ_EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  HZ_EXPECT(strcmp(out, "hz: internal assertion failed at core/slab.c:1234: "
                        "s->used <= s->capacity\n") == 0);
}

/* Reports and traces name what they saw through these functions: each value of each
 * enumeration has a name of its own, and a value past the end is named as unknown
 * rather than read from past the table. */
static void expect_names(const char *(*name)(int), int count, const char *unknown) {
  for (int i = 0; i <= count; i++) {
    const char *n = name(i);
    HZ_REQUIRE(n != NULL && n[0] != 0);
    HZ_EXPECT((strcmp(n, unknown) == 0) == (i == count));
    for (int j = 0; j < i; j++) HZ_EXPECT(strcmp(n, name(j)) != 0);
  }
  HZ_EXPECT(strcmp(name(-1), unknown) == 0);
}
static const char *fault_name(int v) { return hz_fault_name((hz_fault_kind_t)v); }
static const char *kind_name(int v) { return hz_ptr_kind_name((hz_ptr_kind_t)v); }
static const char *race_name(int v) { return hz_race_point_name((hz_race_point_t)v); }

HZ_TEST(every_fault_pointer_kind_and_race_point_has_its_own_name) {
  expect_names(fault_name, HZ_FAULT_KIND_COUNT, "unknown fault");
  expect_names(kind_name, HZ_PTR_UNALLOCATED + 1, "unknown");
  expect_names(race_name, HZ_RACE_POINT_COUNT, "unknown");
  HZ_EXPECT(strcmp(hz_fault_name(HZ_FAULT_DOUBLE_FREE), "double free") == 0);
  HZ_EXPECT(strcmp(hz_fault_name(HZ_FAULT_NOT_ALLOCATED), "pointer not allocated") == 0);
  HZ_EXPECT(strcmp(hz_op_name(HZ_OP_USABLE_SIZE), "malloc_usable_size") == 0);
}
