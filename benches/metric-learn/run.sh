#!/usr/bin/env bash
# nadaraya learn against metric-learn 0.7's MLKR on the `oblique-400` data set of `nadaraya
# generate` (N=400, D=5, y = sin(1.6·u·x) + 0.1·noise, issue 13's anchor), for K=1 and K=5: the
# LOO MSE of each side's map by the same f64 numpy LOO (mlkr.py --cv), the direction recovered
# (|cos| of the map's top right singular vector with u), and hyperfine wall times of the whole
# command, process start included. Writes benches/metric-learn/results.md and prints it.
#
#   benches/metric-learn/run.sh            (RUNS_OURS=20 RUNS_THEIRS=3 by default)
#
# Needs python3 with venv, and hyperfine (Debian package `hyperfine`).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=benches/metric-learn
work=target/metric-learn-bench
venv=target/metric-learn-venv
mkdir -p "$work"
RUNS_OURS=${RUNS_OURS:-20}
RUNS_THEIRS=${RUNS_THEIRS:-3}

# shellcheck source=benches/python-env.sh
source benches/python-env.sh
python_env "$venv" "$here/requirements.txt"

cargo build --release -p nadaraya-cli
bin=target/release/nadaraya
csv="$work/oblique-400.csv"
"$bin" generate oblique-400 --out "$csv"
u=0.342997170285018,0.685994340570036,-0.342997170285018,0.171498585142509,0.514495755427527

out="$here/results.md"
{
    echo "| K | nadaraya learn | metric-learn MLKR | ratio | LOO MSE identity | LOO MSE (ours) | LOO MSE (metric-learn) | \|cos\| (ours) | \|cos\| (metric-learn) | iterations (ours / metric-learn) |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} > "$out.tmp"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for k in 1 5; do
    ours_out=$("$bin" learn "$csv" --dim "$k" --direction "$u")
    theirs_out=$("$py" "$here/mlkr.py" "$csv" --dim "$k" --direction "$u" 2>/dev/null)
    get() { sed -n "s/^$1 //p" <<< "$2"; }
    w_ours=$(get projection "$ours_out" | tr ' ' ,)
    cv_ours=$("$py" "$here/mlkr.py" "$csv" --dim "$k" --cv "$w_ours" | sed -n 's/^cv //p')
    hyperfine -N --warmup 3 --runs "$RUNS_OURS" --export-json "$work/k$k-ours.json" \
        "$bin learn $csv --dim $k" >&2
    hyperfine --runs "$RUNS_THEIRS" --export-json "$work/k$k-theirs.json" \
        "$py $here/mlkr.py $csv --dim $k 2>/dev/null" >&2
    "$py" - "$work/k$k-ours.json" "$work/k$k-theirs.json" "$k" \
        "$(get identity-cv "$theirs_out")" "$cv_ours" "$(get cv "$theirs_out")" \
        "$(get cos "$ours_out")" "$(get cos "$theirs_out")" \
        "$(get iterations "$ours_out")" "$(get iterations "$theirs_out")" >> "$out.tmp" <<'PY'
import json, sys
a, b = (json.load(open(p))["results"][0] for p in sys.argv[1:3])
k, idcv, cv_o, cv_t, cos_o, cos_t, it_o, it_t = sys.argv[3:11]
fmt = lambda r: f"{r['mean']*1e3:.1f} ± {r['stddev']*1e3:.1f} ms" if r['mean'] < 1 else f"{r['mean']:.2f} ± {r['stddev']:.2f} s"
print(f"| {k} | {fmt(a)} | {fmt(b)} | {b['mean']/a['mean']:.0f}× | {float(idcv):.4f} | {float(cv_o):.5f} | {float(cv_t):.5f} | {float(cos_o):.5f} | {float(cos_t):.5f} | {it_o} / {it_t} |")
PY
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
{
    cat "$out.tmp"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), load average $load_before before and $load_after after; hyperfine $(hyperfine --version | cut -d' ' -f2), $RUNS_OURS runs of ours (3 warm-up), $RUNS_THEIRS of metric-learn; metric-learn $("$py" -c 'import metric_learn; print(metric_learn.__version__)'), scikit-learn $("$py" -c 'import sklearn; print(sklearn.__version__)'), numpy $("$py" -c 'import numpy; print(numpy.__version__)'). LOO MSE: mlkr.py's f64 numpy LOO at each side's map; |cos|: the map's top right singular vector against u."
} > "$out"
rm "$out.tmp"
cat "$out"
