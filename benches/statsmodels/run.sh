#!/usr/bin/env bash
# nadaraya fit against statsmodels' KernelReg(reg_type='lc', bw='cv_ls') on the three data sets
# of `nadaraya generate` (issue 12): bandwidths, the CV of each side's bandwidths computed by the
# same f64 numpy LOO (kernelreg.py --cv), and hyperfine wall times of the whole command,
# process start included. Writes benches/statsmodels/results.md and prints it.
#
#   benches/statsmodels/run.sh            (RUNS_OURS=20 RUNS_THEIRS=3 by default)
#
# Needs python3 with venv, and hyperfine (Debian package `hyperfine`: installed here with
# apt-get when missing and possible; otherwise it stops and names the command).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=benches/statsmodels
work=target/statsmodels-bench
venv=target/statsmodels-venv
mkdir -p "$work"
RUNS_OURS=${RUNS_OURS:-20}
RUNS_THEIRS=${RUNS_THEIRS:-3}

# shellcheck source=benches/python-env.sh
source benches/python-env.sh
python_env "$venv" "$here/requirements.txt"

cargo build --release -p nadaraya-cli
bin=target/release/nadaraya

# The data set, and the flags of `nadaraya fit` that match statsmodels' model on it (statsmodels
# always selects one bandwidth per column: per-dim where D > 1).
cases=("smooth-200:" "multimodal-1000:" "irrelevant-500:--per-dim")
out="$here/results.md"
{
    echo "| data | N | D | nadaraya fit | statsmodels | ratio | h (ours) | h (statsmodels) | CV (ours) | CV (statsmodels) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |"
} > "$out.tmp"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for c in "${cases[@]}"; do
    name=${c%%:*}
    flags=${c#*:}
    csv="$work/$name.csv"
    "$bin" generate "$name" --out "$csv"
    n=$(($(wc -l < "$csv") - 1))
    d=$(($(head -1 "$csv" | tr -cd ',' | wc -c)))
    ours=$("$bin" fit $flags "$csv" | sed -n 's/^bandwidth //p')
    theirs_out=$("$py" "$here/kernelreg.py" "$csv" 2>/dev/null)
    theirs=$(sed -n 's/^bandwidth //p' <<< "$theirs_out")
    cv_theirs=$(sed -n 's/^cv //p' <<< "$theirs_out")
    cv_ours=$("$py" "$here/kernelreg.py" "$csv" --cv "$(tr ' ' , <<< "$ours")" | sed -n 's/^cv //p')
    hyperfine -N --warmup 3 --runs "$RUNS_OURS" --export-json "$work/$name-ours.json" \
        "$bin fit $flags $csv" >&2
    hyperfine --runs "$RUNS_THEIRS" --export-json "$work/$name-theirs.json" \
        "$py $here/kernelreg.py $csv 2>/dev/null" >&2
    "$py" - "$work/$name-ours.json" "$work/$name-theirs.json" "$name" "$n" "$d" \
        "$ours" "$theirs" "$cv_ours" "$cv_theirs" >> "$out.tmp" <<'PY'
import json, sys
a, b = (json.load(open(p))["results"][0] for p in sys.argv[1:3])
name, n, d, ours, theirs, cv_o, cv_t = sys.argv[3:10]
fmt = lambda r: f"{r['mean']*1e3:.1f} ± {r['stddev']*1e3:.1f} ms" if r['mean'] < 1 else f"{r['mean']:.2f} ± {r['stddev']:.2f} s"
hs = lambda s: ", ".join(f"{float(v):.4g}" for v in s.split())
print(f"| {name} | {n} | {d} | {fmt(a)} | {fmt(b)} | {b['mean']/a['mean']:.0f}× | {hs(ours)} | {hs(theirs)} | {float(cv_o):.7g} | {float(cv_t):.7g} |")
PY
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
{
    cat "$out.tmp"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), load average $load_before before and $load_after after; hyperfine $(hyperfine --version | cut -d' ' -f2), $RUNS_OURS runs of ours (3 warm-up), $RUNS_THEIRS of statsmodels; statsmodels $("$py" -c 'import statsmodels; print(statsmodels.__version__)'), numpy $("$py" -c 'import numpy; print(numpy.__version__)'). CV: kernelreg.py's f64 numpy LOO at each side's bandwidths."
} > "$out"
rm "$out.tmp"
cat "$out"
