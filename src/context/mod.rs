//! The context layer: who and what the guest is.
//!
//! A [`Context`] describes the namespaces a guest gets (`namespaces(7)`),
//! its hostname, its user and group ids and, with a user namespace, how
//! they map onto the host's (`user_namespaces(7)`), its capabilities
//! (`capabilities(7)`), `no_new_privs`, resource limits (`setrlimit(2)`),
//! clock offsets for a time namespace (`time_namespaces(7)`) and the
//! signal it gets when its creator dies.
//!
//! The builder only records values; [`Guest::spawn`](crate::GuestBuilder::spawn)
//! checks them and fails with a [`ContextError`] that names the bad value
//! before anything is created on the host.
//!
//! Limits worth knowing: without [`Namespaces::USER`] the guest's root is
//! the host's root, held back only by capabilities, `no_new_privs` and
//! the filesystem layer; with it, the guest's root has no privileges over
//! host objects (but a network namespace prepared by the host is then
//! configured by the host, not by the guest).

mod apply;
mod caps;
mod error;
mod ids;
mod namespaces;
mod rlimit;
mod seccomp;
mod time;

use std::ffi::OsString;

pub use self::caps::{CapSet, Capabilities, Capability};
pub use self::error::ContextError;
pub use self::ids::{IdMap, User};
pub use self::namespaces::Namespaces;
pub use self::rlimit::{RLIM_INFINITY, Rlimit};
pub use self::seccomp::{
    Seccomp, SeccompAction, SeccompCmp, SeccompListener, SeccompNotifyError, SeccompRequest, SeccompResponse,
    SeccompRule,
};
pub use crate::signal::Signal;

pub(crate) use self::apply::{ContextPlan, last_cap};
use self::ids::render_map;
pub(crate) use self::rlimit::RlimitSetting;
use self::rlimit::name as rlimit_name;
pub(crate) use self::rlimit::name_of as rlimit_name_of;
pub(crate) use self::time::{ClockOffsets, time_offsets};

/// Who and what a guest is: namespaces, names, ids, capabilities, limits.
///
/// ```
/// use vguest::{CapSet, Capabilities, Context, Namespaces, Rlimit};
///
/// let ctx = Context::new()
///     .namespaces(Namespaces::default() | Namespaces::TIME)
///     .hostname("web1")
///     .capabilities(Capabilities::only("net_bind_service".parse::<CapSet>().unwrap()))
///     .rlimit(Rlimit::RLIMIT_NOFILE, 1024, 4096)
///     .uptime_from_zero();
/// assert_eq!(ctx.hostname_value(), Some("web1".as_ref()));
/// ```
#[derive(Debug, Clone)]
pub struct Context {
    pub(crate) namespaces: Namespaces,
    pub(crate) hostname: Option<OsString>,
    pub(crate) domainname: Option<OsString>,
    pub(crate) uid_map: Vec<IdMap>,
    pub(crate) gid_map: Vec<IdMap>,
    pub(crate) deny_setgroups: Option<bool>,
    pub(crate) user: User,
    pub(crate) groups: Vec<u32>,
    pub(crate) capabilities: Capabilities,
    pub(crate) no_new_privs: bool,
    pub(crate) rlimits: Vec<RlimitSetting>,
    pub(crate) clocks: Option<ClockOffsets>,
    pub(crate) parent_death_signal: Option<Signal>,
    pub(crate) seccomp: Seccomp,
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Context {
    /// A server-like context: [`Namespaces::default()`], root inside,
    /// [`Capabilities::default()`], `no_new_privs` on, no rlimit changes,
    /// the default system call filter ([`Seccomp::default()`]).
    /// The hostname defaults to the guest's name.
    ///
    /// ```
    /// use vguest::{Context, Namespaces};
    ///
    /// assert_eq!(Context::new().namespaces_value(), Namespaces::default());
    /// ```
    pub fn new() -> Self {
        Context {
            namespaces: Namespaces::default(),
            hostname: None,
            domainname: None,
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            deny_setgroups: None,
            user: User::default(),
            groups: Vec::new(),
            capabilities: Capabilities::default(),
            no_new_privs: true,
            rlimits: Vec::new(),
            clocks: None,
            parent_death_signal: None,
            seccomp: Seccomp::default(),
        }
    }

    /// Sets which namespaces the guest gets.
    ///
    /// ```
    /// use vguest::{Context, Namespaces};
    ///
    /// let ctx = Context::new().namespaces(Namespaces::PID | Namespaces::MOUNT);
    /// assert!(!ctx.namespaces_value().contains(Namespaces::NET));
    /// ```
    pub fn namespaces(mut self, namespaces: Namespaces) -> Self {
        self.namespaces = namespaces;
        self
    }

    /// The namespaces set so far.
    ///
    /// ```
    /// # use vguest::{Context, Namespaces};
    /// assert!(Context::new().namespaces_value().contains(Namespaces::PID));
    /// ```
    pub fn namespaces_value(&self) -> Namespaces {
        self.namespaces
    }

    /// Sets the hostname (needs [`Namespaces::UTS`]; at most 64 bytes).
    ///
    /// ```
    /// # use vguest::Context;
    /// let ctx = Context::new().hostname("db1");
    /// assert_eq!(ctx.hostname_value(), Some("db1".as_ref()));
    /// ```
    pub fn hostname(mut self, name: impl Into<OsString>) -> Self {
        self.hostname = Some(name.into());
        self
    }

    /// The hostname set so far, if any.
    ///
    /// ```
    /// # use vguest::Context;
    /// assert_eq!(Context::new().hostname_value(), None);
    /// ```
    pub fn hostname_value(&self) -> Option<&std::ffi::OsStr> {
        self.hostname.as_deref()
    }

    /// Sets the NIS domain name (needs [`Namespaces::UTS`]).
    ///
    /// ```
    /// # use vguest::Context;
    /// let ctx = Context::new().domainname("example.test");
    /// ```
    pub fn domainname(mut self, name: impl Into<OsString>) -> Self {
        self.domainname = Some(name.into());
        self
    }

    /// Adds a line to the uid map of the guest's user namespace. Without
    /// any line, guest root maps onto the caller's effective uid.
    ///
    /// ```
    /// use vguest::{Context, IdMap, Namespaces};
    ///
    /// let ctx = Context::new()
    ///     .namespaces(Namespaces::default() | Namespaces::USER)
    ///     .uid_map(IdMap::new(0, 100_000, 65_536))
    ///     .gid_map(IdMap::new(0, 100_000, 65_536));
    /// ```
    pub fn uid_map(mut self, map: IdMap) -> Self {
        self.uid_map.push(map);
        self
    }

    /// Adds a line to the gid map (see [`uid_map`](Self::uid_map)).
    ///
    /// ```
    /// # use vguest::{Context, IdMap};
    /// let ctx = Context::new().gid_map(IdMap::new(0, 100_000, 65_536));
    /// ```
    pub fn gid_map(mut self, map: IdMap) -> Self {
        self.gid_map.push(map);
        self
    }

    /// Writes `deny` to the guest's `/proc/PID/setgroups` before its gid
    /// map, so nobody inside can drop supplementary groups. The kernel
    /// requires this when the creator lacks `CAP_SETGID`; by default it is
    /// done exactly then.
    ///
    /// ```
    /// # use vguest::Context;
    /// let ctx = Context::new().deny_setgroups(true);
    /// ```
    pub fn deny_setgroups(mut self, deny: bool) -> Self {
        self.deny_setgroups = Some(deny);
        self
    }

    /// Sets the user the payload runs as (ids as seen inside the guest).
    ///
    /// ```
    /// use vguest::{Context, User};
    ///
    /// let ctx = Context::new().user(User::Id { uid: 1000, gid: 1000 });
    /// let ctx = Context::new().user(User::Name("nobody".into()));
    /// ```
    pub fn user(mut self, user: User) -> Self {
        self.user = user;
        self
    }

    /// Sets the supplementary groups of the payload (replacing the
    /// caller's; the default is none).
    ///
    /// ```
    /// # use vguest::Context;
    /// let ctx = Context::new().groups([4, 24, 27]);
    /// ```
    pub fn groups(mut self, groups: impl IntoIterator<Item = u32>) -> Self {
        self.groups = groups.into_iter().collect();
        self
    }

    /// Sets the payload's capability sets.
    ///
    /// ```
    /// use vguest::{Capabilities, Context};
    ///
    /// let ctx = Context::new().capabilities(Capabilities::none());
    /// ```
    pub fn capabilities(mut self, caps: Capabilities) -> Self {
        self.capabilities = caps;
        self
    }

    /// Sets `no_new_privs` (on by default): the payload and its children
    /// can never gain privileges through setuid binaries or file
    /// capabilities (`PR_SET_NO_NEW_PRIVS`).
    ///
    /// ```
    /// # use vguest::Context;
    /// let ctx = Context::new().no_new_privs(false);
    /// ```
    pub fn no_new_privs(mut self, on: bool) -> Self {
        self.no_new_privs = on;
        self
    }

    /// Sets a resource limit of the payload; [`RLIM_INFINITY`] means none.
    ///
    /// ```
    /// use vguest::{Context, Rlimit, RLIM_INFINITY};
    ///
    /// let ctx = Context::new()
    ///     .rlimit(Rlimit::RLIMIT_NOFILE, 256, 1024)
    ///     .rlimit(Rlimit::RLIMIT_CORE, 0, RLIM_INFINITY);
    /// ```
    pub fn rlimit(mut self, resource: Rlimit, soft: u64, hard: u64) -> Self {
        self.rlimits.retain(|r| r.resource != resource);
        self.rlimits.push(RlimitSetting { resource, soft, hard });
        self
    }

    /// Gives the guest a time namespace whose `CLOCK_MONOTONIC` and
    /// `CLOCK_BOOTTIME` start near zero, so its uptime counts from its own
    /// start, as a VServer guest's did. Implies [`Namespaces::TIME`].
    ///
    /// ```
    /// use vguest::{Context, Namespaces};
    ///
    /// let ctx = Context::new().uptime_from_zero();
    /// ```
    pub fn uptime_from_zero(mut self) -> Self {
        self.clocks = Some(ClockOffsets::FromZero);
        self
    }

    /// Gives the guest a time namespace with fixed clock offsets in
    /// seconds (possibly negative, but no clock may go below zero).
    /// Implies [`Namespaces::TIME`].
    ///
    /// ```
    /// # use vguest::Context;
    /// // A guest that appears to have booted ten days ago.
    /// let ctx = Context::new().clock_offsets(0, 10 * 86_400);
    /// ```
    pub fn clock_offsets(mut self, monotonic_secs: i64, boottime_secs: i64) -> Self {
        self.clocks = Some(ClockOffsets::Fixed { monotonic: monotonic_secs, boottime: boottime_secs });
        self
    }

    /// Sets the guest's system call filter (default: [`Seccomp::default()`],
    /// the default profile). Processes entering the guest get it too.
    ///
    /// ```
    /// use vguest::{Context, Seccomp};
    ///
    /// let ctx = Context::new().seccomp(Seccomp::default().allow("keyctl"));
    /// assert!(!ctx.seccomp_value().is_unconfined());
    /// ```
    pub fn seccomp(mut self, filter: Seccomp) -> Self {
        self.seccomp = filter;
        self
    }

    /// The guest's system call filter.
    ///
    /// ```
    /// use vguest::{Context, Seccomp};
    ///
    /// assert_eq!(Context::new().seccomp_value(), &Seccomp::default());
    /// ```
    pub fn seccomp_value(&self) -> &Seccomp {
        &self.seccomp
    }

    /// Sends `signal` to the guest's first process when the thread that
    /// spawned it exits (`PR_SET_PDEATHSIG`; note it is the spawning
    /// *thread*, not process).
    ///
    /// ```
    /// use vguest::{Context, Signal};
    ///
    /// let ctx = Context::new().parent_death_signal(Signal::SIGKILL);
    /// ```
    pub fn parent_death_signal(mut self, signal: Signal) -> Self {
        self.parent_death_signal = Some(signal);
        self
    }

    /// Namespaces including those implied by other settings.
    pub(crate) fn effective_namespaces(&self) -> Namespaces {
        let mut ns = self.namespaces;
        if self.clocks.is_some() {
            ns |= Namespaces::TIME;
        }
        ns
    }
}
