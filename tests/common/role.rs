//! Roles: the test binary run again as a second program.
//!
//! Some tests need a process of their own (a signal disposition, a fork,
//! a caller to kill, a program inside a guest). That process is this test
//! binary with one `#[ignore]`d test `role_NAME` selected by its full
//! libtest name (`MODULE::role_NAME` when it is declared in a module of
//! the binary) and [`ENV`] naming the role; every role returns at once
//! without that variable, so a plain `cargo test -- --ignored` does
//! nothing harmful.

/// Names the role a re-executed test binary plays.
pub const ENV: &str = "VGUEST_TEST_ROLE";

/// Whether this process plays role `name`.
pub fn is(name: &str) -> bool {
    std::env::var(ENV).is_ok_and(|r| r == name)
}

/// libtest arguments that run exactly the role test `role_NAME` declared
/// at the root of the test binary.
pub fn args(name: &str) -> [String; 5] {
    args_in("", name)
}

/// libtest arguments that run exactly the role test `role_NAME` declared
/// in `module`, a path as `module_path!()` gives it there: the crate's
/// name, then the modules (libtest leaves the crate's name out, so
/// `security::memory` holds the test `memory::role_racer`).
pub fn args_in(module: &str, name: &str) -> [String; 5] {
    let test = match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::role_{name}"),
        None => format!("role_{name}"),
    };
    ["--exact", &test, "--ignored", "--nocapture", "--test-threads=1"].map(String::from)
}

/// This binary as a host process playing `name`, a role declared at the
/// root of the binary.
pub fn host(name: &str) -> std::process::Command {
    host_in("", name)
}

/// This binary as a host process playing `name`, a role declared in
/// `module` (as for [`args_in`]).
pub fn host_in(module: &str, name: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(args_in(module, name)).env(ENV, name);
    cmd
}
