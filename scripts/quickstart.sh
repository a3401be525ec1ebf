#!/bin/sh
# quickstart.sh - the README's first command: installs what cnnc needs (and Debian's
# Fashion-MNIST), builds, shows every example network, then trains examples/fashion.cnn
# for a couple of epochs and prints the lecture's result row.
# Usage: scripts/quickstart.sh [extra cnnrun options, e.g. --epochs 5]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
CNNC_EXTRA_PACKAGES="dataset-fashion-mnist" "$top/scripts/setup.sh" "$top/build"
build="$top/build"

echo
echo "== The example networks (cnnc --summary) =="
for f in "$top"/examples/*.cnn; do
    "$build/cnnc" "$f" --summary
    echo
done

echo "== Training examples/fashion.cnn on Fashion-MNIST =="
"$build/cnnrun" "$top/examples/fashion.cnn" --train /usr/share/datasets/fashion-mnist \
    --out "$build/fashion.weights" --plot "$build/fashion-curves.svg" "$@"
echo
echo "Weights: $build/fashion.weights   Curves: $build/fashion-curves.svg"
