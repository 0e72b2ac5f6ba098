//! A guest's TOML file, one section per layer, and its mapping onto the
//! library's builders. Unknown fields are errors, reported with the file,
//! line and field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vguest::{
    Capabilities, Command, Context, Filesystem, Guest, GuestBuilder, Init, Macvlan, Network, Overlay,
    Resources, Stdio, Upper, User, Veth,
};

/// `/etc/vguest/NAME.toml`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestConfig {
    #[serde(default)]
    pub context: ContextConfig,
    pub filesystem: FsConfig,
    #[serde(default)]
    pub network: NetConfig,
    #[serde(default)]
    pub resources: ResConfig,
    #[serde(default)]
    pub command: CommandConfig,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextConfig {
    /// Default: the guest's name.
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// A user name from the guest's `/etc/passwd`, or `UID:GID`.
    pub user: Option<String>,
    /// Capability names (`chown,net_bind_service`); default: the server set.
    pub capabilities: Option<String>,
    /// Uptime inside starts at zero (a time namespace).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uptime_from_zero: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsConfig {
    /// Read-only templates (lowest last), shared by guests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template: Vec<PathBuf>,
    /// The guest's own writable layer and overlayfs work directory.
    pub upper: Option<PathBuf>,
    pub work: Option<PathBuf>,
    /// A plain root directory instead of a template and an upper layer.
    pub root: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only_root: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind: Vec<BindConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<TmpfsConfig>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindConfig {
    pub source: PathBuf,
    pub target: PathBuf,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TmpfsConfig {
    pub target: PathBuf,
    pub size: Size,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// `own` (default), `host` or `join`.
    pub mode: Option<String>,
    /// For `join`: a namespace file such as `/run/netns/blue`.
    pub join: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub veth: Vec<VethConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub macvlan: Vec<MacvlanConfig>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub destination: String,
    pub via: Option<String>,
}

// VethConfig and MacvlanConfig repeat the guest-side fields (name to mac)
// instead of sharing a flattened struct: serde cannot report unknown
// fields through `#[serde(flatten)]`, and a typo must be an error.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VethConfig {
    pub host_name: String,
    pub bridge: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_addresses: Vec<String>,
    pub host_netns: Option<PathBuf>,
    /// Inside the guest (default `eth0`).
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    pub mtu: Option<u32>,
    pub mac: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacvlanConfig {
    pub parent: String,
    pub parent_netns: Option<PathBuf>,
    /// Inside the guest (default `eth0`).
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    pub mtu: Option<u32>,
    pub mac: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResConfig {
    pub memory_max: Option<Size>,
    pub memory_high: Option<Size>,
    pub memory_swap_max: Option<Size>,
    pub cpu_weight: Option<u64>,
    /// Percent of one CPU (`50` is half a CPU).
    pub cpu_percent: Option<u32>,
    pub cpuset_cpus: Option<String>,
    pub pids_max: Option<u64>,
    /// Parent cgroup (default `vguest` beneath the caller's own groups).
    pub parent: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// What the guest runs: its own init (`/sbin/init`) or a service.
    pub program: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// `builtin` (vguest's init as PID 1, the default) or `payload` (the
    /// program itself is PID 1).
    pub init: Option<String>,
}

impl Default for CommandConfig {
    fn default() -> Self {
        CommandConfig {
            program: "/sbin/init".into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            init: None,
        }
    }
}

/// A size in bytes: a number, or a string with a `K`, `M` or `G` suffix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    fn bytes(&self, field: &str) -> Result<u64, String> {
        match self {
            Size::Bytes(n) => Ok(*n),
            Size::Text(t) => {
                let t = t.trim();
                let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
                let shift = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
                    "" => 0,
                    "K" => 10,
                    "M" => 20,
                    "G" => 30,
                    _ => return Err(format!("{field}: {t:?} is not a size (like 512M or 2G)")),
                };
                digits
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| n.checked_mul(1 << shift))
                    .ok_or_else(|| format!("{field}: {t:?} is not a size (like 512M or 2G)"))
            }
        }
    }
}

/// Reads and parses `path`; a syntax error or a bad field is reported as
/// `FILE:LINE:COLUMN: message`.
pub fn load(path: &Path) -> Result<GuestConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let (line, col) = e.span().map_or((0, 0), |span| {
            let before = &text[..span.start.min(text.len())];
            (before.matches('\n').count() + 1, before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1)
        });
        format!("{}:{line}:{col}: {}", path.display(), e.message().trim_end())
    })
}

/// Applies the guest-side settings that [`VethConfig`] and
/// [`MacvlanConfig`] share (fields of the same names) to a link builder.
macro_rules! iface {
    ($link:expr, $iface:expr) => {{
        let (mut link, iface) = ($link, $iface);
        if let Some(n) = &iface.name {
            link = link.name(n);
        }
        for a in &iface.addresses {
            link = link.address(a);
        }
        for g in &iface.gateways {
            link = link.gateway(g);
        }
        for r in &iface.routes {
            link = link.route(&r.destination, r.via.as_deref());
        }
        if let Some(m) = iface.mtu {
            link = link.mtu(m);
        }
        if let Some(m) = &iface.mac {
            link = link.mac(m);
        }
        link
    }};
}

impl GuestConfig {
    /// A starter configuration for a guest on `template`, with its
    /// writable layer in `layer_dir`.
    pub fn starter(template: &Path, layer_dir: &Path) -> GuestConfig {
        GuestConfig {
            filesystem: FsConfig {
                template: vec![template.to_path_buf()],
                upper: Some(layer_dir.join("upper")),
                work: Some(layer_dir.join("work")),
                tmpfs: vec![TmpfsConfig { target: "/tmp".into(), size: Size::Text("64M".into()) }],
                ..FsConfig::default()
            },
            resources: ResConfig {
                memory_max: Some(Size::Text("256M".into())),
                pids_max: Some(256),
                ..ResConfig::default()
            },
            command: CommandConfig {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done".into()],
                ..CommandConfig::default()
            },
            ..GuestConfig::default()
        }
    }

    /// Every configured guest address, for status.
    pub fn addresses(&self) -> Vec<&str> {
        let veth = self.network.veth.iter().flat_map(|v| &v.addresses);
        let macvlan = self.network.macvlan.iter().flat_map(|m| &m.addresses);
        veth.chain(macvlan).map(String::as_str).collect()
    }

    /// The guest this file describes, with `command` (if given) instead
    /// of the configured one. Values the library checks (addresses, names,
    /// limits) are reported by `spawn`.
    pub fn builder(
        &self,
        name: &str,
        command: Option<Command>,
        [stdin, stdout, stderr]: [Stdio; 3],
    ) -> Result<GuestBuilder, String> {
        let mut ctx = Context::new();
        let c = &self.context;
        if let Some(h) = &c.hostname {
            ctx = ctx.hostname(h);
        }
        if let Some(d) = &c.domainname {
            ctx = ctx.domainname(d);
        }
        if let Some(u) = &c.user {
            ctx = ctx.user(match u.split_once(':').map(|(a, b)| (a.parse(), b.parse())) {
                Some((Ok(uid), Ok(gid))) => User::Id { uid, gid },
                _ => User::Name(u.clone()),
            });
        }
        if let Some(caps) = &c.capabilities {
            let set = caps.parse().map_err(|e| format!("context.capabilities: {e}"))?;
            ctx = ctx.capabilities(Capabilities::only(set));
        }
        if c.uptime_from_zero {
            ctx = ctx.uptime_from_zero();
        }

        let f = &self.filesystem;
        let mut fs = match (&f.root, f.template.is_empty(), &f.upper, &f.work) {
            (Some(root), true, None, None) => Filesystem::new(root),
            (None, false, Some(upper), Some(work)) => Filesystem::overlay(Overlay::new(
                f.template.iter(),
                Upper::Dir { upper: upper.clone(), work: work.clone() },
            )),
            _ => return Err("filesystem: give either root, or template with upper and work".into()),
        }
        .with_server_mounts()
        .read_only_root(f.read_only_root);
        for b in &f.bind {
            fs = if b.read_only { fs.bind_ro(&b.source, &b.target) } else { fs.bind(&b.source, &b.target) };
        }
        for t in &f.tmpfs {
            fs = fs.tmpfs(&t.target, t.size.bytes("filesystem.tmpfs.size")?);
        }

        let n = &self.network;
        let mut net = match (n.mode.as_deref(), &n.join) {
            (None | Some("own"), None) => Network::new(),
            (Some("host"), None) => Network::host(),
            (Some("join"), Some(path)) => Network::join(path),
            (Some("join"), None) => return Err("network: mode \"join\" needs join = PATH".into()),
            (Some(other), _) if !["own", "host", "join"].contains(&other) => {
                return Err(format!("network.mode: {other:?} is not own, host or join"));
            }
            _ => return Err("network: join = PATH goes with mode = \"join\"".into()),
        };
        for v in &n.veth {
            let mut link = Veth::new(&v.host_name);
            if let Some(b) = &v.bridge {
                link = link.bridge(b);
            }
            for a in &v.host_addresses {
                link = link.host_address(a);
            }
            if let Some(ns) = &v.host_netns {
                link = link.host_netns(ns);
            }
            net = net.veth(iface!(link, v));
        }
        for m in &n.macvlan {
            let mut link = Macvlan::new(&m.parent);
            if let Some(ns) = &m.parent_netns {
                link = link.parent_netns(ns);
            }
            net = net.macvlan(iface!(link, m));
        }

        let r = &self.resources;
        let mut res = Resources::new();
        if let Some(s) = &r.memory_max {
            res = res.memory_max(s.bytes("resources.memory_max")?);
        }
        if let Some(s) = &r.memory_high {
            res = res.memory_high(s.bytes("resources.memory_high")?);
        }
        if let Some(s) = &r.memory_swap_max {
            res = res.memory_swap_max(s.bytes("resources.memory_swap_max")?);
        }
        if let Some(w) = r.cpu_weight {
            res = res.cpu_weight(w);
        }
        if let Some(p) = r.cpu_percent {
            let period = Duration::from_millis(100);
            res = res.cpu_quota(period * p / 100, period);
        }
        if let Some(c) = &r.cpuset_cpus {
            res = res.cpuset_cpus(c);
        }
        if let Some(p) = r.pids_max {
            res = res.pids_max(p);
        }
        if let Some(p) = &r.parent {
            res = res.parent(p);
        }

        let k = &self.command;
        let command = command.unwrap_or_else(|| {
            let mut cmd = Command::new(&k.program).args(&k.args);
            for (key, value) in &k.env {
                cmd = cmd.env(key, value);
            }
            if let Some(dir) = &k.cwd {
                cmd = cmd.current_dir(dir);
            }
            cmd
        });
        let command = command.stdin(stdin).stdout(stdout).stderr(stderr);
        let init = match k.init.as_deref() {
            None | Some("builtin") => Init::Builtin,
            Some("payload") => Init::Payload,
            Some(other) => return Err(format!("command.init: {other:?} is not builtin or payload")),
        };
        Ok(Guest::builder(name)
            .context(ctx)
            .filesystem(fs)
            .network(net)
            .resources(res)
            .command(command)
            .init(init)
            .kill_on_drop(false))
    }
}
