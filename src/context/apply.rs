//! The context layer's crate-private side: checking a [`Context`] and
//! rendering it for the spawn child, and the parent's part of the user
//! namespace handshake.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

use super::{
    CapSet, ClockOffsets, Context, ContextError, IdMap, Namespaces, Signal, render_map, rlimit_name,
};
use crate::plan::{BpfInsn, CapsPlan, CredsPlan};

/// What the parent writes for the child's user namespace.
#[derive(Debug)]
pub(crate) struct UserNsPlan {
    pub deny_setgroups: bool,
    /// Both maps map id 0 inside the namespace.
    pub maps_root: bool,
    pub uid_map: Vec<u8>,
    pub gid_map: Vec<u8>,
}

/// A checked context, rendered for the child.
#[derive(Debug)]
pub(crate) struct ContextPlan {
    pub namespaces: Namespaces,
    pub hostname: Option<Vec<u8>>,
    pub domainname: Option<Vec<u8>>,
    pub creds: CredsPlan,
    pub caps: CapsPlan,
    pub userns: Option<UserNsPlan>,
    /// (resource, limit) pairs for `prlimit64`.
    pub rlimits: Vec<(u32, libc::rlimit64)>,
    pub clocks: Option<ClockOffsets>,
    pub pdeathsig: i32,
    pub no_new_privs: bool,
    /// The compiled system call filter, if any.
    pub seccomp: Option<Vec<BpfInsn>>,
}

/// `/proc/sys/kernel/cap_last_cap`, read once per process.
pub(crate) fn last_cap() -> Result<u32, ContextError> {
    static LAST_CAP: OnceLock<u32> = OnceLock::new();
    if let Some(n) = LAST_CAP.get() {
        return Ok(*n);
    }
    let path = "/proc/sys/kernel/cap_last_cap";
    let n = std::fs::read_to_string(path)
        .and_then(|s| s.trim().parse().map_err(io::Error::other))
        .map_err(|source| ContextError::HostFact { path: path.into(), source })?;
    Ok(*LAST_CAP.get_or_init(|| n))
}

impl Context {
    /// Checks the context for guest `name` whose root filesystem is
    /// `root` (for user-name lookups) and renders it.
    pub(crate) fn plan(&self, name: &str, root: &Path) -> Result<ContextPlan, ContextError> {
        let ns = self.effective_namespaces();
        let uts = ns.contains(Namespaces::UTS);
        let hostname = match (&self.hostname, uts) {
            (Some(h), true) => Some(check_name("hostname", h)?),
            (None, true) => Some(name.as_bytes().to_vec()),
            (Some(_), false) => return Err(needs("hostname", "uts")),
            (None, false) => None,
        };
        let domainname = match (&self.domainname, uts) {
            (Some(d), true) => Some(check_name("domainname", d)?),
            (Some(_), false) => return Err(needs("domainname", "uts")),
            (None, _) => None,
        };
        let last_cap = last_cap()?;
        let c = &self.capabilities;
        c.validate(last_cap)?;
        if !ns.contains(Namespaces::USER) {
            // Outside a user namespace of its own, a guest can only keep
            // capabilities its creator holds.
            let held: CapSet =
                caps::read(None, caps::CapSet::Permitted).unwrap_or_default().into_iter().collect();
            let asked = c.effective | c.permitted | c.ambient | c.inheritable;
            if !asked.is_subset(held) {
                return Err(ContextError::CapabilityNotHeld { missing: asked & !held });
            }
        }
        let caps = CapsPlan {
            last_cap,
            bounding: c.bounding.bits(),
            effective: c.effective.bits(),
            permitted: c.permitted.bits(),
            inheritable: c.inheritable.bits(),
            ambient: c.ambient.bits(),
        };
        let mut rlimits = Vec::with_capacity(self.rlimits.len());
        for r in &self.rlimits {
            if r.soft > r.hard {
                let resource = rlimit_name(r.resource);
                return Err(ContextError::InvalidRlimit { resource, soft: r.soft, hard: r.hard });
            }
            rlimits.push((r.resource.as_raw(), libc::rlimit64 { rlim_cur: r.soft, rlim_max: r.hard }));
        }
        let (uid, gid) = self.user.resolve(root)?;
        let userns = match ns.contains(Namespaces::USER) {
            true => Some(self.plan_userns(uid, gid)?),
            false if !self.uid_map.is_empty() || !self.gid_map.is_empty() => {
                return Err(needs("an id map", "user"));
            }
            false => None,
        };
        let creds = CredsPlan {
            uid,
            gid,
            groups: self.groups.clone(),
            set_groups: !userns.as_ref().is_some_and(|u| u.deny_setgroups),
        };
        Ok(ContextPlan {
            namespaces: ns,
            hostname,
            domainname,
            creds,
            caps,
            userns,
            rlimits,
            clocks: self.clocks,
            pdeathsig: self.parent_death_signal.map_or(0, Signal::as_raw),
            no_new_privs: self.no_new_privs,
            seccomp: self.seccomp.compile(c.bounding, ns.contains(Namespaces::PID))?,
        })
    }

    /// Checks the id maps against the payload's ids; without maps, guest
    /// root maps onto the caller's effective ids.
    fn plan_userns(&self, uid: u32, gid: u32) -> Result<UserNsPlan, ContextError> {
        let or_self = |maps: &[IdMap], own: u32| match maps.is_empty() {
            true => vec![IdMap::new(0, own, 1)],
            false => maps.to_vec(),
        };
        let uid_map = or_self(&self.uid_map, nix::unistd::geteuid().as_raw());
        let gid_map = or_self(&self.gid_map, nix::unistd::getegid().as_raw());
        let mapped = |maps: &[IdMap], id: u32| maps.iter().any(|m| m.to_outside(id).is_some());
        if !mapped(&uid_map, uid) {
            return Err(ContextError::UnmappedId { kind: "uid", id: uid });
        }
        if !mapped(&gid_map, gid) {
            return Err(ContextError::UnmappedId { kind: "gid", id: gid });
        }
        if let Some(g) = self.groups.iter().find(|g| !mapped(&gid_map, **g)) {
            return Err(ContextError::UnmappedId { kind: "supplementary gid", id: *g });
        }
        // Without CAP_SETGID the kernel only accepts a gid map once
        // setgroups is denied (user_namespaces(7)).
        let has_setgid =
            caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SETGID).unwrap_or(false);
        let deny_setgroups = self.deny_setgroups.unwrap_or(!has_setgid);
        if deny_setgroups && !self.groups.is_empty() {
            return Err(ContextError::GroupsDenied { groups: self.groups.clone() });
        }
        Ok(UserNsPlan {
            deny_setgroups,
            maps_root: mapped(&uid_map, 0) && mapped(&gid_map, 0),
            uid_map: render_map("uid", &uid_map)?,
            gid_map: render_map("gid", &gid_map)?,
        })
    }
}

/// Checks a hostname or domain name against the kernel's rules
/// (`sethostname(2)`: at most 64 bytes) and refuses empty names and NUL.
fn check_name(what: &'static str, value: &OsString) -> Result<Vec<u8>, ContextError> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = value.as_bytes();
    let reason = if bytes.is_empty() {
        Some("it is empty")
    } else if bytes.len() > 64 {
        Some("it is longer than 64 bytes")
    } else if bytes.contains(&0) {
        Some("it contains a NUL byte")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ContextError::InvalidName { what, value: value.clone(), reason }),
        None => Ok(bytes.to_vec()),
    }
}

fn needs(setting: &'static str, namespace: &'static str) -> ContextError {
    ContextError::NamespaceRequired { setting, namespace }
}

impl UserNsPlan {
    /// Writes `setgroups`, `uid_map` and `gid_map` of process `pid`'s user
    /// namespace, in the order `user_namespaces(7)` requires.
    pub(crate) fn write(&self, pid: libc::pid_t) -> Result<(), (String, io::Error)> {
        let write = |file: &str, data: &[u8]| {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, data).map_err(|e| (path, e))
        };
        if self.deny_setgroups {
            write("setgroups", b"deny")?;
        }
        write("uid_map", &self.uid_map)?;
        write("gid_map", &self.gid_map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CapSet, Capabilities, User};

    fn plan(ctx: Context) -> Result<ContextPlan, ContextError> {
        ctx.plan("test", Path::new("/"))
    }

    #[test]
    fn hostname_defaults_to_name_and_needs_uts() {
        assert_eq!(plan(Context::new()).unwrap().hostname.as_deref(), Some(&b"test"[..]));
        let err = plan(Context::new().namespaces(Namespaces::PID).hostname("x")).unwrap_err();
        assert!(matches!(err, ContextError::NamespaceRequired { setting: "hostname", .. }), "{err}");
        let err = plan(Context::new().hostname("a".repeat(65))).unwrap_err();
        assert!(err.to_string().contains("longer than 64"), "{err}");
        let err = plan(Context::new().hostname("a\0b")).unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
    }

    #[test]
    fn capability_rules() {
        let caps = Capabilities { ambient: "chown".parse::<CapSet>().unwrap(), ..Default::default() };
        let err = plan(Context::new().capabilities(caps)).unwrap_err();
        assert!(matches!(err, ContextError::CapabilitiesInconsistent { set: "ambient", .. }), "{err}");
        // Inside its own user namespace a guest may hold every capability.
        let ns = Namespaces::default() | Namespaces::USER;
        assert!(plan(Context::new().namespaces(ns).capabilities(Capabilities::only(CapSet::all()))).is_ok());
    }

    #[test]
    fn user_namespace_maps() {
        let ns = Namespaces::default() | Namespaces::USER;
        let err = plan(Context::new().namespaces(ns).user(User::Id { uid: 5, gid: 0 })).unwrap_err();
        assert!(matches!(err, ContextError::UnmappedId { kind: "uid", id: 5 }), "{err}");
        let ok = plan(Context::new().namespaces(ns).uid_map(IdMap::new(0, 100_000, 10))).unwrap();
        assert_eq!(ok.userns.unwrap().uid_map, b"0 100000 10\n");
        let err = plan(Context::new().uid_map(IdMap::new(0, 1, 1))).unwrap_err();
        assert!(matches!(err, ContextError::NamespaceRequired { namespace: "user", .. }), "{err}");
    }

    #[test]
    fn rlimit_order() {
        let err = plan(Context::new().rlimit(crate::Rlimit::RLIMIT_NOFILE, 10, 5)).unwrap_err();
        assert!(err.to_string().contains("RLIMIT_NOFILE"), "{err}");
    }
}
