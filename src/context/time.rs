//! The guest's clocks in a time namespace (`time_namespaces(7)`): the
//! offsets [`Context::uptime_from_zero`](super::Context::uptime_from_zero)
//! and [`Context::clock_offsets`](super::Context::clock_offsets) record,
//! rendered right before the clone as the `/proc/self/timens_offsets`
//! text the spawn child writes.

/// Offsets of the guest's clocks in a time namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClockOffsets {
    /// `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME` start near zero at spawn.
    FromZero,
    /// Fixed offsets in seconds, added to the host's clocks.
    Fixed { monotonic: i64, boottime: i64 },
}

/// Renders `/proc/self/timens_offsets` text for the requested offsets;
/// call it right before the clone so "from zero" is close to the start.
pub(crate) fn time_offsets(clocks: ClockOffsets) -> Vec<u8> {
    // A negative offset is written as seconds rounded down plus positive
    // nanoseconds, the form the kernel accepts.
    fn negate(ts: nix::sys::time::TimeSpec) -> (i64, i64) {
        let (s, ns) = (ts.tv_sec(), ts.tv_nsec());
        if ns == 0 { (-s, 0) } else { (-s - 1, 1_000_000_000 - ns) }
    }
    let ((ms, mns), (bs, bns)) = match clocks {
        ClockOffsets::FromZero => {
            use nix::time::{ClockId, clock_gettime};
            let now = |id| clock_gettime(id).unwrap_or_else(|_| nix::sys::time::TimeSpec::new(0, 0));
            (negate(now(ClockId::CLOCK_MONOTONIC)), negate(now(ClockId::CLOCK_BOOTTIME)))
        }
        ClockOffsets::Fixed { monotonic, boottime } => ((monotonic, 0), (boottime, 0)),
    };
    format!("{} {ms} {mns}\n{} {bs} {bns}\n", libc::CLOCK_MONOTONIC, libc::CLOCK_BOOTTIME).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_text() {
        let text =
            String::from_utf8(time_offsets(ClockOffsets::Fixed { monotonic: -5, boottime: 7 })).unwrap();
        assert_eq!(text, "1 -5 0\n7 7 0\n");
        let text = String::from_utf8(time_offsets(ClockOffsets::FromZero)).unwrap();
        let secs: i64 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(secs < 0, "{text}");
    }
}
