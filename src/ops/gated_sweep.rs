//! Launcher for the gated cells' sweeps (`gated_quads_sweep_forward` / `_backward` in
//! `shaders/gemm_quads.wgsl`): an LSTM's or GRU's steps of a chunk in one dispatch each way,
//! a workgroup per 32 sequences looping over the steps (each step's recurrent product, then
//! its cell math), for [`super::RecurrenceKernel::GemmSweep`] and `GemmSweepLongs` with
//! gated cells. The same sums in the same order as the GEMM-based steps, so the same bits.
//! Buffer shapes as in `shaders/gated_cell.wgsl`'s header.

use super::gated::{GatedBuffers, GatedShape};
use super::gemm::GemmParams;
use super::{need, u32_of, GemmSpec, Launch, Operand, Uniforms};
use crate::error::Result;
use crate::gpu::{Buffer, Dtype, Gpu, Kernel, Resource};
use crate::model::Cell;

/// Which steps a sweep runs, and which way.
#[derive(Clone, Copy, Debug)]
pub(super) enum SweepSteps {
    /// Steps 0 .. T - 1 (all of the chunk's), reading W_hh in `params`.
    Forward,
    /// Steps T - 2 down to 0 (the last step, which has no product, runs on its own first),
    /// reading W_hhᵀ [H, G·H] from its copy at offset 0.
    Backward,
}

/// The sweep over `which` steps as one launch, with 8-byte storage words for W_hh's loads
/// where `long_words` ([`Kernel::long_words`]). `whh`: `b.params` forward, the transposed
/// copy backward. None where it does not apply (an adapter without 8-lane subgroups, or
/// without 64-bit integers for `long_words`; an operand not f32, H or W_hh's offset not a
/// multiple of 4, or no step to sweep); the caller then runs the steps one by one.
pub(super) fn gated_sweep(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &GatedShape,
    b: &GatedBuffers<'_>,
    which: SweepSteps,
    long_words: bool,
    whh: &Buffer,
) -> Result<Option<Launch>> {
    let (batch, h, steps) = (shape.batch, shape.hidden, shape.steps);
    let gates = shape.cell.gates();
    let gh = gates * h;
    let lstm = shape.cell == Cell::Lstm;
    let (sweep_steps, first_t) = match which {
        SweepSteps::Forward => (steps, 0),
        SweepSteps::Backward => (steps.saturating_sub(1), steps.saturating_sub(2)),
    };
    let state = if lstm { b.cs } else { b.dhh };
    let operands = [
        b.params, b.pre, b.hs, b.cache, b.dh_out, b.da, b.dstate, b.step_sum, whh, state,
    ];
    // The kernels' subgroup of 8 lanes (a workgroup), as the quads GEMMs', and 64-bit integers
    // for the 8-byte words.
    let adapter = gpu.adapter();
    let applies = adapter.fixed_subgroup_size == Some(8)
        && (adapter.shader_int64 || !long_words)
        && sweep_steps > 0
        && batch > 0
        && h.is_multiple_of(4)
        && shape.whh_off.is_multiple_of(4)
        && operands.iter().all(|buffer| buffer.dtype() == Dtype::F32);
    if !applies {
        return Ok(None);
    }
    let forward = matches!(which, SweepSteps::Forward);
    let entry = match (forward, long_words, lstm) {
        (true, false, true) => Kernel::LstmQuadsSweepForward,
        (true, true, true) => Kernel::LstmLongsSweepForward,
        (false, false, true) => Kernel::LstmQuadsSweepBackward,
        (false, true, true) => Kernel::LstmLongsSweepBackward,
        (true, false, false) => Kernel::GruQuadsSweepForward,
        (true, true, false) => Kernel::GruLongsSweepForward,
        (false, false, false) => Kernel::GruQuadsSweepBackward,
        (false, true, false) => Kernel::GruLongsSweepBackward,
    };
    // The product of each step: forward [B, G·H] = h[t]·W_hhᵀ + b_hh (K = H), backward
    // [B, H] = dgates[t + 1]·W_hh (K = G·H, W_hhᵀ's lines of G·H).
    let spec = if forward {
        need(whh, shape.whh_off + gh * h, "gated sweep W_hh")?;
        need(b.step_sum, batch * gh, "gated sweep step sums")?;
        GemmSpec {
            m: batch,
            n: gh,
            k: h,
            a: Operand::row_major(0, h),
            b: Operand::transposed(shape.whh_off, h),
            c_offset: 0,
            bias: Some(shape.bhh_off),
            bias2: None,
            accumulate: false,
        }
    } else {
        need(whh, h * gh, "gated sweep W_hh's copy")?;
        need(b.step_sum, batch * h, "gated sweep step sums")?;
        GemmSpec {
            m: batch,
            n: h,
            k: gh,
            a: Operand::row_major(0, gh),
            b: Operand::transposed(0, gh),
            c_offset: 0,
            bias: None,
            bias2: None,
            accumulate: false,
        }
    };
    let mut params = GemmParams::of(&spec, 0, 0, 0, 1)?;
    params.steps = u32_of(sweep_steps, "gated sweep steps")?;
    params.cell_batch = u32_of(batch, "batch")?;
    params.cell_hidden = u32_of(h, "hidden")?;
    params.cell_t0 = u32_of(first_t, "first step")?;
    let uniform = u.push(gpu, &params);
    // Binding order as listed in the shader: slots the kernel declares but does not read take
    // a buffer of the right access (scratch for read-write, W_hh's for read-only).
    let mut resources = vec![Resource::Unused; 24];
    resources[0] = uniform.resource();
    resources[3] = Resource::Storage(whh);
    resources[9] = Resource::Storage(whh);
    resources[15] = Resource::Storage(b.step_sum);
    if forward {
        // C's words: h (the product's Y, the cell's h[t + 1]).
        resources[14] = Resource::Storage(b.hs);
        resources[16] = Resource::Storage(b.pre);
        resources[17] = Resource::Storage(if lstm { b.cs } else { b.step_sum });
        resources[18] = Resource::Storage(b.cache);
    } else {
        // C's words: the gradients the product reads (LSTM da, GRU dhh).
        resources[14] = Resource::Storage(if lstm { b.da } else { b.dhh });
        resources[19] = Resource::Storage(if lstm { b.cs } else { b.hs });
        resources[20] = Resource::Storage(b.cache);
        resources[21] = Resource::Storage(b.dh_out);
        resources[22] = Resource::Storage(if lstm { b.step_sum } else { b.da });
        resources[23] = Resource::Storage(b.dstate);
    }
    Ok(Some(Launch {
        binding: gpu.bind(entry, &resources),
        groups: [u32_of(batch.div_ceil(32), "sweep sequence tiles")?, 1, 1],
        uniform,
    }))
}
