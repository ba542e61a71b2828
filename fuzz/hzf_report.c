/* The report audit: the path a finding leaves hz by still works.
 *
 * The harness installs an error hook, so every misuse report it judges comes through the
 * hook and never reaches hz's own default path: one line on stderr, then abort(). And a
 * correct core never fails an internal assertion, so hz_panic never runs at all. Yet
 * both are how a finding reaches its user: an internal assertion that printed nothing,
 * or returned instead of aborting, would let every fuzz target go on past a broken heap
 * without a sign. So once per process, at the first check op, with every worker parked,
 * a forked child takes each path for real, its stderr a pipe to this process: it
 * reports a misuse chosen by the op (a freed, interior or never-allocated pointer given
 * to free, realloc or malloc_usable_size) through a hook that copies the report's line,
 * then again without a hook; or it fails an assertion, through hz_panic, with a file,
 * line and condition chosen by the op. The child must die of
 * SIGABRT having written exactly the line the hook saw (docs/ARCHITECTURE.md, misuse
 * reports), or the documented assertion line: "hz: internal assertion failed at
 * <file>:<line>: <condition>", cut at 238 characters, then a newline.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/api.h"
#include "fuzz/hzf_exec.h"

#define HZF_REPORT_LINE 238u /* the longest report line, without its newline */

/* The hook's copy of the line, in the child. */
static char hzf__hooked[HZF_CHILD_OUT];

static void hzf__copy_hook(const hz_fault_t *f, void *ctx) {
  (void)ctx;
  snprintf(hzf__hooked, sizeof hzf__hooked, "%s", f->message);
}

/* The misuse of pointer p by call `call` (0 free, 1 realloc, 2 malloc_usable_size). */
static void hzf__misuse(unsigned call, void *p) {
  if (call == 0) hz_free(p);
  else if (call == 1) (void)!hz_realloc(p, 64);
  else (void)!hz_usable_size(p);
}

/* A pointer hz must report, of the kind `how` names: freed, inside a block, or in the
 * arena but in no block. (Not one outside the arena: the shim hands those to the next
 * allocator, whose own report is not hz's to judge.) */
static void *hzf__bad_pointer(unsigned how, size_t size) {
  unsigned char *p = hz_malloc(size);
  if (!p) return NULL;
  switch (how % 3) {
    case 0: hz_free(p); return p;
    case 1: return p + 16;
    default: hz_free(p); return (unsigned char *)hz_arena.base + ((size_t)1 << 36);
  }
}

typedef struct {
  unsigned pick;
  const char *file, *cond;
  int line;
} hzf__provoke_t;

/* The child: provokes the report, writes what the hook saw, then takes the default path.
 * It never returns: a path that came back exits 3. */
static void hzf__child(void *arg, int out) {
  const hzf__provoke_t *a = arg;
  unsigned pick = a->pick;
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGABRT, &dfl, NULL); /* not the engine's crash handler: no crash file */
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);
  if (dup2(out, 2) < 0) _exit(4);
  if (pick % 2 == 0) {
    hz_panic(a->file, a->line, a->cond);
  } else {
    unsigned call = pick / 2 % 3;
    void *p = hzf__bad_pointer(pick / 6, (size_t)16 << (pick / 24 % 14));
    if (!p) _exit(5);
    hz_set_error_hook(hzf__copy_hook, NULL);
    hzf__misuse(call, p);
    if (!hzf__hooked[0]) _exit(6);
    size_t n = strlen(hzf__hooked);
    hzf__hooked[n] = '\n';
    if (write(2, hzf__hooked, n + 1) != (ssize_t)(n + 1)) _exit(4);
    hz_set_error_hook(NULL, NULL);
    hzf__misuse(call, p);
  }
  _exit(3);
}

/* A seeded build announces its bug's first trigger on stderr (hz_seed_bug_log), and the
 * child's own calls may be that trigger: an announcement, not a report, so not judged. */
static void hzf__drop_seed_bug_lines(hzf_child_t *r) {
  for (char *at = r->out; (at = strstr(at, "hz-seed-bug: ")) != NULL;) {
    if (at != r->out && at[-1] != '\n') {
      at++;
      continue;
    }
    char *end = strchr(at, '\n');
    end = end ? end + 1 : r->out + r->len;
    memmove(at, end, (size_t)(r->out + r->len - end) + 1);
    r->len -= (size_t)(end - at);
  }
}

/* Not in the trace when it passes, and not in the coverage: it runs once per process, and
 * an input's trace and the fuzzer's feedback must not depend on which inputs ran before
 * it in the same process (props: replay_determinism). */
HZF_NO_COVERAGE void hzf_op_report_audit(hzf_ctx_t *c) {
  static bool done;
  if (done || hzf_free_running(c)) return;
  unsigned pick = c->op->pick | (unsigned)c->op->sel << 8;
  /* An assertion's where and what, of every length up to past the line's end. */
  static const char *const files[] = {"core/slab.c", "core/a/very/long/path/of/a/file.c"};
  char cond[300];
  size_t cond_len = (size_t)(pick * 37u) % (sizeof cond - 1);
  for (size_t i = 0; i < cond_len; i++) cond[i] = (char)('a' + (pick + i) % 26);
  cond[cond_len] = 0;
  hzf__provoke_t a = {pick, files[pick / 2 % 2], cond, (int)(pick * 131u % 100000u)};
  static hzf_child_t r;
  if (!hzf_run_child(c, hzf__child, &a, &r)) return; /* no child: the next check op tries */
  done = true;
  hzf__drop_seed_bug_lines(&r);
  const char *what = pick % 2 == 0 ? "an internal assertion" : "a misuse report";
  if (r.stuck) {
    hzf_fail(c, "report-audit", "the report and the abort", "%s: %s", what, r.stuck);
    return;
  }
  char want[HZF_CHILD_OUT];
  if (pick % 2 == 0) {
    int n = snprintf(want, sizeof want, "hz: internal assertion failed at %s:%d: %s", a.file,
                     a.line, cond);
    if (n > (int)HZF_REPORT_LINE) want[HZF_REPORT_LINE] = 0;
    strcat(want, "\n");
  } else {
    /* The line the hook saw, and the same line again from the default path. */
    const char *nl = memchr(r.out, '\n', r.len);
    size_t first = nl ? (size_t)(nl - r.out) + 1 : 0;
    if (first == 0 || first > HZF_REPORT_LINE + 1) {
      snprintf(want, sizeof want, "a report line of at most %u characters, twice", HZF_REPORT_LINE);
    } else {
      memcpy(want, r.out, first);
      memcpy(want + first, r.out, first);
      want[2 * first] = 0;
    }
  }
  bool aborted = WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT;
  if (!aborted || strcmp(r.out, want) != 0) {
    char how[64];
    if (WIFSIGNALED(r.status)) snprintf(how, sizeof how, "died of signal %d", WTERMSIG(r.status));
    else snprintf(how, sizeof how, "exited %d", WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1);
    hzf_fail(c, "report-audit", want, "%s: the child %s%s, having written \"%s\"", what, how,
             aborted ? "" : " (expected SIGABRT)", r.out);
  }
}
