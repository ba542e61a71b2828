/* The op language: target profiles, the decoder, and the text form that round-trips.
 * The meaning of each field is documented in hzf_ops.h and docs/FUZZING.md. */
#include "fuzz/hzf_ops.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/hz_debug.h"

/* Kind order: MALLOC CALLOC MEMALIGN REALLOC FREE USABLE WRITE SLL_POP SLL_PUSH
 * SLL_SPLICE SLL_DRAIN FLUSH EXIT REUSE FOREIGN INTERIOR DOUBLE_FREE STALE CLASSIFY CHECK
 * EDGE OOM FILL FORK.
 * Each sums to at most 256, so every kind with a weight owns at least one k byte. */
const hzf_profile_t hzf_profile_tls_sll = {
    "tls_sll", {30, 0, 0, 6, 30, 4, 6, 16, 16, 12, 12, 6, 4, 6, 0, 2, 4, 2, 0, 3, 2, 2, 8, 0, 3}, 1, 4};
const hzf_profile_t hzf_profile_alloc = {
    "alloc", {24, 6, 8, 12, 24, 6, 6, 4, 4, 2, 2, 4, 2, 3, 4, 4, 4, 3, 3, 2, 8, 5, 3, 1, 3}, 1, 4};
const hzf_profile_t hzf_profile_realloc = {
    "realloc", {14, 4, 4, 40, 10, 8, 8, 0, 0, 0, 0, 2, 0, 2, 2, 4, 2, 2, 0, 2, 6, 5, 1, 0, 2}, 1, 2};
const hzf_profile_t hzf_profile_reuse = {
    "reuse", {24, 2, 4, 6, 20, 4, 4, 2, 2, 0, 2, 6, 3, 14, 0, 2, 6, 10, 6, 3, 3, 3, 4, 1, 4}, 1, 4};
const hzf_profile_t hzf_profile_ptag = {
    "ptag", {16, 2, 8, 4, 10, 4, 2, 0, 0, 0, 0, 2, 2, 4, 10, 10, 4, 8, 24, 2, 6, 2, 2, 0, 2}, 1, 3};
const hzf_profile_t hzf_profile_mt = {
    "mt", {24, 2, 2, 8, 28, 2, 4, 2, 2, 0, 2, 6, 10, 4, 0, 0, 2, 0, 2, 2, 3, 3, 3, 2, 5}, 2, 4};
/* The preload shim's entry points (hzf_api.h): the calls whose paths are the shim's own
 * weigh more (calloc and realloc fallbacks, valloc and pvalloc, foreign routing, OOM),
 * the TLS list ops that bypass every entry point nothing. */
const hzf_profile_t hzf_profile_shim = {
    "shim", {20, 10, 10, 16, 24, 6, 4, 0, 0, 0, 0, 4, 2, 2, 10, 4, 4, 3, 2, 2, 10, 10, 2, 2, 2}, 1, 4};

const hzf_profile_t *const hzf_profiles[] = {
    &hzf_profile_tls_sll, &hzf_profile_alloc, &hzf_profile_realloc, &hzf_profile_reuse,
    &hzf_profile_ptag,    &hzf_profile_mt,    &hzf_profile_shim,    NULL,
};

static const char *const hzf__kind_names[HZF_KIND_COUNT] = {
    "malloc",    "calloc",  "memalign", "realloc",  "free",        "usable",  "write",
    "sll_pop",   "sll_push", "sll_splice", "sll_drain", "flush",   "exit",    "reuse",
    "foreign",   "interior", "double_free", "stale",  "classify",  "check",
    "edge",      "oom",      "fill",     "fork",    "race",
};

const char *hzf_kind_name(unsigned kind) {
  return kind < HZF_KIND_COUNT ? hzf__kind_names[kind] : "?";
}

const hzf_profile_t *hzf_profile_find(const char *name) {
  size_t n = strlen(name);
  if (n > 7 && strcmp(name + n - 7, "_fuzzer") == 0) n -= 7;
  for (unsigned i = 0; hzf_profiles[i]; i++)
    if (strlen(hzf_profiles[i]->name) == n && strncmp(hzf_profiles[i]->name, name, n) == 0)
      return hzf_profiles[i];
  return NULL;
}

/* k maps to the kind whose cumulative weight range holds k * total / 256. */
unsigned hzf_kind_of_byte(const hzf_profile_t *p, uint8_t k) {
  unsigned total = 0;
  for (unsigned i = 0; i < HZF_KIND_COUNT; i++) total += p->weights[i];
  unsigned x = (unsigned)k * total / 256u, cum = 0;
  for (unsigned i = 0; i < HZF_KIND_COUNT; i++) {
    cum += p->weights[i];
    if (x < cum) return i;
  }
  return HZF_MALLOC; /* unreachable while some weight is non-zero */
}

/* base - 1, base or base + 1 by k % 3: the sizes either side of a boundary. Never 0 and
 * never past SIZE_MAX: a wrapped size would be an impossible request, not a boundary. */
static size_t hzf__around(size_t base, unsigned k) {
  size_t s = base + k % 3;
  return s > 1 ? s - 1 : 1;
}

size_t hzf_size_of(unsigned mode, unsigned arg) {
  switch (mode & 3) {
    case 0: { /* a class boundary, +-3: where rounding bugs live */
      unsigned nc = hz_size_class_count(), cls = (arg & 0xff) % (nc + 1);
      size_t base = cls < nc ? hz_size_class_size(cls) : hz_large_threshold();
      long s = (long)base + (long)((arg >> 8) % 7) - 3;
      return s < 0 ? 0 : (size_t)s;
    }
    case 1: return arg % 257;
    case 2: { /* Any slab size, two ways, so that no size a program can ask for is rare:
               * even args pick a 16-byte granule up to 4 KiB uniformly, then a byte
               * in it (each granule once in 514 sizes of this mode: a wrong entry of a
               * size-to-class table sits in one granule between two class boundaries);
               * odd args pick a power-of-two band [2^(b-1), 2^b) of 0..64 KiB, then a
               * size inside it (the larger sizes, scaled). A uniform arg asked for a
               * given small granule once in 4 096. */
      unsigned a = arg >> 1; /* < 32768 */
      if (!(arg & 1)) {
        unsigned g = a % 257, back = (a / 257) % 16;
        return g ? (size_t)16 * g - back : 0;
      }
      unsigned band = a % 17, per = a / 17; /* per < 1928 */
      if (band == 0) return 0;
      size_t lo = (size_t)1 << (band - 1);
      return lo + (lo <= 1928 ? per % lo : (size_t)per * lo / 1928);
    }
    default: { /* Large, two ways. Below 2^15, any 2 KiB step up to 4 MiB past the
                * threshold. From 2^15, a multiple of a page, a slab or half a SuperSlab,
                * -1, exactly or +1: where a block stops or starts needing one more unit
                * of what the allocator hands out (a page of usable size, a slab, a
                * SuperSlab of extent, half an extent for a shrink), and a step uniform
                * in 2 KiB meets an exact multiple of 2 MiB once in a thousand sizes.
                * Both stay within about 4 MiB: every page of a calloc'd or moved block
                * costs a fault, and a 3-SuperSlab extent is already a multi-unit one. */
      if (arg < 0x8000) return hz_large_threshold() + 1 + (size_t)(arg % 2048) * 2048;
      unsigned a = arg & 0x7fff, unit = (a / 3) % 3, k = a / 9; /* k < 3641 */
      size_t base = unit == 0 ? (1 + k % 1024) * HZ_PAGE_SIZE
                  : unit == 1 ? (1 + k % 32) * HZ_SLAB_SIZE
                              : (1 + k % 4) * (HZ_SUPERSLAB_SIZE / 2);
      return hzf__around(base, a);
    }
  }
}

size_t hzf_realloc_relative(size_t old, unsigned sel, unsigned arg) {
  size_t d = arg % 4096u;
  if (arg < 0x8000) return (sel & 16) ? (old > d ? old - d : 1) : old + d;
  /* Geometric, as a growing array reallocates: twice or half the old size, -1, exactly
   * or +1. Doubling and halving keep a block's size on the grid it started on, so a
   * block of a page, a slab or a SuperSlab multiple reaches the next multiple exactly,
   * and half the old size is where "shrink in place" policies draw their line. A block
   * stops doubling past 4 MiB: an input of doublings would otherwise copy gigabytes. */
  size_t base = (sel & 16) ? old / 2 : old <= ((size_t)4 << 20) ? old * 2 : old;
  return hzf__around(base, (unsigned)d);
}

int hzf_size_freed(unsigned mode, unsigned arg) {
  return (mode & 3) == 0 && (arg >> 14) == 3 ? (int)(arg & 3) : -1;
}

int hzf_exit_is_real(unsigned sel) { return (sel & 7) == 0; }
int hzf_fork_is_real(unsigned sel) { return ((sel >> 2) & 15) == 0; }

unsigned hzf_burst_of(unsigned sel) { return (sel & 4) ? 2u << ((sel >> 3) & 7) : 1u; }
unsigned hzf_calloc_burst_of(unsigned pick) { return (pick & 0x80) ? 2u << ((pick >> 4) & 7) : 1u; }
unsigned hzf_steady_width(unsigned arg) { return 1 + arg % HZ_SLL_MIN_COUNT; }
unsigned hzf_sweep_order(unsigned arg) { return (arg >> 3) % 3; }
const char *hzf_sweep_order_name(unsigned order) {
  static const char *const names[3] = {"last first", "first first", "evens first"};
  return names[order % 3];
}

void hzf_decode(const hzf_profile_t *p, const uint8_t *data, size_t size, hzf_program_t *out) {
  unsigned span = (unsigned)(p->max_threads - p->min_threads) + 1;
  out->profile = p;
  out->nthreads = p->min_threads + (size ? data[0] % span : 0);
  out->nops = 0;
  if (size == 0) return;
  data++, size--;
  for (size_t at = 0; at < size && out->nops < HZF_MAX_OPS; at += HZF_OP_BYTES) {
    uint8_t b[HZF_OP_BYTES] = {0};
    memcpy(b, data + at, size - at < HZF_OP_BYTES ? size - at : HZF_OP_BYTES);
    hzf_op_t *op = &out->ops[out->nops++];
    op->kind = (uint8_t)hzf_kind_of_byte(p, b[0]);
    op->thread = (uint8_t)((b[1] & 3u) % out->nthreads);
    op->sel = b[1] >> 2;
    op->pick = b[2];
    op->arg = (uint16_t)(b[3] | b[4] << 8);
  }
}

static const char *const hzf__call_names[4] = {"free", "realloc", "usable_size", "free"};
static const char *const hzf__foreign_names[8] = {
    "libc-malloc", "stack", "global", "mmap", "NULL", "arena-unused", "rodata", "wild"};
/* The foreign op's pointer source, with the arena edge its arg picks (hzf_run_ops.c). */
static const char *hzf__foreign_name(unsigned pick, unsigned arg) {
  static const char *const wild[3] = {"wild", "arena-end", "arena-start-16"};
  if (pick % 8 == 5) return arg & 1 ? "arena-last-granule" : "arena-last-page";
  if (pick % 8 == 7) return wild[arg % 3];
  return hzf__foreign_names[pick % 8];
}
static const char *const hzf__classify_names[8] = {
    "live", "interior", "misaligned", "foreign", "stale", "arena-unused", "live", "interior"};
static const char *const hzf__free_which[4] = {"any", "other-thread's", "own", "newest"};
static const char *const hzf__reuse_scope[4] = {"class", "all-small", "own", "everything"};
static const char *const hzf__align_fn[4] = {"aligned_alloc", "memalign", "posix_memalign",
                                             "posix_memalign"};

/* "100 B", or "the size of freed[-k]" for the freed-size mode. */
static const char *hzf__size_text(unsigned sel, unsigned arg, unsigned divide, char *buf, size_t n) {
  int back = hzf_size_freed(sel, arg);
  if (back >= 0) snprintf(buf, n, "%ssize of freed[-%d]%s", divide > 1 ? "(" : "", back,
                          divide > 1 ? ")/n" : "");
  else snprintf(buf, n, "%zu B", hzf_size_of(sel, arg) / divide);
  return buf;
}

int hzf_race_point_of(unsigned sel) {
  return (sel & 7) < HZ_RACE_POINT_COUNT ? (int)(sel & 7) : -1;
}
unsigned hzf_race_step_of(unsigned sel) { return (sel >> 3) % HZF_RACE_STEPS; }
const char *hzf_race_step_name(unsigned sel) {
  static const char *const names[HZF_RACE_STEPS] = {
      "frees and publishes", "frees", "flushes", "frees and exits", "exits",
      "allocates and frees"};
  return names[hzf_race_step_of(sel)];
}

void hzf_describe(const hzf_program_t *prog, unsigned i, char *buf, size_t n) {
  char sz[48];
  const hzf_op_t *o = &prog->ops[i];
  unsigned sel = o->sel, nc = hz_size_class_count();
  bool shim = prog->profile == &hzf_profile_shim;
  int k = snprintf(buf, n, "t%u %s ", o->thread, hzf_kind_name(o->kind));
  if (k < 0 || (size_t)k >= n) return;
  buf += k, n -= (size_t)k;
  switch (o->kind) {
    case HZF_MALLOC:
      snprintf(buf, n, "%s x%u", hzf__size_text(sel, o->arg, 1, sz, sizeof sz), hzf_burst_of(sel));
      break;
    case HZF_CALLOC:
      if (sel & 32) snprintf(buf, n, "overflowing nmemb*size (expect NULL, ENOMEM)");
      else snprintf(buf, n, "n=%u x %s x%u", 1 + ((sel >> 2) & 7),
                    hzf__size_text(sel, o->arg, 1 + ((sel >> 2) & 7), sz, sizeof sz),
                    hzf_calloc_burst_of(o->pick));
      break;
    case HZF_MEMALIGN:
      if (shim && ((sel >> 2) & 3) == 3) { /* the shim's page-aligned calls (hzf_run_ops.c) */
        snprintf(buf, n, "%s size %s", (sel & 16) ? "pvalloc" : "valloc",
                 hzf__size_text(sel, o->arg, 1, sz, sizeof sz));
        break;
      }
      snprintf(buf, n, "%s align %s2^%u size %s", hzf__align_fn[(sel >> 2) & 3],
               (sel & 16) ? "invalid near " : "", o->pick % 23,
               hzf__size_text(sel, o->arg, 1, sz, sizeof sz));
      break;
    case HZF_REALLOC:
      if (sel & 32) snprintf(buf, n, "NULL -> %s", hzf__size_text(sel, o->arg, 1, sz, sizeof sz));
      else if (sel & 4) snprintf(buf, n, "live[%u] -> 0 B", o->pick);
      else if ((sel & 8) && o->arg >= 0x8000) {
        static const char *const off[3] = {" - 1 B", "", " + 1 B"};
        snprintf(buf, n, "live[%u] -> old %s%s", o->pick, (sel & 16) ? "/ 2" : "* 2",
                 off[o->arg % 4096u % 3u]);
      } else if (sel & 8) {
        snprintf(buf, n, "live[%u] -> old %c %u B", o->pick, (sel & 16) ? '-' : '+', o->arg % 4096u);
      } else snprintf(buf, n, "live[%u] -> %s", o->pick, hzf__size_text(sel, o->arg, 1, sz, sizeof sz));
      break;
    case HZF_FREE:
      snprintf(buf, n, "%s live[%u] x%u%s", hzf__free_which[sel & 3], o->pick, hzf_burst_of(sel),
               hzf_free_races(o->arg) ? ", racing a free of a block of the same slab" : "");
      break;
    case HZF_USABLE: snprintf(buf, n, "live[%u]", o->pick); break;
    case HZF_WRITE: snprintf(buf, n, "live[%u] fill 0x%02x", o->pick, o->arg & 0xff); break;
    case HZF_SLL_POP: snprintf(buf, n, "class %u x%u", o->pick % nc, 1 + o->arg % 64u); break;
    case HZF_SLL_PUSH: snprintf(buf, n, "own-slab live[%u] x%u", o->pick, 1 + o->arg % 64u); break;
    case HZF_SLL_SPLICE:
      snprintf(buf, n, "class %u take %u%s", o->pick % nc, 1 + o->arg % 256u,
               (sel & 1) ? " reversed" : "");
      break;
    case HZF_SLL_DRAIN:
      if (sel & 1) snprintf(buf, n, "class %u all", o->pick % nc);
      else snprintf(buf, n, "class %u n %u", o->pick % nc, o->arg % 512u);
      break;
    case HZF_REUSE:
      snprintf(buf, n, "%s", hzf__reuse_scope[sel & 3]);
      if ((sel & 3) == 0) snprintf(buf + strlen(buf), n - strlen(buf), " %u", o->pick % nc);
      snprintf(buf + strlen(buf), n - strlen(buf), ", then re-carve class %u",
               (o->pick % nc + 1 + o->arg % (nc - 1)) % nc);
      break;
    case HZF_FOREIGN:
      if (shim && o->pick % 8 != 4 && o->pick % 8 != 5) /* the shim routes what is not hz's */
        snprintf(buf, n, "%s(a next-allocator block)",
                 (sel & 3) == 3 ? "cfree" : hzf__call_names[sel & 3]);
      else
        snprintf(buf, n, "%s(%s)", hzf__call_names[sel & 3], hzf__foreign_name(o->pick, o->arg));
      break;
    case HZF_INTERIOR:
      if (sel & 8)
        snprintf(buf, n, "%s(%sthe slot %u blocks past live[%u])", hzf__call_names[sel & 3],
                 (sel & 4) ? "a misaligned address in " : "", 1 + o->arg % 8u, o->pick);
      else
        snprintf(buf, n, "%s(%s of live[%u], arg %u)", hzf__call_names[sel & 3],
                 (sel & 4) ? "misaligned" : "interior", o->pick, o->arg);
      break;
    case HZF_DOUBLE_FREE:
      snprintf(buf, n, "free live[%u] then %s it", o->pick, hzf__call_names[sel & 3]);
      break;
    case HZF_STALE:
      snprintf(buf, n, "%s(freed[%u])", hzf__call_names[sel & 3], o->pick);
      break;
    case HZF_CLASSIFY:
      snprintf(buf, n, "%s (live[%u])", hzf__classify_names[sel & 7], o->pick);
      break;
    case HZF_EDGE: {
      static const char *const edge[8] = {"zero-size", "huge-size", "calloc-overflow-shape",
                                          "alignment-class", "realloc-edge", "null-pointer",
                                          "power-of-two-boundary", "power-of-two-boundary"};
      snprintf(buf, n, "%s sel=%u pick=%u arg=%u", edge[sel & 7], sel, o->pick, o->arg);
      break;
    }
    case HZF_CHECK:
      snprintf(buf, n, "audit: probe '%s' (or the next that applies), then check",
               hzf_audit_probe_name(o->arg % hzf_audit_probe_count()));
      break;
    case HZF_OOM: {
      static const char *const mode[4] = {"refuse commit #", "refuse every commit from #",
                                          "refuse decommit #", "disarm"};
      if ((sel & 3) == 3) snprintf(buf, n, "disarm");
      else snprintf(buf, n, "%s%u", mode[sel & 3], 1 + o->arg % 8u);
      break;
    }
    case HZF_FILL: {
      static const char *const level[4] = {"empty", "bound-1", "at its bound", "one over"};
      char steady[48] = "", sweep[48] = "";
      if (sel & 4)
        snprintf(steady, sizeof steady, "steady loop of %u, then ", hzf_steady_width(o->arg));
      if (sel & 8)
        snprintf(sweep, sizeof sweep, "a slab's sweep (%s), then ",
                 hzf_sweep_order_name(hzf_sweep_order(o->arg)));
      snprintf(buf, n, "%s%sclass %u cache %s", steady, sweep, o->pick % nc, level[sel & 3]);
      break;
    }
    case HZF_EXIT:
      snprintf(buf, n, "%s", hzf_exit_is_real(sel) ? "pthread exit" : "detach");
      break;
    case HZF_FORK:
      if (!hzf_fork_is_real(sel)) {
        snprintf(buf, n, "no fork (fifteen in sixteen are not)");
        break;
      }
      snprintf(buf, n, "the child frees every %u%s parent block, allocates %u x %s", 1 + sel % 4u,
               sel % 4u == 0 ? "st" : sel % 4u == 1 ? "nd" : sel % 4u == 2 ? "rd" : "th",
               1 + o->pick % 32u, hzf__size_text(1, o->arg, 1, sz, sizeof sz));
      break;
    case HZF_RACE: {
      int point = hzf_race_point_of(sel);
      snprintf(buf, n, "next op waits at %s while t%u %s", point < 0 ? "the first race point"
               : hz_race_point_name((hz_race_point_t)point), o->thread, hzf_race_step_name(sel));
      break;
    }
    default: buf[0] = 0; break;
  }
}

void hzf_write_text(FILE *f, const hzf_program_t *prog) {
  fprintf(f, "# hzfuzz ops v1, target %s_fuzzer\nthreads %u\n", prog->profile->name,
          prog->nthreads);
  char what[160];
  for (unsigned i = 0; i < prog->nops; i++) {
    const hzf_op_t *o = &prog->ops[i];
    hzf_describe(prog, i, what, sizeof what);
    fprintf(f, "t%u %-11s sel=%-2u pick=%-3u arg=%-5u  # %u: %s\n", o->thread,
            hzf_kind_name(o->kind), o->sel, o->pick, o->arg, i, what);
  }
}

/* Reads "key=<number>" at *s; 0 on success. */
static int hzf__field(const char **s, const char *key, unsigned long max, unsigned long *v) {
  while (**s == ' ' || **s == '\t') (*s)++;
  size_t n = strlen(key);
  if (strncmp(*s, key, n) != 0 || (*s)[n] != '=') return -1;
  char *end;
  *v = strtoul(*s + n + 1, &end, 0);
  if (end == *s + n + 1 || *v > max) return -1;
  *s = end;
  return 0;
}

long hzf_parse_text(const hzf_profile_t *p, const char *text, uint8_t *out, size_t cap,
                    char *err, size_t errn) {
  size_t len = 0;
  unsigned line = 0, nthreads = p->min_threads;
  int have_header = 0;
  for (const char *s = text; *s;) {
    const char *eol = strchr(s, '\n');
    if (!eol) eol = s + strlen(s);
    line++;
    char buf[512];
    size_t n = (size_t)(eol - s) < sizeof buf - 1 ? (size_t)(eol - s) : sizeof buf - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    s = *eol ? eol + 1 : eol;
    char *hash = strchr(buf, '#');
    if (hash) *hash = 0;
    const char *c = buf;
    while (isspace((unsigned char)*c)) c++;
    if (!*c) continue;
    unsigned long v, sel, pick, arg;
    if (strncmp(c, "threads", 7) == 0) {
      v = strtoul(c + 7, NULL, 10);
      if (v < p->min_threads || v > p->max_threads) {
        snprintf(err, errn, "line %u: threads %lu is outside %u..%u for %s_fuzzer", line, v,
                 p->min_threads, p->max_threads, p->name);
        return -1;
      }
      nthreads = (unsigned)v;
      continue;
    }
    if (!have_header) {
      if (len >= cap) goto full;
      out[len++] = (uint8_t)(nthreads - p->min_threads);
      have_header = 1;
    }
    char *end;
    if (*c != 't' || (v = strtoul(c + 1, &end, 10), end == c + 1) || v >= nthreads) {
      snprintf(err, errn, "line %u: expected t<thread below %u> <kind> sel= pick= arg=", line,
               nthreads);
      return -1;
    }
    c = end;
    while (*c == ' ' || *c == '\t') c++;
    unsigned kind = HZF_KIND_COUNT;
    for (unsigned k = 0; k < HZF_KIND_COUNT; k++) {
      size_t kn = strlen(hzf__kind_names[k]);
      if (strncmp(c, hzf__kind_names[k], kn) == 0 && (c[kn] == ' ' || c[kn] == '\t' || !c[kn]))
        kind = k;
    }
    if (kind == HZF_KIND_COUNT) {
      snprintf(err, errn, "line %u: unknown op kind", line);
      return -1;
    }
    c += strlen(hzf__kind_names[kind]);
    if (hzf__field(&c, "sel", 63, &sel) || hzf__field(&c, "pick", 255, &pick) ||
        hzf__field(&c, "arg", 65535, &arg)) {
      snprintf(err, errn, "line %u: expected sel=<0..63> pick=<0..255> arg=<0..65535>", line);
      return -1;
    }
    int k = -1;
    for (unsigned b = 0; b < 256 && k < 0; b++)
      if (hzf_kind_of_byte(p, (uint8_t)b) == kind) k = (int)b;
    if (k < 0) {
      snprintf(err, errn, "line %u: %s_fuzzer does not draw op %s", line, p->name,
               hzf__kind_names[kind]);
      return -1;
    }
    if (len + HZF_OP_BYTES > cap) goto full;
    out[len++] = (uint8_t)k;
    out[len++] = (uint8_t)(v | sel << 2);
    out[len++] = (uint8_t)pick;
    out[len++] = (uint8_t)(arg & 0xff);
    out[len++] = (uint8_t)(arg >> 8);
  }
  if (!have_header) {
    if (len >= cap) goto full;
    out[len++] = (uint8_t)(nthreads - p->min_threads);
  }
  return (long)len;
full:
  snprintf(err, errn, "more than %zu bytes of ops", cap);
  return -1;
}
