#!/usr/bin/env bash
# Deterministic A/B of one attention call: instructions and simulated cache misses of
# benches/src/bin/batched_once.rs (M queries x L keys, d = 64) under valgrind's cachegrind, for
# OLD (a git revision, in a temporary worktree) and the working tree (or revision NEW, if set). On a shared 2-vCPU machine
# wall-clock A/B moved by 2x between minutes; these counts do not.
#
#   bash benches/cachegrind.sh OLD [FLAVOUR] [SIZE...]     SIZE is L (M = L) or L:M
#   bash benches/cachegrind.sh HEAD~1 default 512 2048 4096:1
#
# FLAVOUR native may use instructions valgrind cannot run (AVX-512 on this machine).
# The caches simulated are this machine's L1d (48 KiB, 12-way) and, as the "last level", one
# core's 2 MiB L2, so that LL misses count what had to come from the shared L3 or memory.
# Counts include generating the inputs (the same on both sides).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 flavour=${2:-default}
shift $(($# < 2 ? $# : 2))
sizes=("${@:-2048}")
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install -y valgrind" >&2; exit 2; }
# shellcheck source=benches/sides.sh
source benches/sides.sh
sides "$old" "$flavour"
# The driver is this tree's (OLD may predate it); it uses only the public API.
for side in old new; do
    [ $side = old ] && src=$work/old || src=$new_src
    mkdir -p "$src/benches/src/bin"
    [ "$src" = . ] || cp benches/src/bin/batched_once.rs "$src/benches/src/bin/"
    build_side "$src" $side batched_once build --release -p nadaraya-benches --bin batched_once
done
printf '%-5s %6s %16s %14s %12s\n' side L:M instructions D1_misses LL_misses
for l in "${sizes[@]}"; do
    for v in old new; do
        valgrind --tool=cachegrind --cache-sim=yes --D1=49152,12,64 --LL=2097152,16,64 \
            --cachegrind-out-file=/dev/null "$work/bin-$v" ${l/:/ } 2>"$work/cg.txt" >/dev/null
        awk -v v="$v" -v l="$l" '
            /I *refs:/ { gsub(",", "", $4); i = $4 }
            /D1 *misses:/ { gsub(",", "", $4); d1 = $4 }
            /LLd misses:/ { gsub(",", "", $4); ll = $4 }
            END { printf "%-5s %6s %16s %14s %12s\n", v, l, i, d1, ll }' "$work/cg.txt"
    done
done
