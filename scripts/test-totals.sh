#!/usr/bin/env bash
# Sums the "test result:" lines of a cargo test log into one line:
#   totals: N passed, N failed, N ignored (M test binaries)
# Usage: scripts/test-totals.sh LOG
set -euo pipefail
awk '
/^test result: / {
    for (i = 1; i <= NF; i++) {
        w = $(i + 1); sub(/[;,]$/, "", w)
        if (w == "passed") p += $i
        if (w == "failed") f += $i
        if (w == "ignored") g += $i
    }
    n++
}
END { printf "totals: %d passed, %d failed, %d ignored (%d test binaries)\n", p, f, g, n }
' "$1"
