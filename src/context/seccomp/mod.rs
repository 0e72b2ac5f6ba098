//! System call filters (`seccomp(2)`): which calls a guest's processes may
//! make, and with which arguments.
//!
//! A [`Seccomp`] is plain data. `spawn()` compiles it, before the clone,
//! into one BPF program with a section for every architecture the host
//! runs (x86_64 and its i386; aarch64 and its arm), so that a process
//! cannot go round the filter by calling through another architecture's
//! table: calls from an architecture without a section kill the process,
//! and x86_64's x32 calls get `ENOSYS`. The spawn child loads the program
//! last, after capabilities and `no_new_privs`, just before its exec;
//! processes entering the guest ([`Guest::exec`](crate::Guest::exec)) get
//! the same program.
//!
//! Every guest gets [`Seccomp::default()`] unless told otherwise: it
//! closes the kernel surfaces a root guest has no business reaching (see
//! the crate's security model for the list, and why).

mod arch;
mod bpf;
mod notify;
mod profile;

pub use self::notify::{SeccompListener, SeccompNotifyError, SeccompRequest, SeccompResponse};

use std::sync::Mutex;

use super::{CapSet, ContextError};
use crate::plan::BpfInsn;

/// What a filter does with a call.
///
/// ```
/// use vguest::{Seccomp, SeccompAction};
///
/// let filter = Seccomp::with_default_action(SeccompAction::Errno(libc::EPERM as u16))
///     .allow("read")
///     .allow("write");
/// # let _ = filter;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeccompAction {
    /// Let the call through.
    Allow,
    /// Fail the call with this errno, without making it.
    Errno(u16),
    /// Kill the whole process (`SECCOMP_RET_KILL_PROCESS`).
    KillProcess,
    /// Kill the calling thread (`SECCOMP_RET_KILL_THREAD`).
    KillThread,
    /// Send the caller `SIGSYS` (`SECCOMP_RET_TRAP`).
    Trap,
    /// Let the call through and log it (`SECCOMP_RET_LOG`).
    Log,
    /// Hold the call until a supervisor answers it through the guest's
    /// [`SeccompListener`] (`SECCOMP_RET_USER_NOTIF`, Linux 5.0; the
    /// listener stays with the caller). Without a supervisor (the
    /// listener dropped) the call fails with `ENOSYS`.
    ///
    /// Refused (as [`ContextError::InvalidSeccompRule`]) as a filter's
    /// default action, and for the calls the spawn itself makes between
    /// loading the filter and the payload's exec, or that the built-in
    /// init makes ([`SPAWN_CALLS`](Seccomp::SPAWN_CALLS)): no one could
    /// answer them.
    Notify,
}

/// A comparison of one 64-bit call argument with a value (unsigned), as
/// OCI's `LinuxSeccompArg` has them.
///
/// Mind that the kernel reads many arguments as 32-bit (an `ioctl`
/// request, `personality`'s), while the filter sees all 64 bits of the
/// register: a rule that *denies* a value of such an argument should
/// compare `MaskedEq { mask: 0xffff_ffff, .. }`, or a caller sets upper
/// bits to go round it.
///
/// ```
/// use vguest::{SeccompAction, SeccompCmp, SeccompRule};
///
/// // ioctl(fd, TIOCSTI, ..): the request is argument 1.
/// let rule = SeccompRule::new("ioctl", SeccompAction::Errno(libc::EPERM as u16))
///     .arg(1, SeccompCmp::MaskedEq { mask: 0xffff_ffff, value: 0x5412 });
/// # let _ = rule;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompCmp {
    /// Equal.
    Eq(u64),
    /// Not equal.
    Ne(u64),
    /// Less than.
    Lt(u64),
    /// Less than or equal.
    Le(u64),
    /// Greater than.
    Gt(u64),
    /// Greater than or equal.
    Ge(u64),
    /// `argument & mask == value`.
    MaskedEq {
        /// The bits to compare.
        mask: u64,
        /// What they must be.
        value: u64,
    },
}

/// Which call a rule is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    /// By name: resolved on each architecture that has it.
    Name(String),
    /// By number, on the host's own architecture only.
    Number(u32),
}

/// One rule: a call, the argument comparisons that must all hold, and
/// the action when they do.
///
/// ```
/// use vguest::{SeccompAction, SeccompCmp, SeccompRule};
///
/// // socket(AF_INET6, ..) refused; other families are not this rule's.
/// let rule = SeccompRule::new("socket", SeccompAction::Errno(libc::EAFNOSUPPORT as u16))
///     .arg(0, SeccompCmp::Eq(libc::AF_INET6 as u64));
/// # let _ = rule;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompRule {
    call: Call,
    action: SeccompAction,
    args: Vec<(u8, SeccompCmp)>,
}

impl SeccompRule {
    /// A rule for the call named `name` (as in `syscalls(2)`: `openat`,
    /// `keyctl`), on every architecture that has a call of that name. A
    /// name no architecture of the host knows is refused at spawn
    /// ([`ContextError::UnknownSyscall`]).
    ///
    /// ```
    /// use vguest::{SeccompAction, SeccompRule};
    ///
    /// let rule = SeccompRule::new("keyctl", SeccompAction::Errno(libc::EPERM as u16));
    /// # let _ = rule;
    /// ```
    pub fn new(name: impl Into<String>, action: SeccompAction) -> Self {
        SeccompRule { call: Call::Name(name.into()), action, args: Vec::new() }
    }

    /// A rule for call number `nr` of the host's own architecture (on
    /// x86_64, numbers of its i386 table are a different call: name it).
    ///
    /// ```
    /// use vguest::{SeccompAction, SeccompRule};
    ///
    /// let rule = SeccompRule::number(libc::SYS_getppid as u32, SeccompAction::Allow);
    /// # let _ = rule;
    /// ```
    pub fn number(nr: u32, action: SeccompAction) -> Self {
        SeccompRule { call: Call::Number(nr), action, args: Vec::new() }
    }

    /// Adds a comparison of argument `index` (0 to 5); the rule applies
    /// only when all its comparisons hold.
    ///
    /// ```
    /// use vguest::{SeccompAction, SeccompCmp, SeccompRule};
    ///
    /// let rule = SeccompRule::new("personality", SeccompAction::Allow).arg(0, SeccompCmp::Eq(0));
    /// # let _ = rule;
    /// ```
    pub fn arg(mut self, index: u8, cmp: SeccompCmp) -> Self {
        self.args.push((index, cmp));
        self
    }
}

/// Where a filter's rules start from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Base {
    /// The default profile (`profile.rs`), after the user's rules.
    Profile,
    /// Only the user's rules, then this action.
    Only(SeccompAction),
    /// No filter at all.
    Unconfined,
}

/// A guest's system call filter.
///
/// Rules are tried in the order they were added, the first whose
/// comparisons hold decides; a call no rule decides gets the default
/// action. [`Seccomp::default()`] is the default profile: rules added to
/// it come before the profile's own, so they can open what it closes.
///
/// ```
/// use vguest::{Context, Seccomp, SeccompAction};
///
/// // The default profile, but the guest may also use the keyring.
/// let ctx = Context::new().seccomp(Seccomp::default().allow("keyctl").allow("add_key"));
/// // No filter at all.
/// let open = Context::new().seccomp(Seccomp::unconfined());
/// # let _ = (ctx, open);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seccomp {
    base: Base,
    rules: Vec<SeccompRule>,
}

impl Default for Seccomp {
    /// The default profile: denies what a guest should not reach (new
    /// user and other namespaces without `CAP_SYS_ADMIN`, the keyring,
    /// `io_uring`, `bpf`, `perf_event_open`, module loading, `kexec`,
    /// ...), opening capability-gated groups when the guest holds the
    /// capability; everything else is allowed.
    fn default() -> Self {
        Seccomp { base: Base::Profile, rules: Vec::new() }
    }
}

impl Seccomp {
    /// The calls made under the filter by vguest's own code: the spawn
    /// child (and an entering process) between loading the filter and
    /// the payload's exec, with `no_new_privs` off also the switch of
    /// ids and capabilities; and the built-in init, for the guest's whole
    /// life. A filter that does not allow them fails the spawn at that
    /// step (or stops the init), and a [`SeccompAction::Notify`] rule for
    /// one is refused. Names as in the native tables (of x86_64 or
    /// aarch64).
    ///
    /// ```
    /// assert!(vguest::Seccomp::SPAWN_CALLS.contains(&"execve"));
    /// ```
    pub const SPAWN_CALLS: &'static [&'static str] = &[
        // Ids and capabilities (`child/creds.rs`), when `no_new_privs` is off.
        "prctl",
        "setgroups",
        "setresgid",
        "setresuid",
        "capset",
        // Handing the listener over; stdio and close-on-exec; signal
        // dispositions; finding the program; the payload's clone beside
        // the init; the execs (`child/run.rs`, `child/exec.rs`).
        "sendmsg",
        "close",
        "ppoll",
        "dup3",
        "close_range",
        "fcntl",
        "rt_sigaction",
        "rt_sigprocmask",
        "newfstatat",
        "fstatat", // aarch64's name of newfstatat
        "faccessat",
        "clone",
        "clone3",
        "execve",
        "execveat",
        "write",
        "kill",
        "wait4",
        "exit_group",
        // The built-in init (`child/init/main.rs`).
        "read",
        "signalfd4",
        "rt_sigtimedwait",
    ];

    /// No filter: the guest's calls are limited only by its capabilities
    /// and namespaces.
    ///
    /// ```
    /// use vguest::Seccomp;
    ///
    /// assert!(Seccomp::unconfined().is_unconfined());
    /// ```
    pub fn unconfined() -> Self {
        Seccomp { base: Base::Unconfined, rules: Vec::new() }
    }

    /// A filter of only the rules added to it, with `action` for every
    /// other call (it replaces the default profile).
    ///
    /// A default that denies must leave vguest's own calls open
    /// ([`SPAWN_CALLS`](Self::SPAWN_CALLS): what the spawn child makes
    /// after loading the filter, and the built-in init for the guest's
    /// life), or the spawn fails at that step ([`Step::Seccomp`] and on)
    /// or the init cannot reap. The payload needs its own on top (its
    /// loader's `mmap`, `brk`, ...).
    ///
    /// [`Step::Seccomp`]: crate::Step::Seccomp
    ///
    /// ```
    /// use vguest::{Seccomp, SeccompAction};
    ///
    /// let filter = Seccomp::with_default_action(SeccompAction::Allow)
    ///     .rule(vguest::SeccompRule::new("ptrace", SeccompAction::KillProcess));
    /// # let _ = filter;
    /// ```
    pub fn with_default_action(action: SeccompAction) -> Self {
        Seccomp { base: Base::Only(action), rules: Vec::new() }
    }

    /// Adds a rule, tried after those added before it (and before the
    /// default profile's). On an unconfined filter this starts a filter
    /// that allows all else.
    ///
    /// ```
    /// use vguest::{Seccomp, SeccompAction, SeccompRule};
    ///
    /// let filter = Seccomp::default().rule(SeccompRule::new("ptrace", SeccompAction::Errno(1)));
    /// # let _ = filter;
    /// ```
    pub fn rule(mut self, rule: SeccompRule) -> Self {
        if self.base == Base::Unconfined {
            self.base = Base::Only(SeccompAction::Allow);
        }
        self.rules.push(rule);
        self
    }

    /// Allows the call named `name` (whatever its arguments).
    ///
    /// ```
    /// use vguest::Seccomp;
    ///
    /// let filter = Seccomp::default().allow("perf_event_open");
    /// # let _ = filter;
    /// ```
    pub fn allow(self, name: impl Into<String>) -> Self {
        self.rule(SeccompRule::new(name, SeccompAction::Allow))
    }

    /// Fails the call named `name` with `errno`.
    ///
    /// ```
    /// use vguest::Seccomp;
    ///
    /// let filter = Seccomp::default().errno("ptrace", libc::EPERM);
    /// # let _ = filter;
    /// ```
    pub fn errno(self, name: impl Into<String>, errno: i32) -> Self {
        self.rule(SeccompRule::new(name, SeccompAction::Errno(errno.clamp(0, 4095) as u16)))
    }

    /// Whether this filter is no filter.
    ///
    /// ```
    /// use vguest::Seccomp;
    ///
    /// assert!(!Seccomp::default().is_unconfined());
    /// ```
    pub fn is_unconfined(&self) -> bool {
        self.base == Base::Unconfined
    }

    /// Compiles the filter for a guest whose bounding set is `caps`, in
    /// a PID namespace of its own or not; `None` when unconfined. A
    /// process spawns many guests alike: the last few programs are kept.
    pub(crate) fn compile(
        &self,
        caps: CapSet,
        own_pid_ns: bool,
    ) -> Result<Option<Vec<BpfInsn>>, ContextError> {
        type Compiled = (Seccomp, CapSet, bool, Option<Vec<BpfInsn>>);
        static KEPT: Mutex<Vec<Compiled>> = Mutex::new(Vec::new());
        const KEEP: usize = 8;
        let lock = || KEPT.lock().unwrap_or_else(|e| e.into_inner());
        let same = |(s, c, p, _): &&Compiled| s == self && *c == caps && *p == own_pid_ns;
        if let Some((.., program)) = lock().iter().find(same) {
            return Ok(program.clone());
        }
        let program = self.compile_anew(caps, own_pid_ns)?;
        let mut kept = lock();
        if kept.len() >= KEEP {
            kept.remove(0);
        }
        kept.push((self.clone(), caps, own_pid_ns, program.clone()));
        Ok(program)
    }

    fn compile_anew(&self, caps: CapSet, own_pid_ns: bool) -> Result<Option<Vec<BpfInsn>>, ContextError> {
        let (default, base_rules, newer) = match &self.base {
            Base::Unconfined => return Ok(None),
            Base::Only(action) => (*action, Vec::new(), None),
            Base::Profile => (SeccompAction::Allow, profile::rules(caps, own_pid_ns), Some(profile::NEWER)),
        };
        if default == SeccompAction::Notify {
            return Err(ContextError::InvalidSeccompRule {
                call: "(default action)".into(),
                reason: "Notify would hold the spawn's own calls, which no one can answer yet: \
                         give Notify to the calls to intercept"
                    .into(),
            });
        }
        let rules: Vec<&SeccompRule> = self.rules.iter().chain(&base_rules).collect();
        let native = Arch::host().first().copied();
        for r in rules.iter().filter(|r| r.action == SeccompAction::Notify) {
            let nr = match &r.call {
                Call::Name(name) => native.and_then(|a| a.number(name)),
                Call::Number(nr) => Some(*nr),
            };
            let ours = native
                .zip(nr)
                .and_then(|(a, nr)| Seccomp::SPAWN_CALLS.iter().find(|n| a.number(n) == Some(nr)));
            if let Some(name) = ours {
                return Err(ContextError::InvalidSeccompRule {
                    call: r.call.label(),
                    reason: format!(
                        "Notify for {name}, which vguest makes under the filter before the exec \
                         or in the built-in init, where no one could answer it"
                    ),
                });
            }
        }
        for r in &rules {
            if let Some(&(index, _)) = r.args.iter().find(|(i, _)| *i > 5) {
                return Err(ContextError::InvalidSeccompRule {
                    call: r.call.label(),
                    reason: format!("argument {index} does not exist (0 to 5)"),
                });
            }
            if let Call::Name(name) = &r.call {
                if !Arch::host().iter().any(|a| a.number(name).is_some()) {
                    return Err(ContextError::UnknownSyscall { name: name.clone() });
                }
            }
        }
        let sections: Vec<bpf::Section> = Arch::host()
            .iter()
            .map(|&arch| bpf::Section {
                arch: arch.audit(),
                beyond: (arch == Arch::X86_64)
                    .then_some((arch::X32_SYSCALL_BIT, SeccompAction::Errno(libc::ENOSYS as u16))),
                newer: newer.map(|action| (arch.last() + 1, action)),
                rules: rules
                    .iter()
                    .filter_map(|r| {
                        let nr = match &r.call {
                            Call::Name(name) => arch.number(name)?,
                            Call::Number(nr) => arch.native().then_some(*nr)?,
                        };
                        Some(bpf::Resolved { nr, args: r.args.clone(), action: r.action })
                    })
                    .collect(),
            })
            .collect();
        let program = bpf::program(&sections, default);
        if program.len() > bpf::MAX_INSNS {
            return Err(ContextError::InvalidSeccompRule {
                call: "(all)".into(),
                reason: format!(
                    "the program has {} instructions, above the kernel's {}",
                    program.len(),
                    bpf::MAX_INSNS
                ),
            });
        }
        Ok(Some(program))
    }
}

impl Call {
    fn label(&self) -> String {
        match self {
            Call::Name(n) => n.clone(),
            Call::Number(nr) => format!("#{nr}"),
        }
    }
}

use arch::Arch;

#[cfg(test)]
mod tests;
