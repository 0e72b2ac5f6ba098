//! `runc run` (or crun) of an OCI bundle whose config comes from
//! `runc spec`, the vguest guest that follows the same spec, and the
//! removal of everything the runtime made.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use serde_json::{Value, json};
use vguest::{CapSet, Capabilities, Context, Filesystem, Namespaces, Rlimit};

use crate::tool::{BoxError, Side};

/// The runtime's container id and the name of its cgroups: unique to
/// this run, and with the prefix the leak check looks for.
pub fn container_id() -> String {
    format!("vguest-peers-{}", std::process::id())
}

/// An OCI runtime with a bundle and a state directory of its own.
pub struct Oci {
    runtime: &'static str,
    bundle: PathBuf,
    state: PathBuf,
    id: String,
    pub spec: Value,
    timed: StdCommand,
}

/// Writes `runc spec`'s default config into `bundle` and adjusts it:
/// `/bin/true` without a terminal on the read-only `rootfs`, cgroups at a
/// relative path (so below the benchmark's own group in every hierarchy,
/// named after the container), and without the `/sys/fs/cgroup` mount,
/// which a vguest guest has no counterpart for.
pub fn make_bundle(rootfs: &Path, bundle: &Path) -> Result<Value, BoxError> {
    std::fs::create_dir_all(bundle)?;
    let out = StdCommand::new("runc").arg("spec").arg("--bundle").arg(bundle).output()?;
    if !out.status.success() {
        return Err(format!("runc spec: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    let mut spec: Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json"))?)?;
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["/bin/true"]);
    spec["root"]["path"] = json!(rootfs);
    spec["linux"]["cgroupsPath"] = json!(container_id());
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
    }
    Ok(spec)
}

impl Oci {
    pub fn new(runtime: &'static str, bundle: &Path, spec: Value, state: &Path) -> Result<Oci, BoxError> {
        let id = container_id();
        std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&spec)?)?;
        let mut timed = StdCommand::new(runtime);
        timed.arg("--root").arg(state).args(["run", "--bundle"]).arg(bundle).arg(&id);
        Ok(Oci { runtime, bundle: bundle.to_path_buf(), state: state.to_path_buf(), id, spec, timed })
    }

    fn write_args(&self, args: &[&str]) -> Result<(), BoxError> {
        let mut spec = self.spec.clone();
        spec["process"]["args"] = json!(args);
        std::fs::write(self.bundle.join("config.json"), serde_json::to_vec_pretty(&spec)?)?;
        Ok(())
    }
}

impl Side for Oci {
    fn label(&self) -> String {
        format!("{} run (bundle from `runc spec`, /bin/true)", self.runtime)
    }

    fn run(&mut self) -> Result<(), BoxError> {
        let status = self.timed.status()?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("`{} run` ended with {status}", self.runtime).into()),
        }
    }

    fn probe(&mut self, script: &str) -> Result<String, BoxError> {
        self.write_args(&["/bin/busybox", "sh", "-c", script])?;
        let out = StdCommand::new(self.runtime)
            .arg("--root")
            .arg(&self.state)
            .args(["run", "--bundle"])
            .arg(&self.bundle)
            .arg(&self.id)
            .output();
        self.write_args(&["/bin/true"])?;
        let out = out?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!("`{} run` ended with {}: {}", self.runtime, out.status, err.trim()).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Oci {
    fn drop(&mut self) {
        // `run` removes its container when it ends; this covers a run
        // that was interrupted. An unknown id is not an error here.
        let _ = StdCommand::new(self.runtime)
            .arg("--root")
            .arg(&self.state)
            .args(["delete", "--force"])
            .arg(&self.id)
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn cap_set(v: &Value) -> Result<CapSet, BoxError> {
    Ok(strings(v).join(",").parse::<CapSet>()?)
}

/// The vguest context and filesystem an OCI spec describes (the parts
/// `runc spec` uses), and notes on what has no counterpart.
pub fn follow_spec(spec: &Value, root: &Path) -> Result<(Context, Filesystem, Vec<String>), BoxError> {
    let mut notes = Vec::new();
    let mut ns = Namespaces::empty();
    for n in spec["linux"]["namespaces"].as_array().into_iter().flatten() {
        ns |= match n["type"].as_str() {
            Some("pid") => Namespaces::PID,
            Some("network") => Namespaces::NET,
            Some("ipc") => Namespaces::IPC,
            Some("uts") => Namespaces::UTS,
            Some("mount") => Namespaces::MOUNT,
            Some("cgroup") => Namespaces::CGROUP,
            Some("user") => Namespaces::USER,
            other => return Err(format!("namespace {other:?}").into()),
        };
    }
    let p = &spec["process"]["capabilities"];
    let inheritable = cap_set(&p["inheritable"])?;
    // The kernel raises an ambient capability only if it is also
    // inheritable (capabilities(7)); runc ignores the failure.
    let ambient = cap_set(&p["ambient"])? & inheritable;
    let caps = Capabilities {
        bounding: cap_set(&p["bounding"])?,
        effective: cap_set(&p["effective"])?,
        permitted: cap_set(&p["permitted"])?,
        inheritable,
        ambient,
    };
    let mut context = Context::new()
        .namespaces(ns)
        .capabilities(caps)
        .no_new_privs(spec["process"]["noNewPrivileges"].as_bool().unwrap_or(false));
    if let Some(h) = spec["hostname"].as_str() {
        context = context.hostname(h);
    }
    for r in spec["process"]["rlimits"].as_array().into_iter().flatten() {
        let name = r["type"].as_str().unwrap_or("");
        let resource = RLIMITS.iter().find(|x| format!("{x:?}") == name).ok_or(format!("rlimit {name}"))?;
        context = context.rlimit(*resource, r["soft"].as_u64().unwrap_or(0), r["hard"].as_u64().unwrap_or(0));
    }
    let mut fs = Filesystem::new(root)
        .read_only_root(spec["root"]["readonly"].as_bool().unwrap_or(false))
        .no_default_masks();
    for m in spec["mounts"].as_array().into_iter().flatten() {
        fs = match m["destination"].as_str().unwrap_or("") {
            "/proc" => fs.proc(),
            "/dev" => fs.dev(),
            // Part of vguest's minimal /dev.
            "/dev/pts" | "/dev/shm" => fs,
            "/dev/mqueue" => fs.mqueue(),
            "/sys" => fs.sysfs(),
            other => {
                notes.push(format!("mount {other} of the spec has no vguest counterpart here"));
                fs
            }
        };
    }
    for path in strings(&spec["linux"]["maskedPaths"]) {
        fs = fs.mask(path);
    }
    for path in strings(&spec["linux"]["readonlyPaths"]) {
        fs = fs.read_only_path(path);
    }
    notes.push(format!(
        "vguest: namespaces {ns:?}, hostname, caps, rlimits, no_new_privs, read-only root, mounts, masked and read-only paths from the spec; payload as PID 1"
    ));
    Ok((context, fs, notes))
}

const RLIMITS: [Rlimit; 6] = [
    Rlimit::RLIMIT_NOFILE,
    Rlimit::RLIMIT_NPROC,
    Rlimit::RLIMIT_CORE,
    Rlimit::RLIMIT_MEMLOCK,
    Rlimit::RLIMIT_STACK,
    Rlimit::RLIMIT_AS,
];

/// Cgroup directories named after our container id, anywhere under
/// `/sys/fs/cgroup`.
pub fn leftover_cgroups() -> Vec<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: usize, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = e.path();
            if e.file_name().to_string_lossy().contains(name) {
                found.push(path.clone());
            }
            if depth > 0 {
                walk(&path, name, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), &container_id(), 8, &mut found);
    found
}
