//! Attack tests: a hostile guest against the promises of the security
//! model (DESIGN.md, "Security model"). Each test plays the attacker and
//! fails while its attack works; each attack has a module of its own:
//!
//! - a guest process reads the caller's memory through a process of ours
//!   that shares it (`/proc/PID/mem`, `ptrace`) during an exec or a spawn
//!   ([`memory`]);
//! - a guest process pushes input into the caller's terminal (`TIOCSTI`)
//!   or takes that terminal as its controlling terminal ([`terminal`]);
//! - a default guest makes device nodes ([`devices`]);
//! - a caller killed during the spawn's handshake leaves a half-made guest
//!   waiting forever ([`caller_death`]);
//! - a default guest (or a process entering it, or a 32-bit program in
//!   it) reaches kernel surfaces the default filter closes: a new user
//!   namespace, the keyring, io_uring, perf, bpf, modules ([`seccomp`]);
//! - and a check of the test setup: a run meant to refuse `clone3(2)`
//!   really does (`tests/support/no_clone3.rs`; [`clone3`]).
//!
//! Several tests need a second program. It is this test binary run again
//! with one `#[ignore]`d *role* test selected by its full name (`--exact
//! MODULE::role_...`) and `VGUEST_TEST_ROLE` naming it (`common/role.rs`);
//! every role returns at once without that variable, so a plain `cargo
//! test -- --ignored` does nothing harmful. Inside a guest the binary runs
//! from the busybox root with the host's library directories bound
//! read-only ([`support::role_filesystem`]). Roles report on stdout in
//! lines tagged `@@`, which the tests parse ([`support`]).

#[path = "../common/mod.rs"]
mod common;

mod caller_death;
mod clone3;
mod devices;
mod memory;
mod notify;
mod seccomp;
mod support;
mod terminal;
