//! The stack the spawn child runs on.

use std::io;
use std::ptr::NonNull;

/// A private anonymous mapping used as the spawn child's stack, with an
/// inaccessible guard page at its low end. Unmapped on drop, which the
/// owner must only let happen once the child has exec'd or exited.
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
    /// Maps a stack of `len` usable bytes plus one guard page.
    pub(crate) fn new(len: usize) -> io::Result<Self> {
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
        // SAFETY: unmapping exactly the mapping made in `new`; the owner
        // guarantees the child no longer runs on it.
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.len + self.guard) };
    }
}
