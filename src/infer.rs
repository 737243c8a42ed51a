//! Using a trained model: outputs for every sequence of a data set, and sampling text
//! from a character model.

use crate::data::{ChunkData, Dataset};
use crate::engine::{Chunk, ChunkMode, Engine, StepInputs};
use crate::error::{Error, Result};
use crate::model::TaskKind;
use crate::rng::Rng;
use crate::train::batch_plan;

/// The head's outputs (before the output activation) for every sequence of `data`, in
/// data order: `[length_i, O]` per sequence (many-to-many) or `[O]` (many-to-one).
pub fn predict(
    engine: &mut Engine<'_>,
    data: &Dataset,
    batch: usize,
    seq_len: usize,
) -> Result<Vec<Vec<f32>>> {
    let config = *engine.config();
    let o = config.output_size;
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); data.n];
    let mut order: Vec<usize> = (0..data.n).collect();
    order.sort_by_key(|&i| data.lengths[i]);
    for seqs in order.chunks(batch.max(1)) {
        for (range, mode) in batch_plan(&config, data.max_len(seqs), seq_len, ChunkMode::Predict) {
            let host = ChunkData::gather(data, seqs, range.clone(), false);
            engine.run_chunk(&host.chunk(false), mode, 0)?;
            if mode != ChunkMode::Predict {
                continue;
            }
            match config.task {
                TaskKind::ManyToOne => {
                    let y = engine.outputs(seqs.len())?;
                    for (b, &s) in seqs.iter().enumerate() {
                        out[s] = y[b * o..(b + 1) * o].to_vec();
                    }
                }
                TaskKind::ManyToMany => {
                    let y = engine.outputs(range.len() * seqs.len())?;
                    for t in 0..range.len() {
                        for (b, &s) in seqs.iter().enumerate() {
                            if range.start + t < data.lengths[s] {
                                let r = t * seqs.len() + b;
                                out[s].extend_from_slice(&y[r * o..(r + 1) * o]);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The index of the first maximum.
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > row[best] { i } else { best })
}

/// Samples `length` token ids after feeding `prime` (token ids) through a many-to-many
/// model: softmax(y / temperature), from a seeded RNG; temperature 0 takes the argmax.
/// Ids in `forbidden` (e.g. padding) are never sampled.
pub fn generate(
    engine: &mut Engine<'_>,
    prime: &[u32],
    length: usize,
    temperature: f64,
    seed: u64,
    forbidden: &[u32],
) -> Result<Vec<u32>> {
    if prime.is_empty() {
        return Err(Error::Config("--prime must not be empty".into()));
    }
    if !(temperature.is_finite() && temperature >= 0.0) {
        return Err(Error::Config(format!(
            "--temperature must be >= 0, got {temperature}"
        )));
    }
    let o = engine.config().output_size;
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(length);
    let lengths = [u32::MAX];
    let run = |engine: &mut Engine<'_>, ids: &[u32], first_step: usize| -> Result<Vec<f32>> {
        let chunk = Chunk {
            steps: ids.len(),
            batch: 1,
            first_step,
            lengths: &lengths,
            inputs: StepInputs::Tokens(ids),
            targets: None,
        };
        engine.run_chunk(&chunk, ChunkMode::Predict, 0)?;
        let y = engine.outputs(ids.len())?;
        Ok(y[(ids.len() - 1) * o..].to_vec())
    };
    let mut logits = run(engine, prime, 0)?;
    for step in prime.len()..prime.len() + length {
        for &f in forbidden {
            if (f as usize) < logits.len() {
                logits[f as usize] = f32::NEG_INFINITY;
            }
        }
        let next = if temperature == 0.0 {
            argmax(&logits)
        } else {
            let m = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let weights: Vec<f64> = logits
                .iter()
                .map(|&l| ((l as f64 - m) / temperature).exp())
                .collect();
            let total: f64 = weights.iter().sum();
            let mut u = rng.next_f64() * total;
            let mut pick = weights.len() - 1;
            for (i, w) in weights.iter().enumerate() {
                if u < *w {
                    pick = i;
                    break;
                }
                u -= w;
            }
            pick
        } as u32;
        out.push(next);
        logits = run(engine, &[next], step)?;
    }
    Ok(out)
}
