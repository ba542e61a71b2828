/* Reading inputs from files: binary inputs as they are, ".ops" files through the text
 * form (hzf_parse_text). Shared by the replay driver and the tools. */
#ifndef HZF_INPUT_H
#define HZF_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "fuzz/hzf_ops.h"

#define HZF_INPUT_MAX (1u << 20)
#define HZF_PATH_MAX 4096

/* The file a path given on the command line names. `bazel run` runs a tool in its
 * runfiles tree and sets $BUILD_WORKING_DIRECTORY to the directory it was run from: a
 * relative path is resolved against that (into buf) when it is set and not empty; an
 * absolute path, or any path without it, is returned as it is. NULL when the resolved
 * path does not fit in n bytes. */
const char *hzf_user_path(const char *path, char *buf, size_t n);

/* Reads path into *data (malloc'd; free it). Returns its length, or -1 with a message
 * naming the file in err. */
long hzf_read_input(const hzf_profile_t *p, const char *path, uint8_t **data, char *err,
                    size_t errn);
/* Is this a file the replay drivers skip (the .txt trace beside a binary input, docs)? */
int hzf_input_skipped(const char *path);
/* The target a path names ("corpus/tls_sll_fuzzer/x", "regressions/mt_..."), or NULL. */
const hzf_profile_t *hzf_profile_of_path(const char *path);

#endif /* HZF_INPUT_H */
