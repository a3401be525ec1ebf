#!/bin/sh
# test_hostile.sh - hostile data and concurrency (issue 12): a class folder holding a cut
# PGM, a JPEG that stops after its header, a PNG whose header claims 60000x60000 pixels, a
# 0-byte file, a symbolic-link loop, a name that is not UTF-8 and a file without read
# permission; training goes on with one warning naming each bad file, exits 0 and stays
# within a memory bound; then 8 trainings started at once on one empty decode-cache folder
# end with weights identical to a lone run's, and leave one valid cache behind.
# Run by `make check`.

here=$(cd "$(dirname "$0")" && pwd)
name=hostile
. "$here/testlib.sh"
need "$cnnrun" "$gen"

"$gen" images data 1x12x12 3 8 7 >/dev/null || { echo "gen_nets failed"; exit 99; }
cat > n.cnn <<'EOF2'
network n
input 1x12x12
conv 3x3 4 relu pad=same
maxpool 2x2
flatten
dense 3
train {
    batch 6
    epochs 2
}
EOF2

# --- the hostile files, all in class c1
bad=data/c1
head -c 30 data/c0/i000.pgm >"$bad/cut.pgm"
printf '\377\330\377\340\000\020JFIF\000\001\001\000\000\001\000\001\000\000' >"$bad/header_only.jpg"
# PNG signature, an IHDR of 60000 x 60000 8-bit RGB, a wrong CRC, nothing after
printf '\211PNG\r\n\032\n\000\000\000\015IHDR\000\000\352\140\000\000\352\140\010\002\000\000\000\000\000\000\000' >"$bad/huge.png"
: >"$bad/empty.pgm"
ln -s loop_b.pgm "$bad/loop_a.pgm"
ln -s loop_a.pgm "$bad/loop_b.pgm"
cp data/c0/i001.pgm "$bad/$(printf 'name\377\376.pgm')"
cp data/c0/i002.pgm "$bad/locked.pgm"
chmod 000 "$bad/locked.pgm"
if [ -x /usr/bin/time ]; then timer="/usr/bin/time -f %M -o rss"; else timer=; fi
$timer "$cnnrun" n.cnn --train data --no-cache --threads 1 --out h.weights >h.out 2>h.err
rc=$?
[ $rc -eq 0 ] && ok || { fail "training on the hostile folder: exit $rc"; show h.err; }
grep -q -e Sanitizer -e "runtime error:" h.err && { fail "sanitizer report"; show h.err; }
for f in cut.pgm header_only.jpg huge.png empty.pgm loop_a.pgm loop_b.pgm; do
    grep -q "$bad/$f" h.err && ok || { fail "no warning naming $f"; show h.err; }
done
grep -q "60000" h.err && ok || { fail "the 60000x60000 PNG's warning does not give its size"; show h.err; }
# the non-UTF-8 name is a readable image: it trains like the others (no warning)
grep -q "name" h.err && { fail "the file with a non-UTF-8 name was refused"; show h.err; } || ok
# root reads a chmod 000 file anyway; anyone else gets a warning naming it
if [ "$(id -u)" -ne 0 ]; then grep -q "locked.pgm" h.err && ok || { fail "no warning for the unreadable file"; show h.err; }; fi
if [ -n "$timer" ]; then
    kb=$(tail -n 1 rss)
    [ "${kb:-999999}" -lt 262144 ] && ok || fail "peak memory ${kb} KB on the hostile folder (bound: 256 MB)"
    echo "hostile folder: peak memory ${kb} KB"
else
    echo "hostile folder: /usr/bin/time is not installed: peak memory not measured"
fi
chmod 644 "$bad/locked.pgm"
rm -f "$bad"/cut.pgm "$bad"/header_only.jpg "$bad"/huge.png "$bad"/empty.pgm "$bad"/loop_?.pgm "$bad/locked.pgm" "$bad"/name*

# --- 8 trainings at once on one empty cache folder, against a lone run without a cache
"$cnnrun" n.cnn --train data --no-cache --threads 1 --quiet --out lone.weights >lone.out 2>&1 ||
    { fail "the lone run"; show lone.out; }
mkdir cache
pids=
for i in 1 2 3 4 5 6 7 8; do
    "$cnnrun" n.cnn --train data --cache-dir cache --threads 1 --quiet --out w$i.weights >o$i.out 2>&1 &
    pids="$pids $!"
done
for p in $pids; do wait "$p" || fail "a concurrent run failed"; done
for i in 1 2 3 4 5 6 7 8; do
    cmp -s lone.weights w$i.weights && ok || { fail "concurrent run $i: weights differ from the lone run's"; show o$i.out; }
done
[ "$(find cache -type f | wc -l)" -eq 1 ] && ok || { fail "the cache folder holds $(find cache -type f | wc -l) files, want 1"; ls -la cache; }
# the cache they left is valid: a run from it trains alike
"$cnnrun" n.cnn --train data --cache-dir cache --threads 1 --out again.weights >again.out 2>&1 &&
    cmp -s lone.weights again.weights && ok || { fail "the run from the shared cache differs"; show again.out; }

# --- a Kaggle download whose ground_truth.csv has a header and no rows (fuzz_csv's first
#     finding: the lookup was handed a null table; run sanitized, this failed)
mkdir -p kag/tom
printf 'filename,tom,jerry\n' >kag/ground_truth.csv
cp data/c0/i000.pgm kag/tom/frame0.pgm
"$cnnrun" n.cnn --train kag --no-cache --threads 1 >k.out 2>&1
rc=$?
[ $rc -eq 1 ] && ! grep -q -e Sanitizer -e "runtime error:" k.out && ok ||
    { fail "a header-only ground_truth.csv: exit $rc (want 1, no sanitizer report)"; show k.out; }

echo "hostile: $passed passed, $failed failed"
[ $failed -eq 0 ]
