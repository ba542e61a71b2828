/* The property engine's inside, shared by its three files: prop.c (draws, the report
 * API, running one case), prop_shrink.c (the shrinker) and prop_cli.c (generation,
 * replay, reports and the command line). Properties see prop.h only.
 */
#ifndef PROP_CASE_H
#define PROP_CASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "props/prop.h"

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

/* The result area of the case that ran last (prop__shared_init maps it). */
extern prop_shared_t *prop__sh;

void prop__shared_init(void);
/* Runs the case in this process. */
void prop__run_here(const prop_def_t *def, const uint8_t *b, size_t n, bool reporting);
/* Runs the case in a forked child and classifies how it ended (a signal, an exit status,
 * a hang). quiet: the child's output goes nowhere. Returns whether the case failed. */
bool prop__run_child(const prop_def_t *def, const uint8_t *b, size_t n, bool reporting,
                     bool quiet);

uint64_t prop__hash(const uint8_t *b, size_t n); /* FNV-1a, names saved counterexamples */
double prop__now(void);                          /* monotonic seconds */

/* A shrink in progress: the smallest failing sequence so far and the draws it is made of. */
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

/* Makes the run just made of b the best (prop__sh holds its draws). */
void prop__take(prop_shrink_t *s, const uint8_t *b, size_t n);
/* Shrinks s->best until no candidate is smaller or s->deadline passes. */
void prop__shrink(prop_shrink_t *s);

#endif
