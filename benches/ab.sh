#!/usr/bin/env bash
# A/B timing of two commits on a noisy machine: builds one benchmark binary from OLD (a git
# revision, checked out in a temporary worktree) and from the working tree (or from revision NEW,
# if that variable is set), then runs them alternately, ROUNDS times each, pinned like benches/run.sh, and prints every median. Compare the
# smallest medians of each side: on a shared 2-vCPU machine a single criterion run against a saved
# baseline moved by ±20 % between minutes, alternating runs do not share that drift.
#
#   bash benches/ab.sh OLD FLAVOUR BENCH FILTER [ROUNDS]
#   bash benches/ab.sh HEAD~1 native batched 'batched_d64/ours/2048$' 3
#
# FLAVOUR is default or native (as in benches/run.sh; the working tree builds in run.sh's target
# dir, the other checkouts beside it: see benches/sides.sh); BENCH a file of
# benches/benches without .rs; FILTER a criterion filter (a regex).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 flavour=$2 bench=$3 filter=$4 rounds=${5:-3}
export RAYON_NUM_THREADS=1
# shellcheck source=benches/pinned.sh
source benches/pinned.sh
# shellcheck source=benches/sides.sh
source benches/sides.sh
sides "$old" "$flavour"
build_side "$work/old" old "$bench" bench -p nadaraya-benches --bench "$bench" --no-run
build_side "$new_src" new "$bench" bench -p nadaraya-benches --bench "$bench" --no-run
for r in $(seq "$rounds"); do
    for v in old new; do
        # Criterion keeps its results under $CARGO_TARGET_DIR: here a scratch one, so that A/B
        # runs never mix into the results benches/run.sh reports.
        CARGO_TARGET_DIR=$work pinned "$work/bin-$v" --bench "$filter" --warm-up-time 1 --measurement-time 3 --noplot 2>/dev/null |
            awk -v v="$v" -v r="$r" '/^[A-Za-z0-9_]+\// { name = $1 } /time:/ { print "round " r, v, name, $(NF-3), $(NF-2) }'
    done
done
