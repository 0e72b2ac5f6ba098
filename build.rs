//! Builds the built-in init (`src/spawn/init/main.rs`) as a tiny static
//! executable for the target, to be embedded in the library and executed
//! from a memfd as the PID 1 of a guest's PID namespace.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    for f in ["src/spawn/init/main.rs", "src/sys/raw.rs", "src/spawn/wire.rs"] {
        println!("cargo::rerun-if-changed={f}");
    }
    println!("cargo::rerun-if-env-changed=VGUEST_INIT_LINKER");
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("vguest-init");
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
    cmd.arg("-o").arg(&out).arg("src/spawn/init/main.rs");

    let result = cmd.output().expect("running rustc for the built-in init");
    if !result.status.success() {
        panic!(
            "building the built-in init for {target} failed:\n{}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
}
