#!/bin/sh
# test_invalid.sh - golden tests of cnnc's error messages. For each tests/invalid/NAME.cnn,
# NAME.err holds the exact first line cnnc must print on stderr; each further line of NAME.err
# must appear as a whole line of stderr too (a hint, a note, "FILE: 1 error"), or, when it
# starts with '!', must NOT appear. cnnc must exit with 1, show a caret line for a positioned
# error, print nothing on stdout and raise no sanitizer report.
# Run from the build tree by `make check` (top_srcdir and top_builddir come from the Makefile).

LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${top_srcdir:-$here/..}
builddir=${top_builddir:-$here/..}
builddir=$(cd "$builddir" && pwd) || exit 99
srcdir=$(cd "$srcdir" && pwd) || exit 99
cnnc=$builddir/cnnc
if [ ! -x "$cnnc" ]; then
    echo "test_invalid: $cnnc is not built" >&2
    exit 99
fi

# Paths in messages are relative to the top of the source tree: tests/invalid/NAME.cnn
cd "$srcdir" || exit 99
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnc-invalid.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0

fail() { # fail NAME WHY...
    name=$1
    shift
    echo "FAIL: $name: $*"
    failed=$((failed + 1))
}

for f in tests/invalid/*.cnn; do
    [ -e "$f" ] || continue
    name=${f%.cnn}
    base=${name##*/}
    exp=$name.err
    if [ ! -f "$exp" ]; then
        fail "$base" "missing $exp"
        continue
    fi
    if ! grep -q -F -e "$f " tests/tests.am; then
        fail "$base" "not listed in tests/tests.am (make dist would not ship it)"
        continue
    fi
    "$cnnc" --check "$f" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    first=$(sed -n 1p "$tmp/err")
    want=$(sed -n 1p "$exp")
    why=
    if [ "$rc" -ne 1 ]; then
        why="exit status $rc, expected 1"
    elif grep -a -q -e 'Sanitizer' -e 'runtime error:' "$tmp/err"; then
        why="sanitizer report"
    elif [ -s "$tmp/out" ]; then
        why="wrote to stdout"
    elif [ "$first" != "$want" ]; then
        why="first line differs
   got:  $first
   want: $want"
    else
        case $first in
        *:[0-9]*:[0-9]*:\ error:*)
            grep -a -q -E '^ +\|.*\^' "$tmp/err" || why="no caret line" ;;
        esac
    fi
    if [ -z "$why" ]; then
        # the further expectations: lines that must (or, with '!', must not) appear
        tail -n +2 "$exp" >"$tmp/more"
        while IFS= read -r line; do
            case $line in
            '') ;;
            '!'*)
                if grep -a -q -F -x -e "${line#!}" "$tmp/err"; then
                    why="should not print: ${line#!}"
                    break
                fi ;;
            *)
                if ! grep -a -q -F -x -e "$line" "$tmp/err"; then
                    why="missing line: $line"
                    break
                fi ;;
            esac
        done <"$tmp/more"
    fi
    if [ -n "$why" ]; then
        fail "$base" "$why"
        sed 's/^/   | /' "$tmp/err" | head -n 12
    else
        echo "ok: $base"
        passed=$((passed + 1))
    fi
done

# every expectation belongs to an input (a renamed .cnn must not leave its test behind)
for e in tests/invalid/*.err; do
    [ -e "$e" ] || continue
    [ -f "${e%.err}.cnn" ] || fail "${e##*/}" "no matching .cnn"
done

if [ $((passed + failed)) -eq 0 ]; then
    echo "FAIL: no cases found in $srcdir/tests/invalid"
    failed=1
fi
echo "invalid inputs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
