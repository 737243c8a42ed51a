//! Launchers of `shaders/rnn_cell.wgsl`: the Elman recurrence one step a dispatch and
//! chunk-persistent, and the step-combine kernels' parameters; [`RecurrenceKernel`] names
//! every formulation of a recurrence.

// Launchers bind many buffers by design: one argument per binding slot reads clearer than a
// struct per kernel.
#![allow(clippy::too_many_arguments)]

use super::{need, u32_of, Launch, Uniforms};
use crate::error::Result;
use crate::gpu::{Buffer, Gpu, Kernel, Resource};
use crate::model::Activation;
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct StepParams {
    t: u32,
    steps: u32,
    batch: u32,
    hidden: u32,
    activation: u32,
    whh_off: u32,
    /// Partial sums in `step_sum` (the combine kernels of a split-K recurrence; 1 elsewhere).
    slices: u32,
    _pad: u32,
}

/// Shape of one recurrence sweep: `steps` steps of `batch` rows of `hidden` units.
#[derive(Clone, Copy, Debug)]
pub struct RecurrenceShape {
    pub steps: usize,
    pub batch: usize,
    pub hidden: usize,
    pub activation: Activation,
    pub whh_off: usize,
}

impl RecurrenceShape {
    /// Workgroups of one step: 8x8 invocations of 4x4 blocks over (H, B).
    fn groups(&self) -> [u32; 3] {
        [
            self.hidden.div_ceil(32) as u32,
            self.batch.div_ceil(32) as u32,
            1,
        ]
    }

    pub(super) fn params(&self, t: usize) -> Result<StepParams> {
        Ok(StepParams {
            t: u32_of(t, "step")?,
            steps: u32_of(self.steps, "steps")?,
            batch: u32_of(self.batch, "batch")?,
            hidden: u32_of(self.hidden, "hidden")?,
            activation: match self.activation {
                Activation::Tanh => 0,
                Activation::Relu => 1,
            },
            whh_off: u32_of(self.whh_off, "offset")?,
            slices: 1,
            _pad: 0,
        })
    }

    /// [`RecurrenceShape::params`] for a combine kernel summing `slices` partial products.
    pub(super) fn split_params(&self, t: usize, slices: usize) -> Result<StepParams> {
        Ok(StepParams {
            slices: u32_of(slices, "slices")?,
            ..self.params(t)?
        })
    }
}

/// Forward step `t`: `hs[t+1] = act(pre[t] + hs[t]·W_hhᵀ)`.   pre: [T, B, H], hs: [T+1, B, H]
pub fn rnn_step_forward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &RecurrenceShape,
    t: usize,
    params: &Buffer,
    pre: &Buffer,
    hs: &Buffer,
) -> Result<Launch> {
    let bh = shape.batch * shape.hidden;
    need(pre, shape.steps * bh, "rnn forward pre")?;
    need(hs, (shape.steps + 1) * bh, "rnn forward hs")?;
    let uniform = u.push(gpu, &shape.params(t)?);
    let binding = gpu.bind(
        Kernel::RnnStepForward,
        &[
            uniform.resource(),
            Resource::Storage(params),
            Resource::Storage(pre),
            Resource::Storage(hs),
        ],
    );
    Ok(Launch {
        binding,
        groups: shape.groups(),
        uniform,
    })
}

/// Backward step `t`: `da[t] = (dh_out[t] + da[t+1]·W_hh) ⊙ act'(hs[t+1])`.   da, dh_out: [T, B, H]
pub fn rnn_step_backward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &RecurrenceShape,
    t: usize,
    params: &Buffer,
    hs: &Buffer,
    dh_out: &Buffer,
    da: &Buffer,
) -> Result<Launch> {
    let bh = shape.batch * shape.hidden;
    need(hs, (shape.steps + 1) * bh, "rnn backward hs")?;
    need(dh_out, shape.steps * bh, "rnn backward dh_out")?;
    need(da, shape.steps * bh, "rnn backward da")?;
    let uniform = u.push(gpu, &shape.params(t)?);
    let binding = gpu.bind(
        Kernel::RnnStepBackward,
        &[
            uniform.resource(),
            Resource::Storage(params),
            Resource::Storage(hs),
            Resource::Storage(dh_out),
            Resource::Storage(da),
        ],
    );
    Ok(Launch {
        binding,
        groups: shape.groups(),
        uniform,
    })
}

/// How a recurrence sweep is dispatched: one dispatch per step, one chunk-persistent
/// dispatch (a workgroup per sequence looping over the steps), per step a GEMM of the given
/// formulation plus a small kernel that finishes the step, or (`GemmFused`, the Elman cell
/// with a formulation that has [`super::GemmKernel::step_kernel`]) per step a GEMM that
/// finishes the step in its own store; gated cells run `GemmFused` as `Gemm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum RecurrenceKernel {
    PerStep,
    Persistent,
    Gemm(super::GemmKernel),
    GemmFused(super::GemmKernel),
    /// A GEMM per step split over K into this many slices (more workgroups for a small
    /// B x H; the finishing kernel sums the slices in order, so the sums run in another order
    /// than the other formulations'): Elman cells both ways, gated cells their backward
    /// products. The tuner offers it on GPUs.
    GemmSplit(super::GemmKernel, usize),
    /// `GemmFused`'s steps of a whole sweep in one chunk-persistent dispatch (a workgroup per
    /// 32 sequences looping over the steps: `gemm_window_quads_sweep`), for the window quads
    /// kernel (the Elman cell, f32; W_hh through a window where it fits one, else from
    /// storage; where the quads do not apply it runs as `GemmFused`). Gated cells: each
    /// step's product and then its cell math in the same way (`gated_quads_sweep_*`, f32,
    /// W_hh from storage; where it does not apply, as `Gemm`). The tuner offers it on
    /// lavapipe, where each dispatch costs tens of microseconds.
    GemmSweep(super::GemmKernel),
    /// [`RecurrenceKernel::GemmSweep`] with the sweep kernel's 16-byte storage words (W_hh
    /// from storage, the states through C's words) as two 64-bit integers: half the per-lane
    /// load and store loops on lavapipe. The tuner offers it instead of `GemmSweep` where
    /// the adapter has 64-bit integers.
    GemmSweepLongs(super::GemmKernel),
}

impl RecurrenceKernel {
    /// How a GEMM-based recurrence computes each step's product (separate for the others).
    fn step_product(self) -> super::rnn_gemm::StepProduct {
        use super::rnn_gemm::StepProduct;
        match self {
            RecurrenceKernel::GemmFused(_) => StepProduct::Fused,
            RecurrenceKernel::GemmSweep(_) => StepProduct::Sweep { long_words: false },
            RecurrenceKernel::GemmSweepLongs(_) => StepProduct::Sweep { long_words: true },
            RecurrenceKernel::GemmSplit(_, slices) => StepProduct::Split(slices),
            _ => StepProduct::Separate,
        }
    }
}

/// The forward sweep over all `shape.steps` steps (T launches, or one). `state_copies`:
/// two [B, H] f32 buffers of at least a uniform window each, which a fused sweep with A's
/// windows alternates between (`GemmFused(WindowQuadsA)`; None runs it reading A through C).
#[allow(clippy::too_many_arguments)]
pub fn rnn_forward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &RecurrenceShape,
    kernel: RecurrenceKernel,
    params: &Buffer,
    pre: &Buffer,
    hs: &Buffer,
    step_sum: &Buffer,
    state_copies: Option<[&Buffer; 2]>,
) -> Result<Vec<Launch>> {
    match kernel {
        RecurrenceKernel::PerStep => (0..shape.steps)
            .map(|t| rnn_step_forward(gpu, u, shape, t, params, pre, hs))
            .collect(),
        RecurrenceKernel::Gemm(gemm)
        | RecurrenceKernel::GemmFused(gemm)
        | RecurrenceKernel::GemmSweep(gemm)
        | RecurrenceKernel::GemmSweepLongs(gemm)
        | RecurrenceKernel::GemmSplit(gemm, _) => super::rnn_gemm::forward(
            gpu,
            u,
            shape,
            gemm,
            kernel.step_product(),
            params,
            pre,
            hs,
            step_sum,
            state_copies,
        ),
        RecurrenceKernel::Persistent => {
            let bh = shape.batch * shape.hidden;
            need(pre, shape.steps * bh, "rnn forward pre")?;
            need(hs, (shape.steps + 1) * bh, "rnn forward hs")?;
            let uniform = u.push(gpu, &shape.params(0)?);
            let binding = gpu.bind(
                Kernel::RnnChunkForward,
                &[
                    uniform.resource(),
                    Resource::Storage(params),
                    Resource::Storage(pre),
                    Resource::Storage(hs),
                ],
            );
            Ok(vec![Launch {
                binding,
                groups: [u32_of(shape.batch, "batch")?, 1, 1],
                uniform,
            }])
        }
    }
}

/// The backward sweep over all steps, last to first (T launches, or one). `whh_t` ([H, H]
/// of W_hh's element type): room for a transposed copy of W_hh, which the quads GEMMs read
/// faster (`rnn_gemm::reads_transposed_whh`); None reads W_hh in place. `state_copies`: as
/// [`rnn_forward`]'s.
#[allow(clippy::too_many_arguments)]
pub fn rnn_backward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &RecurrenceShape,
    kernel: RecurrenceKernel,
    params: &Buffer,
    whh_t: Option<&Buffer>,
    hs: &Buffer,
    dh_out: &Buffer,
    da: &Buffer,
    step_sum: &Buffer,
    state_copies: Option<[&Buffer; 2]>,
) -> Result<Vec<Launch>> {
    match kernel {
        RecurrenceKernel::PerStep => (0..shape.steps)
            .rev()
            .map(|t| rnn_step_backward(gpu, u, shape, t, params, hs, dh_out, da))
            .collect(),
        RecurrenceKernel::Gemm(gemm)
        | RecurrenceKernel::GemmFused(gemm)
        | RecurrenceKernel::GemmSweep(gemm)
        | RecurrenceKernel::GemmSweepLongs(gemm)
        | RecurrenceKernel::GemmSplit(gemm, _) => super::rnn_gemm::backward(
            gpu,
            u,
            shape,
            gemm,
            kernel.step_product(),
            params,
            whh_t,
            hs,
            dh_out,
            da,
            step_sum,
            state_copies,
        ),
        RecurrenceKernel::Persistent => {
            let bh = shape.batch * shape.hidden;
            need(hs, (shape.steps + 1) * bh, "rnn backward hs")?;
            need(dh_out, shape.steps * bh, "rnn backward dh_out")?;
            need(da, shape.steps * bh, "rnn backward da")?;
            let uniform = u.push(gpu, &shape.params(0)?);
            let binding = gpu.bind(
                Kernel::RnnChunkBackward,
                &[
                    uniform.resource(),
                    Resource::Storage(params),
                    Resource::Storage(hs),
                    Resource::Storage(dh_out),
                    Resource::Storage(da),
                ],
            );
            Ok(vec![Launch {
                binding,
                groups: [u32_of(shape.batch, "batch")?, 1, 1],
                uniform,
            }])
        }
    }
}
