//! Builds the built-in init (`src/child/init/main.rs`) as a tiny static
//! executable for the target, to be embedded in the library and executed
//! from a memfd as the PID 1 of a guest's PID namespace.
//!
//! This needs the target's linker (`cc` by default; set
//! `VGUEST_INIT_LINKER` or `CARGO_TARGET_<TRIPLE>_LINKER` when cross
//! compiling). A build that cannot make the init fails, with one exception:
//! docs.rs (which sets `DOCS_RS`) only documents the crate, for targets it
//! may have no linker for, so there the image is an empty placeholder that
//! the library refuses to run.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    for f in ["src/child/init/main.rs", "src/sys/raw.rs", "src/plan/wire.rs"] {
        println!("cargo::rerun-if-changed={f}");
    }
    println!("cargo::rerun-if-env-changed=VGUEST_INIT_LINKER");
    println!("cargo::rerun-if-env-changed=DOCS_RS");
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("vguest-init");

    if env::var_os("DOCS_RS").is_some() {
        std::fs::write(&out, b"").expect("writing the placeholder init image");
        println!(
            "cargo::warning=DOCS_RS is set: the built-in init is an empty placeholder, so guests with \
             Init::Builtin cannot start with this build"
        );
        return;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());

    let mut cmd = Command::new(rustc);
    cmd.args(["--target", &target, "--edition", "2021", "--crate-type", "bin"])
        .args(["--crate-name", "vguest_init"])
        .args(["-C", "opt-level=s", "-C", "panic=abort", "-C", "codegen-units=1"])
        .args(["-C", "relocation-model=static", "-C", "target-feature=+crt-static"])
        .args(["-C", "debuginfo=0", "-C", "strip=symbols"])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args(["-C", "link-arg=-static", "-C", "link-arg=-Wl,--build-id=none"]);
    let linker_var = format!("CARGO_TARGET_{}_LINKER", target.to_uppercase().replace('-', "_"));
    println!("cargo::rerun-if-env-changed={linker_var}");
    if let Ok(linker) = env::var("VGUEST_INIT_LINKER").or_else(|_| env::var(&linker_var)) {
        cmd.arg("-C").arg(format!("linker={linker}"));
    }
    cmd.arg("-o").arg(&out).arg("src/child/init/main.rs");

    let result = cmd.output().expect("running rustc for the built-in init");
    if !result.status.success() {
        panic!(
            "building the built-in init for {target} failed (it needs the target's `core` from \
             `rustup target add {target}` and a linker: `cc` by default, else VGUEST_INIT_LINKER or \
             {linker_var}):\n{}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
}
