//! The filesystem layer, rendered for the child: the root and a flat
//! list of operations (built by `fs/plan.rs`, performed by `child/fs.rs`).

use std::ffi::{CStr, CString};

/// `MOUNT_ATTR_*` flags (`mount_setattr(2)`).
pub(crate) mod attr {
    pub const RDONLY: u64 = 0x01;
    pub const NOSUID: u64 = 0x02;
    pub const NODEV: u64 = 0x04;
    pub const NOEXEC: u64 = 0x08;
}

/// Error details that are not an index into [`FsPlan::ops`].
pub(crate) mod detail {
    pub const PROPAGATION: u32 = u32::MAX;
    pub const ROOT: u32 = u32::MAX - 1;
    pub const ROOT_ATTRS: u32 = u32::MAX - 2;
}

/// The root, rendered.
#[derive(Debug)]
pub(crate) enum RootPlan {
    /// Bind this host directory (recursively) as the root.
    Dir { path: CString },
    /// Mount an overlay and attach it over `attach` (the top template,
    /// inside the guest's private mount namespace only).
    /// `lower_rest` is `lowerdir` without its first layer (`:l2:l3`).
    Overlay { lowerdir: CString, lower_rest: CString, upper: UpperPlan, attach: CString },
}

/// The overlay's writable layer, rendered.
#[derive(Debug)]
pub(crate) enum UpperPlan {
    Dir {
        upper: CString,
        work: CString,
    },
    /// tmpfs `size=` option value.
    Tmpfs {
        size: CString,
    },
}

/// One operation of the child, relative to the new root (`path`s and
/// `target`s never start with `/`).
#[derive(Debug)]
pub(crate) enum Op {
    /// `open_tree` of a host path, mounted on `target` (created as a file
    /// or a directory).
    Bind {
        source: CString,
        target: CString,
        file: bool,
        recursive: bool,
        attrs: u64,
    },
    /// A new filesystem instance (`fsopen`), mounted on `target`.
    NewFs {
        fstype: &'static CStr,
        options: Vec<(CString, Option<CString>)>,
        target: CString,
        attrs: u64,
    },
    Dir {
        path: CString,
        mode: u32,
    },
    Symlink {
        path: CString,
        target: CString,
    },
    File {
        path: CString,
        contents: Vec<u8>,
        mode: u32,
    },
    /// Cover with an empty read-only tmpfs (directory) or `/dev/null`.
    Mask {
        path: CString,
    },
    /// Remount recursively read-only.
    ReadOnly {
        path: CString,
    },
}

/// The filesystem layer, rendered for the child.
#[derive(Debug)]
pub(crate) struct FsPlan {
    pub root: RootPlan,
    pub ops: Vec<Op>,
    /// `MOUNT_ATTR_*` for the root mount, set after everything else.
    pub root_attrs: u64,
    /// One description per op, for error messages.
    pub descriptions: Vec<String>,
    pub root_description: String,
}

impl FsPlan {
    /// Names what failed, for a `Step::Mount` detail.
    pub(crate) fn describe(&self, detail: u32) -> String {
        match detail {
            detail::PROPAGATION => "/ (making propagation private)".into(),
            detail::ROOT => self.root_description.clone(),
            detail::ROOT_ATTRS => "/ (setting read-only, nosuid or nodev)".into(),
            i => self.descriptions.get(i as usize).cloned().unwrap_or_default(),
        }
    }

    /// Describes the root for `Step::PivotRoot`.
    pub(crate) fn root_description(&self) -> &str {
        &self.root_description
    }
}
