//! The stacks the spawn child (and its helpers) run on.
//!
//! A fresh mapping costs a page fault for every page the child touches,
//! and on virtual machines a fault on newly allocated memory can take tens
//! of microseconds. So a stack whose child is done goes back to a small
//! cache and the next spawn reuses it with its pages already present.

use std::io;
use std::ptr::NonNull;
use std::sync::Mutex;

/// Stacks kept for reuse, at most [`CACHED`] of them.
static CACHE: Mutex<Vec<ChildStack>> = Mutex::new(Vec::new());

/// How many finished stacks the cache keeps (a few spawns at once, each
/// with up to three stacks).
const CACHED: usize = 8;

/// A private anonymous mapping used as the spawn child's stack, with an
/// inaccessible guard page at its low end. Returned to the cache or
/// unmapped on drop, which the owner must only let happen once the child
/// has exec'd or exited.
#[derive(Debug)]
pub(crate) struct ChildStack {
    map: NonNull<u8>,
    len: usize,
    guard: usize,
}

// SAFETY: the mapping is plain memory owned by this value; nothing in it
// is tied to the thread that mapped it.
unsafe impl Send for ChildStack {}

impl ChildStack {
    /// A stack of at least `len` usable bytes: a cached one of that size,
    /// or a new mapping.
    pub(crate) fn new(len: usize) -> io::Result<Self> {
        crate::failpoint::check("stack")?;
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = cache.iter().position(|s| s.len == len.next_multiple_of(s.guard)) {
            return Ok(cache.swap_remove(i));
        }
        drop(cache);
        Self::map(len)
    }

    /// Maps a stack of `len` usable bytes plus one guard page.
    fn map(len: usize) -> io::Result<Self> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let len = len.div_ceil(page) * page;
        let total = len + page;
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choosing touches no existing memory.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the first page lies inside the mapping just made.
        if unsafe { libc::mprotect(map, page, libc::PROT_NONE) } != 0 {
            let err = io::Error::last_os_error();
            // SAFETY: unmapping the mapping made above, used by nothing.
            unsafe { libc::munmap(map, total) };
            return Err(err);
        }
        let map = NonNull::new(map.cast::<u8>()).ok_or_else(|| io::Error::other("mmap"))?;
        Ok(Self { map, len, guard: page })
    }

    /// Lowest usable address (just above the guard page).
    pub(crate) fn base(&self) -> *mut u8 {
        // SAFETY: the guard page is part of the mapping.
        unsafe { self.map.as_ptr().add(self.guard) }
    }

    /// Usable size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// One past the highest usable address (16-byte aligned).
    pub(crate) fn top(&self) -> *mut u8 {
        // SAFETY: base + len is the end of the mapping.
        unsafe { self.base().add(self.len) }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        if let Ok(mut cache) = CACHE.lock() {
            if cache.len() < CACHED {
                // The child is done with it (the owner's promise); the
                // next one finds its pages present. Stale bytes on a stack
                // are harmless: nothing reads a frame it did not write.
                cache.push(ChildStack { map: self.map, len: self.len, guard: self.guard });
                return;
            }
        }
        // SAFETY: unmapping exactly the mapping made in `new`; the owner
        // guarantees the child no longer runs on it.
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.len + self.guard) };
    }
}
