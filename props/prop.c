/* The property engine (prop.h): choice sequences, draws, the case runner, shrinking,
 * the report, saved counterexamples and the command line.
 *
 * Where a case runs:
 *   generation   in this process, case after case (fast: no fork per case). A failure
 *                or a crash re-executes the binary with `--seed <the case's seed>`, so
 *                the shrinker starts from a process that has not run anything.
 *   --seed, shrinking, --replay
 *                every run in a forked child, with its result, its draws and its report
 *                text in a shared mapping: a child that crashes still leaves the draws it
 *                made, and the parent classifies how it ended.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "props/prop.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "fuzz/hzf_input.h"
#include "fuzz/hzf_ops.h"

typedef struct {
  uint32_t start, len;
} prop_block_t;

/* What a run leaves behind; in a MAP_SHARED mapping so a forked child's result (or the
 * part of it written before a crash) reaches the parent. */
typedef struct {
  int done;   /* the case returned (a child that dies leaves 0) */
  int failed;
  char kind[48];
  char msg[1024];
  uint32_t used; /* choice bytes read (past the end of the sequence too) */
  int overrun;   /* a draw read past the end (zeros) */
  unsigned nblocks;
  prop_block_t blocks[PROP_MAX_DRAWS];
  unsigned nsteps;
  size_t text_len; /* steps and notes, recorded only when reporting */
  char text[1 << 16];
} prop_shared_t;

struct prop_s {
  const prop_def_t *def;
  const uint8_t *buf;
  size_t len, pos;
  bool reporting;
  prop_shared_t *sh;
};

static prop_shared_t *prop__sh;

/* ---- draws ------------------------------------------------------------------------ */

uint64_t prop_draw(prop_t *p, unsigned nbytes, const char *label) {
  (void)label;
  if (nbytes == 0) return 0;
  if (nbytes > 8) nbytes = 8;
  uint64_t v = 0;
  for (unsigned k = 0; k < nbytes; k++) {
    v = v << 8 | (p->pos < p->len ? p->buf[p->pos] : 0u);
    p->pos++;
  }
  prop_shared_t *sh = p->sh;
  if (sh->nblocks < PROP_MAX_DRAWS)
    sh->blocks[sh->nblocks++] = (prop_block_t){(uint32_t)(p->pos - nbytes), nbytes};
  if (p->pos > sh->used) sh->used = (uint32_t)p->pos;
  if (p->pos > p->len) sh->overrun = 1;
  return v;
}

uint64_t prop_below(prop_t *p, uint64_t n, const char *label) {
  if (n <= 1) return 0;
  unsigned bytes = n <= 0x100 ? 1 : n <= 0x10000 ? 2 : n <= 0x100000000ull ? 4 : 8;
  /* One byte more than the range needs, so that the modulo bias stays small. */
  if (bytes < 8) bytes++;
  return prop_draw(p, bytes, label) % n;
}

bool prop_bool(prop_t *p, const char *label) { return prop_draw(p, 1, label) & 1; }

unsigned prop_weighted(prop_t *p, const unsigned *weights, unsigned n, const char *label) {
  unsigned total = 0;
  for (unsigned i = 0; i < n; i++) total += weights[i];
  if (total == 0) return 0;
  unsigned v = (unsigned)prop_below(p, total, label);
  for (unsigned i = 0; i < n; i++) {
    if (v < weights[i]) return i;
    v -= weights[i];
  }
  return n - 1;
}

static size_t prop__size_band(prop_t *p, unsigned band, const char *label) {
  switch (band) {
    case 0: return (size_t)prop_below(p, 129, label);
    case 1: return 129 + (size_t)prop_below(p, 4096 - 128, label);
    case 2: return 4097 + (size_t)prop_below(p, 65536 - 4096, label);
    case 3: return 65537 + (size_t)prop_below(p, (8u << 20) - 65536, label);
    case 4: {
      unsigned k = (unsigned)prop_below(p, 23, label);
      size_t d = (size_t)prop_below(p, 5, label);
      size_t v = ((size_t)1 << k) + d;
      return v >= 2 ? v - 2 : 0;
    }
    default:
      switch (prop_below(p, 4, label)) {
        case 0: return SIZE_MAX - (size_t)prop_below(p, 4096, label);
        case 1: return (size_t)PTRDIFF_MAX + 1 + (size_t)prop_below(p, 4096, label);
        case 2: return ((size_t)1 << 40) + (size_t)prop_below(p, (uint64_t)1 << 40, label);
        default: return (SIZE_MAX >> 1) - (size_t)prop_below(p, 4096, label);
      }
  }
}

size_t prop_size(prop_t *p, const char *label) {
  static const unsigned w[] = {6, 5, 4, 2, 3, 1};
  return prop__size_band(p, prop_weighted(p, w, 6, label), label);
}

size_t prop_size_fits(prop_t *p, const char *label) {
  static const unsigned w[] = {6, 5, 4, 2, 3};
  return prop__size_band(p, prop_weighted(p, w, 5, label), label);
}

size_t prop_align(prop_t *p, const char *label) {
  static const unsigned w[] = {6, 2, 1, 1, 1};
  switch (prop_weighted(p, w, 5, label)) {
    case 0: return (size_t)1 << prop_below(p, 13, label);      /* 1 .. 4 KiB */
    case 1: return (size_t)1 << (13 + prop_below(p, 10, label)); /* 8 KiB .. 4 MiB */
    case 2: return 0;
    case 3: {
      size_t v = 3 + (size_t)prop_below(p, 1u << 20, label);
      return (v & (v - 1)) == 0 ? v + 1 : v; /* v >= 4: v + 1 is no power of two */
    }
    default: {
      /* Far above a SuperSlab: 8 to 256 MiB, which an arena can meet, or 512 GiB and up,
       * which it cannot. (Between them a success reserves tens of GiB of arena, which each
       * case's reset then pays for, and finds nothing the ends of the range do not.) */
      unsigned k = (unsigned)prop_below(p, 30, label);
      return (size_t)1 << (k < 6 ? 23 + k : 39 + (k - 6));
    }
  }
}

bool prop_more(prop_t *p, unsigned count, unsigned max) {
  if (count >= max) return false;
  /* Mean length 16; a zero byte (what shrinking writes) ends the list. */
  return prop_draw(p, 1, "more") % 16 != 0;
}

size_t prop_ops(prop_t *p, unsigned max_ops, uint8_t *out) {
  size_t n = 0;
  out[n++] = (uint8_t)prop_draw(p, 1, "threads");
  for (unsigned i = 0; prop_more(p, i, max_ops); i++) {
    uint64_t v = prop_draw(p, HZF_OP_BYTES, "op");
    for (unsigned k = 0; k < HZF_OP_BYTES; k++)
      out[n++] = (uint8_t)(v >> (8 * (HZF_OP_BYTES - 1 - k)));
  }
  return n;
}

/* ---- what the property reports -------------------------------------------------------- */

static void prop__text(prop_t *p, const char *prefix, const char *fmt, va_list ap) {
  prop_shared_t *sh = p->sh;
  size_t cap = sizeof sh->text;
  if (sh->text_len + 1 >= cap) return;
  int k = snprintf(sh->text + sh->text_len, cap - sh->text_len, "%s", prefix);
  if (k > 0) sh->text_len += (size_t)k < cap - sh->text_len ? (size_t)k : cap - sh->text_len - 1;
  k = vsnprintf(sh->text + sh->text_len, cap - sh->text_len, fmt, ap);
  if (k > 0) sh->text_len += (size_t)k < cap - sh->text_len ? (size_t)k : cap - sh->text_len - 1;
  if (sh->text_len + 1 < cap) sh->text[sh->text_len++] = '\n';
  sh->text[sh->text_len] = 0;
}

void prop_step(prop_t *p, const char *fmt, ...) {
  p->sh->nsteps++;
  if (!p->reporting) return;
  char prefix[16];
  snprintf(prefix, sizeof prefix, "  %3u. ", p->sh->nsteps);
  va_list ap;
  va_start(ap, fmt);
  prop__text(p, prefix, fmt, ap);
  va_end(ap);
}

void prop_result(prop_t *p, const char *fmt, ...) {
  prop_shared_t *sh = p->sh;
  if (!p->reporting || sh->text_len == 0 || sh->text[sh->text_len - 1] != '\n') return;
  sh->text_len--; /* onto the end of the last line */
  va_list ap;
  va_start(ap, fmt);
  prop__text(p, " ", fmt, ap);
  va_end(ap);
}

void prop_note(prop_t *p, const char *fmt, ...) {
  if (!p->reporting) return;
  va_list ap;
  va_start(ap, fmt);
  prop__text(p, "       ", fmt, ap);
  va_end(ap);
}

void prop_fail(prop_t *p, const char *kind, const char *fmt, ...) {
  prop_shared_t *sh = p->sh;
  if (sh->failed) return; /* the first broken clause is the finding */
  sh->failed = 1;
  snprintf(sh->kind, sizeof sh->kind, "%s", kind);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sh->msg, sizeof sh->msg, fmt, ap);
  va_end(ap);
}

bool prop_failed(const prop_t *p) { return p->sh->failed != 0; }
bool prop_reporting(const prop_t *p) { return p->reporting; }

size_t prop_first_not(const void *p, size_t n, uint8_t byte) {
  unsigned char ref[4096];
  memset(ref, byte, sizeof ref);
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i += sizeof ref) {
    size_t k = n - i < sizeof ref ? n - i : sizeof ref;
    if (memcmp(b + i, ref, k) != 0)
      for (size_t j = i;; j++)
        if (b[j] != byte) return j;
  }
  return n;
}

const prop_def_t *prop_find(const prop_def_t *const *defs, const char *name) {
  for (unsigned i = 0; defs[i]; i++)
    if (strcmp(defs[i]->name, name) == 0) return defs[i];
  return NULL;
}

/* ---- running one case ------------------------------------------------------------------ */

static void prop__shared_init(void) {
  if (prop__sh) return;
  void *m = mmap(NULL, sizeof(prop_shared_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (m == MAP_FAILED) {
    perror("prop: mmap of the result area");
    exit(2);
  }
  prop__sh = m;
}

static void prop__clear(void) {
  prop_shared_t *sh = prop__sh;
  sh->done = sh->failed = 0;
  sh->kind[0] = sh->msg[0] = 0;
  sh->used = 0;
  sh->overrun = 0;
  sh->nblocks = sh->nsteps = 0;
  sh->text_len = 0;
  sh->text[0] = 0;
}

/* Runs the case in this process. */
static void prop__run_here(const prop_def_t *def, const uint8_t *b, size_t n, bool reporting) {
  prop__clear();
  prop_t p = {.def = def, .buf = b, .len = n, .reporting = reporting, .sh = prop__sh};
  def->fn(&p);
  if (!prop__sh->failed) {
    char why[256] = "";
    if (!prop_env_reset(why, sizeof why)) prop_fail(&p, "reset", "after the case: %s", why);
  }
  prop__sh->done = 1;
}

enum { prop__child_timeout = 20 }; /* seconds a case may take in a child: "hang" */

/* Runs the case in a forked child and classifies how it ended. quiet: the child's output
 * goes nowhere (shrink candidates). Returns whether the case failed. */
static bool prop__run_child(const prop_def_t *def, const uint8_t *b, size_t n, bool reporting,
                            bool quiet) {
  prop__clear();
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    perror("prop: fork");
    exit(2);
  }
  if (pid == 0) {
    if (quiet) {
      int fd = open("/dev/null", O_WRONLY);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
    }
    alarm(prop__child_timeout);
    prop__run_here(def, b, n, reporting);
    fflush(stdout);
    _exit(0);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  prop_shared_t *sh = prop__sh;
  if (sh->done) return sh->failed != 0;
  /* Died inside the case: the kind says how, so that shrinking keeps to one way. */
  sh->failed = 1;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
    snprintf(sh->kind, sizeof sh->kind, "hang");
    snprintf(sh->msg, sizeof sh->msg, "the case ran longer than %d s", prop__child_timeout);
  } else if (WIFSIGNALED(status)) {
    snprintf(sh->kind, sizeof sh->kind, "crash:%s", sigabbrev_np(WTERMSIG(status))
                                                         ? sigabbrev_np(WTERMSIG(status))
                                                         : "signal");
    snprintf(sh->msg, sizeof sh->msg,
             "the case died of signal %d (%s): an hz misuse or assertion report, or a "
             "fault, printed above",
             WTERMSIG(status), strsignal(WTERMSIG(status)));
  } else {
    snprintf(sh->kind, sizeof sh->kind, "crash:exit%d", WEXITSTATUS(status));
    snprintf(sh->msg, sizeof sh->msg,
             "the case ended the process with exit status %d: a sanitizer report, printed "
             "above",
             WEXITSTATUS(status));
  }
  return true;
}

/* ---- seeds -------------------------------------------------------------------------------- */

static uint64_t prop__mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static void prop__fill(uint64_t seed, uint8_t *b, size_t n) {
  uint64_t s = seed;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = prop__mix(s++);
    for (size_t k = 0; k < 8 && i + k < n; k++) b[i + k] = (uint8_t)(v >> (8 * k));
  }
}

static uint64_t prop__hash(const uint8_t *b, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

static bool prop__parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s || *s == '-') return false;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end) return false;
  *out = v;
  return true;
}

/* ---- shrinking -------------------------------------------------------------------------- */

typedef struct {
  const prop_def_t *def;
  char kind[48];
  uint8_t *best;
  size_t nbest;
  prop_block_t blocks[PROP_MAX_DRAWS];
  unsigned nblocks;
  unsigned runs, accepted;
  double deadline;
  uint64_t tried[8192]; /* hashes of candidates already run */
} prop_shrink_t;

static double prop__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Shortlex: fewer bytes, or as many and lexicographically lower. */
static bool prop__smaller(const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
  if (na != nb) return na < nb;
  return memcmp(a, b, na) < 0;
}

/* Keeps the run just made of b as the best: the bytes it read, with any it read past the
 * end written out as the zeros it saw, so every draw of the best is a whole block. */
static void prop__take(prop_shrink_t *s, const uint8_t *b, size_t n) {
  size_t used = prop__sh->used < PROP_MAX_CHOICES ? prop__sh->used : PROP_MAX_CHOICES;
  memmove(s->best, b, used < n ? used : n);
  if (used > n) memset(s->best + n, 0, used - n);
  s->nbest = used;
  s->nblocks = 0;
  for (unsigned i = 0; i < prop__sh->nblocks; i++) {
    prop_block_t bl = prop__sh->blocks[i];
    if (bl.start >= used) break;
    if (bl.start + bl.len > used) bl.len = (uint32_t)(used - bl.start);
    s->blocks[s->nblocks++] = bl;
  }
}

/* Runs a candidate; keeps it when it fails the same way and is smaller. */
static bool prop__try(prop_shrink_t *s, const uint8_t *b, size_t n) {
  if (prop__now() > s->deadline) return false;
  if (!prop__smaller(b, n, s->best, s->nbest)) return false;
  uint64_t h = prop__hash(b, n) ^ n;
  uint64_t *slot = &s->tried[h % (sizeof s->tried / sizeof s->tried[0])];
  if (*slot == h) return false;
  *slot = h;
  s->runs++;
  if (!prop__run_child(s->def, b, n, false, true)) return false;
  /* A candidate that ran out of choices is not smaller, only cut short (its last draws
   * read zeros the shortlex order did not count). */
  if (prop__sh->overrun || strcmp(prop__sh->kind, s->kind) != 0) return false;
  prop__take(s, b, n);
  s->accepted++;
  return true;
}

static uint8_t prop__cand[PROP_MAX_CHOICES];

/* best with bytes [from, to) removed. */
static bool prop__try_delete(prop_shrink_t *s, size_t from, size_t to) {
  size_t n = 0;
  memcpy(prop__cand, s->best, from);
  n = from;
  memcpy(prop__cand + n, s->best + to, s->nbest - to);
  n += s->nbest - to;
  return prop__try(s, prop__cand, n);
}

/* best with block i's bytes replaced by the big-endian value v. */
static bool prop__try_value(prop_shrink_t *s, unsigned i, uint64_t v) {
  prop_block_t bl = s->blocks[i];
  memcpy(prop__cand, s->best, s->nbest);
  for (unsigned k = 0; k < bl.len; k++)
    prop__cand[bl.start + bl.len - 1 - k] = k < 8 ? (uint8_t)(v >> (8 * k)) : 0;
  return prop__try(s, prop__cand, s->nbest);
}

static uint64_t prop__value(const prop_shrink_t *s, unsigned i) {
  prop_block_t bl = s->blocks[i];
  uint64_t v = 0;
  for (unsigned k = 0; k < bl.len && k < 8; k++) v = v << 8 | s->best[bl.start + k];
  return v;
}

static void prop__shrink(prop_shrink_t *s) {
  bool progress = true;
  while (progress && prop__now() < s->deadline) {
    progress = false;
    /* Delete runs of draws, longest first: whole list elements go as a pair. */
    static const unsigned runs[] = {8, 4, 3, 2, 1};
    for (unsigned r = 0; r < sizeof runs / sizeof runs[0]; r++) {
      unsigned k = runs[r];
      for (unsigned i = s->nblocks >= k ? s->nblocks - k + 1 : 0; i-- > 0;) {
        if (i + k > s->nblocks) continue;
        size_t from = s->blocks[i].start, to = s->blocks[i + k - 1].start + s->blocks[i + k - 1].len;
        if (prop__try_delete(s, from, to)) progress = true;
      }
    }
    /* Each draw lowered: to zero, else by bisection on its value (a draw reduces its
     * value modulo its range, so lower is simpler). */
    for (unsigned i = 0; i < s->nblocks; i++) {
      uint64_t v = prop__value(s, i);
      if (v == 0) continue;
      if (prop__try_value(s, i, 0)) {
        progress = true;
        continue;
      }
      uint64_t lo = 1, hi = v; /* hi fails; find a smaller failing value */
      for (unsigned probes = 0; lo < hi && probes < 24 && i < s->nblocks; probes++) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (prop__try_value(s, i, mid)) {
          hi = mid;
          progress = true;
        } else {
          lo = mid + 1;
        }
      }
    }
    /* Sort: neighbouring draws of one width in ascending order. */
    for (unsigned i = 0; i + 1 < s->nblocks; i++) {
      prop_block_t a = s->blocks[i], b = s->blocks[i + 1];
      if (a.len != b.len || memcmp(s->best + a.start, s->best + b.start, a.len) <= 0) continue;
      memcpy(prop__cand, s->best, s->nbest);
      memcpy(prop__cand + a.start, s->best + b.start, a.len);
      memcpy(prop__cand + b.start, s->best + a.start, a.len);
      if (prop__try(s, prop__cand, s->nbest)) progress = true;
    }
  }
}

/* ---- reports and saved counterexamples -------------------------------------------------- */

typedef struct {
  const char *self;     /* argv[0] */
  const char *save_dir; /* --save */
  double shrink_time;
  bool no_shrink;
} prop_opts_t;

/* Where a counterexample is written: --save; under `bazel test` the test's undeclared
 * outputs; under `bazel run` the workspace's props/regressions; else ./props/regressions
 * when it exists, else the current directory. */
static const char *prop__save_dir(const prop_opts_t *o, char *buf, size_t n) {
  if (o->save_dir) return o->save_dir;
  const char *t = getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  if (t && *t) return t;
  const char *ws = getenv("BUILD_WORKSPACE_DIRECTORY");
  if (ws && *ws) {
    snprintf(buf, n, "%s/props/regressions", ws);
    return buf;
  }
  struct stat st;
  if (stat("props/regressions", &st) == 0 && S_ISDIR(st.st_mode)) return "props/regressions";
  return ".";
}

static void prop__hex(FILE *f, const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i % 32 == 0) fprintf(f, i ? "\nchoices" : "choices");
    fprintf(f, " %02x", b[i]);
  }
  if (n == 0) fprintf(f, "choices");
  fputc('\n', f);
}

/* Reruns the case in a child with its steps recorded, prints the report, saves it. */
static int prop__report(const prop_opts_t *o, const prop_def_t *def, const uint8_t *b, size_t n,
                        uint64_t seed, bool have_seed, const char *from, const prop_shrink_t *s,
                        size_t orig_len) {
  bool failed = prop__run_child(def, b, n, true, false);
  prop_shared_t *sh = prop__sh;
  printf("\nPROPERTY FAILED: %s\n  law:     %s\n", def->name, def->law);
  if (!failed) {
    printf("  (the shrunk case passed when rerun: the failure is not deterministic)\n");
  }
  printf("  failure: [%s] %s\n", sh->kind, sh->msg);
  if (have_seed) printf("  seed:    0x%016" PRIx64 "\n", seed);
  if (from) printf("  input:   %s\n", from);
  if (s)
    printf("  shrunk:  %zu -> %zu choice bytes in %u runs (%u kept)\n", orig_len, n, s->runs,
           s->accepted);
  printf("  counterexample (%u steps):\n%s", sh->nsteps, sh->text_len ? sh->text : "  (no steps)\n");

  char dirbuf[4096], path[4352];
  const char *dir = prop__save_dir(o, dirbuf, sizeof dirbuf);
  snprintf(path, sizeof path, "%s/%s-%08" PRIx64 ".ops", dir, def->name,
           prop__hash(b, n) & 0xffffffffu);
  FILE *f = fopen(path, "w");
  bool saved = f != NULL;
  if (!f) {
    printf("  not saved: cannot write %s: %s\n", path, strerror(errno));
  } else {
    fprintf(f, "# A counterexample of the property %s: %s\n", def->name, def->law);
    fprintf(f, "# failure: [%s] %s\n", sh->kind, sh->msg);
    fprintf(f, "# replay: bazel run //props:%s -- --replay props/regressions/%s\n", def->name,
            strrchr(path, '/') + 1);
    fprintf(f, "# steps (%u):\n", sh->nsteps);
    for (const char *l = sh->text; *l;) {
      const char *e = strchr(l, '\n');
      size_t len = e ? (size_t)(e - l) : strlen(l);
      fprintf(f, "#%.*s\n", (int)len, l);
      l += len + (e ? 1 : 0);
    }
    fprintf(f, "property %s\n", def->name);
    prop__hex(f, b, n);
    fclose(f);
    printf("  saved:   %s\n", path);
  }
  const char *name = strrchr(path, '/') + 1;
  size_t dl = strlen(dir);
  if (saved && (dl < 17 || strcmp(dir + dl - 17, "props/regressions") != 0))
    printf("  keep it: cp %s props/regressions/   (then bazel test replays it)\n", path);
  printf("  replay:  bazel run //props:%s -- --replay props/regressions/%s\n", def->name, name);
  if (have_seed) printf("  rerun:   bazel run //props:%s -- --seed 0x%016" PRIx64 "\n", def->name, seed);
  printf("HZPROP-FAILURE: %s kind=%s steps=%u bytes=%zu\n", def->name, sh->kind, sh->nsteps, n);
  fflush(stdout);
  return 1;
}

/* A failing case: shrink it (unless --no-shrink), report it, save it. */
static int prop__failing(const prop_opts_t *o, const prop_def_t *def, const uint8_t *b, size_t n,
                         uint64_t seed, bool have_seed, const char *from) {
  static prop_shrink_t s;
  static uint8_t best[PROP_MAX_CHOICES];
  memset(&s, 0, sizeof s);
  s.def = def;
  s.best = best;
  snprintf(s.kind, sizeof s.kind, "%s", prop__sh->kind);
  prop__take(&s, b, n);
  size_t orig = s.nbest;
  if (!o->no_shrink) {
    printf("%s: failed [%s]; shrinking (at most %.0f s)...\n", def->name, s.kind, o->shrink_time);
    fflush(stdout);
    s.deadline = prop__now() + o->shrink_time;
    prop__shrink(&s);
  }
  return prop__report(o, def, s.best, s.nbest, seed, have_seed, from, o->no_shrink ? NULL : &s,
                      orig);
}

/* ---- counterexample files ------------------------------------------------------------ */

/* Reads a saved .ops counterexample (property line and choices) or a raw input (any
 * other file: a libFuzzer crash of the _fuzz target). Returns its length or -1 with a
 * message. */
static long prop__read(const char *path, const prop_def_t *def, uint8_t *out, size_t cap,
                       char *err, size_t errn) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errn, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  size_t plen = strlen(path);
  bool ops = plen > 4 && strcmp(path + plen - 4, ".ops") == 0;
  if (!ops) {
    size_t n = fread(out, 1, cap, f);
    fclose(f);
    return (long)n;
  }
  char line[4096];
  long n = 0;
  bool named = false;
  unsigned lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (*s == '#' || *s == '\n' || *s == 0) continue;
    if (strncmp(s, "property ", 9) == 0) {
      char name[128] = "";
      sscanf(s + 9, "%127s", name);
      if (strcmp(name, def->name) != 0) {
        snprintf(err, errn, "%s is a counterexample of property '%s', not of '%s' (replay it with //props:%s)",
                 path, name, def->name, name);
        fclose(f);
        return -1;
      }
      named = true;
    } else if (strncmp(s, "choices", 7) == 0) {
      char *q = s + 7;
      for (;;) {
        while (*q == ' ' || *q == '\t') q++;
        if (*q == '\n' || *q == 0) break;
        unsigned v;
        int used = 0;
        if (sscanf(q, "%2x%n", &v, &used) != 1 || (size_t)n >= cap) {
          snprintf(err, errn, "%s:%u: a choices line holds two-digit hex bytes", path, lineno);
          fclose(f);
          return -1;
        }
        out[n++] = (uint8_t)v;
        q += used;
      }
    } else {
      snprintf(err, errn, "%s:%u: expected 'property <name>', 'choices <hex>' or a # comment",
               path, lineno);
      fclose(f);
      return -1;
    }
  }
  fclose(f);
  if (!named) {
    snprintf(err, errn, "%s has no 'property <name>' line: not a property counterexample", path);
    return -1;
  }
  return n;
}

static uint8_t prop__buf[PROP_MAX_CHOICES];

/* Replays one file; 0 passes, 1 fails, 2 unreadable. */
static int prop__replay_file(const prop_opts_t *o, const prop_def_t *def, const char *path) {
  char err[600];
  long n = prop__read(path, def, prop__buf, sizeof prop__buf, err, sizeof err);
  if (n < 0) {
    fprintf(stderr, "prop: %s\n", err);
    return 2;
  }
  if (!prop__run_child(def, prop__buf, (size_t)n, false, false)) {
    printf("%s: %s passes\n", def->name, path);
    return 0;
  }
  static uint8_t copy[PROP_MAX_CHOICES];
  memcpy(copy, prop__buf, (size_t)n);
  return prop__failing(o, def, copy, (size_t)n, 0, false, path);
}

static int prop__cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Replays a file, or every <property>-*.ops of a directory. */
static int prop__replay(const prop_opts_t *o, const prop_def_t *def, const char *arg) {
  struct stat st;
  if (stat(arg, &st) != 0) {
    fprintf(stderr, "prop: --replay %s: %s\n", arg, strerror(errno));
    return 2;
  }
  if (!S_ISDIR(st.st_mode)) return prop__replay_file(o, def, arg);
  DIR *d = opendir(arg);
  if (!d) {
    fprintf(stderr, "prop: --replay %s: %s\n", arg, strerror(errno));
    return 2;
  }
  char *names[1024];
  unsigned nn = 0;
  size_t pl = strlen(def->name);
  struct dirent *e;
  while ((e = readdir(d)) && nn < 1024) {
    size_t l = strlen(e->d_name);
    if (strncmp(e->d_name, def->name, pl) == 0 && e->d_name[pl] == '-' && l > 4 &&
        strcmp(e->d_name + l - 4, ".ops") == 0)
      names[nn++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, nn, sizeof names[0], prop__cmp_str);
  int worst = 0;
  for (unsigned i = 0; i < nn; i++) {
    char path[4352];
    snprintf(path, sizeof path, "%s/%s", arg, names[i]);
    int r = prop__replay_file(o, def, path);
    if (r > worst) worst = r;
    free(names[i]);
  }
  printf("%s: %u saved counterexample(s) in %s replayed\n", def->name, nn, arg);
  return worst;
}

/* ---- generation, and a crash during it ------------------------------------------------ */

/* Prepared before each case, so the crash handler only has to exec. */
static char *prop__reexec_argv[16];
static char prop__seed_arg[32];

static void prop__reexec(void) {
  execv("/proc/self/exe", prop__reexec_argv);
  _exit(3);
}

static void prop__on_crash(int sig) {
  static const char msg[] = "\nprop: the case crashed; rerunning it alone to shrink it\n";
  (void)sig;
  if (write(2, msg, sizeof msg - 1) < 0) _exit(3);
  prop__reexec();
}

void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static void prop__catch_crashes(bool on) {
  static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? prop__on_crash : SIG_DFL;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigaction(sigs[i], &sa, NULL);
  }
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(on ? prop__reexec : NULL);
}

static int prop__generate(const prop_opts_t *o, const prop_def_t *def, uint64_t run_seed,
                          uint64_t cases, double time_limit, char **reexec_tail) {
  printf("%s: %s\n%s: %" PRIu64 " cases from run seed 0x%016" PRIx64 "%s\n", def->name, def->law,
         def->name, cases, run_seed, time_limit > 0 ? " (time-bounded)" : "");
  fflush(stdout);
  /* The crash handler's command: this binary, this property, the case's seed. */
  unsigned a = 0;
  prop__reexec_argv[a++] = (char *)o->self;
  prop__reexec_argv[a++] = (char *)"--property";
  prop__reexec_argv[a++] = (char *)def->name;
  prop__reexec_argv[a++] = (char *)"--seed";
  prop__reexec_argv[a++] = prop__seed_arg;
  for (unsigned i = 0; reexec_tail[i] && a < 15; i++) prop__reexec_argv[a++] = reexec_tail[i];
  prop__reexec_argv[a] = NULL;
  prop__catch_crashes(true);
  double t0 = prop__now();
  uint64_t i = 0;
  for (; i < cases; i++) {
    if (time_limit > 0 && (i & 15) == 0 && prop__now() - t0 > time_limit) break;
    uint64_t seed = prop__mix(run_seed ^ prop__mix(i));
    snprintf(prop__seed_arg, sizeof prop__seed_arg, "0x%016" PRIx64, seed);
    prop__fill(seed, prop__buf, sizeof prop__buf);
    prop__run_here(def, prop__buf, sizeof prop__buf, false);
    if (prop__sh->failed) {
      printf("%s: case %" PRIu64 " (seed %s) failed [%s]: %s\n", def->name, i, prop__seed_arg,
             prop__sh->kind, prop__sh->msg);
      printf("%s: rerunning it alone to shrink it\n", def->name);
      fflush(stdout);
      prop__reexec(); /* a fresh process: this one's heap holds what the case left */
    }
    if ((i + 1) % 100000 == 0) {
      printf("%s: %" PRIu64 " cases passed (%.0f s)\n", def->name, i + 1, prop__now() - t0);
      fflush(stdout);
    }
  }
  prop__catch_crashes(false);
  printf("%s: OK, %" PRIu64 " cases passed in %.1f s\n", def->name, i, prop__now() - t0);
  return 0;
}

/* ---- the command line ---------------------------------------------------------------- */

static void prop__usage(FILE *f, const char *name) {
  fprintf(f,
          "usage: %s [flags]\n"
          "  Checks the property on generated cases; a failure is shrunk, printed and saved.\n"
          "  --cases N        cases to run (default: the build's, or $PROP_CASES)\n"
          "  --time S         stop generating after S seconds (0: no bound)\n"
          "  --run-seed S     seed of the whole run (default: from the clock; printed)\n"
          "  --seed S         rerun exactly one case (its seed, as a failure prints it)\n"
          "  --replay F|DIR   replay a saved counterexample, a raw input (a _fuzz crash), or\n"
          "                   every <property>-*.ops of a directory; repeatable\n"
          "  --shrink-time S  bound on shrinking (default 60)\n"
          "  --no-shrink      report a failing case as it is\n"
          "  --save DIR       where counterexamples are written (default: props/regressions\n"
          "                   of the workspace under bazel run)\n"
          "  --property P     which property (binaries holding several); --list names them\n",
          name);
}

int prop_main(int argc, char **argv, const prop_def_t *const *defs, const char *name) {
  prop_opts_t o = {.self = argv[0], .shrink_time = 60};
  uint64_t cases = 1000, run_seed = 0, seed = 0;
  bool have_seed = false, have_run_seed = false, cases_given = false;
  double time_limit = 0;
  const char *replays[64];
  unsigned nreplays = 0;
  const char *env = getenv("PROP_CASES");
  if (env && *env && !prop__parse_u64(env, &cases)) {
    fprintf(stderr, "prop: PROP_CASES='%s' is not a number of cases\n", env);
    return 2;
  }
  /* Flags passed on to the rerun of a failing case. */
  static char *tail[8];
  unsigned ntail = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool takes = strcmp(a, "--cases") == 0 || strcmp(a, "--seed") == 0 ||
                 strcmp(a, "--run-seed") == 0 || strcmp(a, "--time") == 0 ||
                 strcmp(a, "--replay") == 0 || strcmp(a, "--shrink-time") == 0 ||
                 strcmp(a, "--save") == 0 || strcmp(a, "--property") == 0;
    if (takes && !v) {
      fprintf(stderr, "prop: %s needs a value\n", a);
      return 2;
    }
    /* A path the user typed means the directory `bazel run` was run from. */
    if (v && (strcmp(a, "--replay") == 0 || strcmp(a, "--save") == 0)) {
      static char resolved[66][HZF_PATH_MAX]; /* at most 64 replays and a save */
      static unsigned nresolved;
      if (nresolved == 66) {
        fprintf(stderr, "prop: too many paths (at most 64 --replay)\n");
        return 2;
      }
      char *buf = resolved[nresolved++];
      const char *path = hzf_user_path(v, buf, HZF_PATH_MAX);
      if (!path) {
        fprintf(stderr, "prop: %s %s: the path is too long\n", a, v);
        return 2;
      }
      v = path;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      prop__usage(stdout, argv[0]);
      return 0;
    } else if (strcmp(a, "--list") == 0) {
      for (unsigned k = 0; defs[k]; k++) printf("%-24s %s\n", defs[k]->name, defs[k]->law);
      return 0;
    } else if (strcmp(a, "--cases") == 0) {
      if (!prop__parse_u64(v, &cases)) {
        fprintf(stderr, "prop: --cases '%s' is not a number of cases\n", v);
        return 2;
      }
      cases_given = true;
    } else if (strcmp(a, "--seed") == 0 || strcmp(a, "--run-seed") == 0) {
      uint64_t x;
      if (!prop__parse_u64(v, &x)) {
        fprintf(stderr, "prop: %s '%s' is not a 64-bit seed (decimal, or hex as 0x...)\n", a, v);
        return 2;
      }
      if (strcmp(a, "--seed") == 0) seed = x, have_seed = true;
      else run_seed = x, have_run_seed = true;
    } else if (strcmp(a, "--time") == 0 || strcmp(a, "--shrink-time") == 0) {
      char *end = NULL;
      double d = strtod(v, &end);
      if (!*v || *end || d < 0) {
        fprintf(stderr, "prop: %s '%s' is not a number of seconds\n", a, v);
        return 2;
      }
      if (strcmp(a, "--time") == 0) {
        time_limit = d;
      } else {
        o.shrink_time = d;
        if (ntail + 2 < 8) tail[ntail++] = (char *)a, tail[ntail++] = (char *)v;
      }
    } else if (strcmp(a, "--replay") == 0) {
      if (nreplays < 64) replays[nreplays++] = v;
    } else if (strcmp(a, "--save") == 0) {
      o.save_dir = v;
      if (ntail + 2 < 8) tail[ntail++] = (char *)a, tail[ntail++] = (char *)v;
    } else if (strcmp(a, "--property") == 0) {
      name = v;
    } else if (strcmp(a, "--no-shrink") == 0) {
      o.no_shrink = true;
      if (ntail + 1 < 8) tail[ntail++] = (char *)a;
    } else {
      fprintf(stderr, "prop: unknown flag '%s' (--help lists them)\n", a);
      return 2;
    }
    if (takes) i++;
  }
  tail[ntail] = NULL;
  if (!name) {
    fprintf(stderr, "prop: which property? --property <name> (--list names them)\n");
    return 2;
  }
  const prop_def_t *def = prop_find(defs, name);
  if (!def) {
    fprintf(stderr, "prop: no property '%s' (--list names them)\n", name);
    return 2;
  }
  prop__shared_init();
  if (o.save_dir) {
    struct stat st;
    if (stat(o.save_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
      fprintf(stderr, "prop: --save %s: not a directory\n", o.save_dir);
      return 2;
    }
  }
  /* The heap's page source must be in place before hz's first allocation. */
  prop_env_init();

  if (nreplays) {
    int worst = 0;
    for (unsigned i = 0; i < nreplays; i++) {
      int r = prop__replay(&o, def, replays[i]);
      if (r > worst) worst = r;
    }
    /* Replays alone, unless cases are asked for too (the tests do both). */
    if (worst || (!have_seed && !cases_given)) return worst;
  }
  if (have_seed) {
    prop__fill(seed, prop__buf, sizeof prop__buf);
    if (!prop__run_child(def, prop__buf, sizeof prop__buf, false, false)) {
      printf("%s: the case of seed 0x%016" PRIx64 " passes\n", def->name, seed);
      return 0;
    }
    return prop__failing(&o, def, prop__buf, sizeof prop__buf, seed, true, NULL);
  }
  if (!have_run_seed) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    run_seed = prop__mix((uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^
                         (uint64_t)getpid() << 32);
  }
  return prop__generate(&o, def, run_seed, cases, time_limit, tail);
}

/* ---- libFuzzer ---------------------------------------------------------------------------- */

int prop_fuzz_one(const prop_def_t *def, const uint8_t *data, size_t size) {
  static bool ready;
  if (!ready) {
    ready = true;
    prop__shared_init();
    prop_env_init();
  }
  if (size > PROP_MAX_CHOICES) size = PROP_MAX_CHOICES;
  prop__run_here(def, data, size, false);
  if (prop__sh->failed) {
    fprintf(stderr,
            "\nPROPERTY FAILED: %s\n  law:     %s\n  failure: [%s] %s\n"
            "  shrink and read it: bazel run //props:%s -- --replay <the crash file libFuzzer "
            "names below>\nHZPROP-FAILURE: %s kind=%s\n",
            def->name, def->law, prop__sh->kind, prop__sh->msg, def->name, def->name,
            prop__sh->kind);
    abort();
  }
  return 0;
}
