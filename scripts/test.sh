#!/usr/bin/env bash
# Runs vguest's whole test suite on a Debian machine, as root: installs what
# the tests need, checks formatting, lints and docs (scripts/check.sh), runs
# unit, integration, example and doc tests on this host, the unit and
# integration tests again with clone3(2) refused (tests/support/no_clone3.rs:
# the clone(2) fallback of every path that clones), then the test binaries
# again inside a small pure cgroup v2 VM (tests/vm/run.sh). All must pass.
#
#   sudo ./scripts/test.sh            # everything, host then v2 VM
#   sudo ./scripts/test.sh core       # only tests/core.rs on this host (any cargo test args)
#   sudo VGUEST_NO_VM=1 ./scripts/test.sh   # everything on this host only
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "the tests create namespaces, cgroups and links: run as root" >&2
    exit 1
fi

./scripts/install-test-deps.sh

layout=$(./scripts/cgroup-layout.sh)
echo "== cgroup layout of this host: $layout"
if [ $# -gt 0 ]; then
    exec cargo test --test "$@"
fi

echo "== formatting, lints, docs"
./scripts/check.sh

# Sums libtest's "test result: ok. 13 passed; 0 failed; ..." lines of a
# log into "PASSED FAILED".
count() {
    awk '/^test result:/ {
        for (i = 2; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) }
    } END { print p + 0, f + 0 }' "$1"
}

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
set +e
cargo test --all-features --no-fail-fast 2>&1 | tee "$logs/host"
host_status=${PIPESTATUS[0]}
set -e
read -r host_passed host_failed < <(count "$logs/host")
[ "$host_status" = 0 ] || [ "$host_failed" -gt 0 ] || host_failed=1

echo "== unit and integration tests again, with clone3 refused"
rustc -O --edition 2021 tests/support/no_clone3.rs -o target/no-clone3
set +e
VGUEST_TEST_EXPECT_NO_CLONE3=1 target/no-clone3 cargo test --tests --all-features --no-fail-fast 2>&1 | tee "$logs/noclone3"
noclone3_status=${PIPESTATUS[0]}
set -e
read -r noclone3_passed noclone3_failed < <(count "$logs/noclone3")
[ "$noclone3_status" = 0 ] || [ "$noclone3_failed" -gt 0 ] || noclone3_failed=1

vm_passed=0 vm_failed=0 vm_skipped=0 vm_status=0
if [ "${VGUEST_NO_VM:-0}" = 1 ]; then
    echo "== vm: skipped (VGUEST_NO_VM=1)"
else
    set +e
    tests/vm/run.sh 2>&1 | tee "$logs/vm"
    vm_status=${PIPESTATUS[0]}
    set -e
    read -r vm_passed vm_failed vm_skipped < <(sed -n 's/^vm (v2): \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\1 \2 \3/p' "$logs/vm" | tail -1) || true
    vm_passed=${vm_passed:-0} vm_failed=${vm_failed:-0} vm_skipped=${vm_skipped:-0}
    [ "$vm_status" = 0 ] || [ "$vm_failed" -gt 0 ] || vm_failed=1
fi

echo "== host ($layout): $host_passed passed, $host_failed failed; host without clone3: $noclone3_passed passed, $noclone3_failed failed; vm (v2): $vm_passed passed, $vm_failed failed, $vm_skipped skipped"
echo "total: $((host_passed + noclone3_passed + vm_passed)) passed, $((host_failed + noclone3_failed + vm_failed)) failed"
[ "$host_status" = 0 ] && [ "$noclone3_status" = 0 ] && [ "$vm_status" = 0 ]
