//! Interleaved timing for the criterion benches: after criterion's own
//! figures, each bench runs the sides of a comparison in rounds (one of
//! each per round, the order rotating), so that whatever else loads the
//! machine hits all sides alike, and prints medians, p10 and the ratios
//! the issues set goals for. Medians and p10 resist the preemption spikes
//! of a busy host better than criterion's means.
//!
//!   VGUEST_BENCH_ROUNDS   timed rounds (default 300); 0 skips this part
//!   VGUEST_BENCH_WARMUP   untimed rounds first (default 10)
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// One run of a side: the whole run and, for a guest, the part until
/// `spawn()` returned (the rest is `wait()`, which also removes the
/// guest's cgroups and links).
#[derive(Clone, Copy)]
pub struct Split {
    pub total: Duration,
    pub first: Duration,
}

/// Times `f` as one undivided run.
pub fn whole(f: impl FnOnce()) -> Split {
    let start = Instant::now();
    f();
    let total = start.elapsed();
    Split { total, first: total }
}

/// Times a guest's life: `spawn` (returning the guest), then `wait`.
pub fn spawn_then<G>(spawn: impl FnOnce() -> G, wait: impl FnOnce(G)) -> Split {
    let start = Instant::now();
    let guest = spawn();
    let first = start.elapsed();
    wait(guest);
    Split { total: start.elapsed(), first }
}

/// A named side of a comparison.
pub struct Side<'a> {
    pub name: String,
    pub run: Box<dyn FnMut() -> Split + 'a>,
}

impl<'a> Side<'a> {
    pub fn new(name: impl Into<String>, run: impl FnMut() -> Split + 'a) -> Side<'a> {
        Side { name: name.into(), run: Box::new(run) }
    }
}

/// Quantiles of one side.
#[derive(Clone, Copy, Debug)]
pub struct Dist {
    pub p10: Duration,
    pub median: Duration,
    pub p90: Duration,
}

impl Dist {
    fn of(mut v: Vec<Duration>) -> Dist {
        v.sort();
        let q = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
        Dist { p10: q(0.1), median: q(0.5), p90: q(0.9) }
    }
}

/// The result of one side.
pub struct Measured {
    pub name: String,
    pub total: Dist,
    pub first: Dist,
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The number of timed rounds (`VGUEST_BENCH_ROUNDS`, default 300).
pub fn rounds() -> usize {
    env_count("VGUEST_BENCH_ROUNDS", 300)
}

/// Runs every side `rounds()` times, interleaved, after a warm-up.
pub fn measure(sides: &mut [Side<'_>]) -> Vec<Measured> {
    measure_n(sides, rounds(), env_count("VGUEST_BENCH_WARMUP", 10))
}

/// As [`measure`] with explicit counts (no output).
pub fn measure_n(sides: &mut [Side<'_>], rounds: usize, warmup: usize) -> Vec<Measured> {
    let k = sides.len();
    let mut totals = vec![Vec::with_capacity(rounds); k];
    let mut firsts = vec![Vec::with_capacity(rounds); k];
    for round in 0..warmup + rounds {
        for j in 0..k {
            let i = (round + j) % k;
            let s = (sides[i].run)();
            if round >= warmup {
                totals[i].push(s.total);
                firsts[i].push(s.first);
            }
        }
    }
    sides
        .iter()
        .zip(totals.into_iter().zip(firsts))
        .map(|(s, (t, f))| Measured { name: s.name.clone(), total: Dist::of(t), first: Dist::of(f) })
        .collect()
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Prints each side's median, p10 and p90 (and the spawn part if asked).
pub fn print_sides(title: &str, results: &[Measured], with_split: bool) {
    println!("\n== {title} (interleaved, {} rounds, load {})", rounds_label(), loadavg());
    for m in results {
        print!(
            "   {:<40} median {:>7.0} µs  p10 {:>7.0} µs  p90 {:>7.0} µs",
            m.name,
            us(m.total.median),
            us(m.total.p10),
            us(m.total.p90)
        );
        if with_split {
            print!(
                "  | spawn() median {:>6.0} µs, wait() median {:>6.0} µs",
                us(m.first.median),
                us(m.total.median.saturating_sub(m.first.median))
            );
        }
        println!();
    }
}

/// A ratio to report: `num / den` at the median (and p10), against an
/// upper bound if the issue sets one.
pub struct Ratio<'a> {
    pub what: &'a str,
    pub num: usize,
    pub den: usize,
    pub goal: Option<f64>,
}

pub fn print_ratios(results: &[Measured], ratios: &[Ratio<'_>]) {
    for r in ratios {
        let (n, d) = (&results[r.num], &results[r.den]);
        let median = n.total.median.as_secs_f64() / d.total.median.as_secs_f64();
        let p10 = n.total.p10.as_secs_f64() / d.total.p10.as_secs_f64();
        let delta = us(n.total.median) - us(d.total.median);
        let verdict = match r.goal {
            Some(g) if median <= g => format!("goal <= {g:.2}x: met"),
            Some(g) => format!("goal <= {g:.2}x: MISSED"),
            None => String::new(),
        };
        println!(
            "   ratio {:<52} {:>5.2}x median ({:+6.0} µs), {:>5.2}x p10   {verdict}",
            r.what, median, delta, p10
        );
    }
}

fn rounds_label() -> String {
    rounds().to_string()
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
