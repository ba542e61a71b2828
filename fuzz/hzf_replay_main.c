/* Standalone replay driver: feeds files to LLVMFuzzerTestOneInput without libFuzzer.
 *
 *   <target>_replay [--mode=baton|free|direct]... FILE_OR_DIR...
 *
 * Used by the replay tests of `bazel test //fuzz/...`: every seed and every saved
 * regression goes through the target in each mode given (baton when none). A finding
 * prints its report and exits with HZF_EXIT_FINDING; a missing or unreadable file is
 * an error that names it.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fuzz/hzf_input.h"
#include "fuzz/hzf_target.h"

void __sanitizer_set_death_callback(void (*callback)(void));

/* A sanitizer report or an hz assertion ends the process without a check failing:
 * still name the op and print the machine-readable line. (libFuzzer owns this callback
 * in the fuzzing binary, where the saved crash input serves instead.) */
static const char *hzf__current_path;
static void hzf__on_death(void) {
  hz_seed_bug_print();
  int op = hzf_current_op();
  if (op < 0) return;
  hzf_result_t r = {.failed = true, .op = (unsigned)op};
  snprintf(r.check, sizeof r.check, "sanitizer");
  snprintf(r.expected, sizeof r.expected, "no sanitizer report");
  snprintf(r.actual, sizeof r.actual, "the sanitizer report above, during op #%d", op);
  hzf_report(stderr, hzf_last_program(), &r, hzf__current_path);
}

static void hzf__on_abort(int sig) {
  hzf__on_death();
  signal(sig, SIG_DFL);
  raise(sig);
}

static hzf_mode_t hzf__modes[3];
static unsigned hzf__nmodes, hzf__inputs;

static int hzf__replay_file(const char *path) {
  if (hzf_input_skipped(path)) return 0;
  uint8_t *data;
  char err[512];
  long n = hzf_read_input(hzf_target_profile(), path, &data, err, sizeof err);
  if (n < 0) {
    fprintf(stderr, "hzfuzz replay: %s\n", err);
    return -1;
  }
  hzf__current_path = path;
  for (unsigned k = 0; k < hzf__nmodes; k++) {
    hzf_target_configure(hzf__modes[k], path);
    LLVMFuzzerTestOneInput(data, (size_t)n);
  }
  free(data);
  hzf__inputs++;
  return 0;
}

static int hzf__cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int hzf__replay(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "hzfuzz replay: %s: no such file or directory\n", path);
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) return hzf__replay_file(path);
  DIR *d = opendir(path);
  if (!d) {
    fprintf(stderr, "hzfuzz replay: %s: cannot open the directory\n", path);
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
    size_t len = strlen(path) + strlen(e->d_name) + 2;
    names[n] = malloc(len);
    snprintf(names[n++], len, "%s/%s", path, e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, hzf__cmp); /* the same order on every machine */
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    if (rc == 0) rc = hzf__replay(names[i]);
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  int first = 1;
  for (; first < argc && strncmp(argv[first], "--mode=", 7) == 0; first++) {
    if (hzf__nmodes == 3 || hzf_parse_mode(argv[first] + 7, &hzf__modes[hzf__nmodes]) != 0) {
      fprintf(stderr, "hzfuzz replay: %s: modes are baton, free and direct\n", argv[first]);
      return 2;
    }
    hzf__nmodes++;
  }
  if (!hzf__nmodes) hzf__modes[hzf__nmodes++] = HZF_MODE_BATON;
  if (first == argc) {
    fprintf(stderr, "usage: %s [--mode=baton|free|direct]... FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  __sanitizer_set_death_callback(hzf__on_death);
  signal(SIGABRT, hzf__on_abort); /* hz's internal assertions abort */
  clock_t t0 = clock();
  for (int i = first; i < argc; i++)
    if (hzf__replay(argv[i]) != 0) return 2;
  if (hzf__inputs == 0) {
    fprintf(stderr, "hzfuzz replay: no inputs found in the paths given\n");
    return 2;
  }
  printf("hzfuzz replay (%s_fuzzer): %u inputs x %u modes, no finding (%.2f s CPU)\n",
         hzf_target_profile()->name, hzf__inputs, hzf__nmodes,
         (double)(clock() - t0) / CLOCKS_PER_SEC);
  return 0;
}
