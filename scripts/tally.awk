# tally.awk - sums the test counts in `make check` logs: Check's "Checks: N, Failures: F,
# Errors: E" and the scripts' "[label:] N passed, M failed[, K skipped]" (a label may hold
# letters, digits, '_', '-', '.' and spaces). Prints "PASSED FAILED SKIPPED". Used by
# scripts/check.sh; tests/test_tally.sh feeds it sample lines.
/Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+/ {
    for (i = 1; i <= NF; i++) {
        if ($i == "Checks:") c = $(i+1) + 0
        if ($i == "Failures:") f = $(i+1) + 0
        if ($i == "Errors:") e = $(i+1) + 0
    }
    pass += c - f - e; fail += f + e
    next
}
/^([A-Za-z0-9_. -]*: *)?[0-9]+ passed, [0-9]+ failed/ {
    for (i = 2; i <= NF; i++) {
        if ($i ~ /^passed,?$/) pass += $(i-1) + 0
        if ($i ~ /^failed,?$/) fail += $(i-1) + 0
        if ($i ~ /^skipped,?$/) skip += $(i-1) + 0
    }
}
END { printf "%d %d %d\n", pass, fail, skip }
