#!/usr/bin/env bash
# Speed figures against DESIGN 7: dump and restore of processes with 16, 256
# and 1024 MiB of dirtied memory, the image size, and the ratio against
# copying the same bytes with `cat` into a file on the same filesystem,
# measured in the same run. Needs root (restore claims the PID).
# Usage: scripts/bench.sh [MiB ...]   (CKPT_BENCH_DIR picks the filesystem)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ckpt-core --example bench
dir="${CKPT_BENCH_DIR:-$(pwd)/target/bench}"
mkdir -p "$dir"
CKPT_BENCH_DIR="$dir" exec ./target/release/examples/bench "$@"
