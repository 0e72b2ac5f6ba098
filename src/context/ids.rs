//! User and group ids: id maps for a user namespace (`user_namespaces(7)`)
//! and the user the payload runs as.

use std::path::Path;

use crate::context::ContextError;

/// One line of `/proc/PID/uid_map` or `gid_map`: ids `inside..inside+count`
/// in the guest are ids `outside..outside+count` on the host.
///
/// ```
/// use vguest::IdMap;
///
/// // Guest root is host uid 100000, and so on for 65536 ids.
/// let map = IdMap::new(0, 100_000, 65_536);
/// assert_eq!(map.to_outside(1000), Some(101_000));
/// assert_eq!(map.to_outside(70_000), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    /// First id inside the guest.
    pub inside: u32,
    /// First id on the host.
    pub outside: u32,
    /// Number of ids.
    pub count: u32,
}

impl IdMap {
    /// A map of `count` ids from `inside` (guest) to `outside` (host).
    ///
    /// ```
    /// use vguest::{Context, IdMap, Namespaces};
    ///
    /// let map = IdMap::new(0, 100_000, 65_536);
    /// assert_eq!((map.inside, map.outside, map.count), (0, 100_000, 65_536));
    /// let ctx = Context::new()
    ///     .namespaces(Namespaces::default() | Namespaces::USER)
    ///     .uid_map(map)
    ///     .gid_map(map);
    /// ```
    pub fn new(inside: u32, outside: u32, count: u32) -> Self {
        IdMap { inside, outside, count }
    }

    /// The host id that guest id `id` maps to, if it is mapped.
    ///
    /// ```
    /// use vguest::IdMap;
    ///
    /// let map = IdMap::new(1000, 2000, 10);
    /// assert_eq!(map.to_outside(1005), Some(2005));
    /// assert_eq!(map.to_outside(999), None);
    /// assert_eq!(map.to_outside(1010), None);
    /// ```
    pub fn to_outside(&self, id: u32) -> Option<u32> {
        let offset = id.checked_sub(self.inside)?;
        (offset < self.count).then(|| self.outside + offset)
    }

    fn overlaps(&self, other: &IdMap) -> bool {
        let end = |start: u32, count: u32| u64::from(start) + u64::from(count);
        let inside = u64::from(self.inside) < end(other.inside, other.count)
            && u64::from(other.inside) < end(self.inside, self.count);
        let outside = u64::from(self.outside) < end(other.outside, other.count)
            && u64::from(other.outside) < end(self.outside, self.count);
        inside || outside
    }
}

/// Checks a uid or gid map and renders it as the text the kernel expects.
pub(crate) fn render_map(kind: &'static str, maps: &[IdMap]) -> Result<Vec<u8>, ContextError> {
    // The kernel accepts at most 340 lines (user_namespaces(7)).
    if maps.is_empty() || maps.len() > 340 {
        return Err(ContextError::InvalidIdMap { kind, reason: "needs 1 to 340 lines".into() });
    }
    let mut text = Vec::new();
    for (i, map) in maps.iter().enumerate() {
        if map.count == 0
            || u64::from(map.inside) + u64::from(map.count) > u64::from(u32::MAX)
            || u64::from(map.outside) + u64::from(map.count) > u64::from(u32::MAX)
        {
            return Err(ContextError::InvalidIdMap {
                kind,
                reason: format!(
                    "line {i} ({} {} {}) is empty or out of range",
                    map.inside, map.outside, map.count
                ),
            });
        }
        if let Some(j) = maps[..i].iter().position(|m| m.overlaps(map)) {
            return Err(ContextError::InvalidIdMap { kind, reason: format!("lines {j} and {i} overlap") });
        }
        text.extend_from_slice(format!("{} {} {}\n", map.inside, map.outside, map.count).as_bytes());
    }
    Ok(text)
}

/// Who the payload runs as.
///
/// ```
/// use vguest::User;
///
/// let by_id = User::Id { uid: 33, gid: 33 };
/// let by_name = User::Name("www-data".into());
/// assert_ne!(by_id, by_name);
/// assert_eq!(User::default(), User::Id { uid: 0, gid: 0 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    /// Numeric ids, as seen inside the guest.
    Id {
        /// User id.
        uid: u32,
        /// Primary group id.
        gid: u32,
    },
    /// A user name, looked up in the guest's `/etc/passwd` before the
    /// spawn (the host's when the guest has no root filesystem of its own).
    Name(String),
}

impl Default for User {
    fn default() -> Self {
        User::Id { uid: 0, gid: 0 }
    }
}

impl User {
    /// Resolves to (uid, gid), reading `etc/passwd` below `root` for names.
    pub(crate) fn resolve(&self, root: &Path) -> Result<(u32, u32), ContextError> {
        match self {
            User::Id { uid, gid } => Ok((*uid, *gid)),
            User::Name(name) => {
                let passwd = root.join("etc/passwd");
                let text = std::fs::read_to_string(&passwd)
                    .map_err(|source| ContextError::UserDatabase { path: passwd.clone(), source })?;
                lookup_passwd(&text, name)
                    .ok_or_else(|| ContextError::UnknownUser { name: name.clone(), path: passwd })
            }
        }
    }
}

/// Finds `name` in the text of a passwd file: (uid, gid).
fn lookup_passwd(text: &str, name: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup() {
        let text = "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:34::/var/www:/usr/sbin/nologin\n";
        assert_eq!(lookup_passwd(text, "www-data"), Some((33, 34)));
        assert_eq!(lookup_passwd(text, "www"), None);
        assert_eq!(lookup_passwd("broken:x:y:1\n", "broken"), None);
    }

    #[test]
    fn map_rendering_and_checks() {
        let text = render_map("uid", &[IdMap::new(0, 1000, 1), IdMap::new(1, 100_000, 10)]).unwrap();
        assert_eq!(text, b"0 1000 1\n1 100000 10\n");
        assert!(render_map("uid", &[]).is_err());
        assert!(render_map("uid", &[IdMap::new(0, 0, 0)]).is_err());
        let err = render_map("gid", &[IdMap::new(0, 0, 10), IdMap::new(5, 50, 10)]).unwrap_err();
        assert!(err.to_string().contains("overlap"), "{err}");
    }
}
