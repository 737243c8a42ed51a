//! Launchers for the non-GEMM kernels: embedding, recurrence steps, pooling, loss,
//! reductions and optimizers. Shapes are in the WGSL headers; each launcher checks them.

// Launchers bind many buffers by design: one argument per binding slot reads clearer than a
// struct per kernel.
#![allow(clippy::too_many_arguments)]

use super::{groups_for, need, u32_of, Launch, Uniforms};
use crate::error::{Error, Result};
use crate::gpu::{Buffer, Dtype, Gpu, Kernel, Recording, Resource};
use crate::model::{Activation, Loss, OutputActivation, Pool};
use bytemuck::{Pod, Zeroable};

/// Number of partial sums (one per invocation, 64 workgroups of 256) the gradient-norm
/// reduction's first stage writes (fixed, so the summation order, and the bits, never
/// depend on the model size).
pub const NORM_PARTIALS: usize = 64 * 256;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct EmbedParams {
    rows: u32,
    dim: u32,
    emb_off: u32,
    _pad: u32,
}

/// `x[r, :] = params[emb_off + tokens[r]·D ..]` for `rows` rows.   x: [rows, D]
pub fn embed_gather(
    gpu: &Gpu,
    u: &mut Uniforms,
    rows: usize,
    dim: usize,
    emb_off: usize,
    params: &Buffer,
    tokens: &Buffer,
    x: &Buffer,
) -> Result<Launch> {
    need(tokens, rows, "embed_gather tokens")?;
    need(x, rows * dim, "embed_gather x")?;
    let p = EmbedParams {
        rows: u32_of(rows, "rows")?,
        dim: u32_of(dim, "embed")?,
        emb_off: u32_of(emb_off, "offset")?,
        _pad: 0,
    };
    let uniform = u.push(gpu, &p);
    // 4 consecutive d per invocation where they are one aligned vec4 of f32s both sides.
    let quads = params.dtype() == Dtype::F32
        && x.dtype() == Dtype::F32
        && dim.is_multiple_of(4)
        && emb_off.is_multiple_of(4);
    let binding = gpu.bind(
        if quads {
            Kernel::EmbedGatherQuads
        } else {
            Kernel::EmbedGather
        },
        &[
            uniform.resource(),
            Resource::Storage(params),
            Resource::Storage(tokens),
            Resource::Storage(x),
        ],
    );
    Ok(Launch {
        binding,
        groups: groups_for(if quads { rows * dim / 4 } else { rows * dim }),
        uniform,
    })
}

/// A slot of [`TokenIndexBuffers::present`] past the chunk's distinct tokens.
pub const NO_TOKEN: u32 = u32::MAX;

/// A chunk's token index on the GPU (`engine::token_index` builds it on the host): `present`
/// [S] the distinct tokens, ascending, then [`NO_TOKEN`]; `offsets` [S + 1] where each one's
/// rows start in `positions` [R], the rows of each token ascending. S = min(V, R).
pub struct TokenIndexBuffers<'a> {
    pub present: &'a Buffer,
    pub offsets: &'a Buffer,
    pub positions: &'a Buffer,
}

/// `grads[emb_off + v·D + d] = Σ_{i ∈ offsets[j]..offsets[j+1]} dx[positions[i], d]` for each
/// token v = present[j] of the chunk (j < `slots`); dE: [vocab, D]. The rows of the tokens
/// absent from the chunk are not written: the caller zeroes the table first.
#[allow(clippy::too_many_arguments)]
pub fn embed_grad(
    gpu: &Gpu,
    u: &mut Uniforms,
    slots: usize,
    vocab: usize,
    dim: usize,
    emb_off: usize,
    dx: &Buffer,
    index: &TokenIndexBuffers<'_>,
    grads: &Buffer,
) -> Result<Launch> {
    need(index.present, slots, "embed_grad present tokens")?;
    need(index.offsets, slots + 1, "embed_grad offsets")?;
    need(grads, emb_off + vocab * dim, "embed_grad grads")?;
    let p = EmbedParams {
        rows: u32_of(slots, "token slots")?,
        dim: u32_of(dim, "embed")?,
        emb_off: u32_of(emb_off, "offset")?,
        _pad: 0,
    };
    let uniform = u.push(gpu, &p);
    // 4 consecutive d per invocation where they are one aligned vec4 of f32 grads.
    let quads = grads.dtype() == Dtype::F32 && dim.is_multiple_of(4) && emb_off.is_multiple_of(4);
    let binding = gpu.bind(
        if quads {
            Kernel::EmbedGradQuads
        } else {
            Kernel::EmbedGrad
        },
        &[
            uniform.resource(),
            Resource::Storage(dx),
            Resource::Storage(index.offsets),
            Resource::Storage(grads),
            Resource::Storage(index.positions),
            Resource::Storage(index.present),
        ],
    );
    Ok(Launch {
        binding,
        groups: groups_for(if quads { slots * dim / 4 } else { slots * dim }),
        uniform,
    })
}

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
    /// load and store loops on lavapipe. The tuner offers it beside `GemmSweep` where the
    /// adapter has 64-bit integers.
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

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct PoolParams {
    steps: u32,
    batch: u32,
    hidden: u32,
    kind: u32,
    fresh: u32,
    reverse_from: u32,
    _pad: [u32; 2],
}

/// Where a chunk stands in its sequence, for pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SequenceStart {
    /// The chunk begins the sequence: ignore the pooling carry.
    Fresh,
    /// The chunk continues a sequence: fold in the carry from earlier chunks.
    Continued,
}

/// Pooling shape: a chunk of `steps` steps of `batch` sequences (their lengths and the
/// chunk's first step are in the `lengths` and `chunk_info` buffers).
#[derive(Clone, Copy, Debug)]
pub struct PoolShape {
    pub steps: usize,
    pub batch: usize,
    /// Width of the pooled rows (H, or D·H for a stacked or bidirectional model).
    pub hidden: usize,
    pub pool: Pool,
    pub start: SequenceStart,
    /// First column of a bidirectional model's reverse half (`hidden` when there is none).
    pub reverse_from: usize,
}

impl PoolShape {
    fn params(&self) -> Result<PoolParams> {
        Ok(PoolParams {
            steps: u32_of(self.steps, "steps")?,
            batch: u32_of(self.batch, "batch")?,
            hidden: u32_of(self.hidden, "hidden")?,
            kind: match self.pool {
                Pool::Last => 0,
                Pool::Mean => 1,
                Pool::Max => 2,
            },
            fresh: (self.start == SequenceStart::Fresh) as u32,
            reverse_from: u32_of(self.reverse_from, "reverse_from")?,
            _pad: [0; 2],
        })
    }
}

/// Where a chunk's sequences end and where the chunk starts: `lengths` [B] u32 (each
/// sequence's valid steps) and `chunk_info` [2] u32 (inv_count as f32 bits, first step).
#[derive(Clone, Copy)]
pub struct ChunkInfo<'a> {
    pub lengths: &'a Buffer,
    pub chunk_info: &'a Buffer,
}

/// Pools the chunk's hidden states into `z` [B, H], updating the carry `acc` [B, H] and
/// the positions `arg` [B, H] that z came from (last, max).
pub fn pool_forward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &PoolShape,
    hs: &Buffer,
    acc: &Buffer,
    z: &Buffer,
    arg: &Buffer,
    info: ChunkInfo<'_>,
) -> Result<Launch> {
    let bh = shape.batch * shape.hidden;
    need(hs, (shape.steps + 1) * bh, "pool hs")?;
    need(info.lengths, shape.batch, "pool lengths")?;
    for (b, w) in [(acc, "pool acc"), (z, "pool z"), (arg, "pool arg")] {
        need(b, bh, w)?;
    }
    let uniform = u.push(gpu, &shape.params()?);
    let binding = gpu.bind(
        Kernel::PoolForward,
        &[
            uniform.resource(),
            Resource::Storage(hs),
            Resource::Storage(acc),
            Resource::Storage(z),
            Resource::Storage(arg),
            Resource::Storage(info.lengths),
            Resource::Storage(info.chunk_info),
        ],
    );
    Ok(Launch {
        binding,
        groups: groups_for(bh),
        uniform,
    })
}

/// Spreads `dz` [B, H] over `dh_out` [T, B, H], recorded into `rec`: for `last` and `max`
/// pooling dh_out is zeroed and dz scattered onto the step `arg` names (B·H invocations), for
/// `mean` one invocation per element of dh_out (per 4 elements where H is a multiple of 4).
#[allow(clippy::too_many_arguments)]
pub fn pool_backward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &PoolShape,
    dz: &Buffer,
    arg: &Buffer,
    dh_out: &Buffer,
    info: ChunkInfo<'_>,
    rec: &mut Recording,
) -> Result<()> {
    let bh = shape.batch * shape.hidden;
    need(dz, bh, "pool dz")?;
    need(dh_out, shape.steps * bh, "pool dh_out")?;
    let scatter = shape.pool != Pool::Mean;
    let (kernel, invocations) = if scatter {
        rec.clear_range(dh_out, 0, (shape.steps * bh * 4) as u64);
        (Kernel::PoolBackwardScatter, bh)
    } else if shape.hidden.is_multiple_of(4) {
        (Kernel::PoolBackwardMeanQuads, shape.steps * bh / 4)
    } else {
        (Kernel::PoolBackward, shape.steps * bh)
    };
    let uniform = u.push(gpu, &shape.params()?);
    // The scatter reads neither the lengths nor the chunk's place.
    let (lengths, chunk_info) = if scatter {
        (Resource::Unused, Resource::Unused)
    } else {
        (
            Resource::Storage(info.lengths),
            Resource::Storage(info.chunk_info),
        )
    };
    let binding = gpu.bind(
        kernel,
        &[
            uniform.resource(),
            Resource::Storage(dz),
            // The mean kernels do not read the positions.
            if kernel == Kernel::PoolBackwardMeanQuads {
                Resource::Unused
            } else {
                Resource::Storage(arg)
            },
            Resource::Storage(dh_out),
            lengths,
            chunk_info,
        ],
    );
    Launch {
        binding,
        groups: groups_for(invocations),
        uniform,
    }
    .record(rec);
    Ok(())
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct LossParams {
    rows: u32,
    outputs: u32,
    kind: u32,
    activation: u32,
    _pad: [u32; 4],
}

/// The number of values the mean loss divides by: rows for cross-entropy, rows × outputs else.
pub fn loss_count(loss: Loss, rows: usize, outputs: usize) -> usize {
    match loss {
        Loss::CrossEntropy => rows,
        _ => rows * outputs,
    }
}

/// Per-row losses, metrics (see `shaders/loss.wgsl`) and `dy` = d(mean loss)/dy.   y, dy: [R, O]; targets: [R] or [R, O]
pub fn loss_rows(
    gpu: &Gpu,
    u: &mut Uniforms,
    loss: Loss,
    activation: OutputActivation,
    rows: usize,
    outputs: usize,
    y: &Buffer,
    targets: &Buffer,
    dy: &Buffer,
    row_loss: &Buffer,
    mask: &Buffer,
    chunk_info: &Buffer,
    row_metric: &Buffer,
) -> Result<Launch> {
    need(row_metric, rows, "loss row_metric")?;
    need(mask, rows, "loss mask")?;
    need(y, rows * outputs, "loss y")?;
    need(dy, rows * outputs, "loss dy")?;
    need(row_loss, rows, "loss row_loss")?;
    need(
        targets,
        if loss == Loss::CrossEntropy {
            rows
        } else {
            rows * outputs
        },
        "loss targets",
    )?;
    let p = LossParams {
        rows: u32_of(rows, "rows")?,
        outputs: u32_of(outputs, "outputs")?,
        kind: match loss {
            Loss::CrossEntropy => 0,
            Loss::Bce => 1,
            Loss::Mse => 2,
            Loss::Mae => 3,
        },
        activation: match activation {
            OutputActivation::Relu => 1,
            OutputActivation::Sigmoid => 2,
            _ => 0,
        },
        _pad: [0; 4],
    };
    let uniform = u.push(gpu, &p);
    let binding = gpu.bind(
        Kernel::LossRows,
        &[
            uniform.resource(),
            Resource::Storage(y),
            Resource::Storage(targets),
            Resource::Storage(dy),
            Resource::Storage(row_loss),
            Resource::Storage(mask),
            Resource::Storage(chunk_info),
            Resource::Storage(row_metric),
        ],
    );
    Ok(Launch {
        binding,
        groups: groups_for(rows),
        uniform,
    })
}

/// The uniform of the reduction kernels (`shaders/reduce.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct ReduceParams {
    pub count: u32,
    pub columns: u32,
    pub dst_off: u32,
    pub dst2_off: u32,
    /// Unused: the loss scale now travels in `chunk_info` (it changes per chunk).
    pub _unused: f32,
    pub slot: u32,
    /// column_partials: rows per slice.
    pub slice_rows: u32,
    pub _pad: u32,
}

/// `loss_log[slot] = inv_count · Σ row_loss[0..rows]` (inv_count from `chunk_info`); rewrite the slot per chunk with
/// [`set_loss_slot`].
pub fn loss_sum(
    gpu: &Gpu,
    u: &mut Uniforms,
    rows: usize,
    row_loss: &Buffer,
    loss_log: &Buffer,
    chunk_info: &Buffer,
) -> Result<(Launch, ReduceParams)> {
    need(row_loss, rows, "loss_sum row_loss")?;
    let p = ReduceParams {
        count: u32_of(rows, "rows")?,
        columns: 0,
        dst_off: 0,
        dst2_off: 0,
        _unused: 0.0,
        slot: 0,
        slice_rows: 0,
        _pad: 0,
    };
    let uniform = u.push(gpu, &p);
    let binding = gpu.bind(
        Kernel::LossSum,
        &[
            uniform.resource(),
            Resource::Storage(row_loss),
            Resource::Storage(loss_log),
            Resource::Storage(chunk_info),
        ],
    );
    Ok((
        Launch {
            binding,
            groups: [1, 1, 1],
            uniform,
        },
        p,
    ))
}

/// Points a `loss_sum` launch at another slot of its loss log, for the next submit.
pub fn set_loss_slot(gpu: &Gpu, launch: &Launch, params: &ReduceParams, slot: u32) {
    launch.uniform.write(gpu, &ReduceParams { slot, ..*params });
}

/// How the streaming kernels (optimizer, gradient norm, column sums) read and write their
/// 16-byte words: four 4-byte values, or two 8-byte integers (the Longs pipelines, for
/// software adapters with 64-bit integers: [`crate::gpu::AdapterSummary::long_storage_words`]).
/// The same operations in the same order either way: the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageWords {
    Quads,
    Longs,
}

impl StorageWords {
    /// The words the engine uses on `gpu`'s adapter.
    pub fn for_gpu(gpu: &Gpu) -> Self {
        if gpu.adapter().long_storage_words() {
            StorageWords::Longs
        } else {
            StorageWords::Quads
        }
    }

    /// Every kind `gpu` can run (Longs only with 64-bit integers): for tests and benches.
    pub fn available(gpu: &Gpu) -> Vec<Self> {
        let mut out = vec![StorageWords::Quads];
        if gpu.adapter().shader_int64 {
            out.push(StorageWords::Longs);
        }
        out
    }

    fn pick(self, quads: Kernel, longs: Kernel) -> Kernel {
        match self {
            StorageWords::Quads => quads,
            StorageWords::Longs => longs,
        }
    }
}

/// How a column sum reads its rows: one invocation per column (GPUs, or N not a multiple of
/// 4), or 4 columns an invocation in storage words of the given kind (software adapters:
/// `column_sum_quads`, workgroups of 8). The same additions in the same order: the same bits.
pub fn column_words(gpu: &Gpu, columns: usize) -> Option<StorageWords> {
    (gpu.adapter().is_software && columns.is_multiple_of(4)).then(|| StorageWords::for_gpu(gpu))
}

/// `grads[dst + n] (and grads[dst2 + n]) = Σ_r src[r, n]`.   src: [rows, columns]
pub fn column_sum(
    gpu: &Gpu,
    u: &mut Uniforms,
    rows: usize,
    columns: usize,
    dst: usize,
    dst2: Option<usize>,
    src: &Buffer,
    grads: &Buffer,
) -> Result<Launch> {
    let words = column_words(gpu, columns);
    column_sum_in(gpu, u, words, rows, columns, dst, dst2, src, grads)
}

/// [`column_sum`] with its kernel given ([`column_words`]; `Some` needs N a multiple of 4).
#[allow(clippy::too_many_arguments)]
pub fn column_sum_in(
    gpu: &Gpu,
    u: &mut Uniforms,
    words: Option<StorageWords>,
    rows: usize,
    columns: usize,
    dst: usize,
    dst2: Option<usize>,
    src: &Buffer,
    grads: &Buffer,
) -> Result<Launch> {
    need(src, rows * columns, "column_sum src")?;
    need(
        grads,
        dst.max(dst2.unwrap_or(0)) + columns,
        "column_sum grads",
    )?;
    let p = ReduceParams {
        count: u32_of(rows, "rows")?,
        columns: u32_of(columns, "columns")?,
        dst_off: u32_of(dst, "offset")?,
        dst2_off: match dst2 {
            Some(d) => u32_of(d, "offset")?,
            None => u32::MAX,
        },
        _unused: 0.0,
        slot: 0,
        slice_rows: 0,
        _pad: 0,
    };
    let uniform = u.push(gpu, &p);
    let (kernel, groups) = column_kernel(words, columns, 1)?;
    let binding = gpu.bind(
        kernel,
        &[
            uniform.resource(),
            Resource::Storage(src),
            Resource::Storage(grads),
        ],
    );
    Ok(Launch {
        binding,
        groups,
        uniform,
    })
}

/// The kernel and workgroups of a column sum (`slices` > 1: its partial rows; the scalar
/// kernels are `column_sum` and `column_partials`, one invocation a column in workgroups of
/// 256; `column_sum_quads` 4 columns an invocation in workgroups of 8).
fn column_kernel(
    words: Option<StorageWords>,
    columns: usize,
    slices: usize,
) -> Result<(Kernel, [u32; 3])> {
    let slices = u32_of(slices, "column slices")?;
    Ok(match words {
        Some(words) => {
            if !columns.is_multiple_of(4) {
                return Err(Error::Config(format!(
                    "column sums 4 columns an invocation need a multiple of 4 columns, not {columns}"
                )));
            }
            (
                words.pick(Kernel::ColumnSumQuads, Kernel::ColumnSumLongs),
                [columns.div_ceil(32) as u32, slices, 1],
            )
        }
        None if slices > 1 => (
            Kernel::ColumnPartials,
            [columns.div_ceil(256) as u32, slices, 1],
        ),
        None => (Kernel::ColumnSum, [columns.div_ceil(256) as u32, 1, 1]),
    })
}

/// Largest scratch, in values, that [`column_slices`] asks for: S·N ≤ this.
pub const COLUMN_PARTIALS_MAX: usize = 1 << 18;

/// In how many row slices a column sum over `rows` rows of `columns` columns runs (1: one
/// pass, one invocation per column). On a GPU a long R splits into slices of at least 256
/// rows, enough to give about 65,536 invocations. On a software adapter, where a workgroup
/// runs on one thread, columns that fit one workgroup (256 or fewer) are summed in 2 slices
/// of at least 256 rows, so that two threads share the work (a fixed count: the bits do not
/// depend on the machine's cores); more columns already make several workgroups.
/// WGRNN_COLUMN_SLICES=S forces S (for tests and measurements).
pub fn column_slices(software: bool, rows: usize, columns: usize) -> usize {
    if columns == 0 {
        return 1;
    }
    if let Some(s) = std::env::var("WGRNN_COLUMN_SLICES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return s.min(rows).min(COLUMN_PARTIALS_MAX / columns).max(1);
    }
    if software {
        return if columns <= 256 && rows >= 512 { 2 } else { 1 };
    }
    if rows < 1024 {
        return 1;
    }
    (65_536usize.div_ceil(columns))
        .min(rows / 256)
        .min(COLUMN_PARTIALS_MAX / columns)
        .max(1)
}

/// [`column_sum`] in `slices` row slices: partial sums of each slice into `scratch`
/// (`[S, columns]`), then their sum in slice order into `grads` (a fixed order: the same
/// inputs give the same bits). One launch (plain [`column_sum`]) when `slices` is 1.
#[allow(clippy::too_many_arguments)]
pub fn column_sum_split(
    gpu: &Gpu,
    u: &mut Uniforms,
    rows: usize,
    columns: usize,
    dst: usize,
    dst2: Option<usize>,
    src: &Buffer,
    grads: &Buffer,
    scratch: &Buffer,
    slices: usize,
) -> Result<Vec<Launch>> {
    let words = column_words(gpu, columns);
    column_sum_split_in(
        gpu, u, words, rows, columns, dst, dst2, src, grads, scratch, slices,
    )
}

/// [`column_sum_split`] with its kernels given ([`column_words`]).
#[allow(clippy::too_many_arguments)]
pub fn column_sum_split_in(
    gpu: &Gpu,
    u: &mut Uniforms,
    words: Option<StorageWords>,
    rows: usize,
    columns: usize,
    dst: usize,
    dst2: Option<usize>,
    src: &Buffer,
    grads: &Buffer,
    scratch: &Buffer,
    slices: usize,
) -> Result<Vec<Launch>> {
    if slices <= 1 || rows == 0 || columns == 0 {
        return Ok(vec![column_sum_in(
            gpu, u, words, rows, columns, dst, dst2, src, grads,
        )?]);
    }
    let slice_rows = rows.div_ceil(slices);
    let slices = rows.div_ceil(slice_rows);
    need(src, rows * columns, "column_sum src")?;
    need(scratch, slices * columns, "column_sum scratch")?;
    let p = ReduceParams {
        count: u32_of(rows, "rows")?,
        columns: u32_of(columns, "columns")?,
        dst_off: 0,
        dst2_off: u32::MAX,
        _unused: 0.0,
        slot: 0,
        slice_rows: u32_of(slice_rows, "rows")?,
        _pad: 0,
    };
    let uniform = u.push(gpu, &p);
    let (kernel, groups) = column_kernel(words, columns, slices)?;
    let binding = gpu.bind(
        kernel,
        &[
            uniform.resource(),
            Resource::Storage(src),
            Resource::Storage(scratch),
        ],
    );
    let partials = Launch {
        binding,
        groups,
        uniform,
    };
    let total = column_sum_in(gpu, u, words, slices, columns, dst, dst2, scratch, grads)?;
    Ok(vec![partials, total])
}

/// The global L2 norm of `grads[0..count]` into `norm[0]` (and `norm_log[slot]`), in two
/// fixed-order stages; `norm[1]` flags a non-finite norm or loss (`loss_log[slot]`), which
/// makes the optimizer skip the step. Point it at a slot with [`set_loss_slot`].
pub fn grad_norm(
    gpu: &Gpu,
    u: &mut Uniforms,
    count: usize,
    grads: &Buffer,
    partials: &Buffer,
    norm: &Buffer,
    norm_log: &Buffer,
    loss_log: &Buffer,
) -> Result<([Launch; 2], ReduceParams)> {
    let words = StorageWords::for_gpu(gpu);
    grad_norm_in(
        gpu, u, words, count, grads, partials, norm, norm_log, loss_log,
    )
}

/// [`grad_norm`] reading the gradients in the given words.
#[allow(clippy::too_many_arguments)]
pub fn grad_norm_in(
    gpu: &Gpu,
    u: &mut Uniforms,
    words: StorageWords,
    count: usize,
    grads: &Buffer,
    partials: &Buffer,
    norm: &Buffer,
    norm_log: &Buffer,
    loss_log: &Buffer,
) -> Result<([Launch; 2], ReduceParams)> {
    need(norm, 2, "grad_norm norm")?;
    need(
        grads,
        count.next_multiple_of(4),
        "grad_norm grads (whole vec4s)",
    )?;
    need(partials, NORM_PARTIALS, "grad_norm partials")?;
    let p = ReduceParams {
        count: u32_of(count, "parameters")?,
        columns: NORM_PARTIALS as u32,
        dst_off: 0,
        dst2_off: 0,
        _unused: 0.0,
        slot: 0,
        slice_rows: 0,
        _pad: 0,
    };
    let uniform = u.push(gpu, &p);
    let first = Launch {
        binding: gpu.bind(
            words.pick(Kernel::SquarePartials, Kernel::SquarePartialsLongs),
            &[
                uniform.resource(),
                Resource::Storage(grads),
                Resource::Storage(partials),
            ],
        ),
        groups: [(NORM_PARTIALS / 256) as u32, 1, 1],
        uniform: uniform.clone(),
    };
    let second = Launch {
        binding: gpu.bind(
            Kernel::NormFinalize,
            &[
                uniform.resource(),
                Resource::Storage(partials),
                Resource::Storage(norm),
                Resource::Storage(norm_log),
                Resource::Storage(loss_log),
            ],
        ),
        groups: [1, 1, 1],
        uniform,
    };
    Ok(([first, second], p))
}

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
/// to a multiple of 4 values (the padding is scratch).
pub fn optimizer_step(
    gpu: &Gpu,
    u: &mut Uniforms,
    rule: UpdateRule,
    count: usize,
    params: &Buffer,
    grads: &Buffer,
    norm: &Buffer,
    m: &Buffer,
    v: &Buffer,
) -> Result<Launch> {
    let words = StorageWords::for_gpu(gpu);
    optimizer_step_in(gpu, u, words, rule, count, params, grads, norm, m, v)
}

/// [`optimizer_step`] reading and writing the given words.
#[allow(clippy::too_many_arguments)]
pub fn optimizer_step_in(
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

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct CastParams {
    count: u32,
    offset: u32,
    rows: u32,
    cols: u32,
}

/// `dst[offset + i] = src[offset + i]` for `i < count`, converted to `dst`'s element type
/// (f32 ↔ f16).
pub fn cast(
    gpu: &Gpu,
    u: &mut Uniforms,
    offset: usize,
    count: usize,
    src: &Buffer,
    dst: &Buffer,
) -> Result<Launch> {
    need(src, offset + count, "cast src")?;
    need(dst, offset + count, "cast dst")?;
    convert(gpu, u, Kernel::Cast, offset, count, (0, 0), src, dst)
}

/// `dst[c·rows + r] = src[offset + r·cols + c]`: the `[rows, cols]` block of `src` at
/// `offset`, transposed into `dst` (`[cols, rows]` at 0), in `dst`'s element type.
pub fn transpose(
    gpu: &Gpu,
    u: &mut Uniforms,
    offset: usize,
    rows: usize,
    cols: usize,
    src: &Buffer,
    dst: &Buffer,
) -> Result<Launch> {
    let count = rows * cols;
    if count > 0 {
        need(src, offset + count, "transpose src")?;
    }
    need(dst, count, "transpose dst")?;
    convert(
        gpu,
        u,
        Kernel::Transpose,
        offset,
        count,
        (rows, cols),
        src,
        dst,
    )
}

/// One launch of a `shaders/convert.wgsl` kernel over `count` elements.
#[allow(clippy::too_many_arguments)]
fn convert(
    gpu: &Gpu,
    u: &mut Uniforms,
    kernel: Kernel,
    offset: usize,
    count: usize,
    (rows, cols): (usize, usize),
    src: &Buffer,
    dst: &Buffer,
) -> Result<Launch> {
    let uniform = u.push(
        gpu,
        &CastParams {
            count: u32_of(count, "count")?,
            offset: u32_of(offset, "offset")?,
            rows: u32_of(rows, "rows")?,
            cols: u32_of(cols, "cols")?,
        },
    );
    let binding = gpu.bind(
        kernel,
        &[
            uniform.resource(),
            Resource::Storage(src),
            Resource::Storage(dst),
        ],
    );
    Ok(Launch {
        binding,
        groups: groups_for(count),
        uniform,
    })
}
