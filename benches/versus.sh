#!/usr/bin/env bash
# Compares this tree's interleaved bench ratios with an earlier commit's,
# both built here and run alternately on the same machine, so that a
# change can show it costs nothing (or what it costs).
#
#   sudo benches/versus.sh REV                 # e.g. benches/versus.sh 98f97da
#   sudo VGUEST_BENCH_ROUNDS=600 VERSUS_RUNS=3 benches/versus.sh REV
#   sudo VERSUS_BENCHES="spawn resources" benches/versus.sh REV
#
# REV is checked out in target/versus/tree (a detached git worktree, kept
# and reused) and built into target/versus/target; this tree (the working
# tree, uncommitted changes included) builds into target/. Every bench in
# VERSUS_BENCHES (default "enter spawn resources": any `cargo bench
# --bench NAME` target; the script stops if one is missing on either
# side) is built for both sides, then runs with criterion's part filtered
# away, so only the interleaved rounds run (benches/interleave/mod.rs;
# VGUEST_BENCH_ROUNDS per run, default 300; the resources bench's 200 ms
# idle part takes VGUEST_BENCH_IDLE_ROUNDS, default 20). The old and the
# new binary take turns, VERSUS_RUNS times each (default 2). Each run's
# figures go to stderr as they come.
#
# The table takes every `   ratio WHAT  Nx median ...` line the benches
# print, under its bench and its `== SECTION` heading (a WHAT repeated
# within one section gets #2, #3...), and gives the mean of its median
# ratio over the runs, old and new, and how much the new one moved; a
# ratio only one side prints shows "-" on the other.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ "$(id -u)" != 0 ]; then
    echo "the benches create namespaces, cgroups and links: run as root (sudo $0)" >&2
    exit 1
fi
rev=${1:?usage: benches/versus.sh REV}
runs=${VERSUS_RUNS:-2}
read -r -a benches <<<"${VERSUS_BENCHES:-enter spawn resources}"
[ "${#benches[@]}" -gt 0 ] || { echo "VERSUS_BENCHES names no bench" >&2; exit 1; }
tree=$root/target/versus/tree
old_target=$root/target/versus/target

if [ -e "$tree" ]; then
    git -C "$tree" checkout -q --detach "$rev"
else
    mkdir -p "$(dirname "$tree")"
    git worktree add -q --detach "$tree" "$rev"
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# build SIDE DIR BENCH: builds bench BENCH in DIR (the old side into
# $old_target) and sets bin[SIDE/BENCH] to the absolute path of its binary.
declare -A bin
build() {
    local side=$1 dir=$2 bench=$3 what path
    local log=$logs/build-$side-$bench
    if [ "$side" = old ]; then what="$rev (target/versus/tree)"; else what="this tree"; fi
    echo "-- building $bench: $what" >&2
    if ! (cd "$dir" && if [ "$side" = old ]; then export CARGO_TARGET_DIR=$old_target; fi
        cargo bench --no-run --bench "$bench") >"$log" 2>&1; then
        if grep -q "no bench target named" "$log"; then
            local have
            have=$(sed -n '/available bench targets:/,$p' "$log" | tail -n +2 | xargs echo)
            echo "versus.sh: there is no bench \"$bench\" in $what; its benches: ${have:-none}" >&2
        else
            tail -n 30 "$log" >&2
            echo "versus.sh: building bench \"$bench\" failed in $what (log above)" >&2
        fi
        exit 1
    fi
    path=$(sed -n 's/.*Executable .*(\(.*\))$/\1/p' "$log" | tail -1)
    case $path in /*) ;; ?*) path=$dir/$path ;; esac
    if [ -z "$path" ] || [ ! -x "$path" ]; then
        cat "$log" >&2
        echo "versus.sh: no binary for bench \"$bench\" in $what" >&2
        exit 1
    fi
    bin[$side/$bench]=$path
}
for bench in "${benches[@]}"; do
    build old "$tree" "$bench"
    build new "$root" "$bench"
done

# The ratios of one run, one a line: "SIDE<TAB>BENCH<TAB>SECTION<TAB>WHAT<TAB>RATIO".
run() {
    local side=$1 bench=$2 dir=$3
    echo "-- $side: $bench ($(basename "${bin[$side/$bench]}"))"
    (cd "$dir" && "${bin[$side/$bench]}" --bench versus-no-criterion-bench) | grep -v '^Gnuplot' | tee /dev/stderr \
        | awk -v side="$side" -v bench="$bench" '
            BEGIN { OFS = "\t" }
            /^== / {
                section = substr($0, 4)
                sub(/ \([^()]*load[^()]*\)$/, "", section)    # the rounds and the load
                delete count
            }
            /^   ratio .*x median/ {
                line = substr($0, 10)
                if (!match(line, / +[0-9.]+x median/)) next
                what = substr(line, 1, RSTART - 1)
                ratio = substr(line, RSTART, RLENGTH); sub(/x median/, "", ratio); gsub(/ /, "", ratio)
                if (++count[what] > 1) what = what " #" count[what]
                print side, bench, section, what, ratio
            }' >>"$logs/ratios"
}
for i in $(seq "$runs"); do
    echo "== run $i of $runs: $rev, then this tree"
    for bench in "${benches[@]}"; do
        run old "$bench" "$tree"
        run new "$bench" "$root"
    done
done

echo
echo "== $rev (old) against this tree (new): mean median ratio over $runs runs each"
awk -F'\t' '
    {
        head = $2 ": " $3; key = head SUBSEP $4
        sum[$1, key] += $5; n[$1, key]++
        if (!(head in heads)) { heads[head] = 1; order[++k] = head }
        if (!(key in seen)) { seen[key] = 1; rows[head, ++nrows[head]] = $4 }
        if (length($4) > width) width = length($4)
    }
    END {
        printf "   %-*s %7s %7s %8s\n", width, "ratio", "old", "new", "change"
        for (h = 1; h <= k; h++) {
            head = order[h]
            printf "-- %s\n", head
            for (r = 1; r <= nrows[head]; r++) {
                w = rows[head, r]; key = head SUBSEP w
                o = n["old", key] ? sprintf("%6.2fx", sum["old", key] / n["old", key]) : "-"
                m = n["new", key] ? sprintf("%6.2fx", sum["new", key] / n["new", key]) : "-"
                c = n["old", key] && n["new", key] ? \
                    sprintf("%+7.1f%%", ((sum["new", key] / n["new", key]) / (sum["old", key] / n["old", key]) - 1) * 100) : "-"
                printf "   %-*s %7s %7s %8s\n", width, w, o, m, c
            }
        }
    }' "$logs/ratios"
