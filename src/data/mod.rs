//! Data sets: padded sequences of any length with their targets, from safetensors, CoNLL-U,
//! text or CSV files or the synthetic delayed-echo task, and the batcher that cuts them into chunks.

mod batcher;
mod builtin;
pub mod conllu;
mod safetensors_data;
pub mod series;
pub mod source;
pub mod tensors;
pub mod text;
pub mod vocab;

pub use batcher::{batches, bucketed_batches, chunk_ranges, ChunkData, Order};
pub use builtin::{delayed_echo, DelayedEcho};
pub use safetensors_data::{load_dataset, parse_dataset};

/// What the model reads: `[N, T]` token ids or `[N, T, I]` features.
#[derive(Clone, Debug, PartialEq)]
pub enum Inputs {
    Tokens { ids: Vec<u32> },
    Dense { values: Vec<f32>, size: usize },
}

/// What the model should output.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// Class ids: `[N, T]` (per step) or `[N]` (per sequence).
    Classes { ids: Vec<u32>, per_step: bool },
    /// Values: `[N, T, O]` (per step) or `[N, O]` (per sequence).
    Values {
        values: Vec<f32>,
        width: usize,
        per_step: bool,
    },
}

impl Targets {
    pub fn per_step(&self) -> bool {
        match self {
            Targets::Classes { per_step, .. } | Targets::Values { per_step, .. } => *per_step,
        }
    }
}

/// `n` sequences padded to `steps` steps; sequence i has `lengths[i]` valid steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub n: usize,
    pub steps: usize,
    pub lengths: Vec<usize>,
    pub inputs: Inputs,
    pub targets: Targets,
}

impl Dataset {
    /// The longest of the sequences `seqs`.
    pub fn max_len(&self, seqs: &[usize]) -> usize {
        seqs.iter().map(|&s| self.lengths[s]).max().unwrap_or(0)
    }

    /// Largest token id + 1 (token inputs), for inferring `--vocab`.
    pub fn vocab_needed(&self) -> Option<usize> {
        match &self.inputs {
            Inputs::Tokens { ids } => Some(ids.iter().copied().max().map_or(1, |m| m as usize + 1)),
            Inputs::Dense { .. } => None,
        }
    }
    /// Largest class id + 1, or the value width, for inferring `--output-size`.
    pub fn outputs_needed(&self) -> usize {
        match &self.targets {
            Targets::Classes { ids, .. } => ids.iter().copied().max().map_or(1, |m| m as usize + 1),
            Targets::Values { width, .. } => *width,
        }
    }
}
