# Sourced by benches/statsmodels/run.sh and benches/metric-learn/run.sh (from the workspace root):
# `python_env VENV REQUIREMENTS` makes sure hyperfine is installed (with apt-get when missing and
# run as root; otherwise it stops and names the command), creates the virtual environment VENV
# with python3's venv if it is missing, installs REQUIREMENTS into it, and sets `py` to its
# python.
python_env() {
    local venv=$1 requirements=$2
    if ! command -v hyperfine >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get install -y hyperfine
        else
            echo "hyperfine is missing: run \`sudo apt-get install -y hyperfine\` and rerun $0" >&2
            exit 1
        fi
    fi
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q -r "$requirements"
    py="$venv/bin/python"
}
