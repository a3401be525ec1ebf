#!/bin/sh
# mutants.sh - mutation testing: plants each small bug of scripts/mutants.list (or $1), one
# at a time, in a scratch copy of the tree, rebuilds and runs the tests named with it; a
# mutant is caught when one of them fails. Every text to find must occur exactly once in
# its file, or the script stops before building anything (a refactor must not silently
# disable a mutant). Ends with "mutants: N, caught: M" and the survivors; exits 0 only when
# every mutant was caught. Not part of `make check` (it takes minutes).
# Usage: scripts/mutants.sh [LIST]   (MUTANTS_DIR: scratch directory, default /tmp/...;
#        MUTANTS_ONLY="K ...": only these mutants, by number in the list; CFLAGS: configure's)
set -u
LC_ALL=C
export LC_ALL
top=$(cd "$(dirname "$0")/.." && pwd)
list=${1:-$top/scripts/mutants.list}
[ -f "$list" ] || { echo "mutants: no list $list" >&2; exit 2; }
jobs=${MUTANTS_JOBS:-2}

# The mutants as "LINENO<TAB>FILE<TAB>FIND<TAB>REPLACE<TAB>TESTS", comments dropped.
entries=$(awk -F'\t' '/^[ \t]*(#|$)/ { next }
    NF != 4 || $1 == "" || $2 == "" || $4 == "" {
        printf "mutants: %s:%d: expected FILE<TAB>FIND<TAB>REPLACE<TAB>TESTS\n", FILENAME, NR > "/dev/stderr"
        bad = 1; next }
    { print NR "\t" $0 }
    END { exit bad }' "$list") || exit 2

# count FILE TEXT: occurrences of the literal TEXT in FILE
count() {
    awk -v t="$2" 'BEGIN { n = 0 } {
        s = $0
        while ((i = index(s, t)) > 0) { n++; s = substr(s, i + length(t)) } }
        END { print n }' "$1"
}

# apply FILE FIND REPLACE: replaces the one literal occurrence in place
apply() {
    awk -v t="$2" -v r="$3" '{
        i = index($0, t)
        if (i > 0) $0 = substr($0, 1, i - 1) r substr($0, i + length(t))
        print }' "$1" > "$1.mut" && mv "$1.mut" "$1"
}

tab=$(printf '\t')
bad=0
total=0
while IFS="$tab" read -r ln file find repl tests; do
    total=$((total + 1))
    if [ ! -f "$top/$file" ]; then
        echo "mutants: $list:$ln: no file $file" >&2; bad=1; continue
    fi
    n=$(count "$top/$file" "$find")
    if [ "$n" -ne 1 ]; then
        echo "mutants: $list:$ln: the text occurs $n times in $file (must be exactly once): $find" >&2
        bad=1
    fi
done <<EOF
$entries
EOF
[ $bad -eq 0 ] || { echo "mutants: the list does not match the tree; fix $list" >&2; exit 2; }
[ $total -gt 0 ] || { echo "mutants: $list holds no mutant" >&2; exit 2; }

scratch=${MUTANTS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/cnnc-mutants.XXXXXX")} || exit 2
src=$scratch/src
build=$scratch/build
echo "mutants: $total in $list; scratch tree $scratch"
rm -rf "$src" && mkdir -p "$src" "$build" || exit 2
( cd "$top" && git ls-files -z -c -o --exclude-standard | xargs -0 tar cf - ) | ( cd "$src" && tar xf - ) ||
    { echo "mutants: cannot copy the tree" >&2; exit 2; }
( cd "$src" && autoreconf -fi >/dev/null 2>&1 ) || { echo "mutants: autoreconf failed" >&2; exit 2; }
( cd "$build" && "$src/configure" -q ${CFLAGS:+CFLAGS="$CFLAGS"} && make -j"$jobs" >/dev/null 2>&1 ) ||
    { echo "mutants: the unmutated tree does not build" >&2; exit 2; }

alltests=$(printf '%s\n' "$entries" | cut -f5 | tr ' ' '\n' | sort -u | tr '\n' ' ')
# run TESTS: 0 when all pass
run() { ( cd "$build" && timeout "${MUTANTS_TIMEOUT:-900}" make -j"$jobs" check TESTS="$1" ) >"$scratch/last.log" 2>&1; }
if ! run "$alltests"; then
    tail -n 30 "$scratch/last.log"
    echo "mutants: the unmutated tree fails its tests ($alltests)" >&2
    exit 2
fi

k=0
ran=0
caught=0
broken=0
survivors=""
while IFS="$tab" read -r ln file find repl tests; do
    k=$((k + 1))
    if [ -n "${MUTANTS_ONLY:-}" ]; then
        case " $MUTANTS_ONLY " in *" $k "*) ;; *) continue ;; esac
        ran=$((ran + 1))
    fi
    apply "$src/$file" "$find" "$repl"
    if ! ( cd "$build" && make -j"$jobs" >"$scratch/build.log" 2>&1 ); then
        echo "mutant $k ($file, list line $ln): DOES NOT BUILD"
        tail -n 5 "$scratch/build.log"
        broken=$((broken + 1))
        survivors="$survivors
  $k: $file: $find  (does not build)"
    elif run "$tests"; then
        echo "mutant $k ($file, list line $ln): SURVIVED $tests"
        survivors="$survivors
  $k: $file: $find -> $repl"
    else
        echo "mutant $k ($file, list line $ln): caught"
        caught=$((caught + 1))
    fi
    cp "$top/$file" "$src/$file"
done <<EOF
$entries
EOF
[ -n "${MUTANTS_ONLY:-}" ] && total=$ran
echo "mutants: $total, caught: $caught"
if [ -n "$survivors" ]; then
    echo "survivors:$survivors"
    exit 1
fi
[ -z "${MUTANTS_DIR:-}" ] && rm -rf "$scratch"
exit 0
