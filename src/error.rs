//! The crate's error type.
//!
//! [`Error`] wraps one error type per layer. Failures inside the spawn
//! child come back as a [`SetupError`]: the [`Step`] that failed, the value
//! it was working on, and the errno.

use std::fmt;
use std::io;

pub use crate::command::CommandError;
pub use crate::context::ContextError;
pub use crate::fs::FsError;
pub use crate::net::NetError;
pub use crate::resources::ResourceError;

/// Everything that can go wrong in this crate.
///
/// ```
/// use vguest::{Command, Error, Guest, Step};
///
/// # fn main() {
/// # if !nix::unistd::Uid::effective().is_root() { return; }
/// let err = Guest::builder("doc-missing")
///     .command(Command::new("/no/such/program"))
///     .spawn()
///     .unwrap_err();
/// match &err {
///     Error::Setup(setup) => assert_eq!(setup.step(), Step::Exec),
///     other => panic!("unexpected {other}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The guest's name is not usable.
    #[error("invalid guest name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A context setting is invalid.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// The payload command is invalid.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The filesystem layer is misconfigured.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// A network setting is invalid, or the guest's links could not be
    /// made or removed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A resource limit is invalid, or the guest's cgroups could not be
    /// set up, used or removed.
    #[error(transparent)]
    Resources(#[from] ResourceError),
    /// The parent's side of the spawn failed.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The guest's first process failed while setting itself up.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The guest has already exited: nothing can be started in it.
    #[error("guest {guest:?} has exited")]
    Exited {
        /// The guest's name.
        guest: String,
    },
    /// The guest ended (its status is here), but removing what was made
    /// for it on the host failed. What is left stays owned by the
    /// [`Guest`](crate::Guest): the next `wait` or `try_wait` tries again,
    /// as does dropping the handle.
    #[error("guest {guest:?} ended ({status}), but removing its host objects failed")]
    Teardown {
        /// The guest's name.
        guest: String,
        /// How the guest ended.
        status: crate::ExitStatus,
        /// The first removal that failed.
        #[source]
        source: Box<Error>,
    },
    /// An operation on a running guest failed.
    #[error("{op} guest {guest:?} failed")]
    Guest {
        /// What was attempted: `waiting for`, `signalling`, ...
        op: &'static str,
        /// The guest's name.
        guest: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The setup step that failed, for errors from inside the guest.
    ///
    /// ```
    /// use vguest::{Error, Step};
    ///
    /// fn is_missing_program(err: &Error) -> bool {
    ///     err.step() == Some(Step::Exec) && err.raw_os_error() == Some(libc::ENOENT)
    /// }
    /// ```
    pub fn step(&self) -> Option<Step> {
        match self {
            Error::Setup(e) => Some(e.step),
            _ => None,
        }
    }

    /// The guest's exit status, for an error that comes after the guest
    /// ended ([`Error::Teardown`]).
    ///
    /// ```no_run
    /// # let mut guest = vguest::Guest::builder("g").spawn()?;
    /// let status = match guest.wait() {
    ///     Ok(status) => status,
    ///     Err(e) => match e.status() {
    ///         Some(status) => status, // ended; its groups or links stay for now
    ///         None => return Err(e),
    ///     },
    /// };
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn status(&self) -> Option<crate::ExitStatus> {
        match self {
            Error::Teardown { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The errno behind the error, if the kernel refused something.
    ///
    /// ```
    /// # use vguest::Error;
    /// fn is_permission(err: &Error) -> bool {
    ///     err.raw_os_error() == Some(libc::EPERM)
    /// }
    /// ```
    pub fn raw_os_error(&self) -> Option<i32> {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = source {
            if let Some(io) = err.downcast_ref::<io::Error>() {
                if let Some(code) = io.raw_os_error() {
                    return Some(code);
                }
            }
            source = err.source();
        }
        None
    }
}

/// A failure of the parent's side of spawning: creating pipes or the
/// child, writing its id maps, talking to it.
///
/// ```
/// use vguest::{Error, SpawnError};
///
/// // The kernel refused the namespaces (no privilege, or a limit such as
/// // user.max_user_namespaces reached).
/// fn clone_refused(err: &Error) -> bool {
///     matches!(err, Error::Spawn(spawn) if spawn.op().starts_with("cloning"))
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{op} failed")]
pub struct SpawnError {
    op: String,
    #[source]
    source: io::Error,
}

impl SpawnError {
    pub(crate) fn new(op: impl Into<String>, source: io::Error) -> Self {
        SpawnError { op: op.into(), source }
    }

    /// What the parent was doing: `cloning with flags ...`, `creating the
    /// error pipe`, `writing /proc/PID/uid_map`, ...
    ///
    /// ```
    /// fn explain(err: &vguest::SpawnError) -> String {
    ///     format!("{} failed with errno {:?}", err.op(), err.io_error().raw_os_error())
    /// }
    /// ```
    pub fn op(&self) -> &str {
        &self.op
    }

    /// The system error.
    ///
    /// ```
    /// fn refused(err: &vguest::SpawnError) -> bool {
    ///     err.io_error().raw_os_error() == Some(libc::EPERM)
    /// }
    /// ```
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

/// A failure inside the guest's first process before its payload ran.
///
/// ```
/// use vguest::{SetupError, Step};
///
/// fn explain(err: &SetupError) -> String {
///     format!("step {:?} on {} failed with errno {:?}", err.step(), err.subject(), err.raw_os_error())
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[error("guest setup failed while {step} {subject}")]
pub struct SetupError {
    step: Step,
    subject: String,
    #[source]
    source: io::Error,
}

impl SetupError {
    pub(crate) fn new(step: Step, subject: String, errno: i32) -> Self {
        SetupError { step, subject, source: io::Error::from_raw_os_error(errno) }
    }

    /// The step that failed.
    ///
    /// ```
    /// use vguest::{SetupError, Step};
    ///
    /// fn is_mount(err: &SetupError) -> bool {
    ///     err.step() == Step::Mount
    /// }
    /// ```
    pub fn step(&self) -> Step {
        self.step
    }

    /// The value the step worked on: a path, a name, a limit (empty where
    /// the step has none).
    ///
    /// ```
    /// fn what(err: &vguest::SetupError) -> &str {
    ///     err.subject()
    /// }
    /// ```
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The errno the kernel returned.
    ///
    /// ```
    /// fn not_found(err: &vguest::SetupError) -> bool {
    ///     err.raw_os_error() == libc::ENOENT
    /// }
    /// ```
    pub fn raw_os_error(&self) -> i32 {
        self.source.raw_os_error().unwrap_or(0)
    }
}

/// The steps the guest's first process takes before its payload runs, in
/// order. A [`SetupError`] names the one that failed.
///
/// ```
/// use vguest::{Command, Guest, Step};
///
/// # fn main() {
/// # if !nix::unistd::Uid::effective().is_root() { return; }
/// let err = Guest::builder("doc-step")
///     .command(Command::new("/bin/true").current_dir("/no/such/dir"))
///     .spawn()
///     .unwrap_err();
/// assert_eq!(err.step(), Some(Step::Chdir));
/// assert_eq!(err.to_string(), "guest setup failed while changing directory to \"/no/such/dir\"");
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Waiting for the parent to write id maps and set up the network.
    WaitForParent,
    /// Setting the parent-death signal.
    ParentDeathSignal,
    /// Joining the guest's cgroups.
    JoinCgroup,
    /// Creating the cgroup namespace.
    UnshareCgroup,
    /// Creating the time namespace.
    UnshareTime,
    /// Writing the time namespace's clock offsets.
    SetTimeOffsets,
    /// Joining the prepared network namespace.
    JoinNetwork,
    /// Bringing up the loopback interface.
    LoopbackUp,
    /// Setting the hostname.
    SetHostname,
    /// Setting the NIS domain name.
    SetDomainname,
    /// Building the guest's mount table.
    Mount,
    /// Switching to the guest's root (`pivot_root`).
    PivotRoot,
    /// Setting a resource limit.
    SetRlimit,
    /// Dropping capabilities from the bounding set.
    DropBounding,
    /// Setting supplementary groups.
    SetGroups,
    /// Setting the group id.
    SetGid,
    /// Keeping capabilities across the uid change.
    KeepCaps,
    /// Setting the user id.
    SetUid,
    /// Setting the effective, permitted and inheritable capabilities.
    SetCaps,
    /// Raising ambient capabilities.
    RaiseAmbient,
    /// Setting `no_new_privs`.
    NoNewPrivs,
    /// Changing to the working directory.
    Chdir,
    /// Connecting standard input, output and error.
    Stdio,
    /// Resetting signal dispositions.
    Signals,
    /// Looking the program up in `PATH`.
    ResolveProgram,
    /// Executing the payload.
    Exec,
    /// Executing the built-in init.
    ExecInit,
    /// Starting the payload's process beside the built-in init.
    InitFork,
    /// Entering a running guest's namespaces.
    JoinGuest,
    /// Creating the guest's network namespace (beside the spawn child).
    CreateNetwork,
    /// Starting a new session, without the caller's controlling terminal.
    NewSession,
}

impl Step {
    pub(crate) fn from_wire(code: u32) -> Option<Step> {
        use crate::plan::wire::step as w;
        Some(match code {
            w::WAIT_FOR_PARENT => Step::WaitForParent,
            w::PARENT_DEATH_SIGNAL => Step::ParentDeathSignal,
            w::JOIN_CGROUP => Step::JoinCgroup,
            w::UNSHARE_CGROUP => Step::UnshareCgroup,
            w::UNSHARE_TIME => Step::UnshareTime,
            w::SET_TIME_OFFSETS => Step::SetTimeOffsets,
            w::JOIN_NETWORK => Step::JoinNetwork,
            w::LOOPBACK_UP => Step::LoopbackUp,
            w::SET_HOSTNAME => Step::SetHostname,
            w::SET_DOMAINNAME => Step::SetDomainname,
            w::MOUNT => Step::Mount,
            w::PIVOT_ROOT => Step::PivotRoot,
            w::SET_RLIMIT => Step::SetRlimit,
            w::DROP_BOUNDING => Step::DropBounding,
            w::SET_GROUPS => Step::SetGroups,
            w::SET_GID => Step::SetGid,
            w::KEEP_CAPS => Step::KeepCaps,
            w::SET_UID => Step::SetUid,
            w::SET_CAPS => Step::SetCaps,
            w::RAISE_AMBIENT => Step::RaiseAmbient,
            w::NO_NEW_PRIVS => Step::NoNewPrivs,
            w::CHDIR => Step::Chdir,
            w::STDIO => Step::Stdio,
            w::SIGNALS => Step::Signals,
            w::RESOLVE_PROGRAM => Step::ResolveProgram,
            w::EXEC => Step::Exec,
            w::EXEC_INIT => Step::ExecInit,
            w::INIT_FORK => Step::InitFork,
            w::JOIN_GUEST => Step::JoinGuest,
            w::CREATE_NETWORK => Step::CreateNetwork,
            w::NEW_SESSION => Step::NewSession,
            _ => return None,
        })
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Step::WaitForParent => "waiting for the parent",
            Step::ParentDeathSignal => "setting the parent-death signal",
            Step::JoinCgroup => "joining cgroup",
            Step::UnshareCgroup => "creating the cgroup namespace",
            Step::UnshareTime => "creating the time namespace",
            Step::SetTimeOffsets => "writing clock offsets",
            Step::JoinNetwork => "joining network namespace",
            Step::LoopbackUp => "bringing up",
            Step::SetHostname => "setting hostname",
            Step::SetDomainname => "setting domain name",
            Step::Mount => "mounting",
            Step::PivotRoot => "switching root to",
            Step::SetRlimit => "setting rlimit",
            Step::DropBounding => "dropping from the bounding set",
            Step::SetGroups => "setting supplementary groups",
            Step::SetGid => "setting gid",
            Step::KeepCaps => "keeping capabilities across setuid",
            Step::SetUid => "setting uid",
            Step::SetCaps => "setting capabilities",
            Step::RaiseAmbient => "raising ambient capability",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::Chdir => "changing directory to",
            Step::Stdio => "connecting",
            Step::Signals => "resetting signal",
            Step::ResolveProgram => "looking up program",
            Step::Exec => "executing",
            Step::ExecInit => "executing the built-in init for",
            Step::InitFork => "starting the payload process of",
            Step::JoinGuest => "entering",
            Step::CreateNetwork => "creating",
            Step::NewSession => "starting a new session",
        };
        f.write_str(s)
    }
}

/// Shorthand for results of this crate.
///
/// ```
/// use vguest::{Command, Guest, Result};
///
/// fn runs_cleanly(name: &str, program: &str) -> Result<bool> {
///     let mut guest = Guest::builder(name).command(Command::new(program)).spawn()?;
///     Ok(guest.wait()?.success())
/// }
/// # if nix::unistd::Uid::effective().is_root() {
/// #     assert!(runs_cleanly("doc-result", "/bin/true")?);
/// # }
/// # Ok::<(), vguest::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;
