//! The whole forward and backward pass, and the optimizers, in f64 on the CPU: the
//! oracle the GPU kernels are tested against (itself checked by finite differences).
//! Same layout and conventions as the engine: rows are time-major (r = t·B + b).

mod cell;
mod chunk;

pub use chunk::{run_chunk, run_chunk_with};

use crate::engine::StepTargets;
use crate::model::{Loss, OutputActivation};
use crate::optim::{Momentum, OptimizerConfig, OptimizerKind};

/// What carries from one chunk to the next: the hidden state of each layer's forward
/// direction (and an LSTM's cell state) and the pooling accumulator.
#[derive(Clone, Debug, Default)]
pub struct CarriedState {
    pub hidden: Vec<f64>,   // [layers, B, H]
    pub cell: Vec<f64>,     // [layers, B, H] LSTM only
    pub pool_acc: Vec<f64>, // [B, D·H]
}

/// The result of one chunk.
#[derive(Clone, Debug)]
pub struct ChunkResult {
    /// Mean loss, when the chunk has targets.
    pub loss: Option<f64>,
    /// d(loss)/d(params) in the flat layout, when asked for.
    pub grads: Option<Vec<f64>>,
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Mean loss over the valid rows of `y` [R, O] (`mask[r]` = 0 marks padding; `None`: all
/// valid) and its gradient d(loss)/dy.
pub fn loss_and_grad(
    loss: Loss,
    out_act: OutputActivation,
    y: &[f64],
    rows: usize,
    o: usize,
    targets: &StepTargets<'_>,
    mask: Option<&[f32]>,
) -> (f64, Vec<f64>) {
    let mut dy = vec![0.0; rows * o];
    let mut total = 0.0;
    let valid = |r: usize| mask.is_none_or(|m| m[r] != 0.0);
    let valid_rows = (0..rows).filter(|&r| valid(r)).count();
    let count = match loss {
        Loss::CrossEntropy => valid_rows,
        _ => valid_rows * o,
    } as f64;
    for r in (0..rows).filter(|&r| valid(r)) {
        let yr = &y[r * o..(r + 1) * o];
        match (loss, targets) {
            (Loss::CrossEntropy, StepTargets::Classes(t)) => {
                let m = yr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = yr.iter().map(|v| (v - m).exp()).sum();
                let k = t[r] as usize;
                total += m + s.ln() - yr[k];
                for j in 0..o {
                    dy[r * o + j] =
                        ((yr[j] - m).exp() / s - if j == k { 1.0 } else { 0.0 }) / count;
                }
            }
            (_, StepTargets::Values(t)) => {
                for j in 0..o {
                    let x = yr[j];
                    let tv = t[r * o + j] as f64;
                    let (l, g) = match loss {
                        Loss::Bce => (
                            x.max(0.0) - x * tv + (1.0 + (-x.abs()).exp()).ln(),
                            sigmoid(x) - tv,
                        ),
                        _ => {
                            let (a, da) = match out_act {
                                OutputActivation::Relu => {
                                    (x.max(0.0), if x > 0.0 { 1.0 } else { 0.0 })
                                }
                                OutputActivation::Sigmoid => {
                                    let s = sigmoid(x);
                                    (s, s * (1.0 - s))
                                }
                                _ => (x, 1.0),
                            };
                            let d = a - tv;
                            if loss == Loss::Mse {
                                (d * d, 2.0 * d * da)
                            } else {
                                (
                                    d.abs(),
                                    if d > 0.0 {
                                        da
                                    } else if d < 0.0 {
                                        -da
                                    } else {
                                        0.0
                                    },
                                )
                            }
                        }
                    };
                    total += l;
                    dy[r * o + j] = g / count;
                }
            }
            _ => panic!("targets do not match the loss"),
        }
    }
    (total / count, dy)
}

/// The metric the loss kernel reports beside the loss, over valid rows: accuracy for
/// cross-entropy (first maximum = target) and bce (sign vs. target side of 0.5); mean
/// absolute error for mse; mean squared error for mae.
pub fn metric(
    loss: Loss,
    out_act: OutputActivation,
    y: &[f64],
    rows: usize,
    o: usize,
    targets: &StepTargets<'_>,
    mask: Option<&[f32]>,
) -> f64 {
    let valid: Vec<usize> = (0..rows)
        .filter(|&r| mask.is_none_or(|m| m[r] != 0.0))
        .collect();
    let mut total = 0.0;
    for &r in &valid {
        let yr = &y[r * o..(r + 1) * o];
        match (loss, targets) {
            (Loss::CrossEntropy, StepTargets::Classes(t)) => {
                let best = (0..o).fold(0, |b, j| if yr[j] > yr[b] { j } else { b });
                total += (best == t[r] as usize) as u8 as f64;
            }
            (_, StepTargets::Values(t)) => {
                for j in 0..o {
                    let (x, tv) = (yr[j], t[r * o + j] as f64);
                    let a = match out_act {
                        OutputActivation::Relu => x.max(0.0),
                        OutputActivation::Sigmoid => sigmoid(x),
                        _ => x,
                    };
                    total += match loss {
                        Loss::Bce => ((x > 0.0) == (tv > 0.5)) as u8 as f64,
                        Loss::Mse => (a - tv).abs(),
                        _ => (a - tv) * (a - tv),
                    };
                }
            }
            _ => panic!("targets do not match the loss"),
        }
    }
    let per_row = if loss == Loss::CrossEntropy { 1 } else { o };
    total / (valid.len() * per_row) as f64
}

/// The optimizers in f64, with PyTorch's update rules (and `clip_grad_norm_` first).
#[derive(Clone, Debug)]
pub struct RefOptimizer {
    pub config: OptimizerConfig,
    m: Vec<f64>,
    v: Vec<f64>,
    step: u64,
}

impl RefOptimizer {
    pub fn new(config: OptimizerConfig, params: usize) -> Self {
        Self {
            config,
            m: vec![0.0; params],
            v: vec![0.0; params],
            step: 0,
        }
    }

    pub fn step(&mut self, params: &mut [f64], grads: &[f64]) {
        let c = self.config;
        self.step += 1;
        let coef = match c.clip_norm {
            Some(max) => {
                let norm = grads.iter().map(|g| g * g).sum::<f64>().sqrt();
                (max / (norm + 1e-6)).min(1.0)
            }
            None => 1.0,
        };
        let (step_size, bc2_sqrt) = c.adam_scalars(self.step);
        for i in 0..params.len() {
            let mut g = grads[i] * coef;
            match c.kind {
                OptimizerKind::Sgd => {
                    g += c.weight_decay * params[i];
                    if c.momentum != 0.0 {
                        let buf = if self.step == 1 {
                            g
                        } else {
                            c.momentum * self.m[i] + g
                        };
                        self.m[i] = buf;
                        g = if c.momentum_kind == Momentum::Nesterov {
                            g + c.momentum * buf
                        } else {
                            buf
                        };
                    }
                    params[i] -= c.lr * g;
                }
                OptimizerKind::Adam | OptimizerKind::AdamW => {
                    if c.kind == OptimizerKind::AdamW {
                        params[i] *= 1.0 - c.lr * c.weight_decay;
                    } else {
                        g += c.weight_decay * params[i];
                    }
                    self.m[i] += (1.0 - c.beta1) * (g - self.m[i]);
                    self.v[i] = self.v[i] * c.beta2 + (1.0 - c.beta2) * g * g;
                    let denom = self.v[i].sqrt() / bc2_sqrt + c.eps;
                    params[i] -= step_size * self.m[i] / denom;
                }
            }
        }
    }
}
