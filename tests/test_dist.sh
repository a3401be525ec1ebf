#!/bin/sh
# test_dist.sh - the MPI tests on 2 ranks of this machine (oversubscribed: 2 cores are shared):
# the order-fixed sums of runtime/dist/, and that a failing rank stops the job naming itself.
# Skipped (exit 77, with the reason) when the build has no MPI.
set -u
b=${top_builddir:-.}
if ! grep -q '^#define HAVE_MPI 1' "$b/config.h" 2>/dev/null; then
    echo "SKIP: built without MPI (configure found no Open MPI; Debian: apt-get install openmpi-bin libopenmpi-dev)"
    exit 77
fi
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not on PATH"; exit 77; }
# root in containers and CI; --oversubscribe: 2 ranks on fewer cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe -np 2"
pass=0; fail=0
ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $*"; }

out=$($MPIRUN "$b/tests/test_dist" 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] && ok || ko "test_dist exited $rc"
[ "$(echo "$out" | grep -c ', 0 failed$')" -eq 2 ] && ok || ko "both ranks should report 0 failed"

# a rank that fails stops every rank, and the message names it
out=$(CNNC_DIST_FAIL_RANK=1 $MPIRUN "$b/tests/test_dist" 2>&1); rc=$?
[ $rc -ne 0 ] && ok || ko "a failing rank should fail the job"
echo "$out" | grep -q "rank 1 of 2: told to fail" && ok || ko "the message should name rank 1: $out"

echo "test_dist: $pass passed, $fail failed"
[ $fail -eq 0 ]
