#!/usr/bin/env bash
# A/B timing of two commits on a noisy machine: builds one benchmark binary from OLD (a git
# revision, checked out in a temporary worktree) and from the working tree, then runs them
# alternately, ROUNDS times each, pinned like benches/run.sh, and prints every median. Compare the
# smallest medians of each side: on a shared 2-vCPU machine a single criterion run against a saved
# baseline moved by ±20 % between minutes, alternating runs do not share that drift.
#
#   bash benches/ab.sh OLD FLAVOUR BENCH FILTER [ROUNDS]
#   bash benches/ab.sh HEAD~1 native batched 'batched_d64/ours/2048$' 3
#
# FLAVOUR is default or native (as in benches/run.sh, same target dirs); BENCH a file of
# benches/benches without .rs; FILTER a criterion filter (a regex).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 flavour=$2 bench=$3 filter=$4 rounds=${5:-3}
case $flavour in
default) export RUSTFLAGS="" ;;
native) export RUSTFLAGS="-C target-cpu=native" ;;
*) echo "flavour must be default or native" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR="$PWD/target/bench-$flavour" RAYON_NUM_THREADS=1
work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" 2>/dev/null; rm -rf "$work"' EXIT

# shellcheck source=benches/pinned.sh
source benches/pinned.sh

build() { # dir name
    local exe
    exe=$(cd "$1" && cargo bench -p nadaraya-benches --bench "$bench" --no-run --message-format json 2>/dev/null |
        grep '"kind":\["bench"\]' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
    cp "$exe" "$work/bin-$2"
}

git worktree add --detach "$work/old" "$old" >/dev/null
build "$work/old" old
build . new
for r in $(seq "$rounds"); do
    for v in old new; do
        pinned "$work/bin-$v" --bench "$filter" --warm-up-time 1 --measurement-time 3 --noplot 2>/dev/null |
            awk -v v="$v" -v r="$r" '/^[A-Za-z0-9_]+\// { name = $1 } /time:/ { print "round " r, v, name, $(NF-3), $(NF-2) }'
    done
done
