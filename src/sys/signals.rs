//! Blocking every signal of the calling thread around the clone.

use std::io;

/// Restores the thread's previous signal mask on drop.
pub(crate) struct BlockedSignals {
    old: libc::sigset_t,
}

impl BlockedSignals {
    /// Blocks all signals of the calling thread. A child cloned meanwhile
    /// starts with every signal blocked, so it can never run one of the
    /// parent's handlers on the parent's memory.
    pub(crate) fn block_all() -> io::Result<Self> {
        // SAFETY: sigset_t is plain data; sigfillset and pthread_sigmask
        // write only into the sets passed.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            let ret = libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            if ret != 0 {
                return Err(io::Error::from_raw_os_error(ret));
            }
            Ok(Self { old })
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: restoring a mask previously returned by pthread_sigmask.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}
