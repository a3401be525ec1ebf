#!/bin/sh
# check.sh - the full test suite, as CI runs it: installs what is needed, builds, runs
# `make check`, then builds again with AddressSanitizer + UndefinedBehaviorSanitizer
# and runs the suite once more (any sanitizer report fails it). Ends with one line
# "tests: N passed, M failed" summed over every test program's own counts (a skipped check
# counts as failed). Between the two, the numeric tests (gradient checks, kernels, networks)
# are built and run once more at -O0 and without MPI, so that no tolerance depends on the
# optimisation level and the one-process build of the MPI hooks is tested.
# Usage: scripts/check.sh [--no-sanitizers]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
sanitize=1
[ "${1:-}" = "--no-sanitizers" ] && sanitize=0
jobs=$(nproc 2>/dev/null || echo 2)
status=0

# Sum "Checks: N, Failures: F, Errors: E" (Check) and "[label:] N passed, M failed" (scripts)
# over the logs of the given tests (all when none given): prints "PASSED FAILED SKIPPED".
tally() { # BUILD_DIR [TEST...]
    d=$1; shift
    if [ $# -eq 0 ]; then set -- "$d"/tests/*.log; else set -- $(for t in "$@"; do echo "$d/$t.log"; done); fi
    cat "$@" 2>/dev/null | awk -f "$top/scripts/tally.awk"
}

# clang: the generated C is checked with both gcc and clang; libclang-rt-14-dev: its
# libFuzzer runtime (clang only recommends it), for the short fuzz run below; Open MPI:
# the 2-rank tests run
CNNC_EXTRA_PACKAGES="clang libclang-rt-14-dev openmpi-bin libopenmpi-dev ${CNNC_EXTRA_PACKAGES:-}"; export CNNC_EXTRA_PACKAGES

run_suite() { # BUILD_DIR LABEL TESTS [configure args] (TESTS: "" for all)
    dir=$1; label=$2; only=$3; shift 3
    "$top/scripts/setup.sh" "$dir" "$@" || { echo "check: $label build failed"; return 1; }
    echo "check: make check ($label)"
    if [ -n "$only" ]; then
        ( cd "$dir" && make -j"$jobs" check TESTS="$only" ) ; rc=$?
    else
        ( cd "$dir" && make -j"$jobs" check ) ; rc=$?
    fi
    if [ $rc -ne 0 ]; then
        for f in "$dir"/tests/*.log; do
            grep -q "^FAIL\|^ERROR" "${f%.log}.trs" 2>/dev/null && { echo "---- $f"; tail -n 60 "$f"; }
        done
    fi
    # shellcheck disable=SC2086
    set -- $(tally "$dir" $only)
    echo "check: $label: $1 passed, $2 failed, $3 skipped"
    total_pass=$((total_pass + $1)); total_fail=$((total_fail + $2 + $3))
    return $rc
}

total_pass=0; total_fail=0
run_suite "$top/build" "default" "" || status=1
# ... and without MPI (configure --without-mpi: the one-rank stub of runtime/dist/, whose
# hooks the training loop and the kernels' shard go through)
run_suite "$top/build-O0" "-O0, no MPI" "tests/test_gradcheck tests/test_kernels tests/test_net tests/test_shard" \
    CFLAGS="-O0 -g" --without-mpi || status=1
if [ $sanitize -eq 1 ]; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1; UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export ASAN_OPTIONS UBSAN_OPTIONS
    run_suite "$top/build-asan" "asan+ubsan" "" --enable-sanitizers || status=1
fi
# a short, fixed run of every reader's fuzz target (fuzz/build.sh; the long runs are by hand:
# make fuzz FUZZ_RUNS=N): a crash or sanitizer report fails the suite
if [ $sanitize -eq 1 ]; then
    echo "check: fuzz (${CNNC_FUZZ_RUNS:-20000} runs a target)"
    FUZZ_RUNS=${CNNC_FUZZ_RUNS:-20000} sh "$top/fuzz/build.sh" "$top/build-fuzz" >"$top/build-fuzz.log" 2>&1
    frc=$?
    grep "^fuzz:" "$top/build-fuzz.log"
    [ $frc -eq 0 ] || { tail -n 40 "$top/build-fuzz.log"; echo "check: fuzz failed"; status=1; }
fi
echo "tests: $total_pass passed, $total_fail failed"
[ $total_fail -eq 0 ] || status=1
exit $status
