/* The property engine's command line (prop_main): generation of cases from a run seed
 * (a crash during it re-executes the binary on the case's seed), `--seed` and `--replay`
 * runs in a child, the report of a failing case and its saved counterexample.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz/hzf_input.h"
#include "props/prop_case.h"

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

static bool prop__parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s || *s == '-') return false;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end) return false;
  *out = v;
  return true;
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
