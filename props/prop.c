/* The property engine (prop.h): choice sequences, draws, the report API and the case
 * runner. The shrinker is prop_shrink.c; generation, replay and the command line are
 * prop_cli.c.
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
#include "props/prop_case.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fuzz/hzf_ops.h"

prop_shared_t *prop__sh;

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

void prop__shared_init(void) {
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
void prop__run_here(const prop_def_t *def, const uint8_t *b, size_t n, bool reporting) {
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
bool prop__run_child(const prop_def_t *def, const uint8_t *b, size_t n, bool reporting,
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

uint64_t prop__hash(const uint8_t *b, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

double prop__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
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
