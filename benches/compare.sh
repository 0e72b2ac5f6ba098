#!/usr/bin/env bash
# Compares vguest with the peer tools on the same work, in one run:
#   bubblewrap (bwrap)       isolated start with a read-only root, /proc, /dev
#   util-linux unshare       namespaces only
#   util-linux nsenter -a    entering a running guest (vs Guest::exec)
#   runc run (crun run)      an OCI bundle from `runc spec`
# Installs what is missing, then runs `cargo bench --bench peers` and exits
# with its status. Arguments go to the benchmark (pair-name filters):
#
#   sudo benches/compare.sh                       # every pair
#   sudo VGUEST_PEERS_N=1000 benches/compare.sh   # more runs per side
#   sudo benches/compare.sh enter                 # only the enter pair
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "the comparison creates namespaces, mounts and containers: run as root (sudo $0)" >&2
    exit 1
fi

# package:command it provides
need=()
for pair in bubblewrap:bwrap runc:runc crun:crun util-linux:unshare util-linux:nsenter busybox-static:busybox; do
    pkg=${pair%%:*}
    cmd=${pair##*:}
    if ! command -v "$cmd" >/dev/null 2>&1 && [[ " ${need[*]-} " != *" $pkg "* ]]; then
        need+=("$pkg")
    fi
done
# The guests' root filesystem is built from the static busybox.
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" \
    && [[ " ${need[*]-} " != *" busybox-static "* ]]; then
    need+=(busybox-static)
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

exec cargo bench --bench peers -- "$@"
