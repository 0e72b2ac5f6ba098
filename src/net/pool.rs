//! [`NetnsPool`]: network namespaces made ahead of time.
//!
//! Making a network namespace is the dearest part of creating a guest:
//! the kernel runs every network subsystem's per-namespace setup
//! (`copy_net_ns`, about a millisecond on a small VM). A pool moves that
//! work off the spawn path: a background thread keeps a few fresh
//! namespaces ready (each made with `unshare(CLONE_NEWNET)` on that thread,
//! `lo` up, held by an fd), and a spawn that finds one joins it with
//! `setns(2)` and creates its links in it before the guest's process
//! exists. Each namespace is used by one guest only and goes with it; a
//! spawn that finds the pool empty makes its own as usual.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::NetError;

#[derive(Debug, Default)]
struct State {
    ready: VecDeque<OwnedFd>,
    stop: bool,
    /// How many namespaces spawns have taken.
    handed_out: u64,
    /// Why the refill thread stopped early, if it did.
    failed: Option<io::Error>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when a namespace is taken or the pool stops.
    wake: Condvar,
    size: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Network namespaces made ahead of time by a background thread, for
/// [`Network::pool`](crate::Network::pool).
///
/// Cloning a pool shares it. When the last clone is dropped, the thread
/// stops and the namespaces not handed out are closed (an unused
/// namespace holds nothing on the host but memory).
///
/// ```no_run
/// use vguest::{Command, Guest, Network, NetnsPool, Veth};
///
/// let pool = NetnsPool::new(4)?;
/// for i in 0..100 {
///     let net = Network::new().pool(&pool).veth(Veth::new(format!("vgweb{i}")).address("198.18.0.2/24"));
///     let mut guest = Guest::builder(format!("web{i}")).network(net).command(Command::new("/bin/true")).spawn()?;
///     guest.wait()?;
/// }
/// # Ok::<(), vguest::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NetnsPool {
    handle: Arc<Handle>,
}

/// Stops the refill thread when the last [`NetnsPool`] goes.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Makes one namespace on the calling thread (which moves into it) with
/// `lo` up.
fn make_one() -> io::Result<OwnedFd> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
    crate::sys::call::link_up(b"lo").map_err(io::Error::from_raw_os_error)?;
    Ok(File::open("/proc/thread-self/ns/net")?.into())
}

fn refill(shared: Arc<Shared>) {
    loop {
        {
            let mut state = shared.lock();
            while state.ready.len() >= shared.size && !state.stop {
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.stop {
                return;
            }
        }
        match make_one() {
            Ok(fd) => shared.lock().ready.push_back(fd),
            Err(e) => {
                shared.lock().failed = Some(e);
                return;
            }
        }
    }
}

impl NetnsPool {
    /// Starts a pool that keeps `size` namespaces ready (at least one). The
    /// first is made before this returns, so a missing privilege shows
    /// here.
    ///
    /// ```no_run
    /// let pool = vguest::NetnsPool::new(8)?;
    /// # Ok::<(), vguest::NetError>(())
    /// ```
    pub fn new(size: usize) -> Result<NetnsPool, NetError> {
        let shared = Arc::new(Shared { state: Mutex::default(), wake: Condvar::new(), size: size.max(1) });
        let pool_err = |source| NetError::Pool { source };
        // The first namespace, on a thread of its own (the calling thread
        // must stay in its namespace).
        let first = std::thread::spawn(make_one).join().unwrap_or_else(|_| Err(io::Error::other("panicked")));
        shared.lock().ready.push_back(first.map_err(pool_err)?);
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("vguest-netns-pool".into())
            .spawn(move || refill(for_thread))
            .map_err(pool_err)?;
        Ok(NetnsPool { handle: Arc::new(Handle { shared, thread: Some(thread) }) })
    }

    /// How many namespaces are ready now.
    ///
    /// ```no_run
    /// let pool = vguest::NetnsPool::new(2)?;
    /// assert!(pool.ready() >= 1);
    /// # Ok::<(), vguest::NetError>(())
    /// ```
    pub fn ready(&self) -> usize {
        self.handle.shared.lock().ready.len()
    }

    /// How many namespaces guests have taken from the pool so far (a spawn
    /// that found it empty made its own and is not counted).
    ///
    /// ```no_run
    /// let pool = vguest::NetnsPool::new(2)?;
    /// assert_eq!(pool.handed_out(), 0);
    /// # Ok::<(), vguest::NetError>(())
    /// ```
    pub fn handed_out(&self) -> u64 {
        self.handle.shared.lock().handed_out
    }

    /// Takes a ready namespace, if any, and asks for another. An error
    /// that stopped the refill thread is returned once no namespace is
    /// left.
    pub(crate) fn take(&self) -> Result<Option<OwnedFd>, NetError> {
        let shared = &self.handle.shared;
        let mut state = shared.lock();
        let taken = state.ready.pop_front();
        if taken.is_some() {
            state.handed_out += 1;
        }
        if taken.is_none() {
            if let Some(e) = state.failed.take() {
                return Err(NetError::Pool { source: e });
            }
        }
        drop(state);
        shared.wake.notify_one();
        Ok(taken)
    }
}
