//! The fixed-size record a failing child sends to the parent.
//!
//! The spawn child and the built-in init report a failure as one
//! [`RECORD_LEN`]-byte write on the close-on-exec error pipe: the step that
//! failed, the errno, and an index into the plan that names the value (the
//! n-th rlimit, mount, cgroup hierarchy). End of file on the pipe means the
//! payload's `execve` succeeded.
//!
//! The init image (`build.rs`) includes this file too, so it uses `core`
//! only and the step numbers are the single source for both programs.

#![allow(dead_code)]

/// The signal that tells the built-in init its guest is detached from its
/// owner (it then stops watching the owner's pipe): `SIGRTMAX`. The init
/// counts it only when sent from outside the guest's PID namespace.
pub const DETACH_SIGNAL: i32 = 64;

/// Length of one failure record: step, errno, detail as native-endian u32.
pub const RECORD_LEN: usize = 12;

/// Step numbers, shared by the spawn child, the init image and the parent.
pub mod step {
    pub const WAIT_FOR_PARENT: u32 = 1;
    pub const PARENT_DEATH_SIGNAL: u32 = 2;
    pub const JOIN_CGROUP: u32 = 3;
    pub const UNSHARE_CGROUP: u32 = 4;
    pub const UNSHARE_TIME: u32 = 5;
    pub const SET_TIME_OFFSETS: u32 = 6;
    pub const JOIN_NETWORK: u32 = 7;
    pub const LOOPBACK_UP: u32 = 8;
    pub const SET_HOSTNAME: u32 = 9;
    pub const SET_DOMAINNAME: u32 = 10;
    pub const MOUNT: u32 = 11;
    pub const PIVOT_ROOT: u32 = 12;
    pub const SET_RLIMIT: u32 = 13;
    pub const DROP_BOUNDING: u32 = 14;
    pub const SET_GROUPS: u32 = 15;
    pub const SET_GID: u32 = 16;
    pub const KEEP_CAPS: u32 = 17;
    pub const SET_UID: u32 = 18;
    pub const SET_CAPS: u32 = 19;
    pub const RAISE_AMBIENT: u32 = 20;
    // 21 was SET_SECUREBITS, 25 CLOSE_FDS, 31 an earlier SECCOMP: never
    // produced.
    pub const NO_NEW_PRIVS: u32 = 22;
    pub const CHDIR: u32 = 23;
    pub const STDIO: u32 = 24;
    pub const SIGNALS: u32 = 26;
    pub const RESOLVE_PROGRAM: u32 = 27;
    pub const EXEC: u32 = 28;
    pub const EXEC_INIT: u32 = 29;
    pub const INIT_FORK: u32 = 30;
    pub const JOIN_GUEST: u32 = 32;
    pub const CREATE_NETWORK: u32 = 33;
    pub const NEW_SESSION: u32 = 34;
    pub const UNSHARE_FILES: u32 = 35;
    pub const SECCOMP: u32 = 36;
    pub const HAND_LISTENER: u32 = 37;
}

/// Encodes a failure record.
pub fn encode(step: u32, errno: i32, detail: u32) -> [u8; RECORD_LEN] {
    let mut out = [0u8; RECORD_LEN];
    let (a, rest) = out.split_at_mut(4);
    let (b, c) = rest.split_at_mut(4);
    a.copy_from_slice(&step.to_ne_bytes());
    b.copy_from_slice(&errno.to_ne_bytes());
    c.copy_from_slice(&detail.to_ne_bytes());
    out
}

/// Decodes a failure record into (step, errno, detail).
pub fn decode(rec: &[u8; RECORD_LEN]) -> (u32, i32, u32) {
    let word = |i: usize| [rec[i], rec[i + 1], rec[i + 2], rec[i + 3]];
    (u32::from_ne_bytes(word(0)), i32::from_ne_bytes(word(4)), u32::from_ne_bytes(word(8)))
}
