//! The two halves of a failed spawn: the parent's ([`SpawnError`]) and
//! the child's ([`SetupError`], built by `launch` from the child's wire
//! record).

use std::io;

use super::Step;

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
