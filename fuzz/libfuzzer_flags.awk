# fuzz/libfuzzer.options's [libfuzzer] section as libFuzzer flags, one per line
# (-max_len=2048): how the shell tools read the file (run_fuzzer.sh, tools/minimize.sh;
# the Python tools use tools/workspace.py). It lives beside the options file, and the
# tools find it there.
/^\[/ { in_lf = ($0 == "[libfuzzer]"); next }
in_lf && /^[a-z_0-9]+ *= *[^ ]/ { sub(/ *= */, "="); print "-" $0 }
