//! Batches of sequences and their chunks (truncated BPTT), as time-major host arrays.

use super::{Dataset, Inputs, Targets};
use crate::engine::{Chunk, StepInputs, StepTargets};
use crate::rng::Rng;

/// The order of sequences within an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// File order.
    InOrder,
    /// Shuffled per epoch from the seed.
    Shuffled { seed: u64 },
}

/// The sequence indices of each batch of one epoch (the last batch may be smaller).
pub fn batches(n: usize, batch: usize, order: Order, epoch: usize) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..n).collect();
    if let Order::Shuffled { seed } = order {
        let mut rng = Rng::new(seed ^ (epoch as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
        rng.shuffle(&mut idx);
    }
    idx.chunks(batch.max(1)).map(|c| c.to_vec()).collect()
}

/// Batches of similar lengths, so that little of each chunk is padding: the sequences are
/// shuffled (as `batches` does), cut into windows of 50 batches, each window sorted by
/// length and cut into batches, and the batches shuffled again. Deterministic per seed
/// and epoch.
pub fn bucketed_batches(
    lengths: &[usize],
    batch: usize,
    seed: u64,
    epoch: usize,
) -> Vec<Vec<usize>> {
    let batch = batch.max(1);
    let mut order = batches(
        lengths.len(),
        lengths.len().max(1),
        Order::Shuffled { seed },
        epoch,
    )
    .concat();
    let mut out = Vec::new();
    for window in order.chunks_mut(batch * 50) {
        window.sort_by_key(|&i| lengths[i]);
        out.extend(window.chunks(batch).map(|c| c.to_vec()));
    }
    let mut rng = Rng::new(seed ^ 0x5eed ^ (epoch as u64).wrapping_mul(0x9e37_79b9));
    rng.shuffle(&mut out);
    out
}

/// The step ranges of each chunk: 0..K, K..2K, … (the last may be shorter).
pub fn chunk_ranges(steps: usize, seq_len: usize) -> Vec<std::ops::Range<usize>> {
    let k = seq_len.max(1);
    (0..steps.div_ceil(k))
        .map(|c| c * k..((c + 1) * k).min(steps))
        .collect()
}

/// One chunk's host data, time-major (row r = t·B + b).
#[derive(Clone, Debug, Default)]
pub struct ChunkData {
    pub steps: usize,
    pub batch: usize,
    pub first_step: usize,
    pub lengths: Vec<u32>,       // [B] valid steps of each sequence
    pub tokens: Vec<u32>,        // [T, B]
    pub features: Vec<f32>,      // [T, B, I]
    pub class_targets: Vec<u32>, // [R]
    pub value_targets: Vec<f32>, // [R, O]
}

impl ChunkData {
    /// The engine's view of this chunk; with `targets` when the chunk has a loss.
    pub fn chunk(&self, with_targets: bool) -> Chunk<'_> {
        let inputs = if self.tokens.is_empty() {
            StepInputs::Dense(&self.features)
        } else {
            StepInputs::Tokens(&self.tokens)
        };
        let targets = if !with_targets {
            None
        } else if self.value_targets.is_empty() {
            Some(StepTargets::Classes(&self.class_targets))
        } else {
            Some(StepTargets::Values(&self.value_targets))
        };
        Chunk {
            steps: self.steps,
            batch: self.batch,
            first_step: self.first_step,
            lengths: &self.lengths,
            inputs,
            targets,
        }
    }

    /// Gathers steps `range` of sequences `seqs`; targets per step (many-to-many), or the
    /// sequences' own targets when `final_targets` (the last chunk of many-to-one).
    pub fn gather(
        data: &Dataset,
        seqs: &[usize],
        range: std::ops::Range<usize>,
        with_targets: bool,
    ) -> Self {
        let mut c = ChunkData {
            steps: range.len(),
            batch: seqs.len(),
            first_step: range.start,
            lengths: seqs.iter().map(|&s| data.lengths[s] as u32).collect(),
            ..ChunkData::default()
        };
        let t_all = data.steps;
        for t in range.clone() {
            for &s in seqs {
                match &data.inputs {
                    Inputs::Tokens { ids } => c.tokens.push(ids[s * t_all + t]),
                    Inputs::Dense { values, size } => {
                        let at = (s * t_all + t) * size;
                        c.features.extend_from_slice(&values[at..at + size]);
                    }
                }
            }
        }
        if !with_targets {
            return c;
        }
        match &data.targets {
            Targets::Classes {
                ids,
                per_step: true,
            } => {
                for t in range {
                    c.class_targets
                        .extend(seqs.iter().map(|&s| ids[s * t_all + t]));
                }
            }
            Targets::Classes {
                ids,
                per_step: false,
            } => c.class_targets.extend(seqs.iter().map(|&s| ids[s])),
            Targets::Values {
                values,
                width,
                per_step: true,
            } => {
                for t in range {
                    for &s in seqs {
                        let at = (s * t_all + t) * width;
                        c.value_targets.extend_from_slice(&values[at..at + width]);
                    }
                }
            }
            Targets::Values {
                values,
                width,
                per_step: false,
            } => {
                for &s in seqs {
                    c.value_targets
                        .extend_from_slice(&values[s * width..(s + 1) * width]);
                }
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_sequence_in_order() {
        assert_eq!(chunk_ranges(9, 4), vec![0..4, 4..8, 8..9]);
        assert_eq!(chunk_ranges(8, 8), vec![0..8]);
        assert_eq!(chunk_ranges(3, 10), vec![0..3]);
    }

    #[test]
    fn batches_are_in_file_order_or_a_seeded_permutation() {
        assert_eq!(
            batches(5, 2, Order::InOrder, 1),
            vec![vec![0, 1], vec![2, 3], vec![4]]
        );
        let a = batches(50, 7, Order::Shuffled { seed: 3 }, 1);
        let b = batches(50, 7, Order::Shuffled { seed: 3 }, 1);
        let c = batches(50, 7, Order::Shuffled { seed: 3 }, 2);
        assert_eq!(a, b, "same seed and epoch, same order");
        assert_ne!(a, c, "each epoch reshuffles");
        let mut all: Vec<usize> = a.concat();
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
    }
}
