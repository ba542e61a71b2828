/* bazel run //tools:decode -- [--target T] FILE...
 *        bazel run //tools:decode -- [--target T] --encode IN.ops OUT
 *
 * Prints the op list of an input in the text form (one op a line, with what it does),
 * which `--encode` (and every replay driver, for files ending in .ops) turns back into
 * the same bytes. The target defaults to the one the path names, else alloc_fuzzer:
 * the kind byte of an op means different kinds for different targets.
 *
 *        bazel run //tools:decode -- --target T --dict
 *
 * prints a libFuzzer dictionary for T: one whole op per entry for every kind T draws
 * (plain, on another thread, and as a 256-block burst where the kind has bursts), so
 * mutations insert meaningful ops. fuzz/dicts/<target>.dict are made this way.
 *
 * Relative paths (FILE, IN.ops, OUT) are relative to the directory `bazel run` was run
 * from.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/hzf_input.h"

/* The kind byte, then thread/sel, pick and arg (hzf_ops.h). */
static void hzf__dict_entry(const char *name, const char *suffix, unsigned k, unsigned b1,
                            unsigned pick, unsigned arg) {
  printf("%s%s=\"\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\"\n", name, suffix, k, b1, pick,
         arg & 0xff, arg >> 8);
}

/* The kind byte that decodes to `kind` for profile p, or -1 when p never draws it. */
static int hzf__kind_byte(const hzf_profile_t *p, unsigned kind) {
  for (unsigned b = 0; b < 256; b++)
    if (hzf_kind_of_byte(p, (uint8_t)b) == kind) return (int)b;
  return -1;
}

/* Multi-op idioms: short programs that reach the states allocator bugs live in, which
 * single-op mutations reach only slowly. An entry is written only when the profile draws
 * every kind it uses and has the threads it names. sel 60 is a burst of 256. */
typedef struct {
  unsigned kind, thread, sel, pick, arg;
} hzf__step_t;

static void hzf__idiom(const hzf_profile_t *p, const char *name, const hzf__step_t *s,
                       unsigned n) {
  char out[512];
  size_t len = 0;
  for (unsigned i = 0; i < n; i++) {
    int k = hzf__kind_byte(p, s[i].kind);
    if (k < 0 || s[i].thread >= p->max_threads) return;
    unsigned bytes[5] = {(unsigned)k, s[i].sel << 2 | s[i].thread, s[i].pick, s[i].arg & 0xff,
                         s[i].arg >> 8};
    for (unsigned j = 0; j < 5; j++)
      len += (size_t)snprintf(out + len, sizeof out - len, "\\x%02x", bytes[j]);
  }
  printf("idiom_%s=\"%s\"\n", name, out);
}

static void hzf__idioms(const hzf_profile_t *p) {
  /* A block freed into an empty cache has a NULL link word; calloc then gets it back. */
  static const hzf__step_t empty_cache_calloc[] = {
      {HZF_MALLOC, 0, 1, 0, 48}, {HZF_FLUSH, 0, 0, 0, 0}, {HZF_FREE, 0, 3, 0, 0},
      {HZF_CALLOC, 0, 1, 0, 48}};
  /* The class's cache one below its bound, then a free and a second free: the free path
   * meets the bound (where the slow branch takes over) with a misuse. */
  static const hzf__step_t misuse_at_cache_bound[] = {
      {HZF_MALLOC, 0, 1, 0, 48}, {HZF_FILL, 0, 1, 2, 0}, {HZF_DOUBLE_FREE, 0, 0, 0, 0}};
  /* Another thread frees a burst of blocks, then the owner allocates and collects. */
  static const hzf__step_t remote_then_collect[] = {
      {HZF_MALLOC, 0, 60, 0, 0x300}, {HZF_FREE, 1, 61, 0, 0}, {HZF_MALLOC, 0, 60, 0, 0x300}};
  /* Two threads free the same thread's blocks in turn (contention on one remote queue). */
  static const hzf__step_t two_remote_freers[] = {
      {HZF_MALLOC, 0, 60, 0, 0x300}, {HZF_FREE, 1, 61, 0, 0}, {HZF_FREE, 2, 61, 0, 0},
      {HZF_DOUBLE_FREE, 1, 0, 0, 0}};
  /* A thread exits with blocks in its cache and live blocks others hold. */
  static const hzf__step_t exit_with_cache[] = {
      {HZF_MALLOC, 1, 60, 0, 0x300}, {HZF_FREE, 1, 62, 0, 0}, {HZF_EXIT, 1, 0, 0, 0},
      {HZF_CHECK, 0, 0, 0, 0}};
  /* Fill the cache past its bound (the drain), then allocate it all back. */
  static const hzf__step_t drain_and_refill[] = {
      {HZF_MALLOC, 0, 60, 0, 0x300}, {HZF_FREE, 0, 60, 0, 0}, {HZF_SLL_DRAIN, 0, 0, 0, 100},
      {HZF_MALLOC, 0, 60, 0, 0x300}, {HZF_CHECK, 0, 0, 0, 0}};
  hzf__idiom(p, "empty_cache_calloc", empty_cache_calloc, 4);
  hzf__idiom(p, "misuse_at_cache_bound", misuse_at_cache_bound, 3);
  hzf__idiom(p, "remote_then_collect", remote_then_collect, 3);
  hzf__idiom(p, "two_remote_freers", two_remote_freers, 4);
  hzf__idiom(p, "exit_with_cache", exit_with_cache, 4);
  hzf__idiom(p, "drain_and_refill", drain_and_refill, 5);
}

static int hzf__dict(const hzf_profile_t *p) {
  printf("# libFuzzer dictionary for %s_fuzzer: whole ops (bazel run //tools:decode -- "
         "--target %s_fuzzer --dict)\n", p->name, p->name);
  for (unsigned kind = 0; kind < HZF_KIND_COUNT; kind++) {
    int k = -1;
    for (unsigned b = 0; b < 256 && k < 0; b++)
      if (hzf_kind_of_byte(p, (uint8_t)b) == kind) k = (int)b;
    if (k < 0) continue;
    const char *name = hzf_kind_name(kind);
    hzf__dict_entry(name, "", (unsigned)k, 0, 0, 0);
    if (p->max_threads > 1) hzf__dict_entry(name, "_t1", (unsigned)k, 1, 1, 0);
    if (kind == HZF_MALLOC) hzf__dict_entry(name, "_x256", (unsigned)k, 60u << 2, 0, 0x300);
    if (kind == HZF_FREE) {
      hzf__dict_entry(name, "_x256", (unsigned)k, 60u << 2, 0, 0);
      if (p->max_threads > 1) hzf__dict_entry(name, "_remote_x256", (unsigned)k, 61u << 2 | 1, 0, 0);
    }
  }
  hzf__idioms(p);
  return 0;
}

static int hzf__usage(const char *why) {
  if (why) fprintf(stderr, "decode: %s\n", why);
  fprintf(stderr, "usage: decode [--target T] FILE...\n"
                  "       decode [--target T] --encode IN.ops OUT\n"
                  "       decode --target T --dict\n");
  return 2;
}

int main(int argc, char **argv) {
  const hzf_profile_t *forced = NULL;
  int encode = 0, dict = 0, first = 1;
  for (; first < argc && argv[first][0] == '-'; first++) {
    if (strcmp(argv[first], "--target") == 0 && first + 1 < argc) {
      if (!(forced = hzf_profile_find(argv[++first]))) return hzf__usage("unknown target");
    } else if (strcmp(argv[first], "--encode") == 0) {
      encode = 1;
    } else if (strcmp(argv[first], "--dict") == 0) {
      dict = 1;
    } else {
      return hzf__usage("unknown flag");
    }
  }
  if (dict) return forced && first == argc ? hzf__dict(forced) : hzf__usage("--dict takes --target T only");
  if (first == argc) return hzf__usage("no input file given");
  if (encode && argc - first != 2) return hzf__usage("--encode takes IN.ops and OUT");
  int rc = 0;
  for (int i = first; i < argc; i++) {
    const char *path = argv[i];
    const hzf_profile_t *p = forced ? forced : hzf_profile_of_path(path);
    if (!p) p = &hzf_profile_alloc;
    char buf[HZF_PATH_MAX];
    const char *file = hzf_user_path(path, buf, sizeof buf);
    if (!file) {
      fprintf(stderr, "decode: %s: the path is too long\n", path);
      return 2;
    }
    uint8_t *data;
    char err[512];
    long n = hzf_read_input(p, file, &data, err, sizeof err);
    if (n < 0) {
      fprintf(stderr, "decode: %s\n", err);
      return 2;
    }
    if (encode) {
      char obuf[HZF_PATH_MAX];
      const char *out = hzf_user_path(argv[i + 1], obuf, sizeof obuf);
      if (!out) {
        fprintf(stderr, "decode: %s: the path is too long\n", argv[i + 1]);
        free(data);
        return 2;
      }
      FILE *f = fopen(out, "wb");
      int ok = f && fwrite(data, 1, (size_t)n, f) == (size_t)n, why = errno;
      if (f && fclose(f) != 0 && ok) ok = 0, why = errno;
      free(data);
      if (!ok) {
        fprintf(stderr, "decode: %s: cannot write: %s\n", out, strerror(why));
        return 2;
      }
      return 0;
    }
    hzf_program_t *prog = malloc(sizeof *prog);
    hzf_decode(p, data, (size_t)n, prog);
    if (argc - first > 1) printf("## %s\n", path);
    hzf_write_text(stdout, prog);
    free(prog);
    free(data);
  }
  return rc;
}
