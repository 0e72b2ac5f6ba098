//! User notification (`seccomp_unotify(2)`): a supervisor outside the
//! guest receives the calls that [`SeccompAction::Notify`] rules
//! intercept, and answers each in the guest's stead.
//!
//! [`SeccompAction::Notify`]: super::SeccompAction::Notify

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::arch::Arch;
use crate::sys::notify;

/// What went wrong receiving, reading for or answering an intercepted
/// call.
///
/// ```
/// use vguest::SeccompNotifyError;
///
/// let err = SeccompNotifyError::Gone { id: 7 };
/// assert_eq!(err.to_string(), "intercepted call 7 no longer waits (its process ended or was interrupted)");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeccompNotifyError {
    /// No process is left that the filter covers: no call will come.
    #[error("no process the filter covers is left")]
    Closed,
    /// The call no longer waits for an answer: its process was killed,
    /// or a signal interrupted the call (which the process may make
    /// again, as a new request).
    #[error("intercepted call {id} no longer waits (its process ended or was interrupted)")]
    Gone {
        /// The request's id.
        id: u64,
    },
    /// The calling process is not visible in this process's PID
    /// namespace, so its memory cannot be read.
    #[error("the process behind intercepted call {id} is outside this PID namespace")]
    NoPid {
        /// The request's id.
        id: u64,
    },
    /// Reading the calling process's memory failed.
    #[error("reading {len} bytes at {addr:#x} of process {pid}: {source}")]
    ReadMemory {
        /// The process's pid, in this process's PID namespace.
        pid: u32,
        /// The address read.
        addr: u64,
        /// How many bytes were asked for.
        len: usize,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// No NUL within `max` bytes of `addr`.
    #[error("no string of at most {max} bytes at {addr:#x}")]
    StringTooLong {
        /// The address read.
        addr: u64,
        /// The limit.
        max: usize,
    },
    /// A listener operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done: "waiting for a call", "receiving a call",
        /// "answering call 7".
        op: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// How to answer an intercepted call.
///
/// ```
/// use vguest::SeccompResponse;
///
/// let ok = SeccompResponse::Value(0);
/// let refused = SeccompResponse::Errno(libc::EPERM);
/// # let _ = (ok, refused);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompResponse {
    /// The call returns this value (the supervisor did its work).
    Value(i64),
    /// The call fails with this errno (positive, as in `libc::EPERM`).
    Errno(i32),
    /// The kernel makes the call as the process asked it, with the
    /// process's own privileges. Never answer so on the strength of the
    /// process's memory: another of its threads can change the arguments
    /// between the supervisor's read and the kernel's (Linux 5.5).
    Continue,
}

/// One intercepted call: who made it, and with which arguments.
///
/// ```no_run
/// # fn demo(listener: &vguest::SeccompListener) -> Result<(), vguest::SeccompNotifyError> {
/// let request = listener.receive()?;
/// println!("{:?} made by pid {:?}", request.syscall_name(), request.pid());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeccompRequest {
    id: u64,
    pid: u32,
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

impl SeccompRequest {
    fn from_raw(n: &libc::seccomp_notif) -> Self {
        SeccompRequest {
            id: n.id,
            pid: n.pid,
            nr: n.data.nr,
            arch: n.data.arch,
            instruction_pointer: n.data.instruction_pointer,
            args: n.data.args,
        }
    }

    /// The kernel's id for this request (unique while the listener lives).
    ///
    /// ```no_run
    /// # fn demo(r: vguest::SeccompRequest) { println!("request {}", r.id()); }
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The calling thread's id in this process's PID namespace, or `None`
    /// if it is not visible in it.
    ///
    /// ```no_run
    /// # fn demo(r: vguest::SeccompRequest) { let _pid = r.pid(); }
    /// ```
    pub fn pid(&self) -> Option<u32> {
        (self.pid != 0).then_some(self.pid)
    }

    /// The call's number, in the table of its architecture.
    ///
    /// ```no_run
    /// # fn demo(r: vguest::SeccompRequest) { let _nr = r.nr(); }
    /// ```
    pub fn nr(&self) -> i32 {
        self.nr
    }

    /// The call's architecture, as an `AUDIT_ARCH_*` value
    /// (`0xc000003e` for x86_64, `0x40000003` for i386).
    ///
    /// ```no_run
    /// # fn demo(r: vguest::SeccompRequest) { let _arch = r.arch(); }
    /// ```
    pub fn arch(&self) -> u32 {
        self.arch
    }

    /// The call's name (`"mknodat"`), if its architecture's table knows
    /// the number.
    ///
    /// ```no_run
    /// # fn demo(r: vguest::SeccompRequest) {
    /// if r.syscall_name() == Some("sethostname") { /* ... */ }
    /// # }
    /// ```
    pub fn syscall_name(&self) -> Option<&'static str> {
        let arch = Arch::host().iter().find(|a| a.audit() == self.arch)?;
        arch.name_of(u32::try_from(self.nr).ok()?)
    }

    /// The six argument registers, as the filter saw them.
    ///
    /// ```no_run
    /// # fn demo(r: vguest::SeccompRequest) { let [path, ..] = r.args(); }
    /// ```
    pub fn args(&self) -> [u64; 6] {
        self.args
    }

    /// The address of the calling instruction.
    ///
    /// ```no_run
    /// # fn demo(r: vguest::SeccompRequest) { let _ip = r.instruction_pointer(); }
    /// ```
    pub fn instruction_pointer(&self) -> u64 {
        self.instruction_pointer
    }
}

/// The caller's end of a guest's [`SeccompAction::Notify`] rules: the
/// calls they intercept wait until this answers them.
///
/// A guest whose filter has such rules comes with one
/// ([`Guest::take_seccomp_listener`](crate::Guest::take_seccomp_listener)),
/// and so does each process entered into it
/// ([`GuestProcess::take_seccomp_listener`](crate::GuestProcess::take_seccomp_listener)).
/// Only this holds the listener: once it is dropped, waiting and later
/// intercepted calls fail with `ENOSYS`, so a guest never hangs on a
/// supervisor that went away.
///
/// The listener is a file descriptor ([`AsFd`]): poll it with others, or
/// hand it to another process.
///
/// ```no_run
/// use vguest::{Context, Guest, Seccomp, SeccompAction, SeccompResponse, SeccompRule};
///
/// let filter = Seccomp::default().rule(SeccompRule::new("mknodat", SeccompAction::Notify));
/// let mut guest = Guest::builder("g").context(Context::new().seccomp(filter)).spawn()?;
/// let listener = guest.take_seccomp_listener().expect("a Notify rule gives a listener");
/// std::thread::spawn(move || {
///     while let Ok(request) = listener.receive() {
///         let _ = listener.respond(&request, SeccompResponse::Errno(libc::EPERM));
///     }
/// });
/// # Ok::<(), vguest::Error>(())
/// ```
///
/// [`SeccompAction::Notify`]: super::SeccompAction::Notify
#[derive(Debug)]
pub struct SeccompListener {
    fd: OwnedFd,
}

impl SeccompListener {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        SeccompListener { fd }
    }

    /// Waits for the next intercepted call. [`SeccompNotifyError::Closed`]
    /// once no process the filter covers is left (the guest ended).
    ///
    /// ```no_run
    /// # fn demo(listener: &vguest::SeccompListener) -> Result<(), vguest::SeccompNotifyError> {
    /// let request = listener.receive()?;
    /// # Ok(()) }
    /// ```
    pub fn receive(&self) -> Result<SeccompRequest, SeccompNotifyError> {
        loop {
            if let Some(request) = self.receive_by(None)? {
                return Ok(request);
            }
        }
    }

    /// Waits at most `timeout` for the next intercepted call: `None` if
    /// none came.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// # fn demo(listener: &vguest::SeccompListener) -> Result<(), vguest::SeccompNotifyError> {
    /// if let Some(request) = listener.receive_timeout(Duration::from_millis(100))? {
    ///     println!("{:?}", request.syscall_name());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn receive_timeout(&self, timeout: Duration) -> Result<Option<SeccompRequest>, SeccompNotifyError> {
        self.receive_by(Some(Instant::now() + timeout))
    }

    fn receive_by(&self, deadline: Option<Instant>) -> Result<Option<SeccompRequest>, SeccompNotifyError> {
        let io = |op: &str, source| SeccompNotifyError::Io { op: op.to_string(), source };
        loop {
            let left = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let ms = d.saturating_duration_since(Instant::now()).as_millis();
                    PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, left) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(io("waiting for a call", e.into())),
                Ok(0) => return Ok(None),
                Ok(_) => {}
            }
            let ready = fds[0].revents().unwrap_or(PollFlags::empty());
            if !ready.contains(PollFlags::POLLIN) {
                if ready.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                    return Err(SeccompNotifyError::Closed);
                }
                continue;
            }
            match notify::receive(self.fd.as_fd()) {
                Ok(n) => return Ok(Some(SeccompRequest::from_raw(&n))),
                // The caller was killed between the poll and the read.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(io("receiving a call", e)),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        }
    }

    /// Answers `request`. [`SeccompNotifyError::Gone`] if it no longer
    /// waits.
    ///
    /// ```no_run
    /// use vguest::SeccompResponse;
    /// # fn demo(listener: &vguest::SeccompListener) -> Result<(), vguest::SeccompNotifyError> {
    /// let request = listener.receive()?;
    /// listener.respond(&request, SeccompResponse::Errno(libc::EPERM))?;
    /// # Ok(()) }
    /// ```
    pub fn respond(
        &self,
        request: &SeccompRequest,
        response: SeccompResponse,
    ) -> Result<(), SeccompNotifyError> {
        let (val, error, flags) = match response {
            SeccompResponse::Value(v) => (v, 0, 0),
            SeccompResponse::Errno(e) => (0, -e.abs(), 0),
            SeccompResponse::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
        };
        notify::respond(self.fd.as_fd(), request.id, val, error, flags).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => SeccompNotifyError::Gone { id: request.id },
            _ => SeccompNotifyError::Io { op: format!("answering call {}", request.id), source: e },
        })
    }

    /// Whether `request` still waits for an answer (its process was not
    /// killed, nor the call interrupted).
    ///
    /// ```no_run
    /// # fn demo(listener: &vguest::SeccompListener, r: vguest::SeccompRequest) {
    /// if !listener.is_pending(&r) { /* nothing to answer */ }
    /// # }
    /// ```
    pub fn is_pending(&self, request: &SeccompRequest) -> bool {
        notify::id_valid(self.fd.as_fd(), request.id).is_ok()
    }

    /// Reads `buf.len()` bytes (fewer at the end of a mapping) at `addr`
    /// of the calling process's memory; returns how many were read.
    ///
    /// The memory is the process's own, reached through
    /// `/proc/PID/mem` opened and then checked against the request (the
    /// pid cannot have been reused for another process while the request
    /// waits). It is a copy at the time of reading: another thread of the
    /// process can change it afterwards, so base decisions on the copy and
    /// act on the copy (never [`SeccompResponse::Continue`] because of it).
    /// Needs the right to trace the process (`ptrace(2)`, "Ptrace access
    /// mode checking"), which a root caller has.
    ///
    /// ```no_run
    /// # fn demo(listener: &vguest::SeccompListener) -> Result<(), vguest::SeccompNotifyError> {
    /// let request = listener.receive()?;
    /// let mut header = [0u8; 16];
    /// let n = listener.read_memory(&request, request.args()[1], &mut header)?;
    /// # Ok(()) }
    /// ```
    pub fn read_memory(
        &self,
        request: &SeccompRequest,
        addr: u64,
        buf: &mut [u8],
    ) -> Result<usize, SeccompNotifyError> {
        let mem = self.open_memory(request, addr, buf.len())?;
        read_at(&mem, request.pid, addr, buf)
    }

    /// Reads the NUL-terminated string at `addr` of the calling process's
    /// memory (a path, a name), of at most `max` bytes before the NUL.
    /// The same care applies as for [`read_memory`](Self::read_memory).
    ///
    /// ```no_run
    /// # fn demo(listener: &vguest::SeccompListener) -> Result<(), vguest::SeccompNotifyError> {
    /// let request = listener.receive()?;
    /// // mknodat(dirfd, path, mode, dev): the path is argument 1.
    /// let path = listener.read_c_string(&request, request.args()[1], 4096)?;
    /// # Ok(()) }
    /// ```
    pub fn read_c_string(
        &self,
        request: &SeccompRequest,
        addr: u64,
        max: usize,
    ) -> Result<CString, SeccompNotifyError> {
        let mem = self.open_memory(request, addr, max)?;
        let mut out = Vec::new();
        let mut chunk = [0u8; 256];
        while out.len() <= max {
            let at = addr.wrapping_add(out.len() as u64);
            let want = chunk.len().min(max + 1 - out.len());
            let n = read_at(&mem, request.pid, at, &mut chunk[..want])?;
            if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..end]);
                return Ok(CString::new(out).unwrap_or_default());
            }
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        Err(SeccompNotifyError::StringTooLong { addr, max })
    }

    /// `/proc/PID/mem` of the request's process, opened and then checked
    /// to belong to it: while the request waits, its pid names it.
    fn open_memory(
        &self,
        request: &SeccompRequest,
        addr: u64,
        len: usize,
    ) -> Result<File, SeccompNotifyError> {
        let pid = request.pid().ok_or(SeccompNotifyError::NoPid { id: request.id })?;
        let mem = File::open(format!("/proc/{pid}/mem"))
            .map_err(|source| SeccompNotifyError::ReadMemory { pid, addr, len, source })?;
        if !self.is_pending(request) {
            return Err(SeccompNotifyError::Gone { id: request.id });
        }
        Ok(mem)
    }
}

fn read_at(mem: &File, pid: u32, addr: u64, buf: &mut [u8]) -> Result<usize, SeccompNotifyError> {
    loop {
        match mem.read_at(buf, addr) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(SeccompNotifyError::ReadMemory { pid, addr, len: buf.len(), source }),
            Ok(n) => return Ok(n),
        }
    }
}

impl AsFd for SeccompListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for SeccompListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<SeccompListener> for OwnedFd {
    fn from(listener: SeccompListener) -> OwnedFd {
        listener.fd
    }
}
