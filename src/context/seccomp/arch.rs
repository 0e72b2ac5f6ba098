//! The architectures a filter covers on this host, and each one's
//! system call numbers by name (from the `syscalls` crate's tables,
//! generated from the kernel's own).

/// `AUDIT_ARCH_*` values (`linux/audit.h`).
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

/// x32's calls arrive on x86_64's architecture with this bit set.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// One architecture a guest's process can make calls from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    X86_64,
    I386,
    Aarch64,
    Arm,
}

impl Arch {
    /// The native architecture first, then those the kernel runs beside
    /// it (x86_64's i386; aarch64's arm). x32 is no section of its own:
    /// its calls carry [`X32_SYSCALL_BIT`] on x86_64's.
    pub(crate) fn host() -> &'static [Arch] {
        if cfg!(target_arch = "x86_64") {
            &[Arch::X86_64, Arch::I386]
        } else if cfg!(target_arch = "aarch64") {
            &[Arch::Aarch64, Arch::Arm]
        } else {
            &[]
        }
    }

    pub(crate) fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::I386 => AUDIT_ARCH_I386,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
            Arch::Arm => AUDIT_ARCH_ARM,
        }
    }

    #[cfg(test)]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "arm",
        }
    }

    /// Whether this is the host's own architecture (whose numbers a rule
    /// given by number means).
    pub(crate) fn native(self) -> bool {
        Arch::host().first() == Some(&self)
    }

    /// The number of call `name` here, if this architecture has it.
    pub(crate) fn number(self, name: &str) -> Option<u32> {
        use std::str::FromStr;
        let n = match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::from_str(name).ok()?.id(),
            Arch::I386 => syscalls::x86::Sysno::from_str(name).ok()?.id(),
            Arch::Aarch64 => syscalls::aarch64::Sysno::from_str(name).ok()?.id(),
            Arch::Arm => syscalls::arm::Sysno::from_str(name).ok()?.id(),
        };
        u32::try_from(n).ok()
    }

    /// The name of call `nr` here, if the table knows it.
    pub(crate) fn name_of(self, nr: u32) -> Option<&'static str> {
        let nr = nr as usize;
        Some(match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::new(nr)?.name(),
            Arch::I386 => syscalls::x86::Sysno::new(nr)?.name(),
            Arch::Aarch64 => syscalls::aarch64::Sysno::new(nr)?.name(),
            Arch::Arm => syscalls::arm::Sysno::new(nr)?.name(),
        })
    }

    /// The highest number the table knows here: calls above it are newer
    /// than this crate.
    pub(crate) fn last(self) -> u32 {
        let n = match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::last().id(),
            Arch::I386 => syscalls::x86::Sysno::last().id(),
            Arch::Aarch64 => syscalls::aarch64::Sysno::last().id(),
            Arch::Arm => syscalls::arm::Sysno::last().id(),
        };
        n as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_differ_by_architecture() {
        assert_eq!(Arch::X86_64.number("keyctl"), Some(250));
        assert_eq!(Arch::I386.number("keyctl"), Some(288));
        assert_eq!(Arch::Aarch64.number("keyctl"), Some(219));
        assert_eq!(Arch::Arm.number("keyctl"), Some(311));
        assert_eq!(Arch::Aarch64.number("open"), None, "aarch64 has only openat");
        assert_eq!(Arch::X86_64.number("no_such_call"), None);
        assert!(Arch::X86_64.last() >= 435, "the table knows clone3");
        assert_eq!(Arch::X86_64.name_of(250), Some("keyctl"));
        assert_eq!(Arch::I386.name_of(288), Some("keyctl"));
        assert_eq!(Arch::X86_64.name_of(100_000), None);
    }
}
