//! The sides of a pair: a peer tool started as a process of its own, or
//! a vguest call made by this process.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command as StdCommand;
use std::rc::Rc;

use vguest::{Command, Guest, GuestBuilder, Stdio};

pub type BoxError = Box<dyn std::error::Error>;

/// One side of a pair.
pub trait Side {
    /// What it runs, as a reader would type it.
    fn label(&self) -> String;
    /// One run of `/bin/true`, waited for: the timed part.
    fn run(&mut self) -> Result<(), BoxError>;
    /// One run of `busybox sh -c SCRIPT` set up the same way; its stdout.
    fn probe(&mut self, script: &str) -> Result<String, BoxError>;
}

/// A peer tool: `argv`, then the program it runs.
pub struct Tool {
    argv: Vec<OsString>,
    /// The busybox binary as the sandboxed program sees it.
    busybox: PathBuf,
    /// `argv /bin/true`, built once.
    timed: StdCommand,
}

impl Tool {
    pub fn new<I, S>(argv: I, busybox: impl Into<PathBuf>) -> Tool
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let mut timed = StdCommand::new(&argv[0]);
        timed.args(&argv[1..]).arg("/bin/true");
        Tool { argv, busybox: busybox.into(), timed }
    }
}

impl Side for Tool {
    fn label(&self) -> String {
        let words: Vec<_> = self.argv.iter().map(|a| a.to_string_lossy()).collect();
        format!("{} /bin/true", words.join(" "))
    }

    fn run(&mut self) -> Result<(), BoxError> {
        let status = self.timed.status()?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("`{}` ended with {status}", self.label()).into()),
        }
    }

    fn probe(&mut self, script: &str) -> Result<String, BoxError> {
        let out = StdCommand::new(&self.argv[0])
            .args(&self.argv[1..])
            .arg(&self.busybox)
            .args(["sh", "-c", script])
            .output()?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!("`{}` ended with {}: {}", self.label(), out.status, err.trim()).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `GuestBuilder::spawn()` + `Guest::wait()`.
pub struct Spawn {
    pub label: String,
    /// Runs `/bin/true`.
    pub builder: GuestBuilder,
    /// The busybox binary as the guest sees it.
    pub busybox: PathBuf,
}

impl Side for Spawn {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn run(&mut self) -> Result<(), BoxError> {
        let status = self.builder.spawn()?.wait()?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("the guest's /bin/true ended with {status}").into()),
        }
    }

    fn probe(&mut self, script: &str) -> Result<String, BoxError> {
        let cmd = Command::new(&self.busybox).args(["sh", "-c", script]).stdout(Stdio::Piped);
        let mut guest = self.builder.clone().command(cmd).spawn()?;
        let mut out = String::new();
        guest.stdout.take().ok_or("no stdout pipe")?.read_to_string(&mut out)?;
        let status = guest.wait()?;
        match status.success() {
            true => Ok(out),
            false => Err(format!("the guest's probe ended with {status}").into()),
        }
    }
}

/// `Guest::exec(Command::new("/bin/true"))` + `GuestProcess::wait()` in a
/// running guest.
pub struct Exec {
    pub guest: Rc<Guest>,
}

impl Side for Exec {
    fn label(&self) -> String {
        "guest.exec(Command::new(\"/bin/true\"))?.wait()".into()
    }

    fn run(&mut self) -> Result<(), BoxError> {
        let status = self.guest.exec(Command::new("/bin/true"))?.wait()?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("/bin/true in the guest ended with {status}").into()),
        }
    }

    fn probe(&mut self, script: &str) -> Result<String, BoxError> {
        let cmd = Command::new("/bin/busybox").args(["sh", "-c", script]).stdout(Stdio::Piped);
        let out = self.guest.exec(cmd)?.output()?;
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            false => Err(format!("the probe in the guest ended with {}", out.status).into()),
        }
    }
}

/// The raw-syscall floor of `benches/floor.rs` with the same namespaces:
/// the kernel's share of a side, timed beside it. Not probed.
pub struct Floor {
    pub label: String,
    pub run: Box<dyn FnMut()>,
}

impl Side for Floor {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn run(&mut self) -> Result<(), BoxError> {
        (self.run)();
        Ok(())
    }

    fn probe(&mut self, _script: &str) -> Result<String, BoxError> {
        Err("the floor is not probed".into())
    }
}
