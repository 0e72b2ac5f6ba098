//! A small synchronous rtnetlink client (`rtnetlink(7)`): the messages are
//! `netlink-packet-route`'s, the socket is `nix`'s.
//!
//! Requests are sent in batches (one `sendmsg` for several messages, each
//! with `NLM_F_ACK`) and their acknowledgements read back in order; the
//! kernel handles a batch's messages one after another, so later ones may
//! depend on earlier ones.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};

/// Receive buffer: enough for a link message with all its attributes.
const RECV_BUF: usize = 32 * 1024;

/// One request of a batch, with what it is about for error messages.
pub(crate) struct Request {
    pub message: RouteNetlinkMessage,
    /// `NLM_F_CREATE`, `NLM_F_EXCL`, ... (`NLM_F_REQUEST | NLM_F_ACK` are
    /// always set).
    pub flags: u16,
}

/// An rtnetlink socket bound to the network namespace it was opened in.
#[derive(Debug)]
pub(crate) struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub(crate) fn open() -> io::Result<Rtnl> {
        crate::failpoint::check("netlink.open")?;
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Rtnl { fd, seq: 0 })
    }

    /// Opens a socket in the network namespace `netns`: a socket stays in
    /// the namespace it was created in, so a short-lived thread joins
    /// `netns` (a per-thread setting, `setns(2)`) and creates it there.
    pub(crate) fn open_in(netns: BorrowedFd<'_>) -> io::Result<Rtnl> {
        let netns = netns.try_clone_to_owned()?;
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
                Rtnl::open()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("netlink helper thread panicked")))
        })
    }

    /// Sends `requests` in one datagram; returns the first's sequence
    /// number and how many were sent.
    fn send(&mut self, requests: Vec<Request>) -> io::Result<(u32, usize)> {
        let first = self.seq.wrapping_add(1);
        let count = requests.len();
        let mut buf = Vec::with_capacity(1024);
        for request in requests {
            self.seq = self.seq.wrapping_add(1);
            let mut header = NetlinkHeader::default();
            header.flags = NLM_F_REQUEST | NLM_F_ACK | request.flags;
            header.sequence_number = self.seq;
            let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(request.message));
            msg.finalize();
            let start = buf.len();
            buf.resize(start + msg.buffer_len(), 0);
            msg.serialize(&mut buf[start..]);
        }
        let sent = socket::send(self.fd.as_raw_fd(), &buf, MsgFlags::empty())?;
        if sent != buf.len() {
            return Err(io::Error::other("short netlink send"));
        }
        Ok((first, count))
    }

    /// Sends `requests` and waits for every acknowledgement. On the first
    /// refusal, returns its index and the kernel's error; messages other
    /// than acknowledgements are handed to `reply`.
    pub(crate) fn batch(
        &mut self,
        requests: Vec<Request>,
        mut reply: impl FnMut(RouteNetlinkMessage),
    ) -> Result<(), (usize, io::Error)> {
        if requests.is_empty() {
            return Ok(());
        }
        crate::failpoint::check("netlink.request").map_err(|e| (0, e))?;
        let (first, count) = self.send(requests).map_err(|e| (0, e))?;
        let mut acked = 0usize;
        let mut failure: Option<(usize, io::Error)> = None;
        let mut buf = vec![0u8; RECV_BUF];
        while acked < count {
            let len = loop {
                match socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other.map_err(|e| (acked, e.into()))?,
                }
            };
            let mut offset = 0;
            while offset + 16 <= len {
                let one = &buf[offset..len];
                let msg_len = NetlinkBuffer::new(one).length() as usize;
                if msg_len < 16 || msg_len > one.len() {
                    return Err((acked, io::Error::other("malformed netlink reply")));
                }
                offset += (msg_len + 3) & !3;
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&one[..msg_len])
                    .map_err(|e| (acked, io::Error::other(e.to_string())))?;
                let index = msg.header.sequence_number.wrapping_sub(first) as usize;
                if index >= count {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(err) => {
                        acked += 1;
                        if err.code.is_some() && failure.is_none() {
                            failure = Some((index, err.to_io()));
                        }
                    }
                    NetlinkPayload::InnerMessage(inner) => reply(inner),
                    _ => {}
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Sends one request and waits for its acknowledgement.
    pub(crate) fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.batch(vec![Request { message, flags }], |_| {}).map_err(|(_, e)| e)
    }

    /// The index of the link called `name`, if there is one.
    pub(crate) fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let mut query = LinkMessage::default();
        query.attributes.push(LinkAttribute::IfName(name.to_string()));
        let mut index = None;
        let request = Request { message: RouteNetlinkMessage::GetLink(query), flags: 0 };
        match self.batch(vec![request], |reply| {
            if let RouteNetlinkMessage::NewLink(link) = reply {
                index = Some(link.header.index);
            }
        }) {
            Ok(()) => Ok(index),
            Err((_, e)) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err((_, e)) => Err(e),
        }
    }
}

impl AsFd for Rtnl {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
