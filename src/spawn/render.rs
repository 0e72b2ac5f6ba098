//! Phase 1 of a spawn: check every layer and render it. Nothing on the
//! host changes here.

use std::ffi::OsStr;
use std::path::Path;

use crate::command::{Command, RenderedCommand, Stdio};
use crate::context::{Context, ContextPlan, Namespaces};
use crate::error::Error;
use crate::fs::{Filesystem, FsError, Propagation};
use crate::net::{NetPlan, Network};
use crate::plan::FsPlan;
use crate::resources::Resources;
use crate::status::Init;

/// A guest's layers, checked and rendered, with the choices that decide
/// how it starts.
pub(super) struct Rendered<'b> {
    pub name: &'b str,
    pub kill_on_drop: bool,
    pub ctx: ContextPlan,
    /// The namespaces the clone creates (the network namespace is left
    /// out when the maker makes it, or when a pooled one is joined).
    pub ns: Namespaces,
    /// The guest has a PID namespace of its own.
    pub own_pid_ns: bool,
    pub net: Option<NetPlan>,
    /// The parent works on the child's network namespace during the
    /// handshake (links to make in it).
    pub net_parent: bool,
    /// A maker makes the fresh network namespace beside the child.
    pub maker: bool,
    /// The maker's namespace is joined before the mounts (they include a
    /// sysfs, which shows the mounter's namespace).
    pub net_before_mounts: bool,

    /// `mount(2)` propagation flags for `/` (0: no mount namespace).
    pub propagation: u64,
    pub stdio: [&'b Stdio; 3],
    pub program: &'b OsStr,
    pub use_init: bool,
    pub resources: Option<&'b Resources>,
}

/// What a guest is made of, as the builder holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuestSpec<'b> {
    pub name: &'b str,
    pub context: &'b Context,
    pub command: &'b Command,
    pub filesystem: Option<&'b Filesystem>,
    pub init: Init,
    pub kill_on_drop: bool,
    pub resources: Option<&'b Resources>,
    pub network: Option<&'b Network>,
}

/// The rendered pieces that move into the child's plan (phase 2).
pub(super) struct ForPlan {
    pub command: RenderedCommand,
    pub fs: Option<FsPlan>,
}

impl<'b> Rendered<'b> {
    /// Checks and renders everything `b` describes.
    pub fn new(b: GuestSpec<'b>) -> Result<(Rendered<'b>, ForPlan), Error> {
        check_guest_name(b.name)?;
        let own_mount_ns = b.context.effective_namespaces().contains(Namespaces::MOUNT);
        let fs = match b.filesystem {
            Some(_) if !own_mount_ns => return Err(FsError::MountNamespaceRequired.into()),
            Some(fs) => Some(fs.plan()?),
            None => None,
        };
        let lookup_root = b.filesystem.map_or_else(|| Path::new("/").to_path_buf(), |f| f.lookup_root());
        let ctx = b.context.plan(b.name, &lookup_root)?;
        let mut ns = ctx.namespaces;
        let own_pid_ns = ns.contains(Namespaces::PID);
        let net = match b.network {
            Some(network) => {
                let plan = network.plan(ns.contains(Namespaces::USER))?;
                // A pooled namespace is joined, not created.
                ns.set(Namespaces::NET, network.owns_namespace() && plan.pooled.is_none());
                Some(plan)
            }
            None => None,
        };
        let net_parent = net.as_ref().is_some_and(|n| n.needs_parent());
        // A fresh namespace with only `lo` is made beside the child, on
        // another CPU, while the child builds its mount table
        // (`launch/maker.rs`). Without a mount table to build, the child
        // would only wait for it: the clone makes it then, which is
        // cheaper than a helper.
        let maker = ns.contains(Namespaces::NET) && !net_parent && b.filesystem.is_some();
        if maker {
            ns.remove(Namespaces::NET);
        }
        let propagation = match (ns.contains(Namespaces::MOUNT), b.filesystem) {
            (false, _) => 0,
            (true, Some(f)) => f.propagation.flags(),
            (true, None) => Propagation::Private.flags(),
        };
        let for_plan = ForPlan { command: b.command.render()?, fs };
        let rendered = Rendered {
            name: b.name,
            kill_on_drop: b.kill_on_drop,
            own_pid_ns,
            use_init: own_pid_ns && b.init == Init::Builtin,
            net_before_mounts: b.filesystem.is_some_and(|f| f.mounts_sysfs()),
            stdio: [&b.command.stdin, &b.command.stdout, &b.command.stderr],
            program: b.command.get_program(),
            resources: b.resources,
            ctx,
            ns,
            net,
            net_parent,
            maker,
            propagation,
        };
        Ok((rendered, for_plan))
    }
}

fn check_guest_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 64 {
        Some("it is longer than 64 bytes")
    } else if name.starts_with(['.', '-']) {
        Some("it starts with '.' or '-'")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        Some("only ASCII letters, digits, '.', '_' and '-' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName { name: name.to_string(), reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_names() {
        assert!(check_guest_name("web-1.example_a").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_guest_name(bad).is_err(), "{bad:?}");
        }
    }
}
