//! The equal-work check: both sides of a pair run a busybox script
//! instead of `/bin/true` that prints what their setup produced, and the
//! differences are listed before the timing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Printed by the probe, one fact a line: its pid in its PID namespace
/// (1 = no reaper in front of it), hostname, the namespace of each kind,
/// capability sets, `no_new_privs`, seccomp, uid map, `RLIMIT_NOFILE`,
/// the loopback link's flags and the mount table.
pub const SCRIPT: &str = r#"
echo "pid $$"
echo "hostname $(busybox hostname)"
for n in user mnt pid uts ipc net cgroup time; do echo "ns $n $(busybox readlink /proc/self/ns/$n)"; done
busybox grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status
echo "uid_map $(busybox cat /proc/self/uid_map)"
echo "nofile $(ulimit -n)"
echo "lo $(busybox ip -o link show lo 2>/dev/null | busybox grep -o '<[^>]*>')"
busybox sed 's/^/mount /' /proc/self/mountinfo
"#;

/// Namespaces with a name: the benchmark's own (`host`) and, for the
/// enter pair, the guest's (`guest`); any other is `new`.
pub struct Known(HashMap<String, &'static str>);

impl Known {
    pub fn new(guest_pid: Option<u32>) -> Known {
        let mut known = HashMap::new();
        for n in ["user", "mnt", "pid", "uts", "ipc", "net", "cgroup", "time"] {
            if let Ok(link) = std::fs::read_link(format!("/proc/self/ns/{n}")) {
                known.insert(link.to_string_lossy().into_owned(), "host");
            }
            if let Some(Ok(link)) = guest_pid.map(|p| std::fs::read_link(format!("/proc/{p}/ns/{n}"))) {
                known.entry(link.to_string_lossy().into_owned()).or_insert("guest");
            }
        }
        Known(known)
    }
}

/// What a probe printed, normalised.
pub struct State {
    facts: BTreeMap<String, String>,
    /// Mount point -> `fstype[:root] flags` of each mount on it.
    mounts: BTreeMap<String, Vec<String>>,
}

impl State {
    pub fn parse(out: &str, known: &Known) -> State {
        let mut facts = BTreeMap::new();
        let mut mounts: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(m) = line.strip_prefix("mount ") {
                let (point, what) = mount(m);
                mounts.entry(point).or_default().push(what);
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["ns", kind, link, ..] => {
                    let label = known.0.get(*link).copied().unwrap_or("new");
                    facts.insert(format!("ns {kind}"), label.to_string());
                }
                [key, rest @ ..] => {
                    facts.insert(key.trim_end_matches(':').to_string(), rest.join(" "));
                }
                [] => {}
            }
        }
        State { facts, mounts }
    }

    /// The namespaces of the kinds that are not the benchmark's own.
    pub fn namespaces(&self, label: &str) -> String {
        let kinds: Vec<&str> = self
            .facts
            .iter()
            .filter(|(k, v)| k.starts_with("ns ") && v.as_str() == label)
            .map(|(k, _)| &k[3..])
            .collect();
        if kinds.is_empty() { "none".into() } else { kinds.join(" ") }
    }

    pub fn fact(&self, key: &str) -> &str {
        self.facts.get(key).map_or("", String::as_str)
    }

    pub fn mount_count(&self) -> usize {
        self.mounts.values().map(Vec::len).sum()
    }
}

/// The mount point and `fstype[:root] ro|rw[,nosuid][,nodev][,noexec]`
/// of a `/proc/PID/mountinfo` line (`proc(5)`).
fn mount(line: &str) -> (String, String) {
    let (left, right) = line.split_once(" - ").unwrap_or((line, ""));
    let f: Vec<&str> = left.split_whitespace().collect();
    let (root, point, opts) = (f.get(3).copied().unwrap_or("?"), f.get(4).copied().unwrap_or("?"), f.get(5));
    let fstype = right.split_whitespace().next().unwrap_or("?");
    let opts: Vec<&str> = opts
        .map(|o| o.split(',').filter(|o| ["ro", "rw", "nosuid", "nodev", "noexec"].contains(o)).collect())
        .unwrap_or_default();
    let root = if root == "/" { String::new() } else { format!(":{root}") };
    (point.to_string(), format!("{fstype}{root} {}", opts.join(",")))
}

/// The facts and mounts in which the two sides differ, one a line;
/// facts named in `ignore` are not compared.
pub fn differences(peer: &State, vguest: &State, ignore: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let keys: BTreeSet<&String> = peer.facts.keys().chain(vguest.facts.keys()).collect();
    for key in keys.into_iter().filter(|k| !ignore.contains(&k.as_str())) {
        let (p, v) = (peer.fact(key), vguest.fact(key));
        if p != v {
            out.push(format!("{key}: peer {p:?}, vguest {v:?}"));
        }
    }
    // Mounts of the same filesystem and root that differ only in their
    // nosuid/nodev/noexec/ro flags cost the same: one line for all.
    let points: BTreeSet<&String> = peer.mounts.keys().chain(vguest.mounts.keys()).collect();
    let show = |m: Option<&Vec<String>>| m.map_or_else(|| "none".to_string(), |m| m.join(" + "));
    fn what(m: Option<&Vec<String>>) -> Option<Vec<&str>> {
        m.map(|m| m.iter().map(|x| x.split(' ').next().unwrap_or("")).collect())
    }
    let mut flags_only = Vec::new();
    for point in points {
        let (p, v) = (peer.mounts.get(point), vguest.mounts.get(point));
        if p == v {
            continue;
        }
        if what(p) == what(v) {
            flags_only.push(format!(
                "{point} ({} / {})",
                show(p).replace(' ', ":"),
                show(v).replace(' ', ":")
            ));
        } else {
            out.push(format!("mount {point}: peer {}, vguest {}", show(p), show(v)));
        }
    }
    if !flags_only.is_empty() {
        out.push(format!("mount flags only (peer / vguest): {}", flags_only.join(", ")));
    }
    out
}
