//! Timing: interleaved runs of both sides of a pair, their quantiles, and
//! the result table.

use std::time::{Duration, Instant};

use crate::tool::Side;

/// Quantiles of one side's latencies.
#[derive(Clone, Copy)]
pub struct Dist {
    /// The 10th percentile: the least disturbed by other work.
    pub p10: Duration,
    pub median: Duration,
    pub p90: Duration,
}

impl Dist {
    fn of(mut samples: Vec<Duration>) -> Dist {
        samples.sort();
        Dist { p10: quantile(&samples, 0.1), median: quantile(&samples, 0.5), p90: quantile(&samples, 0.9) }
    }
}

/// The measured result of one pair.
pub struct Row {
    pub pair: String,
    pub peer: String,
    pub peer_time: Dist,
    pub vguest_time: Dist,
    /// The raw-syscall floor with the same namespaces, if there is one.
    pub floor_time: Option<Dist>,
}

fn ratio(peer: Duration, vguest: Duration) -> f64 {
    peer.as_secs_f64() / vguest.as_secs_f64()
}

impl Row {
    pub fn summary(&self) -> String {
        let (p, v) = (self.peer_time, self.vguest_time);
        let floor = self.floor_time.map_or_else(String::new, |f| {
            format!(" | floor: median {} p10 {} (vguest p10 {})", ms(f.median), ms(f.p10), ms(v.p10))
        });
        format!(
            "peer: median {} p90 {} | vguest: median {} p90 {} | peer/vguest {:.2}x (p90 {:.2}x, p10 {:.2}x){floor}",
            ms(p.median),
            ms(p.p90),
            ms(v.median),
            ms(v.p90),
            ratio(p.median, v.median),
            ratio(p.p90, v.p90),
            ratio(p.p10, v.p10)
        )
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The `q` quantile (nearest rank) of sorted samples.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn timed(side: &mut dyn Side) -> Result<Duration, String> {
    let start = Instant::now();
    side.run().map_err(|e| e.to_string())?;
    Ok(start.elapsed())
}

/// `warmup` untimed runs of each side, then `n` timed runs of each, in
/// rounds that rotate which side goes first (peer, vguest, floor; vguest,
/// floor, peer; ...) so that all see the same load and none always
/// follows another. A failure names the index of the side that failed.
pub fn measure(sides: &mut [&mut dyn Side], n: usize, warmup: usize) -> Result<Vec<Dist>, (usize, String)> {
    let k = sides.len();
    let mut samples = vec![Vec::with_capacity(n); k];
    for round in 0..warmup + n {
        for j in 0..k {
            let i = (round + j) % k;
            let t = timed(&mut *sides[i]).map_err(|e| (i, e))?;
            if round >= warmup {
                samples[i].push(t);
            }
        }
    }
    Ok(samples.into_iter().map(Dist::of).collect())
}

/// Prints the rows as a Markdown table.
pub fn print_table(rows: &[Row]) {
    println!(
        "| pair | peer | peer median | peer p90 | vguest median | vguest p90 | peer/vguest median | p90 | p10 | floor median |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let (p, v) = (r.peer_time, r.vguest_time);
        println!(
            "| {} | `{}` | {} | {} | {} | {} | **{:.2}x** | {:.2}x | {:.2}x | {} |",
            r.pair,
            r.peer,
            ms(p.median),
            ms(p.p90),
            ms(v.median),
            ms(v.p90),
            ratio(p.median, v.median),
            ratio(p.p90, v.p90),
            ratio(p.p10, v.p10),
            r.floor_time.map_or_else(|| "-".to_string(), |f| ms(f.median))
        );
    }
}
