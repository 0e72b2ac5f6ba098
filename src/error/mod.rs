//! The crate's error type.
//!
//! [`Error`] wraps one error type per layer. Failures inside the spawn
//! child come back as a [`SetupError`]: the [`Step`] that failed, the value
//! it was working on, and the errno.
//!
//! - `failure.rs`: [`SpawnError`] (the parent's side) and [`SetupError`]
//!   (the child's side).
//! - `step.rs`: [`Step`], decoded from the child's wire records
//!   (`plan::wire`).

mod failure;
mod step;

use std::io;

pub use self::failure::{SetupError, SpawnError};
pub use self::step::Step;
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
            Error::Setup(e) => Some(e.step()),
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
