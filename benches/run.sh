#!/usr/bin/env bash
# Runs every benchmark in both build flavours, measures the machine's limits in each, and
# regenerates BENCHMARKS.md and docs/bench-*.png from criterion's output.
#
#   bash benches/run.sh            # everything (about 15 minutes on this 2-core machine)
#   bash benches/run.sh default    # one flavour only (or: native), without the report
#   bash benches/run.sh report     # only regenerate BENCHMARKS.md and the plots
#
# Each flavour has its own target dir so the two builds do not rebuild each other:
#   default: target/bench-default (what `cargo build --release` gives: x86-64 baseline, with the
#            hot kernels dispatched at run time to AVX2 or AVX-512, see nadaraya::dispatch)
#   native:  target/bench-native  (RUSTFLAGS="-C target-cpu=native": AVX2/FMA/AVX-512 here)
# candle is pinned to one thread by the benches themselves (they re-run with RAYON_NUM_THREADS=1).
#
# Measurements run on CPU 1 at the highest priority in their own scheduler autogroup when run as
# root (`nice` alone does not outrank other sessions' autogroups on Linux), so that other work on
# a shared machine does not take half the core: on the 2-vCPU machine of BENCHMARKS.md, without
# this, medians were up to 2x slower and far noisier.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=benches/pinned.sh
source benches/pinned.sh

flavour() { # name rustflags
    local dir="$PWD/target/bench-$1" # absolute: criterion resolves it from the package dir
    export RUSTFLAGS="$2" CARGO_TARGET_DIR="$dir" RAYON_NUM_THREADS=1
    cargo build --release -p nadaraya-benches --bins
    cargo bench -p nadaraya-benches --no-run
    pinned "$dir/release/roofline" "$dir/roofline.json"
    pinned cargo bench -p nadaraya-benches
    unset RUSTFLAGS CARGO_TARGET_DIR
}

what=${1:-all}
case $what in
all | default) flavour default "" ;;
esac
case $what in
all | native) flavour native "-C target-cpu=native" ;;
esac
case $what in
all | report) ;;
*) exit 0 ;;
esac
CARGO_TARGET_DIR="$PWD/target/bench-default" cargo run --release -p nadaraya-benches --bin report -- \
    default=target/bench-default native=target/bench-native
