#!/usr/bin/env bash
# Installs what the pure cgroup v2 test VM (tests/vm/run.sh) needs, as root,
# idempotently, and prepares its kernel in a cache directory:
#
#   tests/vm/install-deps.sh CACHE_DIR
#
# Debian packages:
#   qemu-system-x86  the emulator, of exactly the version of an installed
#                    qemu-utils (installing Debian's main-suite qemu-system-x86
#                    next to a qemu-utils from backports would remove
#                    qemu-utils, so the backports suite is added when the
#                    installed qemu-utils came from there; backports are
#                    pinned at priority 100 by Debian, so nothing else moves)
#   busybox-static   the guest's userland (a static binary needs no libraries)
#   cpio             packs the initramfs
#   xz-utils         unpacks the kernel image
#   python3          reads cargo's JSON messages (if not there already)
#
# The kernel: Debian's current linux-image-<abi>-amd64 (the one the
# linux-image-amd64 metapackage depends on; VGUEST_VM_KERNEL_PKG overrides),
# fetched with `apt-get download` and unpacked with `dpkg-deb -x` into
# CACHE_DIR; nothing is installed. The uncompressed kernel (vmlinux) is cut
# out of the bzImage, since QEMU boots that directly (PVH entry) in about
# half the time. Prints the kernel directory on stdout.
set -euo pipefail

cache=${1:?usage: install-deps.sh CACHE_DIR}
export DEBIAN_FRONTEND=noninteractive
log() { echo "== vm: $*" >&2; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

updated=0
apt_update() {
    if [ "$updated" = 0 ]; then
        apt-get update -qq >&2
        updated=1
    fi
}

# Versions of $1 that apt can install, one a line.
versions() { apt-cache madison "$1" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}'; }

install_qemu() {
    command -v qemu-system-x86_64 >/dev/null && return
    local want="" codename suite=()
    if installed qemu-utils; then
        want=$(dpkg-query -W -f='${Version}' qemu-utils)
    fi
    apt_update
    if [ -n "$want" ] && ! versions qemu-system-x86 | grep -qxF "$want"; then
        codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
        if [[ "$want" == *bpo* ]] && [ -n "$codename" ]; then
            log "qemu-utils $want comes from $codename-backports: adding that suite"
            cat >/etc/apt/sources.list.d/vguest-"$codename"-backports.sources <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $codename-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
            updated=0
            apt_update
        fi
        if ! versions qemu-system-x86 | grep -qxF "$want"; then
            echo "no qemu-system-x86 $want to match the installed qemu-utils" >&2
            exit 1
        fi
    fi
    if [ -n "$want" ]; then
        # The suite the matching version comes from also serves its
        # dependencies (qemu-system-common, -data, seabios) at that version.
        [[ "$want" == *bpo* ]] && suite=(-t "$(. /etc/os-release && echo "$VERSION_CODENAME")-backports")
        log "installing qemu-system-x86 $want (matches qemu-utils)"
        apt-get install -y -qq --no-install-recommends "${suite[@]}" "qemu-system-x86=$want" >/dev/null
    else
        log "installing qemu-system-x86"
        apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
    fi
}

install_packages() {
    local need=()
    for pkg in busybox-static cpio xz-utils; do
        installed "$pkg" || need+=("$pkg")
    done
    command -v python3 >/dev/null || need+=(python3)
    if [ ${#need[@]} -gt 0 ]; then
        apt_update
        log "installing ${need[*]}"
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
}

# Cuts the uncompressed kernel out of a bzImage: the compressed payload
# starts at a compressor's magic bytes; the first offset that decompresses
# to an ELF file is it.
extract_vmlinux() {
    local image=$1 out=$2 magic tool off
    for pair in 'fd377a585a00:xz -dcq' '1f8b0800:gzip -dcq' '28b52ffd:zstd -dcq'; do
        magic=${pair%%:*}
        tool=${pair#*:}
        for off in $(LC_ALL=C grep -obUaP "$(sed 's/../\\x&/g' <<<"$magic")" "$image" | cut -d: -f1); do
            tail -c +$((off + 1)) "$image" | $tool >"$out.part" 2>/dev/null || true
            if [ "$(head -c 4 "$out.part" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
                mv "$out.part" "$out"
                return 0
            fi
        done
    done
    rm -f "$out.part"
    echo "no uncompressed kernel found in $image" >&2
    return 1
}

prepare_kernel() {
    local pkg=${VGUEST_VM_KERNEL_PKG:-} deb version dir tmp
    if [ -z "$pkg" ]; then
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
        if [ -z "$pkg" ]; then
            apt_update
            pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
        fi
    fi
    version=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
    dir="$cache/kernel/$pkg-$version"
    if [ ! -f "$dir/ready" ]; then
        log "fetching $pkg $version"
        rm -rf "$dir"
        mkdir -p "$dir"
        tmp=$(mktemp -d "$cache/download.XXXXXX")
        chmod 755 "$tmp"
        # apt drops to the _apt user for downloads when it can write here.
        chown _apt "$tmp" 2>/dev/null || true
        if ! (cd "$tmp" && apt-get download -qq "$pkg=$version" >&2); then
            apt_update
            (cd "$tmp" && apt-get download -qq "$pkg" >&2)
        fi
        deb=$(ls "$tmp"/*.deb)
        dpkg-deb -x "$deb" "$dir/root"
        rm -rf "$tmp"
        extract_vmlinux "$(ls "$dir"/root/boot/vmlinuz-*)" "$dir/vmlinux"
        # modules.dep, so the guest's modprobe resolves dependencies.
        busybox depmod -b "$dir/root" "$(ls "$dir/root/lib/modules")"
        touch "$dir/ready"
    fi
    echo "$dir"
}

install_qemu
install_packages
mkdir -p "$cache"
prepare_kernel
