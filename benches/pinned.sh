# Sourced by benches/run.sh and benches/ab.sh: `pinned CMD...` runs CMD on CPU 1 at the highest
# priority in its own scheduler autogroup when run as root (`nice` alone does not outrank other
# sessions' autogroups on Linux), else plainly.
pinned() {
    if [ "$(id -u)" = 0 ] && command -v taskset >/dev/null && command -v setsid >/dev/null; then
        setsid --wait bash -c 'echo -20 > /proc/$$/autogroup 2>/dev/null; exec nice -n -20 taskset -c 1 "$@"' _ "$@"
    else
        "$@"
    fi
}
