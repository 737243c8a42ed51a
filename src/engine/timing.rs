//! Timing candidate formulations against each other for the autotuners.
//!
//! Each candidate's recording is submitted a few times and keeps its best time, and
//! the rounds interleave the candidates (A B C, A B C, ...): on a shared machine a burst of
//! load from other work then slows one round of every candidate instead of all the
//! submits of one of them (on the 2-core development machine the same kernel's time moved
//! up to 1.6x between seconds, enough to make a sequential best-of-three pick a slower
//! kernel).
//!
//! A candidate more than [`PRUNE_FACTOR`] times slower than the fastest after a round free
//! of first-use costs is not timed again: on lavapipe a W3-sized sweep's chunk-persistent
//! kernel takes 2.5 s a round against 70 ms for the fastest, and three rounds of every
//! candidate took about 24 s. A kernel's first dispatch can include its compilation
//! (lavapipe compiles each kernel when it first runs, 0.1-3 s), so that round is not the
//! one that prunes: the tuner either submits short warm-up recordings of every candidate
//! first (untimed), or the pruning waits for the second round.

use crate::error::Result;
use crate::gpu::{Gpu, Recording};

/// Submits per candidate (at most) where every candidate is timed from its first round (the
/// GEMM tuner).
pub const ROUNDS: usize = 3;

/// Submits per candidate (at most) after warm-ups (the recurrence tuner): the candidates left
/// after the first round get more rounds than [`ROUNDS`], so that their rounds, shorter
/// without the pruned ones, still spread over about as much time as before (measured on
/// lavapipe with three: in 2 of 4 W1 tunings a burst of load slowed all of one candidate's
/// timings, and the tuner took a kernel whose steps were 15% and 60% slower).
pub const WARM_ROUNDS: usize = 5;

/// A candidate whose best time is over this many times the fastest one's (after a round free
/// of first-use costs) is not timed again. The machine's noise moved one kernel's time up to
/// 1.6-2x between rounds; a 3x gap is not noise.
pub const PRUNE_FACTOR: f64 = 3.0;

/// Each candidate's best wall time over up to [`ROUNDS`] interleaved submit-and-wait rounds
/// ([`WARM_ROUNDS`] with warm-ups), ms, in the order given; `warm_ups` (any recordings,
/// typically each candidate's over fewer steps) are submitted first, untimed, so that the
/// first timed round pays no compilation and may already prune. Candidates are pruned
/// against the fastest of their own `group` (the recurrence tuner's two directions share
/// the rounds, so that those stay spread in time, but not the comparison). A pruned
/// candidate keeps the best time it had.
pub fn best_times_ms<K: Copy>(
    gpu: &Gpu,
    runs: &[(K, Recording)],
    warm_ups: &[Recording],
    group: impl Fn(&K) -> usize,
) -> Result<Vec<(K, f64)>> {
    for rec in warm_ups {
        gpu.submit(rec)?;
        gpu.wait_idle()?;
    }
    // Rounds after which pruning may start: the first timed one when warmed up.
    let (clean_rounds, rounds) = if warm_ups.is_empty() {
        (2, ROUNDS)
    } else {
        (1, WARM_ROUNDS)
    };
    let groups: Vec<usize> = runs.iter().map(|(k, _)| group(k)).collect();
    let mut best = vec![f64::INFINITY; runs.len()];
    let mut timed = vec![true; runs.len()];
    for round in 1..=rounds {
        for ((slot, on), (_, rec)) in best.iter_mut().zip(&timed).zip(runs) {
            if !on {
                continue;
            }
            let t0 = std::time::Instant::now();
            gpu.submit(rec)?;
            gpu.wait_idle()?;
            *slot = slot.min(t0.elapsed().as_secs_f64() * 1e3);
        }
        if round >= clean_rounds {
            timed = still_timed(&best, &groups);
        }
    }
    Ok(runs.iter().map(|(k, _)| *k).zip(best).collect())
}

/// Which candidates stay in the rounds, given their best times so far and groups: those
/// within [`PRUNE_FACTOR`] of the fastest of their group.
fn still_timed(best_ms: &[f64], groups: &[usize]) -> Vec<bool> {
    let fastest = |g: usize| {
        best_ms
            .iter()
            .zip(groups)
            .filter(|(_, &h)| h == g)
            .fold(f64::INFINITY, |m, (&t, _)| m.min(t))
    };
    best_ms
        .iter()
        .zip(groups)
        .map(|(&t, &g)| t <= PRUNE_FACTOR * fastest(g))
        .collect()
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
    use super::{fastest, still_timed, PRUNE_FACTOR};

    #[test]
    fn the_fastest_wins_and_ties_keep_the_earlier() {
        assert_eq!(fastest(&[("a", 3.0), ("b", 1.0), ("c", 2.0)]), Some("b"));
        assert_eq!(fastest(&[("a", 1.0), ("b", 1.0)]), Some("a"));
        assert_eq!(fastest::<&str>(&[]), None);
    }

    #[test]
    fn only_candidates_far_slower_than_the_fastest_leave_the_rounds() {
        // The fastest 70 ms: 3x is 210 ms.
        let best = [330.0, 2460.0, 111.0, 70.0, 210.0, 210.5];
        assert_eq!(
            still_timed(&best, &[0; 6]),
            [false, false, true, true, true, false]
        );
        assert_eq!(PRUNE_FACTOR, 3.0);
        // Each group against its own fastest: group 1's 300 ms is within 3x of its 150.
        assert_eq!(
            still_timed(&[70.0, 300.0, 150.0, 211.0], &[0, 1, 1, 0]),
            [true, true, true, false]
        );
        // Nothing timed yet (or all equally slow): everyone stays.
        assert_eq!(still_timed(&[f64::INFINITY; 2], &[0, 0]), [true, true]);
        assert_eq!(still_timed(&[5.0, 5.0], &[0, 0]), [true, true]);
        assert!(still_timed(&[], &[]).is_empty());
    }
}
