/* fork() in a multithreaded parent: the child inherits a consistent heap, abandons the
 * slabs of the threads that did not survive the fork, and keeps allocating. */
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/hz.h"
#include "core/hz_debug.h"
#include "core/testing/hz_test.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage;
static void *theirs[1000];

/* Allocates (owning slabs, caching blocks), then waits, registered, across the fork. */
static void *other_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < 1000; i++) theirs[i] = hz_malloc((size_t)(16 + i % 700));
  for (int i = 0; i < 1000; i += 3) hz_free(theirs[i]);
  pthread_mutex_lock(&mu);
  stage = 1;
  pthread_cond_broadcast(&cv);
  while (stage != 2) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  return NULL;
}

HZ_TEST(child_of_a_multithreaded_parent_has_a_consistent_heap) {
  pthread_t t;
  pthread_create(&t, NULL, other_thread, NULL);
  pthread_mutex_lock(&mu);
  while (stage != 1) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  void *mine = hz_malloc(100);
  pid_t pid = fork();
  if (pid == 0) {
    hz_violation_t v;
    hz_census_t c;
    if (hz_heap_check(&v, &c) != 0) {
      fprintf(stderr, "child heap check: %s: %s\n", v.invariant, v.message);
      _exit(1);
    }
    if (c.threads != 1 || c.slabs_abandoned == 0) _exit(2); /* the other thread's slabs */
    /* Free the other thread's blocks and allocate a lot: adoption and reuse work. */
    for (int i = 1; i < 1000; i += 3) hz_free(theirs[i]);
    void *p[5000];
    for (int i = 0; i < 5000; i++) p[i] = hz_malloc((size_t)(16 + i % 700));
    for (int i = 0; i < 5000; i++) hz_free(p[i]);
    hz_free(mine);
    if (hz_heap_check(&v, &c) != 0) {
      fprintf(stderr, "child heap check: %s: %s\n", v.invariant, v.message);
      _exit(3);
    }
    _exit(0);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  HZ_EXPECT(WIFEXITED(status));
  HZ_EXPECT_EQ(WEXITSTATUS(status), 0);
  pthread_mutex_lock(&mu);
  stage = 2;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  pthread_join(t, NULL);
  for (int i = 1; i < 1000; i += 3) hz_free(theirs[i]);
  for (int i = 2; i < 1000; i += 3) hz_free(theirs[i]);
  hz_free(mine);
  HZ_EXPECT(hz_heap_check(NULL, NULL) == 0);
}
