# Sourced by benches/ab.sh and benches/cachegrind.sh, which compare an OLD revision with the
# working tree.
#
# `sides OLD FLAVOUR` sets the flags of FLAVOUR (default, or native for `-C target-cpu=native`, as
# benches/run.sh), makes $work (removed on exit), checks OLD out in $work/old and sets $new_src to
# the new side's tree: this one, or, when NEW is set to a revision, its checkout in $work/new.
# `build_side DIR NAME TARGET CARGO-ARGS...` runs `cargo CARGO-ARGS --message-format json` in DIR
# and copies the executable cargo reports for the target named TARGET to $work/bin-NAME.
#
# Each checkout has its own target directory. Cargo hashes a workspace member by its path relative
# to the workspace root, so two checkouts would share one set of artifacts, and the one built
# second, its sources older than the first one's build, would be taken as fresh and run the first
# one's code (this happened to OLD, and then to NEW, before the directories were split).
sides() {
    case $2 in
    default) export RUSTFLAGS="" ;;
    native) export RUSTFLAGS="-C target-cpu=native" ;;
    *) echo "flavour must be default or native" >&2; exit 2 ;;
    esac
    export CARGO_TARGET_DIR="$PWD/target/bench-$2"
    work=$(mktemp -d)
    trap 'git worktree remove --force "$work/old" 2>/dev/null; git worktree remove --force "$work/new" 2>/dev/null; rm -rf "$work"' EXIT
    git worktree add --detach "$work/old" "$1" >/dev/null
    new_src=.
    if [ -n "${NEW:-}" ]; then
        git worktree add --detach "$work/new" "$NEW" >/dev/null
        new_src=$work/new
    fi
}

build_side() {
    local src=$1 name=$2 target=$3 dir=$CARGO_TARGET_DIR exe
    shift 3
    # OLD and NEW checkouts in their own directories; this tree in $CARGO_TARGET_DIR (as
    # benches/run.sh, which builds nothing else there).
    [ "$src" != . ] && dir=$CARGO_TARGET_DIR-$name
    exe=$(cd "$src" && CARGO_TARGET_DIR=$dir cargo "$@" --message-format json 2>/dev/null |
        grep -F "\"name\":\"$target\"" | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
    if [ -z "$exe" ]; then
        echo "could not build the $name side: cargo $*" >&2
        exit 1
    fi
    cp "$exe" "$work/bin-$name"
}
