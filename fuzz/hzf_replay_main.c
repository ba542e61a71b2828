/* Standalone replay driver: feeds files to LLVMFuzzerTestOneInput without libFuzzer.
 *
 *   <target>_replay [--mode=baton|free|direct]... FILE_OR_DIR...
 *
 * Used by the replay tests of `bazel test //fuzz/...`: every seed and every saved
 * regression goes through the target in each mode given (baton when none). A finding
 * prints its report and exits with HZF_EXIT_FINDING; a missing or unreadable file is
 * an error that names it. Under `bazel run`, relative paths are relative to the
 * directory bazel was run from.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fuzz/hzf_input.h"
#include "fuzz/hzf_target.h"

/* A sanitizer report, an abort (an hz internal assertion) or a fatal signal during an op
 * prints the same report as a failed check, with the check naming what it was:
 * fuzz/hzf_death.h, which hzf_target.c installs for this driver and the libFuzzer binary
 * alike. */

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
  clock_t t0 = clock();
  for (int i = first; i < argc; i++) {
    char buf[HZF_PATH_MAX];
    const char *path = hzf_user_path(argv[i], buf, sizeof buf);
    if (!path) {
      fprintf(stderr, "hzfuzz replay: %s: the path is too long\n", argv[i]);
      return 2;
    }
    if (hzf__replay(path) != 0) return 2;
  }
  if (hzf__inputs == 0) {
    fprintf(stderr, "hzfuzz replay: no inputs found in the paths given\n");
    return 2;
  }
  printf("hzfuzz replay (%s_fuzzer): %u inputs x %u modes, no finding (%.2f s CPU)\n",
         hzf_target_profile()->name, hzf__inputs, hzf__nmodes,
         (double)(clock() - t0) / CLOCKS_PER_SEC);
  return 0;
}
