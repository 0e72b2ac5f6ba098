//! Roles: the test binary run again as a second program.
//!
//! Some tests need a process of their own (a signal disposition, a fork,
//! a caller to kill, a program inside a guest). That process is this test
//! binary with one `#[ignore]`d test `role_NAME` selected and
//! [`ENV`] naming the role; every role returns at once without that
//! variable, so a plain `cargo test -- --ignored` does nothing harmful.

/// Names the role a re-executed test binary plays.
pub const ENV: &str = "VGUEST_TEST_ROLE";

/// Whether this process plays role `name`.
pub fn is(name: &str) -> bool {
    std::env::var(ENV).is_ok_and(|r| r == name)
}

/// libtest arguments that run exactly the role test `role_NAME`.
pub fn args(name: &str) -> [String; 5] {
    ["--exact", &format!("role_{name}"), "--ignored", "--nocapture", "--test-threads=1"].map(String::from)
}

/// This binary as a host process playing `name`.
pub fn host(name: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(args(name)).env(ENV, name);
    cmd
}
