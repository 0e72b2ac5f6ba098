#!/usr/bin/env bash
# Runs the crate's test binaries inside a small QEMU VM whose only cgroup
# hierarchy is cgroup2 at /sys/fs/cgroup (a pure cgroup v2 host, as every
# current distribution has), as root, and exits with their status.
#
#   sudo tests/vm/run.sh                    # every test binary
#   sudo tests/vm/run.sh core resources     # only these binaries
#   sudo tests/vm/run.sh core -- spawn      # arguments after -- go to each binary
#
# What happens: tests/vm/install-deps.sh installs QEMU, busybox-static and
# cpio and fetches Debian's kernel into target/vm/; `cargo test --no-run`
# builds the test binaries (the same build the normal suite uses); they,
# the libraries `ldd` lists, busybox, iproute2's `ip` and a few kernel
# modules are packed into an initramfs whose init (tests/vm/init.sh) mounts
# only cgroup2, runs the binaries and powers off. The serial console is
# streamed here with the `\r` stripped, and the run ends on the line
#   VGUEST-VM-RESULT passed=N failed=M skipped=K status=S
#
# Settings (environment):
#   VGUEST_VM_TESTS          binaries to run (names as in tests/NAME.rs, "vguest"
#                            for the library's unit tests); default all
#   VGUEST_VM_TEST_ARGS      arguments for every binary (filters, --skip NAME)
#   VGUEST_VM_ARGS_<binary>  arguments for one binary (VGUEST_VM_ARGS_net="--skip x")
#   VGUEST_VM_LEAF           binaries that also run from an occupied non-root
#                            leaf cgroup, as on a systemd host (default: core
#                            resources: lifecycle and the cgroup layer)
#   VGUEST_VM_TIMEOUT        seconds before QEMU is killed (default 2400)
#   VGUEST_VM_BINARY_TIMEOUT seconds one binary may take inside (default 1200)
#   VGUEST_VM_MEM, VGUEST_VM_CPUS   guest size (default 2048 MiB, 2 cpus)
#   VGUEST_VM_ACCEL          kvm, tcg or auto (default: kvm only where the CPU
#                            flags show vmx or svm and /dev/kvm is writable)
#   VGUEST_VM_MODULES        kernel modules to load (default: what the
#                            network and filesystem layers need)
#   VGUEST_VM_KERNEL_PKG     the Debian kernel package (default: current)
#   VGUEST_VM_HOST_TOOLS     host programs packed with their libraries (default: ip)
#   VGUEST_VM_PRE            a shell command run inside before the tests (to
#                            look around while debugging; its failure fails the run)
#   VGUEST_TEST_*            passed on to the tests inside
# Inside, VGUEST_TEST_SLOW_HOST=1 tells the tests that fork+exec costs about
# 20 times as much as on the host (software emulation), so the few tests that
# spawn thousands of guests scale down and say so.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if [ "$(id -u)" != 0 ]; then
    echo "the VM test run installs packages and the tests run as root: run as root" >&2
    exit 1
fi

names=()
test_args=${VGUEST_VM_TEST_ARGS:-}
while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then
        shift
        test_args="$test_args $*"
        break
    fi
    names+=("$1")
    shift
done
[ ${#names[@]} -gt 0 ] || read -r -a names <<<"${VGUEST_VM_TESTS:-}"

say() { echo "== vm: $*"; }
t_start=$(date +%s)

target_dir=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
vm_dir=$target_dir/vm
kernel_dir=$(tests/vm/install-deps.sh "$vm_dir")
kver=$(ls "$kernel_dir/root/lib/modules")

# The test binaries of the normal suite's build (same features, so cargo
# reuses it): lib unit tests and integration tests.
say "building the test binaries"
cargo test --all-features --no-run --message-format=json-render-diagnostics >"$vm_dir/build.json"
mapfile -t binaries < <(python3 - "$vm_dir/build.json" "${names[@]}" <<'EOF'
import json, sys
wanted = set(sys.argv[2:])
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    kind = m["target"]["kind"]
    if kind != ["lib"] and kind != ["test"]:
        continue
    name = m["target"]["name"]
    if not wanted or name in wanted:
        print(name + "=" + m["executable"])
EOF
)
if [ ${#binaries[@]} -eq 0 ]; then
    echo "no test binary matches: ${names[*]}" >&2
    exit 1
fi

# The initramfs: /init (stage1.sh) and the image under /r.
stage=$vm_dir/initramfs
rm -rf "$stage"
mkdir -p "$stage"/{dev,newroot,r}
mknod -m 600 "$stage/dev/console" c 5 1
img=$stage/r
for d in bin sbin lib lib64; do
    # Mirror the host's merged /usr (or not), so ldd's paths are right.
    if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$img/$d"; fi
done
mkdir -p "$img"/{usr/bin,usr/sbin,usr/lib,usr/lib64,bin,sbin,lib,lib64,etc,proc,sys,dev,tmp,run,root,vguest/tests}
cp /bin/busybox "$img/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$img/bin/$applet"
done
cp tests/vm/stage1.sh "$stage/init"
cp tests/vm/init.sh "$img/sbin/vguest-init"
chmod 755 "$stage/init" "$img/sbin/vguest-init"
cp /etc/passwd /etc/group "$img/etc/"

# Copies a dynamically linked program and the libraries ldd lists.
pack_libs() {
    local lib
    for lib in $(ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
        [ -e "$img$lib" ] || { mkdir -p "$(dirname "$img$lib")" && cp -L "$lib" "$img$lib"; }
    done
}
tests=()
for entry in "${binaries[@]}"; do
    name=${entry%%=*} path=${entry#*=}
    # Debug info is most of a test binary's size; symbols stay for backtraces.
    objcopy --strip-debug "$path" "$img/vguest/tests/$(basename "$path")"
    pack_libs "$path"
    tests+=("$name=$(basename "$path")")
done
# iproute2's ip for the tests (`ip netns`, which busybox's ip lacks).
for tool in ${VGUEST_VM_HOST_TOOLS:-ip}; do
    path=$(command -v "$tool" || true)
    [ -n "$path" ] || continue
    path=$(readlink -f "$path")
    mkdir -p "$(dirname "$img$path")"
    cp --remove-destination "$path" "$img$path"
    pack_libs "$path"
done

# Kernel modules with what they depend on (modules.dep lists the closure).
modules=${VGUEST_VM_MODULES:-veth bridge macvlan ipvlan dummy overlay}
moddir=$kernel_dir/root/lib/modules/$kver
mkdir -p "$img/lib/modules/$kver"
cp "$moddir/modules.dep" "$moddir/modules.builtin" "$moddir/modules.order" "$img/lib/modules/$kver/"
for m in $modules; do
    line=$(grep -E "(^|/)${m//[-_]/[-_]}\.ko:" "$moddir/modules.dep" || true)
    if [ -z "$line" ]; then
        grep -qE "/${m//[-_]/[-_]}\.ko$" "$moddir/modules.builtin" || say "no module $m in $kver"
        continue
    fi
    for f in ${line/:/}; do
        mkdir -p "$(dirname "$img/lib/modules/$kver/$f")"
        cp "$moddir/$f" "$img/lib/modules/$kver/$f"
    done
done

q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
{
    echo "TARGET_TMPDIR=$(q "$target_dir/tmp")"
    echo "MANIFEST_DIR=$(q "$root")"
    echo "MODULES=$(q "$modules")"
    echo "TESTS=$(q "${tests[*]}")"
    echo "TEST_ARGS=$(q "$test_args")"
    for entry in "${tests[@]}"; do
        var=VGUEST_VM_ARGS_${entry%%=*}
        var=${var//[^A-Za-z0-9_]/_}
        echo "ARGS_${var#VGUEST_VM_ARGS_}=$(q "${!var:-}")"
    done
    echo "LEAF=$(q "${VGUEST_VM_LEAF:-core resources}")"
    echo "BINARY_TIMEOUT=$(q "${VGUEST_VM_BINARY_TIMEOUT:-1200}")"
    echo "PRE=$(q "${VGUEST_VM_PRE:-}")"
    echo "export VGUEST_TEST_SLOW_HOST=1"
    while IFS= read -r var; do
        echo "export $var=$(q "${!var}")"
    done < <(compgen -e | grep '^VGUEST_TEST_' || true)
} >"$img/vguest/config"

(cd "$stage" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) >"$vm_dir/initramfs.cpio"
say "initramfs: $(du -m "$vm_dir/initramfs.cpio" | cut -f1) MiB, ${#tests[@]} test binaries, kernel $kver"

# KVM only where the CPU shows hardware virtualisation: this machine kind's
# nested /dev/kvm cannot boot a stock kernel, software emulation can.
# VGUEST_VM_ACCEL=kvm or tcg overrides the choice.
accel_choice=${VGUEST_VM_ACCEL:-auto}
if [ "$accel_choice" = auto ]; then
    accel_choice=tcg
    if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then accel_choice=kvm; fi
fi
if [ "$accel_choice" = kvm ]; then
    accel=(-accel kvm -cpu host)
else
    # shellcheck disable=SC2054 # "tcg,thread=multi" is one argument
    accel=(-accel tcg,thread=multi -cpu max)
fi
log=$vm_dir/console.log
say "booting ($accel_choice, ${VGUEST_VM_CPUS:-2} cpus, ${VGUEST_VM_MEM:-2048} MiB); console log in $log"
t_boot=$(date +%s)
set +e
# timeout signals only QEMU, the process it starts; the serial console's
# "\r\n" line ends become "\n".
timeout --foreground -k 10 "${VGUEST_VM_TIMEOUT:-2400}" \
    qemu-system-x86_64 -nodefaults -no-user-config -no-reboot -display none \
    "${accel[@]}" -smp "${VGUEST_VM_CPUS:-2}" -m "${VGUEST_VM_MEM:-2048}" \
    -serial stdio -kernel "$kernel_dir/vmlinux" -initrd "$vm_dir/initramfs.cpio" \
    -append "console=ttyS0 loglevel=2 panic=-1 oops=panic" </dev/null 2>&1 |
    tr -d '\r' | tee "$log"
qemu_status=${PIPESTATUS[0]}
set -e
t_end=$(date +%s)

result=$(grep -a '^VGUEST-VM-RESULT ' "$log" | tail -1 || true)
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
if [ -z "$result" ]; then
    if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then
        say "FAILED: no result after ${VGUEST_VM_TIMEOUT:-2400}s: QEMU was killed"
    else
        say "FAILED: the VM ended without a result (QEMU exit $qemu_status)"
    fi
    echo "vm (v2): 0 passed, 1 failed"
    exit 1
fi
say "VM phase took $((t_end - t_start))s (build and packing $((t_boot - t_start))s, VM $((t_end - t_boot))s)"
echo "vm (v2): $(field passed) passed, $(field failed) failed, $(field skipped) skipped"
[ "$(field status)" = 0 ]
