#!/bin/sh
# PID 1 of the pure cgroup v2 test VM (busybox sh), started by
# tests/vm/run.sh through the initramfs's first stage (which copied the
# image into a tmpfs and switch_root'ed here, so that guests can pivot_root:
# pivot_root(2) refuses to move the initramfs itself).
#
# It sets up a host the way a current distribution does (only cgroup2, at
# /sys/fs/cgroup, mounted with nsdelegate, every controller enabled at the
# root), runs the crate's test binaries as root, streams their output to the
# serial console and ends with one line the host script waits for:
#
#   VGUEST-VM-RESULT passed=N failed=M skipped=K status=S
#
# Phases:
#   root  every test binary, from the root cgroup. The root is exempt from
#         the "no internal processes" rule (cgroups(7)), so a library that
#         creates its groups below the caller's own group works there.
#   leaf  a systemd host's situation: the caller sits in a non-root leaf
#         (user.slice/session.scope) that already holds another process, so
#         the kernel refuses to enable controllers for groups below it (the
#         "no internal processes" rule: EBUSY on cgroup.subtree_control).
#         The binaries named in VGUEST_VM_LEAF (default: core resources) run from
#         there with VGUEST_TEST_CGROUP_SCENARIO=occupied-leaf, and must pass:
#         the tests themselves assert what the library does there (a typed
#         error that explains delegation, or a working default), never a
#         raw EBUSY. When no such binary exists the phase says so and skips.
#         Beside the leaf, an empty group user.slice/delegated stands for what
#         a systemd host delegates (Delegate=yes: its parent enables the
#         controllers, the group itself holds no process), exported as
#         VGUEST_TEST_DELEGATED_PARENT=/user.slice/delegated for tests that
#         take the documented route for limits, Resources::parent. It is
#         removed after the phase; whatever is left in it is a leak.
# After each phase, any cgroup left below /sys/fs/cgroup (other than this
# script's own user.slice and user.slice/session.scope) and any network link
# left in this namespace is a failure.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
# The host's configuration: TARGET_TMPDIR, MANIFEST_DIR, MODULES, TESTS,
# TEST_ARGS, ARGS_<binary>, LEAF, BINARY_TIMEOUT, PRE and exported
# VGUEST_TEST_* variables.
. /vguest/config

say() { echo "== vm: $*"; }
started=$(cut -d' ' -f1 /proc/uptime)
say "booted in ${started}s: kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"

cg=/sys/fs/cgroup
for c in $(cat $cg/cgroup.controllers); do
    echo "+$c" >$cg/cgroup.subtree_control 2>/dev/null || say "could not enable the $c controller"
done
say "cgroup2 only at $cg ($(awk '$2 == "/sys/fs/cgroup" {print $4}' /proc/mounts)); enabled: $(cat $cg/cgroup.subtree_control)"

for m in $MODULES; do
    modprobe "$m" || say "could not load module $m"
done
hostname vguest-v2
ip link set lo up
# Links that exist before the tests (loading dummy makes dummy0).
links_before=$(ip -o link show | awk -F': ' '{print $2}' | sort)

# The test binaries' compile-time paths: cargo's CARGO_TARGET_TMPDIR (the
# tests build their guest root filesystem there) and the package root (the
# working directory cargo gives integration tests).
mkdir -p "$TARGET_TMPDIR" "$MANIFEST_DIR"
mount -t tmpfs tmpfs "$TARGET_TMPDIR"
cd "$MANIFEST_DIR" || exit 1
export RUST_BACKTRACE=1 VGUEST_TEST_BUSYBOX=/bin/busybox

total_passed=0 total_failed=0 total_skipped=0 status=0

if [ -n "$PRE" ]; then
    say "running VGUEST_VM_PRE"
    sh -c "$PRE" || { say "VGUEST_VM_PRE failed"; status=1; }
fi

# The counts of one binary's output ($1): passed, failed, and skipped (tests
# that printed "SKIP reason" plus tests filtered out by arguments).
count() {
    # shellcheck disable=SC2046 # three numbers
    set -- $(awk '/^test result:/ {
            for (i = 2; i <= NF; i++) {
                if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1); if ($i ~ /^filtered/) s += $(i-1)
            }
        } /^SKIP / { s++ } END { print p + 0, f + 0, s + 0 }' "$1")
    passed=$1 failed=$2 skipped=$3
}

# Runs one test binary; $1 phase, $2 name, $3 path, then the command prefix
# that puts it in place (may be empty).
run_binary() {
    phase=$1 name=$2 bin=$3
    shift 3
    if [ "$phase" = leaf ]; then where="in ${leaf#"$cg"}, an occupied leaf"; else where="in the root cgroup"; fi
    say "$phase: $name on cgroup layout v2 (runner $where)"
    t0=$(cut -d' ' -f1 /proc/uptime)
    # --show-output prints what passing tests printed, so every "SKIP ..."
    # reason reaches the log.
    eval "args=\${ARGS_$(echo "$name" | tr -c 'A-Za-z0-9_\n' _):-}"
    [ -z "$TEST_ARGS$args" ] || say "$phase: $name with arguments:$TEST_ARGS $args"
    # shellcheck disable=SC2086 # the arguments are words
    { "$@" timeout -s KILL "$BINARY_TIMEOUT" "$bin" --show-output $TEST_ARGS $args; echo $? >/tmp/rc; } 2>&1 | tee /tmp/out
    rc=$(cat /tmp/rc)
    count /tmp/out
    if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
        failed=1 # died before its summary (crash, timeout)
    fi
    t1=$(cut -d' ' -f1 /proc/uptime)
    echo "VGUEST-VM-BINARY phase=$phase name=$name passed=$passed failed=$failed skipped=$skipped exit=$rc seconds=$(awk "BEGIN {print int($t1 - $t0)}")"
    grep -E '^(SKIP|SCALED) ' /tmp/out | sed "s/^/    $name: /" >>/tmp/skips
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    total_skipped=$((total_skipped + skipped))
    [ "$rc" = 0 ] || status=1
}

# Cgroups and links the tests left behind (this script's own excepted). An
# empty parent named vguest (no children, no processes) may stay: the
# library shares it between guests.
check_leaks() {
    left=$(cd $cg && find . -mindepth 1 -type d | sed 's|^\./||' | grep -v -e '^user\.slice$' -e '^user\.slice/session\.scope$' |
        while read -r dir; do
            case "$dir" in
            vguest | */vguest)
                if [ -z "$(find "$cg/$dir" -mindepth 1 -type d)" ] && [ ! -s "$cg/$dir/cgroup.procs" ]; then
                    say "$1: note: empty parent group /$dir is still there" >&2
                    continue
                fi
                ;;
            esac
            echo "$dir"
        done)
    if [ -n "$left" ]; then
        say "$1: LEAK: cgroups left behind: $(echo "$left" | tr '\n' ' ')"
        status=1
        total_failed=$((total_failed + 1))
    fi
    links=$(ip -o link show | awk -F': ' '{print $2}' | sort | grep -vxF "$links_before")
    if [ -n "$links" ]; then
        say "$1: LEAK: links left behind: $(echo "$links" | tr '\n' ' ')"
        status=1
        total_failed=$((total_failed + 1))
    fi
}

ran=0
for entry in $TESTS; do
    run_binary root "${entry%%=*}" "/vguest/tests/${entry#*=}"
    ran=$((ran + 1))
done
check_leaks root
[ "$ran" -gt 0 ] || { say "no test binary to run"; status=1; }
say "root phase: $total_passed passed, $total_failed failed"
root_passed=$total_passed root_failed=$total_failed

# The systemd host's case: an occupied, non-root leaf.
leaf=$cg/user.slice/session.scope
mkdir -p $leaf
for c in $(cat $cg/user.slice/cgroup.controllers); do
    echo "+$c" >$cg/user.slice/cgroup.subtree_control 2>/dev/null
done
sleep 2147483647 &
holder=$!
echo $holder >$leaf/cgroup.procs
# The delegated group: created after user.slice enabled its controllers, so
# they are available in it (cgroup.controllers) and it may hand them on.
delegated_path=/user.slice/delegated
delegated=$cg$delegated_path
mkdir $delegated
say "leaf: delegated group $delegated_path (empty) offers: $(cat $delegated/cgroup.controllers)"
# What the kernel itself answers there, for the record.
if (echo +memory >$leaf/cgroup.subtree_control) 2>/dev/null; then
    say "leaf: the kernel let $leaf enable memory for its children (unexpected)"
    echo -memory >$leaf/cgroup.subtree_control
else
    say "leaf: as expected the kernel refuses to enable memory below the occupied leaf $leaf (EBUSY: no internal processes)"
fi
export VGUEST_TEST_CGROUP_SCENARIO=occupied-leaf VGUEST_TEST_DELEGATED_PARENT=$delegated_path
for entry in $TESTS; do
    name=${entry%%=*}
    case " $LEAF " in
    *" $name "*)
        run_binary leaf "$name" "/vguest/tests/${entry#*=}" sh -c 'echo $$ >'"$leaf"'/cgroup.procs && exec "$@"' sh
        ;;
    esac
done
for name in $LEAF; do
    case " $TESTS " in
    *" $name="*) ;;
    *) say "SKIP leaf phase for $name: no such test binary in this build (or not selected)" ;;
    esac
done
kill $holder
wait $holder 2>/dev/null
unset VGUEST_TEST_CGROUP_SCENARIO VGUEST_TEST_DELEGATED_PARENT
# Only the empty delegated group itself is this script's: if it cannot go
# (a group or process left in it), the leak check below reports it and
# whatever is beneath it. vguest must never remove a group it did not make.
if [ ! -d $delegated ]; then
    say "leaf: FAILED: the delegated group $delegated_path was removed during the phase"
    status=1
    total_failed=$((total_failed + 1))
elif ! rmdir $delegated 2>/dev/null; then
    say "leaf: could not remove $delegated_path: something is left in it (processes: $(tr '\n' ' ' <$delegated/cgroup.procs))"
fi
check_leaks leaf
say "leaf phase: $((total_passed - root_passed)) passed, $((total_failed - root_failed)) failed"

if [ -s /tmp/skips ]; then
    say "skipped or scaled down on v2:"
    cat /tmp/skips
fi
# The OOM tests make the kernel print the killer's call trace: expected,
# so a call trace alone is not a problem; a bug, a warning, an oops or a
# task blocked too long is.
if dmesg | grep -qE 'BUG:|WARNING:|Oops|blocked for more than'; then
    say "the kernel logged problems:"
    dmesg | grep -E -A12 'BUG:|WARNING:|Oops|blocked for more than'
fi
ended=$(cut -d' ' -f1 /proc/uptime)
say "tests took $(awk "BEGIN {print int($ended - $started)}")s"
echo "VGUEST-VM-RESULT passed=$total_passed failed=$total_failed skipped=$total_skipped status=$status"
sync
poweroff -f
