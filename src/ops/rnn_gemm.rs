//! The Elman recurrence as one GEMM per step (any formulation, so the tuned GEMM serves the
//! recurrence too) plus a small kernel that finishes the step (`rnn_step_combine_*` in
//! `shaders/rnn_cell.wgsl`), or (`fused`) the product finishing the step in its own store
//! ([`gemm_step`]: one dispatch a step, not two), or ([`StepProduct::Sweep`]) those fused
//! steps of a whole sweep in one dispatch ([`gemm_sweep`]). Same sums in the same order as
//! the fused per-step kernels either way. `step_sum`: [B, H] scratch for the step's product.
//! Or ([`StepProduct::Split`]) each step's product in S slices of K into `step_sum`
//! [S, B, H], which the finishing kernel sums in slice order: S times the workgroups for a
//! small B x H (a GPU's recurrence at small batch), in a different order of additions.

// One argument per binding slot, as in the other launchers.
#![allow(clippy::too_many_arguments)]

use super::RecurrenceShape;
use super::{
    gemm_launches, gemm_partials, gemm_step, gemm_sweep, groups_for, need, GemmKernel, GemmSpec,
    Launch, Operand, StepCopies, StepEpilogue, Uniforms,
};
use crate::error::Result;
use crate::gpu::{Buffer, Gpu, Kernel, Resource};

/// How each step's product is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepProduct {
    /// One product into `step_sum` [B, H], then the finishing kernel.
    Separate,
    /// The product finishing the step in its own store ([`gemm_step`]): one dispatch a step.
    Fused,
    /// The product in about this many slices of K into `step_sum` [S, B, H]
    /// ([`gemm_partials`]), summed in slice order by the finishing kernel.
    Split(usize),
    /// [`StepProduct::Fused`]'s steps, all of a sweep in one dispatch ([`gemm_sweep`], with
    /// 8-byte storage words where `long_words`) where it applies, else one by one.
    Sweep { long_words: bool },
}

impl StepProduct {
    /// The step's product into `step_sum` (none for [`StepProduct::Fused`]): its launches and
    /// how many partial products it leaves there.
    pub(super) fn launches(
        self,
        gpu: &Gpu,
        u: &mut Uniforms,
        product: &GemmSpec,
        gemm: GemmKernel,
        a: &Buffer,
        b: &Buffer,
        step_sum: &Buffer,
    ) -> Result<(Vec<Launch>, usize)> {
        match self {
            StepProduct::Fused | StepProduct::Sweep { .. } => Ok((Vec::new(), 1)),
            StepProduct::Separate => {
                Ok((gemm_launches(gpu, u, product, gemm, a, b, b, step_sum)?, 1))
            }
            StepProduct::Split(slices) => {
                let (partials, taken, _) =
                    gemm_partials(gpu, u, product, gemm, slices, a, b, step_sum)?;
                Ok((vec![partials], taken))
            }
        }
    }
}

/// The finishing kernel of step `t`, summing `slices` partial products in `step_sum`.
fn combine(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &RecurrenceShape,
    t: usize,
    slices: usize,
    kernel: Kernel,
    resources: &[&Buffer],
) -> Result<Launch> {
    let uniform = u.push(gpu, &shape.split_params(t, slices)?);
    let mut bound = vec![uniform.resource()];
    bound.extend(resources.iter().map(|b| Resource::Storage(b)));
    // 4 elements an invocation where B·H is a multiple of 4 (same operations per element).
    let bh = shape.batch * shape.hidden;
    let (kernel, invocations) = match kernel {
        Kernel::RnnStepCombineForward if bh.is_multiple_of(4) => {
            (Kernel::RnnStepCombineForwardQuads, bh / 4)
        }
        Kernel::RnnStepCombineBackward if bh.is_multiple_of(4) => {
            (Kernel::RnnStepCombineBackwardQuads, bh / 4)
        }
        other => (other, bh),
    };
    Ok(Launch {
        binding: gpu.bind(kernel, &bound),
        groups: groups_for(invocations),
        uniform,
    })
}

/// The two [B, H] copies a fused sweep with A's windows alternates between
/// ([`StepCopies`]): step t reads `copies[t % 2]` (forward h[t]; backward da[t + 1], so
/// `copies[(t + 1) % 2]`) and writes the other. None where `gemm` does not read A through
/// windows or no buffers were given (the step then reads A through C, [`gemm_step`]).
fn step_copies<'a>(
    gemm: GemmKernel,
    mode: StepProduct,
    buffers: Option<[&'a Buffer; 2]>,
    read: usize,
) -> Option<StepCopies<'a>> {
    let [first, second] =
        buffers.filter(|_| mode == StepProduct::Fused && gemm == GemmKernel::WindowQuadsA)?;
    let (read, write) = if read.is_multiple_of(2) {
        (first, second)
    } else {
        (second, first)
    };
    Some(StepCopies { read, write })
}

/// Forward: per step, `step_sum = hs[t]·W_hhᵀ` (in slices of K for [`StepProduct::Split`]),
/// then `hs[t+1] = act(pre[t] + step_sum)` ([`StepProduct::Fused`]: in one dispatch).
/// `state_copies`: two [B, H] f32 buffers for a fused sweep with A's windows (h[0] is
/// copied into the first before the sweep; [`StepCopies`]).
pub fn forward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &RecurrenceShape,
    gemm: GemmKernel,
    mode: StepProduct,
    params: &Buffer,
    pre: &Buffer,
    hs: &Buffer,
    step_sum: &Buffer,
    state_copies: Option<[&Buffer; 2]>,
) -> Result<Vec<Launch>> {
    let (b, h) = (shape.batch, shape.hidden);
    need(pre, shape.steps * b * h, "rnn forward pre")?;
    need(hs, (shape.steps + 1) * b * h, "rnn forward hs")?;
    need(step_sum, b * h, "rnn step sum")?;
    let mut out = Vec::new();
    if let Some(copies) = step_copies(gemm, mode, state_copies, 0).filter(|_| shape.steps > 0) {
        // h[0] into the copy the first step reads (a one-row transpose: a copy).
        out.push(super::transpose(gpu, u, 0, 1, b * h, hs, copies.read)?);
    }
    let relu = shape.activation == crate::model::Activation::Relu;
    if let StepProduct::Sweep { long_words } = mode {
        let first = GemmSpec {
            c_offset: b * h,
            ..step_forward_product(b, h, 1, 0, shape.whh_off, None)
        };
        let epilogue = StepEpilogue::Forward {
            relu,
            pre_offset: 0,
        };
        let shift = (b * h) as isize;
        if let Some(sweep) = gemm_sweep(
            gpu,
            u,
            long_words,
            &first,
            shape.steps,
            shift,
            epilogue,
            params,
            hs,
            pre,
            pre,
        )? {
            return Ok(vec![sweep]);
        }
    }
    for t in 0..shape.steps {
        let product = step_forward_product(b, h, 1, t, shape.whh_off, None);
        if matches!(mode, StepProduct::Fused | StepProduct::Sweep { .. }) {
            let epilogue = StepEpilogue::Forward {
                relu,
                pre_offset: t * b * h,
            };
            let into_next = GemmSpec {
                c_offset: (t + 1) * b * h,
                ..product
            };
            let copies = step_copies(gemm, mode, state_copies, t);
            out.extend(gemm_step(
                gpu, u, &into_next, gemm, epilogue, params, hs, pre, pre, copies,
            )?);
            continue;
        }
        let (launches, slices) = mode.launches(gpu, u, &product, gemm, hs, params, step_sum)?;
        out.extend(launches);
        out.push(combine(
            gpu,
            u,
            shape,
            t,
            slices,
            Kernel::RnnStepCombineForward,
            &[step_sum, pre, hs],
        )?);
    }
    Ok(out)
}

/// Backward, last step first: `step_sum = da[t+1]·W_hh` (none at the chunk's last step; in
/// slices of K for [`StepProduct::Split`]), then `da[t] = (dh_out[t] + step_sum)·act'(hs[t+1])`
/// ([`StepProduct::Fused`]: in one dispatch, but the last step's, which has no product;
/// with `state_copies`, as forward, da[T - 1] is then copied into the one step T - 2
/// reads). With `whh_t` ([H, H] at least) and a quads GEMM
/// ([`reads_transposed_whh`]), the sweep first copies W_hhᵀ into it, and the products read
/// W_hh from the copy along k with unit stride, which the quads loads need.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &RecurrenceShape,
    gemm: GemmKernel,
    mode: StepProduct,
    params: &Buffer,
    whh_t: Option<&Buffer>,
    hs: &Buffer,
    dh_out: &Buffer,
    da: &Buffer,
    step_sum: &Buffer,
    state_copies: Option<[&Buffer; 2]>,
) -> Result<Vec<Launch>> {
    let (b, h) = (shape.batch, shape.hidden);
    need(hs, (shape.steps + 1) * b * h, "rnn backward hs")?;
    need(dh_out, shape.steps * b * h, "rnn backward dh_out")?;
    need(da, shape.steps * b * h, "rnn backward da")?;
    need(step_sum, b * h, "rnn step sum")?;
    let mut out = Vec::new();
    // W_hh as the products read it: in place (row-major, B(k, n) = W_hh[k, n]), or from
    // its transposed copy (B(k, n) = W_hhᵀ[n, k]).
    let (weights, whh) = match whh_t.filter(|_| reads_transposed_whh(gemm) && shape.steps > 1) {
        Some(copy) => {
            out.push(super::transpose(gpu, u, shape.whh_off, h, h, params, copy)?);
            (copy, Operand::transposed(0, h))
        }
        None => (params, Operand::row_major(shape.whh_off, h)),
    };
    let relu = shape.activation == crate::model::Activation::Relu;
    // A sweep: the last step's finishing kernel (no product there), then steps T - 2 .. 0 in
    // one dispatch.
    let mut swept = None;
    if let (StepProduct::Sweep { long_words }, true) = (mode, shape.steps > 1) {
        let t = shape.steps - 2;
        let first = GemmSpec {
            c_offset: t * b * h,
            b: whh,
            ..step_backward_product(b, h, 1, t, shape.whh_off)
        };
        let epilogue = StepEpilogue::Backward {
            relu,
            dh_offset: t * b * h,
            h_offset: (t + 1) * b * h,
        };
        let shift = -((b * h) as isize);
        swept = gemm_sweep(
            gpu,
            u,
            long_words,
            &first,
            t + 1,
            shift,
            epilogue,
            weights,
            da,
            dh_out,
            hs,
        )?;
    }
    let sweeping = swept.is_some();
    for t in (0..shape.steps).rev() {
        if sweeping && t + 1 < shape.steps {
            out.extend(swept.take());
            continue;
        }
        if matches!(mode, StepProduct::Fused | StepProduct::Sweep { .. }) && t + 1 < shape.steps {
            let epilogue = StepEpilogue::Backward {
                relu,
                dh_offset: t * b * h,
                h_offset: (t + 1) * b * h,
            };
            let into_this = GemmSpec {
                c_offset: t * b * h,
                b: whh,
                ..step_backward_product(b, h, 1, t, shape.whh_off)
            };
            let copies = step_copies(gemm, mode, state_copies, t + 1);
            out.extend(gemm_step(
                gpu, u, &into_this, gemm, epilogue, weights, da, dh_out, hs, copies,
            )?);
            continue;
        }
        let mut slices = 1;
        if t + 1 < shape.steps {
            let product = GemmSpec {
                b: whh,
                ..step_backward_product(b, h, 1, t, shape.whh_off)
            };
            let (launches, taken) = mode.launches(gpu, u, &product, gemm, da, weights, step_sum)?;
            out.extend(launches);
            slices = taken;
        }
        out.push(combine(
            gpu,
            u,
            shape,
            t,
            slices,
            Kernel::RnnStepCombineBackward,
            &[step_sum, hs, dh_out, da],
        )?);
        if let Some(copies) = step_copies(gemm, mode, state_copies, t).filter(|_| t > 0) {
            // da[t] (the last step's) into the copy step t - 1 reads.
            out.push(super::transpose(
                gpu,
                u,
                t * b * h,
                1,
                b * h,
                da,
                copies.read,
            )?);
        }
    }
    Ok(out)
}

/// Elements of `step_sum` a split-K Elman recurrence may use at most (16 MiB of f32).
pub const STEP_SPLIT_SCRATCH: usize = 4 << 20;

/// Slices of K for a recurrence's [B, n] x K step product split over K ([`StepProduct::Split`];
/// the gated cells' backward, n = H and K = G·H) on a GPU: enough for the 64x64 tiles'
/// workgroups to reach 256 (about two per SM on the largest GPUs), with at least 64 k values
/// a slice and at most 8 slices; 1 where no split is worth it.
pub fn recurrence_split_slices(batch: usize, n: usize, k: usize) -> usize {
    let groups = batch.div_ceil(64) * n.div_ceil(64);
    256usize.div_ceil(groups.max(1)).min(k / 64).clamp(1, 8)
}

/// Whether `gemm` reads the backward products' W_hh faster from a transposed copy: the
/// quads kernels, whose loads need B along k with unit stride (W_hh itself runs along n).
pub fn reads_transposed_whh(gemm: GemmKernel) -> bool {
    matches!(gemm, GemmKernel::WindowQuads | GemmKernel::WindowQuadsA)
}

/// One forward step's recurrent product for `gates` gate blocks:
/// `step_sum [B, G·H] = hs[t]·W_hhᵀ (+ b_hh at bias)`, hs: [T + 1, B, H].
pub(super) fn step_forward_product(
    batch: usize,
    hidden: usize,
    gates: usize,
    t: usize,
    whh_off: usize,
    bias: Option<usize>,
) -> GemmSpec {
    GemmSpec {
        m: batch,
        n: gates * hidden,
        k: hidden,
        a: Operand::row_major(t * batch * hidden, hidden),
        b: Operand::transposed(whh_off, hidden),
        c_offset: 0,
        bias,
        bias2: None,
        accumulate: false,
    }
}

/// One backward step's recurrent product: `step_sum [B, H] = dgates[t + 1]·W_hh`,
/// dgates: [T, B, G·H].
pub(super) fn step_backward_product(
    batch: usize,
    hidden: usize,
    gates: usize,
    t: usize,
    whh_off: usize,
) -> GemmSpec {
    let gh = gates * hidden;
    GemmSpec {
        m: batch,
        n: hidden,
        k: gh,
        a: Operand::row_major((t + 1) * batch * gh, gh),
        b: Operand::row_major(whh_off, hidden),
        c_offset: 0,
        bias: None,
        bias2: None,
        accumulate: false,
    }
}
