#!/bin/sh
# check.sh - the full test suite, as CI runs it: installs what is needed, builds, runs
# `make check`, then builds again with AddressSanitizer + UndefinedBehaviorSanitizer
# and runs the suite once more (any sanitizer report fails it). Ends with one line
# "tests: N passed, M failed" summed over every test program's own counts.
# Usage: scripts/check.sh [--no-sanitizers]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
sanitize=1
[ "${1:-}" = "--no-sanitizers" ] && sanitize=0
jobs=$(nproc 2>/dev/null || echo 2)
status=0

# Sum "Checks: N, Failures: F, Errors: E" (Check) and "N passed, M failed" (scripts).
tally() {
    cat "$1"/tests/*.log 2>/dev/null | awk '
        /Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+/ {
            for (i = 1; i <= NF; i++) {
                if ($i == "Checks:") c = $(i+1) + 0
                if ($i == "Failures:") f = $(i+1) + 0
                if ($i == "Errors:") e = $(i+1) + 0
            }
            pass += c - f - e; fail += f + e
        }
        /^[a-z ]*:? *[0-9]+ passed, [0-9]+ failed/ {
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^passed/) pass += $(i-1) + 0
                if ($i ~ /^failed/) fail += $(i-1) + 0
            }
        }
        END { printf "%d %d\n", pass, fail }'
}

# clang: the generated C is checked with both gcc and clang
CNNC_EXTRA_PACKAGES="clang ${CNNC_EXTRA_PACKAGES:-}"; export CNNC_EXTRA_PACKAGES

run_suite() { # BUILD_DIR LABEL [configure args]
    dir=$1; label=$2; shift 2
    "$top/scripts/setup.sh" "$dir" "$@" || { echo "check: $label build failed"; return 1; }
    echo "check: make check ($label)"
    ( cd "$dir" && make -j"$jobs" check ) ; rc=$?
    if [ $rc -ne 0 ]; then
        for f in "$dir"/tests/*.log; do
            grep -q "^FAIL\|^ERROR" "${f%.log}.trs" 2>/dev/null && { echo "---- $f"; tail -n 60 "$f"; }
        done
    fi
    set -- $(tally "$dir")
    echo "check: $label: $1 passed, $2 failed"
    total_pass=$((total_pass + $1)); total_fail=$((total_fail + $2))
    return $rc
}

total_pass=0; total_fail=0
run_suite "$top/build" "default" || status=1
if [ $sanitize -eq 1 ]; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1; UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export ASAN_OPTIONS UBSAN_OPTIONS
    run_suite "$top/build-asan" "asan+ubsan" --enable-sanitizers || status=1
fi
echo "tests: $total_pass passed, $total_fail failed"
[ $total_fail -eq 0 ] || status=1
exit $status
