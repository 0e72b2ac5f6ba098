//! The steps the child takes before the payload runs, as the public
//! [`Step`]; decoded from the wire numbers of `plan::wire`, the one list
//! the child, the init image and this type share.

use std::fmt;

/// The steps the guest's first process takes before its payload runs, in
/// order. A [`SetupError`](crate::SetupError) names the one that failed.
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
    /// Taking a file table of its own, a copy of the caller's open files
    /// that it needs.
    UnshareFiles,
    /// Loading the guest's system call filter.
    Seccomp,
    /// Handing the filter's listener (for [`SeccompAction::Notify`]
    /// rules) to the caller.
    ///
    /// [`SeccompAction::Notify`]: crate::SeccompAction::Notify
    HandListener,
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
            w::UNSHARE_FILES => Step::UnshareFiles,
            w::SECCOMP => Step::Seccomp,
            w::HAND_LISTENER => Step::HandListener,
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
            Step::UnshareFiles => "taking a file table of its own",
            Step::Seccomp => "loading the system call filter",
            Step::HandListener => "handing the system call filter's listener to the caller",
        };
        f.write_str(s)
    }
}
