//! Launcher of `shaders/optim.wgsl`: one optimizer step over the flat parameter buffer.

// Launchers bind many buffers by design: one argument per binding slot reads clearer than a
// struct per kernel.
#![allow(clippy::too_many_arguments)]

use super::{groups_for, need, Launch, StorageWords, Uniforms};
use crate::error::Result;
use crate::gpu::{Buffer, Gpu, Kernel, Resource};
use bytemuck::{Pod, Zeroable};

/// The optimizer's uniform (`shaders/optim.wgsl`), rewritten before every step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct OptimParams {
    pub count: u32,
    pub flags: u32,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub step_size: f32,
    pub bc2_sqrt: f32,
    pub max_norm: f32,
    pub _pad: u32,
}

impl OptimParams {
    /// The uniform for 1-based optimizer step `step` over `count` parameters.
    pub fn for_step(o: &crate::optim::OptimizerConfig, count: usize, step: u64) -> Self {
        use crate::optim::{Momentum, OptimizerKind};
        let (step_size, bc2_sqrt) = o.adam_scalars(step);
        let mut flags = 0;
        if o.clip_norm.is_some() {
            flags |= OPTIM_CLIP;
        }
        if o.momentum_kind == Momentum::Nesterov {
            flags |= OPTIM_NESTEROV;
        }
        if step == 1 {
            flags |= OPTIM_FIRST_STEP;
        }
        if o.kind == OptimizerKind::AdamW {
            flags |= OPTIM_DECOUPLED;
        }
        OptimParams {
            count: count as u32,
            flags,
            lr: o.lr as f32,
            momentum: o.momentum as f32,
            weight_decay: o.weight_decay as f32,
            beta1: o.beta1 as f32,
            beta2: o.beta2 as f32,
            eps: o.eps as f32,
            step_size: step_size as f32,
            bc2_sqrt: bc2_sqrt as f32,
            max_norm: o.clip_norm.unwrap_or(0.0) as f32,
            _pad: 0,
        }
    }
}

pub const OPTIM_CLIP: u32 = 1;
pub const OPTIM_NESTEROV: u32 = 2;
pub const OPTIM_FIRST_STEP: u32 = 4;
pub const OPTIM_DECOUPLED: u32 = 8;

/// Which update rule a launch runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateRule {
    Sgd,
    Adam,
}

/// One optimizer step over all `count` parameters. `v` is bound only for Adam. The kernels
/// update 4 parameters at a time: `params`, `grads`, `m` and `v` must hold `count` rounded up
/// to a multiple of 4 values (the padding is scratch). `words`: how
/// the four buffers are read and written ([`StorageWords::for_gpu`] in the engine).
#[allow(clippy::too_many_arguments)]
pub fn optimizer_step(
    gpu: &Gpu,
    u: &mut Uniforms,
    words: StorageWords,
    rule: UpdateRule,
    count: usize,
    params: &Buffer,
    grads: &Buffer,
    norm: &Buffer,
    m: &Buffer,
    v: &Buffer,
) -> Result<Launch> {
    for (b, w) in [
        (params, "params"),
        (grads, "grads"),
        (m, "moment m"),
        (v, "moment v"),
    ] {
        need(b, count.next_multiple_of(4), w)?;
    }
    let uniform = u.push(gpu, &OptimParams::zeroed());
    let mut res = vec![
        uniform.resource(),
        Resource::Storage(params),
        Resource::Storage(grads),
        Resource::Storage(norm),
        Resource::Storage(m),
    ];
    let kernel = match rule {
        UpdateRule::Sgd => words.pick(Kernel::Sgd, Kernel::SgdLongs),
        UpdateRule::Adam => {
            res.push(Resource::Storage(v));
            words.pick(Kernel::Adam, Kernel::AdamLongs)
        }
    };
    let binding = gpu.bind(kernel, &res);
    Ok(Launch {
        binding,
        groups: groups_for(count.div_ceil(4)),
        uniform,
    })
}
