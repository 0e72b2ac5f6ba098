//! The network namespace's maker (see `launch/maker.rs` for why it
//! exists), and the spawn child's side: joining what it made.
//!
//! ```text
//!   THE MAKER RUNS AFTER CLONE(CLONE_VM): the rules of `child/mod.rs` apply.
//! ```

use super::{At, Failure};
use crate::plan::MakerPlan;
use crate::plan::wire::{self, step};
use crate::sys::call;

/// `SIOCGSKNS` (`linux/sockios.h`): an fd of a socket's network namespace.
const SIOCGSKNS: u64 = 0x894C;

/// Entry point of the maker.
///
/// # Safety
///
/// `arg` must point to a `MakerPlan` that stays alive until this process
/// exits.
pub(super) unsafe extern "C" fn maker_main(arg: usize, _placed: usize) -> ! {
    // SAFETY: the caller keeps the plan alive until the maker is reaped.
    let plan = unsafe { &*(arg as *const MakerPlan) };
    // The maker shares the caller's memory: it must not outlive the
    // thread that started it (which reaps it before it returns).
    let _ = call::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as usize, 0, 0, 0);
    let sent = match make(plan) {
        Ok(fd) => {
            let sent = call::send_with_fd(plan.sock, &wire::encode(0, 0, 0), fd);
            // The fd is in the parent's file table (shared): the child
            // holds its own copy now.
            let _ = call::close(fd);
            sent
        }
        Err(Failure(step, errno, detail)) => {
            call::send_with_fd(plan.sock, &wire::encode(step, errno, detail), -1)
        }
    };
    call::exit(if sent.is_ok() { 0 } else { 1 })
}

/// Creates the namespace, brings up `lo` and returns an fd of it.
fn make(plan: &MakerPlan) -> Result<i32, Failure> {
    if plan.userns_of >= 0 {
        call::setns(plan.userns_of, libc::CLONE_NEWUSER).at(step::CREATE_NETWORK, 0)?;
        call::unshare(libc::CLONE_NEWNET).at(step::CREATE_NETWORK, 0)?;
    }
    call::link_up(b"lo").at(step::LOOPBACK_UP, 0)?;
    let sock = call::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
        .at(step::CREATE_NETWORK, 0)? as i32;
    let mut unused = 0i32;
    let fd = call::ioctl(sock, SIOCGSKNS, &mut unused).at(step::CREATE_NETWORK, 0);
    let _ = call::close(sock);
    Ok(fd? as i32)
}

/// In the spawn child: waits for the maker's namespace and joins it;
/// leaves if the caller (the pidfd `lifeline`) dies meanwhile.
pub(super) fn child_join(sock: i32, lifeline: i32) -> Result<(), Failure> {
    if call::wait_readable(sock, lifeline).at(step::CREATE_NETWORK, 0)? == call::Ready::LifelineGone {
        call::exit(1);
    }
    let mut record = [0u8; wire::RECORD_LEN];
    let (got, fd) = call::recv_with_fd(sock, &mut record).at(step::CREATE_NETWORK, 0)?;
    let _ = call::close(sock);
    if got != wire::RECORD_LEN {
        if fd >= 0 {
            let _ = call::close(fd);
        }
        // The maker ended without a word.
        return Err(Failure(step::CREATE_NETWORK, libc::EPIPE, 0));
    }
    let (code, errno, detail) = wire::decode(&record);
    if code != 0 {
        return Err(Failure(code, errno, detail));
    }
    if fd < 0 {
        return Err(Failure(step::CREATE_NETWORK, libc::EBADF, 0));
    }
    let joined = call::setns(fd, libc::CLONE_NEWNET).at(step::JOIN_NETWORK, 0);
    let _ = call::close(fd);
    joined.map(|_| ())
}
