//! A supervisor answers a guest's system call: the guest (root inside,
//! but without `CAP_SYS_ADMIN`) may not set its hostname, so its filter
//! hands `sethostname` to this program, which reads the name the guest
//! asked for, approves names of lowercase letters, digits and dashes,
//! sets an approved one in the guest's UTS namespace itself, and refuses
//! the rest with `EPERM`.
//!
//! Run as root: `cargo run --example notify`

use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;

use vguest::{
    Command, Context, Guest, Seccomp, SeccompAction, SeccompListener, SeccompNotifyError, SeccompRequest,
    SeccompResponse, SeccompRule, Stdio,
};

const SCRIPT: &str = r#"
echo "guest: hostname is $(hostname)"
hostname web-1 && echo "guest: hostname web-1 succeeded, hostname is now $(hostname)"
hostname mail.example.org 2>/dev/null || echo "guest: hostname mail.example.org failed, hostname is still $(hostname)"
"#;

/// Whether the supervisor lets the guest take `name`.
fn approved(name: &[u8]) -> bool {
    (1..=63).contains(&name.len())
        && name.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Answers one `sethostname(name, len)`: the name is read from the
/// guest's memory (a copy, which the guest cannot change afterwards), and
/// an approved one is set from here, in the guest's UTS namespace.
fn answer(
    listener: &SeccompListener,
    request: &SeccompRequest,
    guest: &Guest,
) -> Result<SeccompResponse, Box<dyn std::error::Error>> {
    let [addr, len, ..] = request.args();
    let mut name = vec![0u8; len.min(64) as usize];
    let n = listener.read_memory(request, addr, &mut name)?;
    name.truncate(n);
    let shown = String::from_utf8_lossy(&name).into_owned();
    if !approved(&name) || len > 63 {
        println!("supervisor: sethostname({shown:?}) refused");
        return Ok(SeccompResponse::Errno(libc::EPERM));
    }
    // setns(2) moves only the calling thread: a thread of its own, which
    // ends with the change.
    let pidfd = guest.pidfd().try_clone_to_owned()?;
    std::thread::spawn(move || -> nix::Result<()> {
        nix::sched::setns(pidfd.as_fd(), nix::sched::CloneFlags::CLONE_NEWUTS)?;
        nix::unistd::sethostname(std::ffi::OsStr::new(&shown))
    })
    .join()
    .map_err(|_| "the setns thread panicked")??;
    println!("supervisor: sethostname({:?}) approved and done", String::from_utf8_lossy(&name));
    Ok(SeccompResponse::Value(0))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = Seccomp::default().rule(SeccompRule::new("sethostname", SeccompAction::Notify));
    let mut guest = Guest::builder("notify")
        .context(Context::new().seccomp(filter))
        .command(Command::new("/bin/sh").args(["-c", SCRIPT]).stdout(Stdio::Piped))
        .spawn()?;
    let listener = guest.take_seccomp_listener().expect("a Notify rule gives a listener");
    let stdout = guest.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            println!("{}", line?);
        }
        Ok::<(), std::io::Error>(())
    });
    loop {
        let request = match listener.receive() {
            Ok(request) => request,
            // The guest has ended: no call will come.
            Err(SeccompNotifyError::Closed) => break,
            Err(e) => return Err(e.into()),
        };
        let response = answer(&listener, &request, &guest)?;
        match listener.respond(&request, response) {
            // The guest was killed meanwhile: nothing to answer.
            Ok(()) | Err(SeccompNotifyError::Gone { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let status = guest.wait()?;
    reader.join().map_err(|_| "the reader panicked")??;
    println!("guest {} ended with {status}", guest.name());
    Ok(())
}
