//! Naming the value a failed step of the child worked on, for
//! [`SetupError::subject`](crate::SetupError).

use std::ffi::OsStr;

use crate::context;
use crate::error::Step;
use crate::plan::ChildPlan;
use crate::resources::Cgroups;

/// What the parent knows that the plan does not say in words.
#[derive(Debug, Default)]
pub(crate) struct Subjects<'a> {
    /// The payload's program, as the caller gave it.
    pub program: &'a OsStr,
    /// The guest's cgroups (their directories are in the order of the
    /// plan's `cgroup_dirs`, then the late ones).
    pub cgroups: Option<&'a Cgroups>,
    /// The network namespace the child joins.
    pub network: &'a str,
}

impl Subjects<'_> {
    /// Names the value a failed step worked on.
    pub(crate) fn describe(&self, plan: &ChildPlan, step: Step, detail: u32) -> String {
        let lossy = |bytes: &Option<Vec<u8>>| {
            bytes.as_deref().map(|b| format!("{:?}", String::from_utf8_lossy(b))).unwrap_or_default()
        };
        let cap = |n: u32| {
            caps::all()
                .into_iter()
                .find(|c| u32::from(c.index()) == n)
                .map_or_else(|| format!("capability {n}"), |c| c.to_string())
        };
        match step {
            Step::SetHostname => lossy(&plan.hostname),
            Step::SetDomainname => lossy(&plan.domainname),
            Step::SetRlimit => {
                plan.rlimits.get(detail as usize).map_or_else(String::new, |(resource, limit)| {
                    format!("{} to {}/{}", context::rlimit_name_of(*resource), limit.rlim_cur, limit.rlim_max)
                })
            }
            Step::DropBounding | Step::RaiseAmbient => cap(detail),
            Step::SetUid => format!("{}", plan.creds.uid),
            Step::SetGid => format!("{}", plan.creds.gid),
            Step::SetGroups => format!("{:?}", plan.creds.groups),
            Step::SetCaps => {
                format!("effective {:#x} permitted {:#x}", plan.caps.effective, plan.caps.permitted)
            }
            Step::Chdir => plan.cwd.as_ref().map_or_else(String::new, |c| format!("{c:?}")),
            Step::Stdio => ["stdin", "stdout", "stderr"].get(detail as usize).unwrap_or(&"").to_string(),
            Step::Signals => format!("signal {detail}"),
            Step::LoopbackUp => "lo".into(),
            Step::Mount if detail == u32::MAX => "/ (making propagation private)".into(),
            Step::Mount => plan.fs.as_ref().map_or_else(String::new, |fs| fs.describe(detail)),
            Step::PivotRoot => {
                plan.fs.as_ref().map_or_else(String::new, |fs| fs.root_description().to_string())
            }
            Step::SetTimeOffsets => "/proc/self/timens_offsets".into(),
            Step::Exec | Step::ResolveProgram | Step::ExecInit | Step::InitFork => {
                format!("{:?}", self.program)
            }
            Step::JoinGuest => "the guest's namespaces".into(),
            Step::CreateNetwork => "the guest's network namespace".into(),
            Step::JoinCgroup => self
                .cgroups
                .and_then(|g| g.paths().nth(detail as usize))
                .map_or_else(String::new, |p| p.display().to_string()),
            Step::JoinNetwork => self.network.to_string(),
            _ => String::new(),
        }
    }
}
