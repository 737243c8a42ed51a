//! Launchers for `shaders/gated_cell.wgsl`: one LSTM or GRU step, forward or backward.
//! Buffer shapes are documented in the shader's header.

// One argument per binding slot reads clearer than a struct per kernel.
#![allow(clippy::too_many_arguments)]

use super::gated_sweep::{gated_sweep, SweepSteps};
use super::rnn_gemm::{
    reads_transposed_whh, step_backward_product, step_forward_product, StepProduct,
};
use super::{gemm_launches, groups_for, need, u32_of, GemmKernel, GemmSpec, Launch, Operand};
use super::{RecurrenceKernel, Uniforms};
use crate::error::{Error, Result};
use crate::gpu::{Buffer, Gpu, Kernel, Resource};
use crate::model::Cell;
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GatedParams {
    t: u32,
    steps: u32,
    batch: u32,
    hidden: u32,
    whh_off: u32,
    bhh_off: u32,
    /// Partial products in `step_sum` (a backward product split over K; 1 elsewhere).
    slices: u32,
    _pad: u32,
}

/// One gated recurrence sweep: `steps` steps of `batch` sequences of `hidden` units.
#[derive(Clone, Copy, Debug)]
pub struct GatedShape {
    pub cell: Cell,
    pub steps: usize,
    pub batch: usize,
    pub hidden: usize,
    /// Element offsets of weight_hh_l0 `[G·H, H]` and bias_hh_l0 `[G·H]` in params.
    pub whh_off: usize,
    pub bhh_off: usize,
}

/// The buffers of a gated sweep (shapes in `shaders/gated_cell.wgsl`).
pub struct GatedBuffers<'a> {
    pub params: &'a Buffer,
    pub pre: &'a Buffer,    // [T, B, G·H]
    pub hs: &'a Buffer,     // [T + 1, B, H]
    pub cs: &'a Buffer,     // [T + 1, B, H] (LSTM)
    pub cache: &'a Buffer,  // [T, B, 4H]
    pub dh_out: &'a Buffer, // [T, B, H]
    pub da: &'a Buffer,     // [T, B, G·H]
    pub dhh: &'a Buffer,    // [T, B, G·H] (GRU)
    pub dstate: &'a Buffer, // [T, B, H]
    /// [B, G·H] one step's recurrent product (GEMM-based steps).
    pub step_sum: &'a Buffer,
    /// [H, G·H] room for W_hhᵀ, which the quads GEMMs' backward products read
    /// (`rnn_gemm::reads_transposed_whh`); None reads W_hh in place.
    pub whh_t: Option<&'a Buffer>,
}

impl GatedShape {
    /// Workgroups of a launch: the fused per-step kernels take 64 units per workgroup along
    /// x and four sequences per invocation along y; the GEMM-based steps' cell kernels one
    /// invocation per (b, j); the chunk-persistent ones a workgroup per sequence.
    fn launch_groups(&self, gemm: bool, persistent: bool) -> Result<[u32; 3]> {
        Ok(if persistent {
            [u32_of(self.batch, "batch")?, 1, 1]
        } else if gemm {
            groups_for(self.batch * self.hidden)
        } else {
            [
                self.hidden.div_ceil(64) as u32,
                u32_of(self.batch.div_ceil(4), "batch")?,
                1,
            ]
        })
    }

    fn params(&self, t: usize) -> Result<GatedParams> {
        Ok(GatedParams {
            t: u32_of(t, "step")?,
            steps: u32_of(self.steps, "steps")?,
            batch: u32_of(self.batch, "batch")?,
            hidden: u32_of(self.hidden, "hidden")?,
            whh_off: u32_of(self.whh_off, "offset")?,
            bhh_off: u32_of(self.bhh_off, "offset")?,
            slices: 1,
            _pad: 0,
        })
    }

    fn check(&self, b: &GatedBuffers<'_>) -> Result<()> {
        let (t, bh) = (self.steps, self.batch * self.hidden);
        let gbh = self.cell.gates() * bh;
        need(b.pre, t * gbh, "gated pre")?;
        need(b.hs, (t + 1) * bh, "gated hs")?;
        need(b.cache, t * 4 * bh, "gated cache")?;
        need(b.dh_out, t * bh, "gated dh_out")?;
        need(b.da, t * gbh, "gated da")?;
        need(b.dstate, t * bh, "gated dstate")?;
        match self.cell {
            Cell::Lstm => need(b.cs, (t + 1) * bh, "gated cs"),
            Cell::Gru => need(b.dhh, t * gbh, "gated dhh"),
            Cell::Rnn => Err(Error::Config(
                "the gated kernels run lstm and gru cells, not rnn".into(),
            )),
        }
    }
}

/// The forward sweep, step 0 first: one fused launch per step, or (`Gemm`) per step the
/// product `step_sum = h·W_hhᵀ + b_hh` in that formulation and the cell math.
pub fn gated_forward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &GatedShape,
    recurrence: RecurrenceKernel,
    b: &GatedBuffers<'_>,
) -> Result<Vec<Launch>> {
    shape.check(b)?;
    let gemm = gemm_of(recurrence);
    let (batch, h, gh) = (shape.batch, shape.hidden, shape.cell.gates() * shape.hidden);
    if gemm.is_some() {
        need(b.step_sum, batch * gh, "gated step sum")?;
    }
    // Chunk-persistent: one launch sweeps every step (its kernel ignores t).
    let persistent = recurrence == RecurrenceKernel::Persistent;
    let launch_steps: Vec<usize> = if persistent {
        vec![0]
    } else {
        (0..shape.steps).collect()
    };
    // A sweep: all steps in one dispatch where it applies (else step by step, as `Gemm`).
    if let Some(long_words) = sweep_words(recurrence) {
        if let Some(sweep) =
            gated_sweep(gpu, u, shape, b, SweepSteps::Forward, long_words, b.params)?
        {
            return Ok(vec![sweep]);
        }
    }
    let mut out = Vec::new();
    for t in launch_steps {
        if let Some(kernel) = gemm {
            let gates = shape.cell.gates();
            let product =
                step_forward_product(batch, h, gates, t, shape.whh_off, Some(shape.bhh_off));
            out.extend(gemm_launches(
                gpu, u, &product, kernel, b.hs, b.params, b.params, b.step_sum,
            )?);
        }
        let uniform = u.push(gpu, &shape.params(t)?);
        let first = if gemm.is_some() { b.step_sum } else { b.params };
        let mut resources = vec![
            uniform.resource(),
            Resource::Storage(first),
            Resource::Storage(b.pre),
            Resource::Storage(b.hs),
        ];
        let kernel = match (shape.cell == Cell::Lstm, gemm.is_some(), persistent) {
            (true, _, true) => Kernel::LstmChunkForward,
            (false, _, true) => Kernel::GruChunkForward,
            (true, false, false) => Kernel::LstmStepForward,
            (true, true, false) => Kernel::LstmStepCombineForward,
            (false, false, false) => Kernel::GruStepForward,
            (false, true, false) => Kernel::GruStepCombineForward,
        };
        if shape.cell == Cell::Lstm {
            resources.push(Resource::Storage(b.cs));
        }
        resources.push(Resource::Storage(b.cache));
        out.push(Launch {
            binding: gpu.bind(kernel, &resources),
            groups: shape.launch_groups(gemm.is_some(), persistent)?,
            uniform,
        });
    }
    Ok(out)
}

/// Whether `recurrence` sweeps a chunk's steps in one dispatch (`gated_quads_sweep_*`, for the
/// window quads kernel's sweeps), and with 8-byte storage words: Some(long_words).
fn sweep_words(recurrence: RecurrenceKernel) -> Option<bool> {
    match recurrence {
        RecurrenceKernel::GemmSweep(GemmKernel::WindowQuads) => Some(false),
        RecurrenceKernel::GemmSweepLongs(GemmKernel::WindowQuads) => Some(true),
        _ => None,
    }
}

/// The GEMM formulation of a GEMM-based recurrence; None for the fused per-step kernels. The
/// gated cells run the Elman-only fused steps (the product finishing the step in its store)
/// as the plain GEMM per step, the sweeps in one dispatch where [`gated_sweep`] applies (else
/// as the plain GEMM per step), and the split one as the plain GEMM in their forward sweep
/// (whose product carries b_hh); their backward products split over K
/// ([`gated_backward`]).
fn gemm_of(recurrence: RecurrenceKernel) -> Option<GemmKernel> {
    match recurrence {
        RecurrenceKernel::Gemm(kernel)
        | RecurrenceKernel::GemmFused(kernel)
        | RecurrenceKernel::GemmSweep(kernel)
        | RecurrenceKernel::GemmSweepLongs(kernel)
        | RecurrenceKernel::GemmSplit(kernel, _) => Some(kernel),
        RecurrenceKernel::PerStep | RecurrenceKernel::Persistent => None,
    }
}

/// The backward sweep, last step first: one fused launch per step, or (`Gemm`) per step the
/// product `step_sum = dgates[t+1]·W_hh` in that formulation (none at the last step) and the
/// cell's backward.
pub fn gated_backward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &GatedShape,
    recurrence: RecurrenceKernel,
    b: &GatedBuffers<'_>,
) -> Result<Vec<Launch>> {
    shape.check(b)?;
    let gemm = gemm_of(recurrence);
    let (batch, h) = (shape.batch, shape.hidden);
    if gemm.is_some() {
        need(b.step_sum, batch * h, "gated step sum")?;
    }
    // Slices of K for each step's product (`GemmSplit`), 1: the whole product at once.
    // Each step's product whole, or in slices of K (`GemmSplit`).
    let mode = match recurrence {
        RecurrenceKernel::GemmSplit(_, slices) => StepProduct::Split(slices),
        _ => StepProduct::Separate,
    };
    // The gradient the recurrent product reads: da for an LSTM, dhh for a GRU.
    let src = if shape.cell == Cell::Lstm {
        b.da
    } else {
        b.dhh
    };
    let persistent = recurrence == RecurrenceKernel::Persistent;
    let launch_steps: Vec<usize> = if persistent {
        vec![0]
    } else {
        (0..shape.steps).rev().collect()
    };
    let mut out = Vec::new();
    let gh = shape.cell.gates() * h;
    // W_hh as the products read it: in place (B(k, n) = W_hh[k, n]), or from its transposed
    // copy (B(k, n) = W_hhᵀ[n, k]) for the quads GEMMs, written first.
    let copy = match (gemm, b.whh_t) {
        (Some(kernel), Some(copy)) if reads_transposed_whh(kernel) && shape.steps > 1 => {
            out.push(super::transpose(
                gpu,
                u,
                shape.whh_off,
                gh,
                h,
                b.params,
                copy,
            )?);
            Some(copy)
        }
        _ => None,
    };
    // A sweep: steps T - 2 .. 0 in one dispatch, after the last step's cell kernel (which has
    // no product), where it applies (with the transposed copy); else step by step.
    let mut swept = match (sweep_words(recurrence), copy) {
        (Some(long_words), Some(copy)) => {
            gated_sweep(gpu, u, shape, b, SweepSteps::Backward, long_words, copy)?
        }
        _ => None,
    };
    let sweeping = swept.is_some();
    for t in launch_steps {
        if sweeping && t + 1 < shape.steps {
            out.extend(swept.take());
            continue;
        }
        let mut slices = 1;
        if let (Some(kernel), true) = (gemm, t + 1 < shape.steps) {
            let mut product = step_backward_product(batch, h, shape.cell.gates(), t, shape.whh_off);
            let weights = match copy {
                Some(copy) => {
                    product = GemmSpec {
                        b: Operand::transposed(0, gh),
                        ..product
                    };
                    copy
                }
                None => b.params,
            };
            let (launches, taken) =
                mode.launches(gpu, u, &product, kernel, src, weights, b.step_sum)?;
            out.extend(launches);
            slices = taken;
        }
        out.push({
            let params = GatedParams {
                slices: u32_of(slices, "slices")?,
                ..shape.params(t)?
            };
            let uniform = u.push(gpu, &params);
            let first = if gemm.is_some() { b.step_sum } else { b.params };
            let mut resources = vec![uniform.resource(), Resource::Storage(first)];
            // Binding order as listed in the shader's header.
            let kernel = if shape.cell == Cell::Lstm {
                resources.extend([
                    Resource::Storage(b.cs),
                    Resource::Storage(b.cache),
                    Resource::Storage(b.dh_out),
                    Resource::Storage(b.da),
                    Resource::Storage(b.dstate),
                ]);
                if persistent {
                    Kernel::LstmChunkBackward
                } else if gemm.is_some() {
                    Kernel::LstmStepCombineBackward
                } else {
                    Kernel::LstmStepBackward
                }
            } else {
                resources.extend([
                    Resource::Storage(b.hs),
                    Resource::Storage(b.cache),
                    Resource::Storage(b.dh_out),
                    Resource::Storage(b.da),
                    Resource::Storage(b.dhh),
                    Resource::Storage(b.dstate),
                ]);
                if persistent {
                    Kernel::GruChunkBackward
                } else if gemm.is_some() {
                    Kernel::GruStepCombineBackward
                } else {
                    Kernel::GruStepBackward
                }
            };
            Launch {
                binding: gpu.bind(kernel, &resources),
                groups: shape.launch_groups(gemm.is_some(), persistent)?,
                uniform,
            }
        });
    }
    Ok(out)
}
