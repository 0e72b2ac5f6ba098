#!/usr/bin/env bash
# Runs vguest's whole test suite on a Debian machine, as root: installs what
# the tests need, then runs unit, integration, example and doc tests.
#
#   sudo ./scripts/test.sh            # everything
#   sudo ./scripts/test.sh core       # only tests/core.rs (any cargo test args)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "the tests create namespaces, cgroups and links: run as root" >&2
    exit 1
fi

./scripts/install-test-deps.sh

echo "== cgroup layout of this host: $(./scripts/cgroup-layout.sh)"
if [ $# -gt 0 ]; then
    exec cargo test --test "$@"
fi
cargo test --all-features --no-fail-fast
