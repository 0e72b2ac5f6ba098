#!/usr/bin/env bash
# Compares this tree's spawn and enter figures with an earlier commit's,
# both built here and run alternately on the same machine, so that a
# change can show it costs nothing (or what it costs).
#
#   sudo benches/versus.sh REV                 # e.g. benches/versus.sh 98f97da
#   sudo VGUEST_BENCH_ROUNDS=600 VERSUS_RUNS=3 benches/versus.sh REV
#
# REV is checked out in target/versus/tree (a detached git worktree) and
# built into target/versus/target. Each bench binary (enter, spawn) runs
# with criterion's part filtered away, so only the interleaved rounds run
# (benches/interleave/mod.rs; VGUEST_BENCH_ROUNDS per run, default 300);
# the old and the new binary take turns, VERSUS_RUNS times each (default
# 2; VERSUS_BENCHES="spawn" runs one bench). Each run's figures go to
# stderr as they come. The table gives, for every interleaved ratio, the mean of its median
# ratio over the runs, old and new, and how much the new one moved.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ "$(id -u)" != 0 ]; then
    echo "the benches create namespaces, cgroups and links: run as root (sudo $0)" >&2
    exit 1
fi
rev=${1:?usage: benches/versus.sh REV}
runs=${VERSUS_RUNS:-2}
tree=$root/target/versus/tree
old_target=$root/target/versus/target

if [ -e "$tree" ]; then
    git -C "$tree" checkout -q --detach "$rev"
else
    mkdir -p "$(dirname "$tree")"
    git worktree add -q --detach "$tree" "$rev"
fi

# Prints the path of the bench binary NAME built in the current directory.
build() {
    cargo bench --no-run --bench "$1" 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1
}
new_enter=$root/$(build enter)
new_spawn=$root/$(build spawn)
old_enter=$tree/$(cd "$tree" && CARGO_TARGET_DIR=$old_target build enter | sed "s|^$old_target|../target|")
old_spawn=$tree/$(cd "$tree" && CARGO_TARGET_DIR=$old_target build spawn | sed "s|^$old_target|../target|")
for bin in "$new_enter" "$new_spawn" "$old_enter" "$old_spawn"; do
    [ -x "$bin" ] || { echo "no bench binary at $bin" >&2; exit 1; }
done

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# The ratios of one run, tagged with the side: "SIDE<TAB>WHAT<TAB>RATIO".
run() {
    local side=$1 bin=$2 dir=$3
    echo "-- $side: $(basename "$bin")"
    (cd "$dir" && "$bin" --bench versus-no-criterion-bench) | grep -v '^Gnuplot' | tee /dev/stderr \
        | sed -n "s/^   ratio \(.*[^ ]\)  *\([0-9.]*\)x median.*/$side\t\1\t\2/p" >>"$logs/ratios"
}
benches=${VERSUS_BENCHES:-enter spawn}
for i in $(seq "$runs"); do
    echo "== run $i of $runs: $rev, then this tree"
    for bench in $benches; do
        old_bin=old_$bench new_bin=new_$bench
        run old "${!old_bin}" "$tree"
        run new "${!new_bin}" "$root"
    done
done

echo
echo "== $rev (old) against this tree (new): mean median ratio over $runs runs each"
awk -F'\t' '
    { sum[$1, $2] += $3; n[$1, $2]++; if (!(($2) in seen)) { seen[$2] = 1; order[++k] = $2 } }
    END {
        printf "   %-52s %7s %7s %8s\n", "ratio", "old", "new", "change"
        for (i = 1; i <= k; i++) {
            w = order[i]
            if (!n["old", w] || !n["new", w]) continue
            o = sum["old", w] / n["old", w]; m = sum["new", w] / n["new", w]
            printf "   %-52s %6.2fx %6.2fx %+7.1f%%\n", w, o, m, (m / o - 1) * 100
        }
    }' "$logs/ratios"
