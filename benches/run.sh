#!/usr/bin/env bash
# Runs every benchmark in both build flavours, measures the machine's limits in each, and
# regenerates BENCHMARKS.md and docs/bench-*.png from criterion's output.
#
#   bash benches/run.sh            # everything (about 20 minutes on 2 cores)
#   bash benches/run.sh report     # only regenerate BENCHMARKS.md and the plots
#
# Each flavour has its own target dir so the two builds do not rebuild each other:
#   default: target/bench-default (x86-64 baseline: SSE2, what `cargo build --release` gives)
#   native:  target/bench-native  (RUSTFLAGS="-C target-cpu=native": AVX2/FMA/AVX-512 here)
# candle is pinned to one thread by the benches themselves (RAYON_NUM_THREADS=1).
set -euo pipefail
cd "$(dirname "$0")/.."

flavour() { # name rustflags
    local dir="target/bench-$1"
    RUSTFLAGS="$2" CARGO_TARGET_DIR="$dir" cargo run --release -p nadaraya-benches --bin roofline -- "$dir/roofline.json"
    RUSTFLAGS="$2" CARGO_TARGET_DIR="$dir" RAYON_NUM_THREADS=1 cargo bench -p nadaraya-benches
}

if [ "${1:-all}" != report ]; then
    flavour default ""
    flavour native "-C target-cpu=native"
fi
CARGO_TARGET_DIR=target/bench-default cargo run --release -p nadaraya-benches --bin report -- \
    default=target/bench-default native=target/bench-native
