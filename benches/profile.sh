#!/usr/bin/env bash
# Where one single-query call (N = 4096, d = dv = 64) spends its time: perf's cpu-clock
# sampling (it works in VMs without hardware counters) of `nadaraya::attention` under
# criterion's --profile-time, then the hottest instructions of the two main loops (the
# weighted sum of values and the scores).
#
#   bash benches/profile.sh [native|default] [dot|gaussian]
#
# Needs `perf` (Debian: linux-perf). Uses the same target dirs as benches/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-native}
kernel=${2:-dot}
flags=""
[ "$flavour" = native ] && flags="-C target-cpu=native"
dir="$PWD/target/bench-$flavour"
RUSTFLAGS="$flags" CARGO_TARGET_DIR="$dir" cargo bench -p nadaraya-benches --bench anatomy --no-run
exe=$(find "$dir/release/deps" -maxdepth 1 -type f -executable -name 'anatomy-*' -printf '%T@ %p\n' | sort -rn | head -1 | cut -d' ' -f2)
data="$dir/anatomy-$kernel.perf"
perf record -q -e cpu-clock -F 4000 -o "$data" "$exe" --bench --profile-time 4 "anatomy_${kernel}_d64_n4096/attention" >/dev/null
echo "== share of samples by function"
perf report -i "$data" --stdio --no-children 2>/dev/null | grep -v '^#' | grep -v '^$' | head -6 || true
[ "$kernel" = dot ] && kname=SoftmaxDot || kname=Gaussian
for sym in nadaraya::softmax::Lse::absorb_scores "<nadaraya::kernel::$kname as nadaraya::kernel::Kernel>::scores"; do
    echo "== hottest instructions of $sym (percent of its samples)"
    perf annotate -i "$data" --stdio -s "$sym" 2>/dev/null | grep -E '^ +[0-9]+\.[0-9]+ :' | sort -rn | head -10 || true
done
