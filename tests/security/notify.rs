//! User notification: calls a guest's filter gives to a supervisor
//! (`SeccompAction::Notify`) wait for its answer, get exactly that
//! answer (a value, an errno, or the kernel's own result), and never
//! hang: once the supervisor's listener is gone, waiting and later calls
//! fail with `ENOSYS`.

use std::time::{Duration, Instant};

use vguest::{
    Context, Guest, Seccomp, SeccompAction, SeccompListener, SeccompNotifyError, SeccompRequest,
    SeccompResponse, SeccompRule,
};

use crate::common::*;
use crate::support::{fields, guest_role, role_filesystem, say, tagged_line, warm_state};

/// The directory the caller asks for with `mkdirat`, which the
/// supervisor approves by name.
const APPROVED: &str = "/tmp/approved-by-supervisor";

/// `getpgid` with the argument `arg`: the return value, or minus the
/// errno.
fn getpgid(arg: i32) -> i64 {
    // SAFETY: getpgid takes a plain integer.
    let ret = unsafe { libc::getpgid(arg) };
    if ret < 0 { -i64::from(crate::support::errno()) } else { i64::from(ret) }
}

/// In the guest: makes the intercepted calls and reports what each
/// returned (`NOTIFY value=.. errno=.. kernel=.. mine=.. approved=..
/// refused=..`).
#[test]
#[ignore = "a role of the notify tests"]
fn role_notify_caller() {
    if !crate::common::role::is("notify_caller") {
        return;
    }
    let mkdir = |path: &str| {
        let path = std::ffi::CString::new(path).unwrap();
        // SAFETY: a NUL-terminated path that lives across the call.
        let ret = unsafe { libc::mkdirat(libc::AT_FDCWD, path.as_ptr(), 0o755) };
        if ret < 0 { -i64::from(crate::support::errno()) } else { 0 }
    };
    // The process group as /proc says, without the intercepted call.
    let me: i64 = crate::support::stat_fields("self").and_then(|f| f[2].parse().ok()).unwrap_or(-1);
    let line = [
        ("value", getpgid(1001)),
        ("errno", getpgid(1002)),
        ("kernel", getpgid(0)),
        ("mine", me),
        ("approved", mkdir(APPROVED)),
        ("exists", i64::from(std::path::Path::new(APPROVED).exists())),
        ("refused", mkdir("/tmp/not-approved")),
    ];
    let line: Vec<String> = line.iter().map(|(k, v)| format!("{k}={v}")).collect();
    say(format!("NOTIFY {}", line.join(" ")));
}

/// The filter of these tests: `getpgid` and `mkdirat` go to the
/// supervisor; the rest is the default profile.
fn filter() -> Seccomp {
    Seccomp::default()
        .rule(SeccompRule::new("getpgid", SeccompAction::Notify))
        .rule(SeccompRule::new("mkdirat", SeccompAction::Notify))
}

/// A guest with [`filter`], running `command`.
fn notified_guest(name: &str, command: vguest::Command) -> Guest {
    let ctx = Context::new().seccomp(filter());
    Guest::builder(name).context(ctx).filesystem(role_filesystem()).command(command).spawn().unwrap()
}

fn caller() -> vguest::Command {
    guest_role(module_path!(), "notify_caller").stdout(vguest::Stdio::Piped).stderr(vguest::Stdio::Piped)
}

/// How the supervisor answers: `getpgid(1001)` returns 4242,
/// `getpgid(1002)` fails with errno 77, `getpgid(0)` is the kernel's to
/// answer; `mkdirat` of [`APPROVED`] (read from the caller's memory) is
/// done by the supervisor (here: answered 0, the directory is not made),
/// any other path refused with `EACCES`.
fn answer(listener: &SeccompListener, request: &SeccompRequest) -> SeccompResponse {
    match request.syscall_name() {
        Some("getpgid") => match request.args()[0] {
            1001 => SeccompResponse::Value(4242),
            1002 => SeccompResponse::Errno(77),
            _ => SeccompResponse::Continue,
        },
        Some("mkdirat") => match listener.read_c_string(request, request.args()[1], 4096) {
            Ok(path) if path.as_bytes() == APPROVED.as_bytes() => SeccompResponse::Value(0),
            Ok(_) => SeccompResponse::Errno(libc::EACCES),
            Err(e) => panic!("reading the path of {request:?}: {e}"),
        },
        other => panic!("a call the filter does not notify: {other:?} {request:?}"),
    }
}

/// Answers calls on `listener` until `count` are answered or a minute
/// passes; returns the names answered.
fn supervise(listener: SeccompListener, count: usize) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while seen.len() < count && Instant::now() < deadline {
            let Some(request) = listener.receive_timeout(Duration::from_millis(200)).unwrap() else {
                continue;
            };
            assert!(listener.is_pending(&request), "{request:?}");
            seen.push(request.syscall_name().unwrap_or("?").to_string());
            listener.respond(&request, answer(&listener, &request)).unwrap();
        }
        seen
    })
}

/// Checks the caller's report against [`answer`].
fn assert_answered(out: &str, who: &str) {
    let line = tagged_line(out, "NOTIFY").unwrap_or_else(|| panic!("{who}: no NOTIFY line in {out:?}"));
    let got = fields(line);
    assert_eq!(got["value"], "4242", "{who}: {line}");
    assert_eq!(got["errno"], "-77", "{who}: {line}");
    // The kernel made the call: the process's group, as /proc shows it.
    assert_eq!(got["kernel"], got["mine"], "{who}: {line}");
    assert_eq!(got["approved"], "0", "{who}: {line}");
    assert_eq!(got["exists"], "0", "{who}: the supervisor answered for the call, which was not made: {line}");
    assert_eq!(got["refused"], (-libc::EACCES).to_string(), "{who}: {line}");
}

#[test]
fn a_supervisor_answers_intercepted_calls() {
    if !root_or_skip("seccomp notify") {
        return;
    }
    let _x = exclusive();
    let before = warm_state();
    let mut guest = notified_guest("sec-notify", caller());
    let listener = guest.take_seccomp_listener().expect("a filter with Notify rules gives a listener");
    assert!(guest.take_seccomp_listener().is_none(), "taken twice");
    let supervisor = supervise(listener, 5);
    let (status, out, err) = finish(guest);
    assert!(status.success(), "{status:?}: {out} {err}");
    assert_answered(&out, "payload");
    let seen = supervisor.join().unwrap();
    assert_eq!(seen, ["getpgid", "getpgid", "getpgid", "mkdirat", "mkdirat"], "{out}");

    // A process entered into a guest gets a listener of its own.
    let mut guest = notified_guest("sec-notify-exec", vguest::Command::new("/bin/sleep").arg("600"));
    let guest_listener = guest.take_seccomp_listener().unwrap();
    let mut entered = guest.exec(caller()).unwrap();
    let supervisor = supervise(entered.take_seccomp_listener().expect("an entered process's listener"), 5);
    let out = entered.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}: {stdout}", out.status);
    assert_answered(&stdout, "Guest::exec");
    assert_eq!(supervisor.join().unwrap().len(), 5);
    assert!(
        guest_listener.receive_timeout(Duration::ZERO).unwrap().is_none(),
        "the entered process's calls reached the guest's listener"
    );
    guest.kill().unwrap();
    guest.wait().unwrap();
    // Nothing the filter covers is left: the listener says so rather
    // than wait forever.
    assert!(
        matches!(guest_listener.receive(), Err(SeccompNotifyError::Closed)),
        "receive() on the listener of an ended guest"
    );
    drop((guest, guest_listener));
    before.assert_unchanged("seccomp notify");
}

#[test]
fn a_guest_whose_supervisor_goes_away_gets_enosys() {
    if !root_or_skip("seccomp notify gone") {
        return;
    }
    let _x = exclusive();
    let before = warm_state();
    let mut guest = notified_guest("sec-notify-gone", caller());
    let listener = guest.take_seccomp_listener().unwrap();
    // The first call waits for an answer; the supervisor goes away
    // without giving one.
    let deadline = Instant::now() + Duration::from_secs(60);
    let request = loop {
        assert!(Instant::now() < deadline, "no intercepted call within a minute");
        if let Some(r) = listener.receive_timeout(Duration::from_millis(200)).unwrap() {
            break r;
        }
    };
    assert_eq!((request.syscall_name(), request.args()[0]), (Some("getpgid"), 1001));
    drop(listener);
    let (status, out, err) = finish(guest);
    assert!(status.success(), "{status:?}: {out} {err}");
    let line = tagged_line(&out, "NOTIFY").unwrap_or_else(|| panic!("no NOTIFY line: {out} {err}"));
    let got = fields(line);
    let enosys = (-libc::ENOSYS).to_string();
    for key in ["value", "errno", "kernel", "approved", "refused"] {
        assert_eq!(got[key], enosys, "{key}: {line}");
    }

    // A process entered without anyone taking its listener: waiting for
    // it drops the listener, so its calls fail rather than hang.
    let mut guest = notified_guest("sec-notify-untaken", vguest::Command::new("/bin/sleep").arg("600"));
    let out = guest.exec(caller()).unwrap().output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got = fields(tagged_line(&stdout, "NOTIFY").unwrap_or_else(|| panic!("no NOTIFY line: {stdout}")));
    assert_eq!(got["value"], enosys, "{stdout}");
    guest.kill().unwrap();
    guest.wait().unwrap();
    drop(guest);
    before.assert_unchanged("seccomp notify gone");
}

#[test]
fn notify_rules_the_spawn_could_not_answer_are_refused() {
    if !root_or_skip("seccomp notify refused") {
        return;
    }
    let _s = shared();
    for filter in [
        Seccomp::default().rule(SeccompRule::new("execve", SeccompAction::Notify)),
        Seccomp::default().rule(SeccompRule::number(libc::SYS_write as u32, SeccompAction::Notify)),
        Seccomp::with_default_action(SeccompAction::Notify).allow("getpid"),
    ] {
        let err = Guest::builder("sec-notify-bad")
            .context(Context::new().seccomp(filter.clone()))
            .command(vguest::Command::new("/bin/true"))
            .spawn()
            .unwrap_err();
        assert!(
            matches!(&err, vguest::Error::Context(vguest::ContextError::InvalidSeccompRule { .. })),
            "{filter:?}: {err} ({err:?})"
        );
    }
}
