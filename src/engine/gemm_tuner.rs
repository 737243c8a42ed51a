//! Chooses, per product shape, the GEMM formulation that runs fastest on this adapter:
//! measured once per shape on a GPU (both formulations, best of three submits), fixed to the
//! register-blocked kernel on a software adapter (where workgroup tiles are known to cost
//! more than they save). WGRNN_GEMM=blocked|tiled forces one; WGRNN_GEMM=measure measures
//! on a software adapter too. Every formulation sums k in
//! ascending order, but the tiled one groups the products differently, so the choice can
//! change the last bits; it is made once per engine and shape, so a run stays deterministic
//! on its adapter.

use crate::error::Result;
use crate::gpu::{Buffer, Gpu, Recording};
use crate::ops::{self, GemmKernel, GemmSpec, Launch, Uniforms};
use std::cell::RefCell;

/// A measured decision for one product shape.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct GemmChoice {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// K slices (split-K), 1 for one pass.
    pub slices: usize,
    /// Whether A and B are read transposed (unit stride along M, or along K for B).
    pub a_transposed: bool,
    pub b_transposed: bool,
    pub kernel: GemmKernel,
    pub blocked_ms: f64,
    pub tiled_ms: f64,
}

pub struct GemmTuner {
    forced: Option<GemmKernel>,
    choices: RefCell<Vec<GemmChoice>>,
}

impl GemmTuner {
    pub fn new(software: bool) -> Self {
        let forced = match std::env::var("WGRNN_GEMM").as_deref() {
            Ok("blocked") => Some(GemmKernel::Blocked),
            Ok("tiled") => Some(GemmKernel::Tiled),
            Ok("measure") => None,
            _ if software => Some(GemmKernel::Blocked),
            _ => None,
        };
        Self {
            forced,
            choices: RefCell::new(Vec::new()),
        }
    }

    /// The decisions measured so far.
    pub fn choices(&self) -> Vec<GemmChoice> {
        self.choices.borrow().clone()
    }

    /// The launches of `spec` in `slices` K slices with the chosen formulation. Measuring
    /// runs the product on the given buffers: only buffers that every chunk rewrites before
    /// reading (activations, gradients, scratch) may be passed as C.
    #[allow(clippy::too_many_arguments)]
    pub fn launches(
        &self,
        gpu: &Gpu,
        u: &mut Uniforms,
        spec: &GemmSpec,
        slices: usize,
        a: &Buffer,
        b: &Buffer,
        bias: &Buffer,
        c: &Buffer,
        scratch: &Buffer,
    ) -> Result<Vec<Launch>> {
        let mut build =
            |kernel| ops::gemm_split(gpu, u, spec, kernel, slices, a, b, bias, c, scratch);
        if let Some(kernel) = self.forced {
            return build(kernel);
        }
        let (a_transposed, b_transposed) = (spec.a.row_stride == 1, spec.b.col_stride != 1);
        let known = self
            .choices
            .borrow()
            .iter()
            .find(|c| {
                (c.m, c.n, c.k, c.slices, c.a_transposed, c.b_transposed)
                    == (spec.m, spec.n, spec.k, slices, a_transposed, b_transposed)
            })
            .map(|c| c.kernel);
        if let Some(kernel) = known {
            return build(kernel);
        }
        let mut time = |kernel| -> Result<f64> {
            let mut rec = Recording::new();
            for launch in build(kernel)? {
                launch.record(&mut rec);
            }
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let t0 = std::time::Instant::now();
                gpu.submit(&rec)?;
                gpu.wait_idle()?;
                best = best.min(t0.elapsed().as_secs_f64());
            }
            Ok(best * 1e3)
        };
        let (blocked_ms, tiled_ms) = (time(GemmKernel::Blocked)?, time(GemmKernel::Tiled)?);
        let kernel = if tiled_ms < blocked_ms {
            GemmKernel::Tiled
        } else {
            GemmKernel::Blocked
        };
        self.choices.borrow_mut().push(GemmChoice {
            m: spec.m,
            n: spec.n,
            k: spec.k,
            slices,
            a_transposed,
            b_transposed,
            kernel,
            blocked_ms,
            tiled_ms,
        });
        build(kernel)
    }
}
