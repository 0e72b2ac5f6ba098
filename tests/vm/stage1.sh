#!/r/bin/busybox sh
# /init of the test VM's initramfs. The kernel runs it on the initramfs
# ("rootfs"), which pivot_root(2) refuses to move (EINVAL: "the current root
# is on the rootfs"), and the tests' guests pivot_root. So the image (under
# /r) is copied into a fresh tmpfs and that becomes the root; switch_root
# frees the initramfs and runs the real init (tests/vm/init.sh).
bb=/r/bin/busybox
fail() {
    echo "VGUEST-VM-RESULT passed=0 failed=0 skipped=0 status=1 ($1)"
    $bb poweroff -f
}
$bb mount -t tmpfs -o mode=755 tmpfs /newroot || fail "mounting the root tmpfs"
$bb cp -a /r/. /newroot/ || fail "copying the image"
exec $bb switch_root /newroot /sbin/vguest-init
