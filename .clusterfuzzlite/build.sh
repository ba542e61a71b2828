#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: every fuzz target into $OUT, with its seed corpus
# (<t>_seed_corpus.zip), dictionary (<t>.dict) and the libFuzzer flags `bazel run
# //fuzz:<t>` uses (<t>.options). The environment ($CC, $CFLAGS, $LIB_FUZZING_ENGINE,
# $SANITIZER, $FUZZING_ENGINE, $SRC, $OUT) says how; fuzz/build.sh does the rest, so
# this build and the Bazel AFL++ rules are one build script.
exec "$SRC/hzfuzz/fuzz/build.sh"
