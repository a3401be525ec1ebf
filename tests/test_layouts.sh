#!/bin/sh
# test_layouts.sh - data in the layouts people bring (issue 10): DIR/train + DIR/test (and
# DIR/val or DIR/valid) with class folders is the split; --val DIR and --test DIR;
# --eval scores every image of a folder that is not split, the test part of one that is,
# and a split's test part with --split; --predict walks folders in name order and writes
# text, CSV or JSON; a missing file, an empty folder and classes the training set does not
# have get clear messages and exit 1. Run by `make check`.

here=$(cd "$(dirname "$0")" && pwd)
name=layouts
. "$here/testlib.sh"
need "$cnnrun" "$gen"
expect() { # expect FILE REGEX WHAT
    if grep -q -e "$2" "$1"; then ok; else fail "$3"; show "$1"; fi
}

mkdir -p set set2
"$gen" images set/train 1x12x12 3 10 7 >/dev/null &&
    "$gen" images set/test 1x12x12 3 3 8 >/dev/null &&
    "$gen" images set2/train 1x12x12 3 10 7 >/dev/null &&
    "$gen" images set2/valid 1x12x12 3 2 9 >/dev/null &&
    "$gen" images set2/test 1x12x12 3 3 8 >/dev/null &&
    "$gen" images extra 1x12x12 4 2 5 >/dev/null || { echo "gen_nets failed"; exit 99; }
cat > n.cnn <<'EOF2'
network n
input 1x12x12
conv 3x3 4 relu pad=same
maxpool 2x2
flatten
dense 3
train {
    batch 8
    epochs 1
}
EOF2
run() { "$cnnrun" n.cnn "$@" --no-cache --threads 1; }
predict() { "$cnnrun" n.cnn --predict "$@" --threads 1; }

# DIR/train + DIR/test: the test part is test/'s 9 images, train/ split 7:2 for validation
# (10 a class: 7.78 and 2.22 by the ratios, largest remainders: 8 and 2)
run --train set >t.out 2>&1 || { fail "--train on train/ + test/"; show t.out; }
expect t.out "^set: train/ and test/ folders: validation images taken from the rest by the split's train:val part, 9 test images as they come$" "train/ + test/ said so"
expect t.out "^images: 39 in set; 24 train, 6 validation, 9 test" "train/ + test/: the parts' sizes"
# DIR/train + DIR/valid + DIR/test
run --train set2 --out n2.weights >t2.out 2>&1 || { fail "--train on train/ valid/ test/"; show t2.out; }
expect t2.out "^set2: train/, valid/ and test/ folders: 6 validation images as they come, 9 test images as they come$" "valid/ said so"
expect t2.out "^images: 45 in set2; 30 train, 6 validation, 9 test" "train/ valid/ test/: all of train/ trains"
# --val and --test folders
run --train set/train --val set2/valid --test set/test --out n3.weights >t3.out 2>&1 || { fail "--val --test"; show t3.out; }
expect t3.out "^images: 45 in set/train; 30 train, 6 validation, 9 test" "--val and --test parts"
run --train set --test set/test >t4.out 2>&1
[ $? -eq 1 ] && ok || fail "--test on a set that has test/ accepted"
expect t4.out "already has its own test images" "--test on a split set: message"
run --train set/train --val extra >t5.out 2>&1
[ $? -eq 1 ] && ok || fail "--val with a class the training set lacks accepted"
expect t5.out "has a class 'c3' that the training images do not have" "--val extra class: message"

# --eval: test/ of a split set; every image of a plain folder; --split's test part
run --eval set >e1.out 2>&1 || { fail "--eval set"; show e1.out; }
expect e1.out "^n.weights on set: its 9 test images (train/ and test/ folders)$" "--eval on a split set"
run --eval set/train >e2.out 2>&1 || { fail "--eval plain folder"; show e2.out; }
expect e2.out "^n.weights on set/train: all 30 images$" "--eval on a plain folder scores all"
run --eval set/train --split 7:2:1 >e3.out 2>&1 || { fail "--eval --split"; show e3.out; }
expect e3.out "^n.weights on set/train: the 3 test images of split 7:2:1" "--eval --split"
expect e2.out "recall  *precision  *F1$" "the confusion matrix has precision and F1"
expect e2.out "^macro average" "macro averages"

# --predict: folders in name order, formats, missing file, empty folder
predict set/test >p1.out 2>&1 || { fail "--predict folder"; show p1.out; }
[ "$(grep -c '^set/test/c[0-2]/i00[0-2].pgm: ' p1.out)" -eq 9 ] && ok || { fail "--predict folder: 9 lines"; show p1.out; }
[ "$(head -n 1 p1.out | cut -d: -f1)" = set/test/c0/i000.pgm ] && ok || fail "--predict folder: name order"
predict set/test/c1 --format csv >p2.out 2>&1 || { fail "--predict --format csv"; show p2.out; }
expect p2.out "^file,class,probability,c0,c1,c2$" "csv header"
[ "$(grep -c '^set/test/c1/i00[0-2].pgm,c[0-2],0\.[0-9]*,0\.[0-9]*,0\.[0-9]*,0\.[0-9]*$' p2.out)" -eq 3 ] && ok || { fail "csv rows"; show p2.out; }
predict set/test/c2/i001.pgm --format json >p3.out 2>&1 || { fail "--predict --format json"; show p3.out; }
if python3 -c 'import json,sys; d=json.load(open("p3.out")); assert len(d)==1 and d[0]["file"]=="set/test/c2/i001.pgm" and abs(sum(d[0]["probabilities"].values())-1)<1e-5' 2>/dev/null; then
    ok; else fail "json: not valid, or not one object whose probabilities sum to 1"; show p3.out; fi
predict nothere.png >p4.out 2>&1
[ $? -eq 1 ] && ok || fail "--predict missing file: exit"
expect p4.out "cannot open nothere.png: No such file or directory" "--predict missing file: message"
mkdir -p empty
predict empty >p5.out 2>&1
[ $? -eq 1 ] && ok || fail "--predict empty folder: exit"
expect p5.out "empty holds no images" "--predict empty folder: message"

echo "layouts: $passed passed, $failed failed"
[ $failed -eq 0 ]
