//! Wrappers for sockets: creating one, an `ioctl` on it, sending and
//! receiving a message with a descriptor attached (`SCM_RIGHTS` on a unix
//! socket), and bringing a network interface up.
//!
//! A descriptor flows from the sender's `send_with_fd` to the receiver's
//! `recv_with_fd`; the rest flows from the caller to the kernel.

use super::file::close;
use super::{Errno, SysResult, ptr, sys};
use crate::sys::raw::nr;

/// `socket(2)`.
pub(crate) fn socket(domain: i32, ty: i32, protocol: i32) -> SysResult {
    sys(nr::SOCKET, domain as usize, ty as usize, protocol as usize, 0, 0, 0)
}

/// `ioctl(2)` with a pointer argument.
pub(crate) fn ioctl<T>(fd: i32, request: u64, arg: &mut T) -> SysResult {
    sys(nr::IOCTL, fd as usize, request as usize, arg as *mut T as usize, 0, 0, 0)
}

/// A control message carrying one file descriptor (`SCM_RIGHTS`), laid
/// out as `CMSG_SPACE(sizeof(int))` bytes.
#[repr(C)]
struct FdMessage {
    header: libc::cmsghdr,
    fd: i32,
    _pad: i32,
}

impl FdMessage {
    fn new(fd: i32) -> Self {
        // SAFETY: cmsghdr is plain old data; all-zero is a valid value.
        let mut header: libc::cmsghdr = unsafe { core::mem::zeroed() };
        header.cmsg_len = (core::mem::size_of::<libc::cmsghdr>() + core::mem::size_of::<i32>()) as _;
        header.cmsg_level = libc::SOL_SOCKET;
        header.cmsg_type = libc::SCM_RIGHTS;
        FdMessage { header, fd, _pad: 0 }
    }
}

/// `sendmsg(2)` of `data` on a unix socket, with `fd` attached as
/// `SCM_RIGHTS` unless it is negative.
pub(crate) fn send_with_fd(sock: i32, data: &[u8], fd: i32) -> SysResult {
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut core::ffi::c_void, iov_len: data.len() };
    let mut control = FdMessage::new(fd);
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if fd >= 0 {
        msg.msg_control = (&mut control as *mut FdMessage).cast();
        msg.msg_controllen = core::mem::size_of::<FdMessage>() as _;
    }
    sys(nr::SENDMSG, sock as usize, ptr(&msg), libc::MSG_NOSIGNAL as usize, 0, 0, 0)
}

/// `recvmsg(2)` into `data` on a unix socket, retried on `EINTR`; returns
/// the bytes read and the fd that came with them (close-on-exec), or -1 if
/// none did.
pub(crate) fn recv_with_fd(sock: i32, data: &mut [u8]) -> Result<(usize, i32), Errno> {
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    let mut control = FdMessage::new(-1);
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut control as *mut FdMessage).cast();
    msg.msg_controllen = core::mem::size_of::<FdMessage>() as _;
    let msg_ptr = &mut msg as *mut libc::msghdr as usize;
    let n = loop {
        match sys(nr::RECVMSG, sock as usize, msg_ptr, libc::MSG_CMSG_CLOEXEC as usize, 0, 0, 0) {
            Err(libc::EINTR) => continue,
            other => break other?,
        }
    };
    let got_fd = msg.msg_controllen as usize
        >= core::mem::size_of::<libc::cmsghdr>() + core::mem::size_of::<i32>()
        && control.header.cmsg_level == libc::SOL_SOCKET
        && control.header.cmsg_type == libc::SCM_RIGHTS;
    Ok((n, if got_fd { control.fd } else { -1 }))
}

/// Sets `IFF_UP` on interface `name` of the caller's network namespace
/// with `SIOCGIFFLAGS`/`SIOCSIFFLAGS` (`netdevice(7)`).
pub(crate) fn link_up(name: &[u8]) -> Result<(), Errno> {
    let sock = socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)? as i32;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { core::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.iter().take(libc::IFNAMSIZ - 1)) {
        *dst = *src as core::ffi::c_char;
    }
    let result = ioctl(sock, libc::SIOCGIFFLAGS, &mut req).and_then(|_| {
        // SAFETY: SIOCGIFFLAGS filled in the flags member of the union.
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as i16 };
        ioctl(sock, libc::SIOCSIFFLAGS, &mut req)
    });
    let _ = close(sock);
    result.map(|_| ())
}
