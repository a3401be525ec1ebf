#!/bin/sh
# test_resume.sh - checkpoints and --resume end to end (cnnrun and a compiled program): a
# run stopped by SIGTERM or killed with SIGKILL right after epoch 2's checkpoint, then
# resumed, must end with weights identical (cmp) to an uninterrupted run's; --resume alone
# and with its arguments repeated; a repeated argument that differs is refused (exit 2)
# naming it; cut, damaged and foreign checkpoints are refused; Ctrl-C before the first
# epoch says nothing was saved (exit 130); --init fine-tunes from trained weights; --log
# holds every epoch, also across a resume.
# The interruption uses CNNRT_TEST_KILL_AFTER_EPOCH (runtime/train/rt_train.c), which sends the real
# signal to the process after that epoch's checkpoint. Run by `make check`.

here=$(cd "$(dirname "$0")" && pwd)
name=resume
. "$here/testlib.sh"
need "$cnnrun" "$cnnc" "$gen"

"$gen" images data 1x12x12 3 12 7 >/dev/null || { echo "gen_nets failed"; exit 99; }
# batchnorm (state), dropout (its generator), adam (two moments), flips (the shuffling
# generator), crops, rotations and jitter (drawn per epoch and place): everything a
# resume must restore or redraw alike
cat > n.cnn <<'EOF2'
network n
input 1x12x12
conv 3x3 6 relu pad=same
batchnorm
maxpool 2x2
dropout 0.25
flatten
dense 3
train {
    optimizer adam lr=0.01
    batch 8
    epochs 4
    augment hflip crop=2 rotate=10 jitter=0.1
}
EOF2
run() { "$cnnrun" n.cnn "$@" --no-cache --threads 2; }

# --- the uninterrupted run
run --train data --out full.weights --quiet >full.out 2>&1 || { fail "uninterrupted run"; show full.out; }
[ -s full.ckpt ] && ok || fail "no checkpoint full.ckpt beside full.weights"

# --- SIGTERM after epoch 2, then --resume alone
CNNRT_TEST_KILL_AFTER_EPOCH=2 run --train data --out a.weights --log a.csv >a.out 2>a.err
rc=$?
if [ $rc -eq 130 ] && grep -q "interrupted in epoch 3 by SIGTERM; the checkpoint of epoch 2 is in a.ckpt" a.err &&
    grep -q "^resume with: .* --resume a.ckpt$" a.err; then ok; else
    fail "SIGTERM: exit $rc (want 130) and the resume command"; show a.err; fi
"$cnnrun" n.cnn --resume a.ckpt >a2.out 2>&1 || { fail "--resume alone failed"; show a2.out; }
grep -q "resuming from a.ckpt: 2 of 4 epochs done" a2.out && ok || { fail "no 'resuming' line"; show a2.out; }
cmp -s full.weights a.weights && ok || fail "SIGTERM + --resume: weights differ from the uninterrupted run's"
# the log holds all 4 epochs, written across the two processes
if [ "$(wc -l <a.csv)" -eq 5 ] && head -n 1 a.csv | grep -q "^epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds$"; then
    ok; else fail "--log after a resume: want a header and 4 epochs"; show a.csv; fi

# --- SIGKILL after epoch 2 (nothing runs after it), then --resume with the same arguments
CNNRT_TEST_KILL_AFTER_EPOCH=2:KILL run --train data --out k.weights >k.out 2>&1
rc=$?
[ $rc -eq 137 ] && ok || fail "SIGKILL: exit $rc, want 137"
run --train data --out k.weights --resume k.ckpt >k2.out 2>&1 || { fail "--resume with the arguments repeated"; show k2.out; }
cmp -s full.weights k.weights && ok || fail "SIGKILL + --resume: weights differ from the uninterrupted run's"

# --- a differing argument is refused, naming it
CNNRT_TEST_KILL_AFTER_EPOCH=1 run --train data --out d.weights >/dev/null 2>&1
run --train data --out d.weights --resume d.ckpt --seed 9 >d.out 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q -- "--seed 9 was not a setting of the run in d.ckpt" d.out; then ok; else
    fail "--resume with another --seed: exit $rc, want 2 and the setting named"; show d.out; fi
"$cnnrun" n.cnn --resume d.ckpt --epochs 9 >d.out 2>&1
[ $? -eq 2 ] && grep -q -- "--epochs 9" d.out && ok || { fail "--resume --epochs 9 accepted"; show d.out; }

# --- broken checkpoints: cut, damaged, another network's, missing
head -c 100 d.ckpt >cut.ckpt
"$cnnrun" n.cnn --resume cut.ckpt >c.out 2>&1
[ $? -eq 1 ] && grep -q "cut short" c.out && ok || { fail "a cut checkpoint"; show c.out; }
cp d.ckpt bad.ckpt
printf 'X' | dd of=bad.ckpt bs=1 seek=300 conv=notrunc 2>/dev/null
"$cnnrun" n.cnn --resume bad.ckpt >c.out 2>&1
[ $? -eq 1 ] && grep -q "damaged (checksum mismatch)" c.out && ok || { fail "a damaged checkpoint"; show c.out; }
sed 's/conv 3x3 6/conv 3x3 5/' n.cnn >other.cnn
"$cnnrun" other.cnn --resume d.ckpt >c.out 2>&1
[ $? -eq 1 ] && grep -q "belongs to another network" c.out && ok || { fail "another network's checkpoint"; show c.out; }
"$cnnrun" n.cnn --resume missing.ckpt >c.out 2>&1
[ $? -eq 1 ] && grep -q "cannot open checkpoint missing.ckpt" c.out && ok || { fail "a missing checkpoint"; show c.out; }
# a finished run has nothing to resume
"$cnnrun" n.cnn --resume full.ckpt >c.out 2>&1
[ $? -eq 1 ] && grep -q "finished all its 4 epochs" c.out && ok || { fail "resuming a finished run"; show c.out; }

# --- interrupted before the first epoch ended: nothing saved, said so
# (a network slow enough that an epoch lasts seconds: images scaled up to 96x96)
sed -e 's/input 1x12x12/input 1x96x96/' -e 's/conv 3x3 6/conv 5x5 32/' n.cnn >slow.cnn
"$cnnrun" slow.cnn --train data --out early.weights --epochs 50 --batch 1 --no-cache --threads 1 >e.out 2>e.err &
pid=$!
n=0
while ! grep -q "^checkpoint after every epoch" e.out 2>/dev/null && [ $n -lt 100 ]; do
    sleep 0.1
    n=$((n + 1))
done
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
if [ $rc -eq 130 ] && grep -q "interrupted in epoch 1 by Ctrl-C, before the first epoch ended: nothing was saved" e.err &&
    [ ! -e early.ckpt ]; then ok; else fail "Ctrl-C in epoch 1: exit $rc, want 130 and 'nothing was saved'"; show e.err; fi

# --- --init: fine-tuning starts from trained weights
run --train data --out ft.weights --init full.weights --lr 1e-30 --epochs 1 >f.out 2>&1 ||
    { fail "--init"; show f.out; }
grep -q "starting from the weights in full.weights" f.out && ok || { fail "--init says nothing"; show f.out; }
# fine-tuned from a trained network, the first epoch's loss is far below a new run's
l_new=$(awk '/^epoch 1\//{ print $5 }' a.out)
l_ft=$(awk '/^epoch 1\//{ print $5 }' f.out)
awk -v a="$l_new" -v b="$l_ft" 'BEGIN { exit !(b + 0 < a / 2) }' && ok ||
    fail "--init: epoch 1 loss $l_ft is not below half a new run's $l_new"
"$cnnrun" other.cnn --train data --init full.weights --no-cache >f4.out 2>&1
[ $? -eq 1 ] && grep -q -- "--init:" f4.out && ok || { fail "--init with another network's weights"; show f4.out; }

# --- a compiled program resumes the same way
if "$cnnc" n.cnn -o n.c >cc.out 2>&1 &&
    ${CC:-cc} -O2 ${SAN_CFLAGS:-} n.c -I"$srcdir/runtime/include" -L"$builddir/.libs" -lcnnrt -lm \
        -Wl,-rpath,"$builddir/.libs" -o nprog >>cc.out 2>&1; then
    ./nprog --train data --out cf.weights --no-cache --threads 2 --quiet >/dev/null 2>&1
    CNNRT_TEST_KILL_AFTER_EPOCH=3 ./nprog --train data --out cp.weights --no-cache --threads 2 >/dev/null 2>&1
    ./nprog --resume cp.ckpt >cp.out 2>&1 || { fail "compiled program: --resume"; show cp.out; }
    cmp -s cf.weights cp.weights && ok || fail "compiled program: resumed weights differ"
    cmp -s cf.weights full.weights && ok || fail "compiled program and cnnrun: weights differ"
else
    fail "building the compiled program"; show cc.out
fi

echo "resume: $passed passed, $failed failed"
[ $failed -eq 0 ]
