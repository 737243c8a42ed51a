//! Optimizer settings and the per-step scalars the host computes in f64 (as PyTorch does).

use crate::error::{Error, Result};
use crate::model::cli_enum;

cli_enum!(
    /// The optimizer, with PyTorch's update rules.
    OptimizerKind { Sgd => "sgd", Adam => "adam", AdamW => "adamw" }
);

/// Whether SGD's momentum uses Nesterov's look-ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Momentum {
    Classic,
    Nesterov,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f64,
    pub momentum: f64,
    pub momentum_kind: Momentum,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// `clip_grad_norm_(max_norm)` before each step, when set.
    pub clip_norm: Option<f64>,
}

impl OptimizerConfig {
    /// PyTorch's defaults for `kind`: lr 1e-3; Adam(W) betas (0.9, 0.999), eps 1e-8;
    /// weight decay 0, except AdamW's 1e-2.
    pub fn pytorch_defaults(kind: OptimizerKind) -> Self {
        Self {
            kind,
            lr: 1e-3,
            momentum: 0.0,
            momentum_kind: Momentum::Classic,
            weight_decay: if kind == OptimizerKind::AdamW {
                1e-2
            } else {
                0.0
            },
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            clip_norm: None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return bad(format!(
                "--lr must be a finite number >= 0, got {}",
                self.lr
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "--weight-decay must be >= 0, got {}",
                self.weight_decay
            ));
        }
        if let Some(c) = self.clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return bad(format!("--clip-norm must be > 0, got {c}"));
            }
        }
        match self.kind {
            OptimizerKind::Sgd => {
                if !(self.momentum.is_finite() && self.momentum >= 0.0) {
                    return bad(format!("--momentum must be >= 0, got {}", self.momentum));
                }
                if self.momentum_kind == Momentum::Nesterov && self.momentum == 0.0 {
                    return bad("--nesterov needs --momentum > 0 (as in PyTorch)".into());
                }
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                if self.momentum != 0.0 || self.momentum_kind == Momentum::Nesterov {
                    return bad(format!(
                        "--momentum/--nesterov are SGD options, not {}",
                        self.kind
                    ));
                }
                for (name, b) in [("--beta1", self.beta1), ("--beta2", self.beta2)] {
                    if !(0.0..1.0).contains(&b) {
                        return bad(format!("{name} must be in [0, 1), got {b}"));
                    }
                }
                if !(self.eps.is_finite() && self.eps >= 0.0) {
                    return bad(format!("--eps must be >= 0, got {}", self.eps));
                }
            }
        }
        Ok(())
    }

    /// Adam's `(step_size, sqrt(bias_correction2))` for 1-based step `step`.
    pub fn adam_scalars(&self, step: u64) -> (f64, f64) {
        let bc1 = 1.0 - self.beta1.powi(step as i32);
        let bc2 = 1.0 - self.beta2.powi(step as i32);
        (self.lr / bc1, bc2.sqrt())
    }
}
