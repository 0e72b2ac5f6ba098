//! The payload: the program a guest runs, as `std::process::Command`
//! describes one.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The `PATH` a guest's payload gets unless told otherwise.
///
/// ```
/// use vguest::{Command, DEFAULT_PATH};
///
/// assert!(DEFAULT_PATH.split(':').any(|dir| dir == "/usr/bin"));
/// // A payload that needs one more directory.
/// let cmd = Command::new("app").env("PATH", format!("/opt/app/bin:{DEFAULT_PATH}"));
/// ```
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where a standard stream of the payload goes.
///
/// ```
/// use vguest::Stdio;
///
/// let quiet = Stdio::Null;
/// let captured = Stdio::Piped;
/// let file: Stdio = std::fs::File::create("/dev/null").unwrap().into();
/// ```
#[derive(Debug, Clone, Default)]
pub enum Stdio {
    /// The caller's stream (the default).
    #[default]
    Inherit,
    /// `/dev/null` of the host.
    Null,
    /// A pipe; the caller's end appears on [`Guest`](crate::Guest)
    /// (`stdin`, `stdout`, `stderr`).
    Piped,
    /// A file descriptor of the caller's (duplicated for each spawn).
    Fd(Arc<OwnedFd>),
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Self {
        Stdio::Fd(Arc::new(fd))
    }
}

impl From<File> for Stdio {
    fn from(file: File) -> Self {
        Stdio::Fd(Arc::new(file.into()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvBase {
    /// Only `PATH` (= [`DEFAULT_PATH`]).
    Minimal,
    /// The caller's environment at spawn time.
    Inherit,
    /// Nothing.
    Empty,
}

/// The program a guest runs, with its arguments, environment, working
/// directory and standard streams.
///
/// Paths are as seen inside the guest. A program name without a slash is
/// looked up in the payload's `PATH` inside the guest. Unlike
/// `std::process::Command`, the environment starts minimal (only `PATH`)
/// so nothing of the host leaks in by accident; [`inherit_env`] opts in.
///
/// [`inherit_env`]: Command::inherit_env
///
/// ```
/// use vguest::{Command, Stdio};
///
/// let cmd = Command::new("sh")
///     .args(["-c", "echo hello from $HOSTNAME"])
///     .env("HOSTNAME", "web1")
///     .current_dir("/tmp")
///     .stdout(Stdio::Piped);
/// assert_eq!(cmd.get_program(), "sh");
/// ```
#[derive(Debug, Clone)]
pub struct Command {
    pub(crate) program: OsString,
    pub(crate) arg0: Option<OsString>,
    pub(crate) args: Vec<OsString>,
    pub(crate) env_base: EnvBase,
    pub(crate) env: Vec<(OsString, Option<OsString>)>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) stdin: Stdio,
    pub(crate) stdout: Stdio,
    pub(crate) stderr: Stdio,
}

impl Command {
    /// A command running `program` with no arguments.
    ///
    /// ```
    /// # use vguest::Command;
    /// let cmd = Command::new("/bin/true");
    /// ```
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Command {
            program: program.as_ref().to_owned(),
            arg0: None,
            args: Vec::new(),
            env_base: EnvBase::Minimal,
            env: Vec::new(),
            cwd: None,
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
        }
    }

    /// Adds an argument.
    ///
    /// ```
    /// # use vguest::Command;
    /// let cmd = Command::new("ls").arg("-l");
    /// ```
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    ///
    /// ```
    /// # use vguest::Command;
    /// let cmd = Command::new("ls").args(["-l", "/"]);
    /// ```
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets `argv[0]` (by default the program as given).
    ///
    /// ```
    /// # use vguest::Command;
    /// let cmd = Command::new("/bin/busybox").arg0("sh");
    /// ```
    pub fn arg0(mut self, arg0: impl AsRef<OsStr>) -> Self {
        self.arg0 = Some(arg0.as_ref().to_owned());
        self
    }

    /// Sets an environment variable.
    ///
    /// ```
    /// # use vguest::Command;
    /// let cmd = Command::new("env").env("LANG", "C.UTF-8");
    /// ```
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable.
    ///
    /// ```
    /// # use vguest::Command;
    /// let cmd = Command::new("env").inherit_env().env_remove("SSH_AUTH_SOCK");
    /// ```
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts from an empty environment (not even `PATH`).
    ///
    /// ```
    /// # use vguest::Command;
    /// let cmd = Command::new("/bin/env").env_clear();
    /// ```
    pub fn env_clear(mut self) -> Self {
        self.env_base = EnvBase::Empty;
        self.env.clear();
        self
    }

    /// Starts from the caller's environment, as `std::process::Command`
    /// does.
    ///
    /// ```
    /// # use vguest::Command;
    /// let cmd = Command::new("env").inherit_env();
    /// ```
    pub fn inherit_env(mut self) -> Self {
        self.env_base = EnvBase::Inherit;
        self
    }

    /// Sets the working directory (inside the guest; default `/`).
    ///
    /// ```
    /// # use vguest::Command;
    /// let cmd = Command::new("ls").current_dir("/etc");
    /// ```
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Sets standard input.
    ///
    /// ```
    /// # use vguest::{Command, Stdio};
    /// let cmd = Command::new("cat").stdin(Stdio::Piped);
    /// ```
    pub fn stdin(mut self, stdio: impl Into<Stdio>) -> Self {
        self.stdin = stdio.into();
        self
    }

    /// Sets standard output.
    ///
    /// ```
    /// # use vguest::{Command, Stdio};
    /// let cmd = Command::new("hostname").stdout(Stdio::Piped);
    /// ```
    pub fn stdout(mut self, stdio: impl Into<Stdio>) -> Self {
        self.stdout = stdio.into();
        self
    }

    /// Sets standard error.
    ///
    /// ```
    /// # use vguest::{Command, Stdio};
    /// let cmd = Command::new("ls").arg("/nonexistent").stderr(Stdio::Null);
    /// ```
    pub fn stderr(mut self, stdio: impl Into<Stdio>) -> Self {
        self.stderr = stdio.into();
        self
    }

    /// The program as given.
    ///
    /// ```
    /// # use vguest::Command;
    /// assert_eq!(Command::new("ls").get_program(), "ls");
    /// ```
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// Renders program, argv and envp as C strings, and the `PATH` used to
    /// look the program up.
    pub(crate) fn render(&self) -> Result<RenderedCommand, CommandError> {
        if self.program.is_empty() {
            return Err(CommandError::EmptyProgram);
        }
        let c = |what: &'static str, s: &OsStr| {
            CString::new(s.as_bytes()).map_err(|_| CommandError::Nul { what, value: s.to_owned() })
        };
        let program = c("program", &self.program)?;
        let mut argv = vec![c("argument", self.arg0.as_deref().unwrap_or(&self.program))?];
        for arg in &self.args {
            argv.push(c("argument", arg)?);
        }
        let mut vars: Vec<(OsString, OsString)> = match self.env_base {
            EnvBase::Minimal => vec![("PATH".into(), DEFAULT_PATH.into())],
            EnvBase::Inherit => std::env::vars_os().collect(),
            EnvBase::Empty => Vec::new(),
        };
        for (key, value) in &self.env {
            if key.is_empty() || key.as_bytes().contains(&b'=') {
                return Err(CommandError::InvalidEnvKey { key: key.clone() });
            }
            vars.retain(|(k, _)| k != key);
            if let Some(value) = value {
                vars.push((key.clone(), value.clone()));
            }
        }
        let search_path = vars
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or_else(|| DEFAULT_PATH.as_bytes().to_vec(), |(_, v)| v.as_bytes().to_vec());
        let mut envp = Vec::with_capacity(vars.len());
        for (key, value) in vars {
            let mut kv = key.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(value.as_bytes());
            envp.push(CString::new(kv).map_err(|e| CommandError::Nul {
                what: "environment variable",
                value: OsString::from_vec(e.into_vec()),
            })?);
        }
        let cwd = match &self.cwd {
            Some(dir) => Some(c("working directory", dir.as_os_str())?),
            None => None,
        };
        Ok(RenderedCommand { program, argv, envp, search_path, cwd })
    }
}

use std::os::unix::ffi::OsStringExt;

/// A command rendered for the child: every string NUL-terminated.
#[derive(Debug)]
pub(crate) struct RenderedCommand {
    pub program: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub search_path: Vec<u8>,
    pub cwd: Option<CString>,
}

/// A payload command that cannot be run, found when the guest is spawned
/// and before anything is created for it.
///
/// ```
/// use vguest::{Command, CommandError, Error, Guest};
///
/// # fn main() {
/// # if !nix::unistd::Uid::effective().is_root() { return; }
/// let echo = Command::new("/bin/echo").arg("a\0b");
/// let err = Guest::builder("doc-nul").command(echo).spawn().unwrap_err();
/// match &err {
///     Error::Command(CommandError::Nul { what, value }) => {
///         assert_eq!((*what, value.as_os_str()), ("argument", "a\0b".as_ref()))
///     }
///     other => panic!("unexpected {other}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The program is an empty string.
    #[error("the program name is empty")]
    EmptyProgram,
    /// A string contains a NUL byte.
    #[error("{what} {value:?} contains a NUL byte")]
    Nul {
        /// Which string.
        what: &'static str,
        /// The value.
        value: OsString,
    },
    /// An environment variable name is empty or contains `=`.
    #[error("invalid environment variable name {key:?}")]
    InvalidEnvKey {
        /// The name.
        key: OsString,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_env_and_argv() {
        let r = Command::new("sh").args(["-c", "x"]).env("A", "1").env("A", "2").render().unwrap();
        assert_eq!(r.argv, [c"sh", c"-c", c"x"].map(CString::from));
        let env: Vec<_> = r.envp.iter().map(|c| c.to_str().unwrap().to_string()).collect();
        assert_eq!(env, [format!("PATH={DEFAULT_PATH}"), "A=2".to_string()]);
        let r = Command::new("x").env_clear().env("PATH", "/opt").render().unwrap();
        assert_eq!(r.search_path, b"/opt");
    }

    #[test]
    fn render_rejects_bad_strings() {
        assert!(matches!(Command::new("").render(), Err(CommandError::EmptyProgram)));
        assert!(matches!(Command::new("a\0b").render(), Err(CommandError::Nul { .. })));
        assert!(matches!(
            Command::new("a").env("K=V", "x").render(),
            Err(CommandError::InvalidEnvKey { .. })
        ));
    }
}
