/* Input files: binary inputs, and ".ops" text that encodes to the same bytes. */
#include "fuzz/hzf_input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hzf__ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

const char *hzf_user_path(const char *path, char *buf, size_t n) {
  const char *wd = getenv("BUILD_WORKING_DIRECTORY");
  if (path[0] == '/' || !wd || !*wd) return path;
  size_t len = strlen(wd);
  int w = snprintf(buf, n, "%s%s%s", wd, len && wd[len - 1] == '/' ? "" : "/", path);
  return w < 0 || (size_t)w >= n ? NULL : buf;
}

int hzf_input_skipped(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  return hzf__ends_with(path, ".txt") || hzf__ends_with(path, ".md") ||
         hzf__ends_with(path, ".dict") || base[0] == '.' || strcmp(base, "BUILD.bazel") == 0;
}

const hzf_profile_t *hzf_profile_of_path(const char *path) {
  for (unsigned i = 0; hzf_profiles[i]; i++) {
    char a[64], b[64];
    snprintf(a, sizeof a, "/%s_fuzzer/", hzf_profiles[i]->name);
    snprintf(b, sizeof b, "/%s_fuzzer-", hzf_profiles[i]->name);
    if (strstr(path, a) || strstr(path, b)) return hzf_profiles[i];
    snprintf(a, sizeof a, "%s_fuzzer/", hzf_profiles[i]->name);
    if (strncmp(path, a, strlen(a)) == 0) return hzf_profiles[i];
  }
  return NULL;
}

long hzf_read_input(const hzf_profile_t *p, const char *path, uint8_t **data, char *err,
                    size_t errn) {
  *data = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errn, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  uint8_t *buf = malloc(HZF_INPUT_MAX + 1);
  size_t n = buf ? fread(buf, 1, HZF_INPUT_MAX + 1, f) : 0;
  int bad = !buf || ferror(f);
  fclose(f);
  if (bad || n > HZF_INPUT_MAX) {
    snprintf(err, errn, "%s: %s", path, bad ? "cannot read" : "larger than 1 MiB");
    free(buf);
    return -1;
  }
  if (!hzf__ends_with(path, ".ops")) {
    *data = buf;
    return (long)n;
  }
  buf[n] = 0;
  uint8_t *bytes = malloc(HZF_OP_BYTES * HZF_MAX_OPS + 1);
  char why[200];
  long len = bytes ? hzf_parse_text(p, (const char *)buf, bytes, HZF_OP_BYTES * HZF_MAX_OPS + 1,
                                    why, sizeof why)
                   : -1;
  free(buf);
  if (len < 0) {
    snprintf(err, errn, "%s: %s", path, bytes ? why : "out of memory");
    free(bytes);
    return -1;
  }
  *data = bytes;
  return len;
}
