//! What the attack modules share: this binary as a role (on the host or
//! inside a guest), the `@@`-tagged lines roles report in, and small
//! readers of `/proc`, errnos and random numbers.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Write};

use nix::errno::Errno;
use vguest::{Command, Filesystem, Overlay, Upper};

use crate::common::{role, rootfs};

/// Where the test binary appears inside a guest.
const GUEST_EXE: &str = "/vguest-security";

/// This binary as a guest payload (or exec'd process) playing `name`, a
/// role declared in `module` (`module_path!()` there: see
/// [`role::args_in`]); the guest needs [`role_filesystem`].
pub(crate) fn guest_role(module: &str, name: &str) -> Command {
    Command::new(GUEST_EXE).args(role::args_in(module, name)).env(role::ENV, name)
}

/// A busybox guest root in which this (dynamically linked) binary runs:
/// an overlay on the shared busybox root with a throw-away upper layer, so
/// the mount points made here never touch the shared tree; the server
/// mounts; the host's library directories, bound read-only (or, where the
/// host has a symlink such as merged-usr's `/lib -> usr/lib`, the same
/// symlink); and the binary at [`GUEST_EXE`].
pub(crate) fn role_filesystem() -> Filesystem {
    let upper = Upper::Tmpfs { size: 16 << 20 };
    let mut fs = Filesystem::overlay(Overlay::new([rootfs()], upper)).with_server_mounts();
    for dir in ["/lib", "/lib64", "/usr/lib", "/usr/lib64"] {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => fs = fs.symlink(dir, std::fs::read_link(dir).unwrap()),
            Ok(m) if m.is_dir() => fs = fs.bind_ro(dir, dir),
            _ => {}
        }
    }
    fs.bind_ro(std::env::current_exe().unwrap(), GUEST_EXE)
}

/// Prints one tagged report line and flushes it at once (the reader may be
/// waiting for it).
pub(crate) fn say(line: impl fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "@@{line}");
    let _ = out.flush();
}

/// The tagged lines of a role's output, tag removed. libtest may print
/// "test MODULE::role_x ... " just before a role's first line, and echoed
/// terminal input may precede one, so the tag is searched anywhere.
pub(crate) fn tagged(text: &str) -> Vec<&str> {
    text.lines().filter_map(|l| l.find("@@").map(|i| l[i + 2..].trim_end_matches('\r'))).collect()
}

/// The first tagged line starting with `word` (without the word).
pub(crate) fn tagged_line<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    tagged(text).into_iter().find_map(|l| l.strip_prefix(word)?.strip_prefix(' '))
}

/// The `key=value` words of a line.
pub(crate) fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace().filter_map(|w| w.split_once('=')).collect()
}

/// Reads lines from `reader` into `text` until one carries the tag
/// `word`; false at end of file.
pub(crate) fn read_until_tag(reader: &mut impl BufRead, word: &str, text: &mut String) -> bool {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        text.push_str(&line);
        if tagged(&line).iter().any(|l| l.split_whitespace().next() == Some(word)) {
            return true;
        }
    }
}

pub(crate) fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is not set"))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// The fields of `/proc/PID/stat` after the command name: state, ppid,
/// pgrp, session, tty_nr, ... (`proc_pid_stat(5)` fields 3 and on).
pub(crate) fn stat_fields(pid: impl fmt::Display) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

pub(crate) fn ppid_of(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The last errno (no allocation: usable after fork, too).
pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

/// "ok" or the errno's name.
pub(crate) fn outcome(errno: i32) -> String {
    match errno {
        0 => "ok".to_string(),
        e => format!("{:?}", Errno::from_raw(e)),
    }
}

/// The host's state after a first spawn, which loads what a process
/// keeps for all its guests (the init's image, the owner's pipe).
pub(crate) fn warm_state() -> crate::common::HostState {
    assert!(crate::common::sh(vguest::Guest::builder("sec-warm"), "true").0.success());
    crate::common::HostState::capture()
}
