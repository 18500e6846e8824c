#!/usr/bin/env bash
# Sums the "test result:" lines of cargo test logs, and the per-stack
# summary lines of the VM suite (tests/vm/run.sh), into one line:
#   totals: N passed, N failed, N ignored (M test binaries, K VM boots)
# Usage: scripts/test-totals.sh LOG...
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
/^vm-test: +stack [a-z0-9_-]+: .*: [0-9]+ passed, [0-9]+ failed$/ {
    p += $(NF - 3); f += $(NF - 1); v++
}
END { printf "totals: %d passed, %d failed, %d ignored (%d test binaries, %d VM boots)\n", p, f, g, n, v }
' "$@"
