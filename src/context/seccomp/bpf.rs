//! Compiling resolved rules into one classic BPF program for
//! `seccomp(SECCOMP_SET_MODE_FILTER)`.
//!
//! The program first looks at `seccomp_data.arch`: each architecture the
//! host can run gets a section of its own, with the rules' numbers for
//! that architecture; a call from any other architecture kills the
//! process. Within a section the call's number picks the rules written
//! for it, tried in order; the first whose argument comparisons all hold
//! decides, and a call no rule decides gets the default action.
//!
//! Every block is self-contained: its jumps are relative and land inside
//! it or just past its end, so blocks compose by concatenation. Arguments
//! are 64-bit, compared as two 32-bit words (high first); the comparisons
//! are unsigned.

use super::{SeccompAction as Action, SeccompCmp as Cmp};
use crate::plan::BpfInsn as Insn;

/// `struct seccomp_data` offsets: `nr`, `arch`, then `args[6]` at 16.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARGS: u32 = 16;

/// Classic BPF opcodes (`linux/bpf_common.h`).
const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

/// The kernel's limit on a program's length (`BPF_MAXINSNS`).
pub(crate) const MAX_INSNS: usize = 4096;

const fn stmt(code: u16, k: u32) -> Insn {
    Insn { code, jt: 0, jf: 0, k }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// A rule for one call on one architecture, with its number resolved.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub nr: u32,
    pub args: Vec<(u8, Cmp)>,
    pub action: Action,
}

/// One architecture's section.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    /// `AUDIT_ARCH_*`.
    pub arch: u32,
    /// Calls numbered at or above this get `beyond.1` (x32's numbers on
    /// x86_64, which carry bit 30); checked first.
    pub beyond: Option<(u32, Action)>,
    /// Calls numbered above every number the tables know (newer than
    /// this crate) get this, where given.
    pub newer: Option<(u32, Action)>,
    /// The rules, in the order they are tried.
    pub rules: Vec<Resolved>,
}

/// The return value of `action`.
pub(crate) fn ret_value(action: Action) -> u32 {
    match action {
        Action::Allow => libc::SECCOMP_RET_ALLOW,
        Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e),
        Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
        Action::Trap => libc::SECCOMP_RET_TRAP,
        Action::Log => libc::SECCOMP_RET_LOG,
        Action::Notify => libc::SECCOMP_RET_USER_NOTIF,
    }
}

fn ret(action: Action) -> Insn {
    stmt(RET_K, ret_value(action))
}

/// A conditional jump's distance, which must fit its 8 bits.
fn near(distance: usize) -> u8 {
    u8::try_from(distance).expect("a jump within one comparison or rule is short")
}

/// The words of argument `index`: (offset of the high word, of the low).
fn arg_words(index: u8) -> (u32, u32) {
    let base = ARGS + 8 * u32::from(index);
    if cfg!(target_endian = "little") { (base + 4, base) } else { (base, base + 4) }
}

/// One comparison that falls through when it holds and otherwise jumps
/// to `fail`, counted from the end of the comparison.
fn comparison(index: u8, cmp: Cmp, fail: usize) -> Vec<Insn> {
    let (hi_at, lo_at) = arg_words(index);
    let split = |v: u64| ((v >> 32) as u32, v as u32);
    // Each body is built with `f(at)`, the distance from instruction `at`
    // to `fail` for a body of `len` instructions.
    let to_fail = |len: usize, at: usize| near(len - at - 1 + fail);
    let to_end = |len: usize, at: usize| near(len - at - 1);
    match cmp {
        Cmp::Eq(v) | Cmp::MaskedEq { value: v, mask: u64::MAX } => {
            let (hi, lo) = split(v);
            let len = 4;
            vec![
                stmt(LD_W_ABS, hi_at),
                jump(JEQ_K, hi, 0, to_fail(len, 1)),
                stmt(LD_W_ABS, lo_at),
                jump(JEQ_K, lo, 0, to_fail(len, 3)),
            ]
        }
        Cmp::MaskedEq { mask, value } => {
            let ((mhi, mlo), (hi, lo)) = (split(mask), split(value));
            let len = 6;
            vec![
                stmt(LD_W_ABS, hi_at),
                stmt(ALU_AND_K, mhi),
                jump(JEQ_K, hi, 0, to_fail(len, 2)),
                stmt(LD_W_ABS, lo_at),
                stmt(ALU_AND_K, mlo),
                jump(JEQ_K, lo, 0, to_fail(len, 5)),
            ]
        }
        Cmp::Ne(v) => {
            let (hi, lo) = split(v);
            let len = 4;
            vec![
                stmt(LD_W_ABS, hi_at),
                jump(JEQ_K, hi, 0, to_end(len, 1)),
                stmt(LD_W_ABS, lo_at),
                jump(JEQ_K, lo, to_fail(len, 3), 0),
            ]
        }
        Cmp::Gt(v) | Cmp::Ge(v) => {
            let (hi, lo) = split(v);
            let last = if matches!(cmp, Cmp::Gt(_)) { JGT_K } else { JGE_K };
            let len = 5;
            vec![
                stmt(LD_W_ABS, hi_at),
                jump(JGT_K, hi, to_end(len, 1), 0),
                jump(JEQ_K, hi, 0, to_fail(len, 2)),
                stmt(LD_W_ABS, lo_at),
                jump(last, lo, 0, to_fail(len, 4)),
            ]
        }
        Cmp::Lt(v) | Cmp::Le(v) => {
            // Lt is "not Ge", Le is "not Gt".
            let (hi, lo) = split(v);
            let last = if matches!(cmp, Cmp::Lt(_)) { JGE_K } else { JGT_K };
            let len = 5;
            vec![
                stmt(LD_W_ABS, hi_at),
                jump(JGT_K, hi, to_fail(len, 1), 0),
                jump(JEQ_K, hi, 0, to_end(len, 2)),
                stmt(LD_W_ABS, lo_at),
                jump(last, lo, to_fail(len, 4), 0),
            ]
        }
    }
}

/// A rule: its comparisons, then its action; falls through (to the next
/// rule) when a comparison fails.
fn rule(args: &[(u8, Cmp)], action: Action) -> Vec<Insn> {
    let mut tail = vec![ret(action)];
    for &(index, cmp) in args.iter().rev() {
        let mut block = comparison(index, cmp, tail.len());
        block.append(&mut tail);
        tail = block;
    }
    tail
}

/// Prepends a test of the accumulator against `nr` that skips `body`
/// unless they are equal.
fn guarded(nr: u32, body: Vec<Insn>) -> Vec<Insn> {
    let mut out = Vec::with_capacity(body.len() + 2);
    match u8::try_from(body.len()) {
        Ok(skip) => out.push(jump(JEQ_K, nr, 0, skip)),
        Err(_) => {
            out.push(jump(JEQ_K, nr, 1, 0));
            out.push(stmt(JA, body.len() as u32));
        }
    }
    out.extend(body);
    out
}

/// Calls with rules, at most this many, are tested one after another;
/// more are split in two by number (a binary search). The kernel runs a
/// filter once per call number and architecture when it is loaded, to
/// find the calls it always allows (and then skips the filter for them):
/// the search keeps that, and each filtered call, short.
const LINEAR: usize = 4;

/// Tests for the numbers of `items` (sorted), each entering its body;
/// any other number returns `default`. Entered with the number in the
/// accumulator.
fn dispatch(items: &[(u32, Vec<Insn>)], default: Action) -> Vec<Insn> {
    if items.len() <= LINEAR {
        let mut out = Vec::new();
        for (nr, body) in items {
            out.extend(guarded(*nr, body.clone()));
        }
        out.push(ret(default));
        return out;
    }
    let (low, high) = items.split_at(items.len() / 2);
    let (low, high) = (dispatch(low, default), dispatch(high, default));
    // The upper half starts at this number.
    let pivot = items[items.len() / 2].0;
    let mut out = Vec::with_capacity(low.len() + high.len() + 2);
    match u8::try_from(low.len()) {
        Ok(skip) => out.push(jump(JGE_K, pivot, skip, 0)),
        Err(_) => {
            out.push(jump(JGE_K, pivot, 0, 1));
            out.push(stmt(JA, low.len() as u32));
        }
    }
    out.extend(low);
    out.extend(high);
    out
}

/// A section's body: entered with anything in the accumulator; ends by
/// returning.
fn section_body(section: &Section, default: Action) -> Vec<Insn> {
    let mut out = vec![stmt(LD_W_ABS, NR)];
    for &(from, action) in section.beyond.iter().chain(&section.newer) {
        out.push(jump(JGE_K, from, 0, 1));
        out.push(ret(action));
    }
    // Each number's rules stay together, in their order.
    let mut numbers: Vec<u32> = section.rules.iter().map(|r| r.nr).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let items: Vec<(u32, Vec<Insn>)> = numbers
        .into_iter()
        .map(|nr| {
            let mut body = Vec::new();
            for r in section.rules.iter().filter(|r| r.nr == nr) {
                body.extend(rule(&r.args, r.action));
                if r.args.is_empty() {
                    // It always decides: later rules are unreachable, and
                    // nothing falls through.
                    return (nr, body);
                }
            }
            // The comparisons load argument words: reload the number for
            // whatever follows.
            body.push(stmt(LD_W_ABS, NR));
            (nr, body)
        })
        .collect();
    out.extend(dispatch(&items, default));
    out
}

/// The whole program: dispatch on the architecture, then its section.
/// Calls from an architecture without a section kill the process.
pub(crate) fn program(sections: &[Section], default: Action) -> Vec<Insn> {
    let mut out = vec![stmt(LD_W_ABS, ARCH)];
    let mut bodies = Vec::new();
    for s in sections {
        let body = section_body(s, default);
        // `jeq arch` skips this body's entry jump when it differs.
        let mut entry = vec![jump(JEQ_K, s.arch, 0, 1), stmt(JA, 0)];
        entry[1].k = u32::MAX; // patched below, once the layout is known
        bodies.push((entry, body));
    }
    // Layout: all entries, then the kill, then the bodies in order.
    let entries = 2 * bodies.len();
    let mut at = out.len() + entries + 1;
    let mut starts = Vec::new();
    for (_, body) in &bodies {
        starts.push(at);
        at += body.len();
    }
    for (i, (entry, _)) in bodies.iter_mut().enumerate() {
        let ja_index = out.len() + 1;
        entry[1].k = (starts[i] - ja_index - 1) as u32;
        out.extend(entry.iter().copied());
    }
    out.push(ret(Action::KillProcess));
    for (_, body) in bodies {
        out.extend(body);
    }
    out
}

#[cfg(test)]
pub(crate) mod run {
    //! A classic BPF interpreter for the instructions above, so that the
    //! compiler's output can be checked against `seccomp_data` values the
    //! kernel would never let a test make (upper argument bits from a
    //! 32-bit process, other architectures).

    use super::*;

    /// Runs `program` on a `seccomp_data` of (`arch`, `nr`, `args`).
    pub(crate) fn run(program: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let insn = program[pc];
            pc += 1;
            match insn.code {
                LD_W_ABS => {
                    let at = insn.k as usize;
                    acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
                }
                ALU_AND_K => acc &= insn.k,
                JA => pc += insn.k as usize,
                JEQ_K | JGT_K | JGE_K => {
                    let holds = match insn.code {
                        JEQ_K => acc == insn.k,
                        JGT_K => acc > insn.k,
                        _ => acc >= insn.k,
                    };
                    pc += usize::from(if holds { insn.jt } else { insn.jf });
                }
                RET_K => return insn.k,
                other => panic!("unknown opcode {other:#x}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::run::run;
    use super::*;

    const ARCH_A: u32 = 0xC000_003E;
    const ARCH_B: u32 = 0x4000_0003;
    const DENY: Action = Action::Errno(1);

    fn one_rule(cmp: Cmp) -> Vec<Insn> {
        let section = Section {
            arch: ARCH_A,
            beyond: None,
            newer: None,
            rules: vec![Resolved { nr: 7, args: vec![(2, cmp)], action: DENY }],
        };
        program(&[section], Action::Allow)
    }

    fn denied(program: &[Insn], arg2: u64) -> bool {
        run(program, ARCH_A, 7, [0, 0, arg2, 0, 0, 0]) == ret_value(DENY)
    }

    #[test]
    fn comparisons_hold_exactly() {
        let edges = [
            0u64,
            1,
            5,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0005,
            0x5_0000_0000,
            0xffff_ffff_0000_0005,
            u64::MAX,
        ];
        let values = [0u64, 5, 0x1_0000_0000, 0x1_0000_0005, u64::MAX];
        for &v in &values {
            for &(cmp, f) in &[
                (Cmp::Eq(v), (|a: u64, v: u64| a == v) as fn(u64, u64) -> bool),
                (Cmp::Ne(v), |a, v| a != v),
                (Cmp::Lt(v), |a, v| a < v),
                (Cmp::Le(v), |a, v| a <= v),
                (Cmp::Gt(v), |a, v| a > v),
                (Cmp::Ge(v), |a, v| a >= v),
            ] {
                let p = one_rule(cmp);
                for &a in &edges {
                    assert_eq!(denied(&p, a), f(a, v), "{cmp:?} with argument {a:#x}");
                }
            }
        }
        let p = one_rule(Cmp::MaskedEq { mask: 0xffff_ffff, value: 0x5412 });
        assert!(denied(&p, 0x5412));
        assert!(denied(&p, 0xdead_beef_0000_5412), "upper bits are masked off");
        assert!(!denied(&p, 0x5413));
    }

    #[test]
    fn first_matching_rule_decides_and_other_calls_get_the_default() {
        let section = Section {
            arch: ARCH_A,
            beyond: Some((0x4000_0000, Action::Errno(38))),
            newer: Some((500, Action::Errno(38))),
            rules: vec![
                Resolved { nr: 3, args: vec![(0, Cmp::Eq(1))], action: Action::Allow },
                Resolved { nr: 3, args: vec![], action: DENY },
                Resolved { nr: 9, args: vec![], action: Action::KillThread },
            ],
        };
        let p = program(&[section], Action::Allow);
        assert_eq!(run(&p, ARCH_A, 3, [1, 0, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, ARCH_A, 3, [2, 0, 0, 0, 0, 0]), ret_value(DENY));
        assert_eq!(run(&p, ARCH_A, 9, [0; 6]), libc::SECCOMP_RET_KILL_THREAD);
        assert_eq!(run(&p, ARCH_A, 4, [0; 6]), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, ARCH_A, 600, [0; 6]), ret_value(Action::Errno(38)));
        assert_eq!(run(&p, ARCH_A, 0x4000_0003, [0; 6]), ret_value(Action::Errno(38)));
        assert_eq!(run(&p, ARCH_B, 3, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS, "no section: killed");
    }

    #[test]
    fn sections_see_their_own_numbers_and_long_bodies_jump_far() {
        let many = |arch, nr_base: u32| Section {
            arch,
            beyond: None,
            newer: None,
            rules: (0..40u32)
                .map(|i| Resolved {
                    nr: nr_base + i,
                    args: vec![(0, Cmp::Gt(10)), (1, Cmp::MaskedEq { mask: 0xff, value: 3 })],
                    action: DENY,
                })
                .collect(),
        };
        let p = program(&[many(ARCH_A, 100), many(ARCH_B, 300)], Action::Allow);
        assert!(p.len() > 600, "long enough to need far jumps: {}", p.len());
        assert_eq!(run(&p, ARCH_A, 139, [11, 0x103, 0, 0, 0, 0]), ret_value(DENY));
        assert_eq!(run(&p, ARCH_A, 139, [10, 0x103, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, ARCH_A, 339, [11, 3, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, ARCH_B, 339, [11, 3, 0, 0, 0, 0]), ret_value(DENY));
        assert_eq!(run(&p, ARCH_B, 139, [11, 3, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW);
    }
}
