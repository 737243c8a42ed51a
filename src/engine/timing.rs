//! Timing candidate formulations against each other for the autotuners.
//!
//! Each candidate's recording is submitted `ROUNDS` times and keeps its best time, and the
//! rounds interleave the candidates (A B C, A B C, ...): on a shared machine a burst of
//! load from other work then slows one round of every candidate instead of all the
//! submits of one of them (on the 2-core development machine the same kernel's time moved
//! up to 1.6x between seconds, enough to make a sequential best-of-three pick a slower
//! kernel).

use crate::error::Result;
use crate::gpu::{Gpu, Recording};

/// Submits per candidate.
pub const ROUNDS: usize = 3;

/// Each candidate's best wall time over [`ROUNDS`] interleaved submit-and-wait rounds, ms,
/// in the order given.
pub fn best_times_ms<K: Copy>(gpu: &Gpu, runs: &[(K, Recording)]) -> Result<Vec<(K, f64)>> {
    let mut best = vec![f64::INFINITY; runs.len()];
    for _ in 0..ROUNDS {
        for (slot, (_, rec)) in best.iter_mut().zip(runs) {
            let t0 = std::time::Instant::now();
            gpu.submit(rec)?;
            gpu.wait_idle()?;
            *slot = slot.min(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(runs.iter().map(|(k, _)| *k).zip(best).collect())
}

/// The fastest candidate; ties keep the earlier (simpler) one. None for no candidates.
pub fn fastest<K: Copy>(times_ms: &[(K, f64)]) -> Option<K> {
    times_ms
        .iter()
        .fold(None::<(K, f64)>, |best, &(k, t)| match best {
            Some((_, bt)) if bt <= t => best,
            _ => Some((k, t)),
        })
        .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::fastest;

    #[test]
    fn the_fastest_wins_and_ties_keep_the_earlier() {
        assert_eq!(fastest(&[("a", 3.0), ("b", 1.0), ("c", 2.0)]), Some("b"));
        assert_eq!(fastest(&[("a", 1.0), ("b", 1.0)]), Some("a"));
        assert_eq!(fastest::<&str>(&[]), None);
    }
}
