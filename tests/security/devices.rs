//! Device nodes: a default guest (no `CAP_MKNOD`) tries `mknod` of a disk
//! and of `/dev/null` in its root directory, its `/tmp` and `/dev`, and on
//! an overlay root whose upper layer is on disk; a guest given
//! `CAP_MKNOD` makes them.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use vguest::{Capabilities, Capability, Context, Filesystem, Guest, Overlay, Upper};

use crate::common::*;

/// Tries `mknod` of a block (8,0: a disk) and a character device (1,3:
/// null) in each of `places`; prints "made" or "refused" for each, and
/// whether a made character device opens (a mount without `nodev`).
fn mknod_script(places: &[&str]) -> String {
    format!(
        r#"for d in {}; do
             for n in "b 8 0" "c 1 3"; do
               set -- $n
               node="$d/sec-node-$1"
               if mknod "$node" $n 2>/dev/null; then
                 opens=""
                 [ "$1" = c ] && (echo > "$node") 2>/dev/null && opens=" (and it opens)"
                 echo "made $d $n$opens"
               else
                 echo "refused $d $n"
               fi
             done
           done"#,
        places.join(" ")
    )
}

/// A scratch directory of this test run under cargo's, removed with
/// everything in it when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("security-{name}-{}", std::process::id()));
        // An earlier run of this pid may have left it.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Device nodes named `sec-node-*` below `dir` (on the host).
fn nodes_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            out.extend(nodes_below(&entry.path()));
        } else if (kind.is_block_device() || kind.is_char_device())
            && entry.file_name().to_string_lossy().starts_with("sec-node-")
        {
            out.push(entry.path());
        }
    }
    out
}

#[test]
fn guest_cannot_make_device_nodes_by_default() {
    if !root_or_skip("device nodes") {
        return;
    }
    let _s = shared();
    let before = HostState::capture();
    let dir = Scratch::new("mknod");
    // A private copy as a root directory (the shared one is read-only for
    // tests), and an overlay whose upper layer is on disk.
    let root = dir.0.join("root");
    build_rootfs(&root);
    let (upper, work) = (dir.0.join("upper"), dir.0.join("work"));
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let overlay = Overlay::new([rootfs()], Upper::Dir { upper: upper.clone(), work });

    let mut made = Vec::new();
    for (root_kind, fs, places) in [
        ("root directory", Filesystem::server(&root), &["/", "/tmp", "/dev"][..]),
        ("overlay root, upper layer on disk", Filesystem::overlay(overlay).with_server_mounts(), &["/"][..]),
    ] {
        let (status, out, err) = sh(Guest::builder("sec-mknod").filesystem(fs), &mknod_script(places));
        assert!(status.success(), "{status}: {out}{err}");
        for line in out.lines() {
            println!("default guest, {root_kind}: {line}");
            if line.starts_with("made") {
                made.push(format!("{line} [{root_kind}]"));
            }
        }
    }
    let landed: Vec<PathBuf> = nodes_below(&root).into_iter().chain(nodes_below(&upper)).collect();

    // Opting in gives it back.
    let mut caps = Capabilities::default();
    for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted] {
        set.insert(Capability::CAP_MKNOD);
    }
    let opted_in = Guest::builder("sec-mknod-opt")
        .context(Context::new().capabilities(caps))
        .filesystem(Filesystem::server(&root));
    let (status, out, err) = sh(opted_in, &mknod_script(&["/tmp"]));
    println!("guest with CAP_MKNOD: {}", out.trim().replace('\n', "; "));

    drop(dir);
    before.assert_mounts_unchanged("device nodes");
    assert!(status.success(), "{status}: {out}{err}");
    assert!(out.contains("made /tmp c 1 3"), "CAP_MKNOD was asked for: {out}");
    assert!(made.is_empty(), "a default guest made device nodes: {made:#?}\non the host: {landed:#?}");
}
