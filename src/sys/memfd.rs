//! The built-in init image, held in a sealed memfd for `execveat(2)`.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

/// The static init executable built by `build.rs` (empty in a build for
/// docs.rs only, see there).
static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vguest-init"));

static MEMFD: OnceLock<OwnedFd> = OnceLock::new();

/// Returns the memfd holding the init image, creating it on first use.
///
/// The memfd is close-on-exec, executable, and sealed against writes,
/// growth, shrinking and further sealing, so no process that inherits or
/// opens it can change what guests run as PID 1.
pub(crate) fn init_image() -> io::Result<BorrowedFd<'static>> {
    if let Some(fd) = MEMFD.get() {
        return Ok(fd.as_fd());
    }
    let fd = create()?;
    // A racing thread may have won; either memfd is equally good.
    Ok(MEMFD.get_or_init(|| fd).as_fd())
}

fn create() -> io::Result<OwnedFd> {
    if IMAGE.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this build of vguest has no built-in init (it was built with DOCS_RS set)",
        ));
    }
    const MFD_EXEC: libc::c_uint = 0x10;
    let name = c"vguest-init";
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: `name` is NUL-terminated; the flags are plain integers.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // Kernels before 6.3 do not know MFD_EXEC; memfds are executable
        // there anyway.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new fd that we now own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd);
    file.write_all(IMAGE)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes an integer argument.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file.into())
}
