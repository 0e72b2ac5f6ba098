#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (idempotent).
#   busybox-static  the tests' guest root filesystem and in-guest tools
#   iproute2        the tests' own view of links and namespaces (never the library's)
#   procps          ps for host-side checks
#   binutils        as and ld, to build the 32-bit program of the seccomp test
set -euo pipefail
need=()
for pkg in busybox-static iproute2 procps binutils; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
