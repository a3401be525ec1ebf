#!/bin/sh
# test_tally.sh - scripts/tally.awk (the suite's total in scripts/check.sh) on sample log
# lines: every summary form the tests print, labels with '_' and digits among them, and
# lines that must not count. Last line "tally: N passed, M failed".
LC_ALL=C
export LC_ALL
here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "${top_srcdir:-$here/..}" && pwd) || exit 99
awkf=$srcdir/scripts/tally.awk
[ -f "$awkf" ] || { echo "test_tally: $awkf is missing" >&2; exit 99; }
passed=0
failed=0

# expect NAME "PASSED FAILED SKIPPED" LINES...
expect() {
    name=$1 want=$2
    shift 2
    got=$(printf '%s\n' "$@" | awk -f "$awkf")
    if [ "$got" = "$want" ]; then
        passed=$((passed + 1))
    else
        echo "FAIL: $name: tally gives '$got', expected '$want'"
        failed=$((failed + 1))
    fi
}

expect "Check summary" "7 2 0" "77%: Checks: 9, Failures: 1, Errors: 1"
expect "underscore label" "44 0 0" "test_cli_tools: 44 passed, 0 failed"
expect "spaced label" "59 1 0" "emit equivalence: 59 passed, 1 failed"
expect "no label" "3 4 0" "3 passed, 4 failed"
expect "digits and dots" "5 0 0" "test_o0.2: 5 passed, 0 failed"
expect "skips" "8 1 2" "standalone: 8 passed, 1 failed, 2 skipped"
expect "several logs" "112 3 0" "100%: Checks: 16, Failures: 0, Errors: 0" \
    "test_cli_tools: 44 passed, 0 failed" "invalid inputs: 50 passed, 2 failed" \
    "67%: Checks: 3, Failures: 1, Errors: 0"
expect "noise does not count" "0 0 0" "FAIL: net 3: cnnrun says 2 passed, 1 failed" \
    "   | 4 passed, 0 failed" "PASS: tests/test_net" "# PASS:  13"
expect "empty input" "0 0 0"

echo "tally: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
