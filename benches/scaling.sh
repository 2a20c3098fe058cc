#!/usr/bin/env bash
# The two-core scaling of nadaraya_rf::par (issue 14, item 4), separated from the machine: each
# figure is the median of one kernel timed in a loop for SCALING_SECONDS (benches/examples/
# scaling.rs, default build, d = dv = 64, softmax-dot, the inputs of benches/benches/parallel.rs).
#
#   bash benches/scaling.sh                       (5 s per figure, 14 slots + 10 s: ~1.7 min + build)
#   SCALING_SECONDS=1 bash benches/scaling.sh     (a quick check that it runs)
#
# (a) the machine: one single-thread process of the serial core alone, then two of them at once,
#     one per CPU (taskset). Two independent cores give 2.00x the throughput; less means the two
#     vCPUs share something on the host (a physical core, its caches, memory bandwidth).
# (b) memory: a plain lane-wise read of split-K's 32 MiB of keys and values on 1 and 2 threads.
# (c) ours: par::attention (L = 2048) and par::attention_split (N = 65536, 2 and 8 chunks) on
#     rayon pools of 1 and 2 threads, and the serial split (par::attention_split_serial) on the
#     calling thread.
# Then the ratios: ours over 2 threads against (a) and (b), the ceilings this machine allows.
# (d) where the two-thread batched call's time goes (benches/examples/par_anatomy.rs, 2x
#     SCALING_SECONDS): the serial core, two serial calls on two threads, static halves, par,
#     and its tasks traced, alternated round by round in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SCALING_SECONDS:-5}
export CARGO_INCREMENTAL=0
cargo build --release -p nadaraya-benches --example scaling --example par_anatomy
bin=${CARGO_TARGET_DIR:-target}/release/examples/scaling
anatomy=${CARGO_TARGET_DIR:-target}/release/examples/par_anatomy
pin() { if command -v taskset >/dev/null; then taskset -c "$@"; else shift; "$@"; fi; }
# The median in ms of `scaling CASE THREADS` (CHUNKS from the environment), its line logged.
med() {
    local line err
    err=$(mktemp)
    if ! line=$("$@" "$secs" 2>"$err"); then
        cat "$err" >&2
        rm -f "$err"
        return 1
    fi
    rm -f "$err"
    echo "  $line" >&2
    sed -n 's/.* median_ms=\([0-9.]*\).*/\1/p' <<< "$line"
}
# Two single-thread processes of CASE at once, on CPU 0 and CPU 1: their mean median.
pair() {
    local a b first
    a=$(mktemp) b=$(mktemp)
    med pin 0 "$bin" "$1" 1 > "$a" &
    first=$!
    med pin 1 "$bin" "$1" 1 > "$b"
    wait "$first"
    awk '{ s += $1 } END { print s / NR }' "$a" "$b"
    rm -f "$a" "$b"
}
r() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# The host's steal time (the vCPUs runnable but not run), in USER_HZ ticks over all CPUs.
steal() { awk '/^cpu / { print $9 }' /proc/stat; }
steal0=$(steal)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; ${secs} s per figure" >&2
"$bin" stream 1 0.001 2>&1 >/dev/null | sed -n 's/^nadaraya dispatch level/the kernels'"'"' level/p' >&2
echo "(a) the machine: the serial core, one process alone, then two at once" >&2
cb1=$(med pin 0 "$bin" core-batched 1)
cb2=$(pair core-batched)
cs1=$(med pin 0 "$bin" core-split 1)
cs2=$(pair core-split)
echo "(b) memory: a streaming read of 32 MiB" >&2
st1=$(med "$bin" stream 1)
st2=$(med "$bin" stream 2)
echo "(c) ours" >&2
pb1=$(med "$bin" par-batched 1)
pb2=$(med "$bin" par-batched 2)
ss2=$(CHUNKS=2 med "$bin" split-serial 1)
ps1=$(CHUNKS=2 med "$bin" par-split 1)
ps2=$(CHUNKS=2 med "$bin" par-split 2)
ss8=$(CHUNKS=8 med "$bin" split-serial 1)
p81=$(CHUNKS=8 med "$bin" par-split 1)
p82=$(CHUNKS=8 med "$bin" par-split 2)
echo "(d) the two-thread batched call, alternated in one process" >&2
anat=$("$anatomy" "$(awk -v s="$secs" 'BEGIN { print 2 * s }')" 2>/dev/null)
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); steal time during the run:" \
    "$(awk -v a="$steal0" -v b="$(steal)" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }') s" >&2

gbs() { awk -v t="$1" 'BEGIN { printf "%.1f", 2 * 65536 * 64 * 4 / (t * 1e6) }'; }
# Two processes' throughput over one's: 2 t_alone / t_each.
mb=$(awk -v a="$cb1" -v b="$cb2" 'BEGIN { printf "%.2f", 2 * a / b }')
ms=$(awk -v a="$cs1" -v b="$cs2" 'BEGIN { printf "%.2f", 2 * a / b }')
cat <<EOF

| case | one | two | two over one (throughput) |
| --- | ---: | ---: | ---: |
| (a) machine: serial core, batched L = 2048: 1 process, 2 at once | $cb1 ms | $cb2 ms each | ${mb}× |
| (a) machine: serial core, split N = 65536: 1 process, 2 at once | $cs1 ms | $cs2 ms each | ${ms}× |
| (b) memory: read 32 MiB, 1 thread, 2 threads | $st1 ms ($(gbs "$st1") GB/s) | $st2 ms ($(gbs "$st2") GB/s) | $(r "$st1" "$st2")× |
| (c) par::attention, L = 2048: 1 thread, 2 threads | $pb1 ms | $pb2 ms | $(r "$pb1" "$pb2")× |
| (c) par::attention_split, N = 65536, 2 chunks: 1 thread, 2 threads | $ps1 ms | $ps2 ms | $(r "$ps1" "$ps2")× |
| (c) par::attention_split, N = 65536, 8 chunks: 1 thread, 2 threads | $p81 ms | $p82 ms | $(r "$p81" "$p82")× |

One thread against the serial core (1.00 = no overhead): par::attention $(r "$pb1" "$cb1");
split, 2 chunks: the serial split over the core $(r "$ss2" "$cs1"), par on 1 thread over the serial split $(r "$ps1" "$ss2");
split, 8 chunks: the serial split over the core $(r "$ss8" "$cs1"), par on 1 thread over the serial split $(r "$p81" "$ss8").
Ours over the machine's ceiling (1.00 = all that two processes get): batched $(r "$(r "$pb1" "$pb2")" "$mb"),
split-K 2 chunks $(r "$(r "$ps1" "$ps2")" "$ms"), 8 chunks $(r "$(r "$p81" "$p82")" "$ms");
split-K 8 chunks over the streaming read's scaling $(r "$(r "$p81" "$p82")" "$(r "$st1" "$st2")").

(d) benches/examples/par_anatomy.rs:
$anat
EOF
