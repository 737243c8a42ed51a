//! Chooses, per product shape, the GEMM formulation that runs fastest on this adapter:
//! each candidate of [`GemmKernel::candidates`] (register-blocked everywhere, workgroup-tiled
//! on GPUs, subgroup-broadcast on 8-lane subgroups) is timed once per shape, best of three
//! submits interleaved with the other candidates' (`timing`).
//! WGRNN_GEMM=blocked|tiled|tiled-quads|tall-quads|wide|wide-quads|subgroup|pairs|window|window-a|quads|quads-a|outer|outer-longs forces one
//! (packed pairs: f16 operands read along k, as the subgroup kernel elsewhere). Every formulation adds the
//! products of each output in ascending k with one accumulator, so on an adapter that does
//! not contract multiply-adds (lavapipe) the choice cannot change a bit; a GPU compiler may
//! fuse them differently per kernel, so there the choice can change the last bits, and it is
//! made once per engine and shape.
//! Shapes are keyed by N, K, the operands' orientation, the split and M rounded up to a
//! power of two: batches bucketed by length give many row counts M of the same product, and
//! one measurement serves them all.

use crate::error::Result;
use crate::gpu::{Buffer, Dtype, Gpu, Recording};
use crate::ops::{self, GemmKernel, GemmSpec, Launch, Uniforms};
use std::cell::RefCell;

/// A measured decision for one product shape.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GemmChoice {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// K slices (split-K), 1 for one pass.
    pub slices: usize,
    /// Whether A and B are read transposed (unit stride along M, or along K for B).
    pub a_transposed: bool,
    pub b_transposed: bool,
    /// Element types of A, B and C ("" when all f32; else e.g. "f16 f16 f32").
    pub types: String,
    pub kernel: GemmKernel,
    /// Each candidate's best time, ms (empty when the choice came from the tuning cache).
    pub times_ms: Vec<(GemmKernel, f64)>,
}

pub struct GemmTuner {
    forced: Option<GemmKernel>,
    candidates: Vec<GemmKernel>,
    choices: RefCell<Vec<GemmChoice>>,
}

impl GemmTuner {
    pub fn new(gpu: &Gpu) -> Self {
        let candidates = GemmKernel::candidates(gpu);
        let forced = match std::env::var("WGRNN_GEMM").as_deref() {
            Ok("blocked") => Some(GemmKernel::Blocked),
            Ok("tiled") => Some(GemmKernel::Tiled),
            Ok("wide") => Some(GemmKernel::Wide),
            Ok("wide-quads") => Some(GemmKernel::WideQuads),
            Ok("tiled-quads") => Some(GemmKernel::TiledQuads),
            Ok("tall-quads") => Some(GemmKernel::TallQuads),
            Ok("subgroup") if candidates.contains(&GemmKernel::Subgroup) => {
                Some(GemmKernel::Subgroup)
            }
            Ok("pairs") if candidates.contains(&GemmKernel::SubgroupPairs) => {
                Some(GemmKernel::SubgroupPairs)
            }
            Ok("window") if candidates.contains(&GemmKernel::SubgroupWindow) => {
                Some(GemmKernel::SubgroupWindow)
            }
            Ok("window-a") if candidates.contains(&GemmKernel::SubgroupWindowA) => {
                Some(GemmKernel::SubgroupWindowA)
            }
            Ok("quads") if candidates.contains(&GemmKernel::WindowQuads) => {
                Some(GemmKernel::WindowQuads)
            }
            Ok("quads-a") if candidates.contains(&GemmKernel::WindowQuadsA) => {
                Some(GemmKernel::WindowQuadsA)
            }
            Ok("outer") if candidates.contains(&GemmKernel::OuterQuads) => {
                Some(GemmKernel::OuterQuads)
            }
            Ok("outer-longs") if candidates.contains(&GemmKernel::OuterLongs) => {
                Some(GemmKernel::OuterLongs)
            }
            _ if candidates.len() == 1 => Some(candidates[0]),
            _ => None,
        };
        Self {
            forced,
            candidates,
            choices: RefCell::new(Vec::new()),
        }
    }

    /// Runs `kernel` for every product from now on, instead of measuring.
    pub fn force(&mut self, kernel: GemmKernel) {
        self.forced = Some(kernel);
    }

    /// Whether a product that reads a weight along n (dX = da·W_ih) should read it from a
    /// transposed copy, along k: where the window quads kernels (8-lane subgroups), which
    /// read both operands along k, are candidates and the 8-byte outer-product kernel is not
    /// (no 64-bit integers) nor forced. That kernel's rows variant reads x·W's layout as it
    /// is, and on lavapipe faster than the windows read the copy (W1's dX 2048x128x256
    /// 1.58-1.70 ms against 1.68-1.84, W3's 32768x64x512 25.6-25.8 against 26.5-26.6:
    /// BENCHMARKS.md, "the layer-input gradient in x·W's layout again").
    pub fn wants_weights_along_k(&self) -> bool {
        if !self.candidates.contains(&GemmKernel::WindowQuads) {
            return false;
        }
        match self.forced {
            Some(kernel) => !matches!(kernel, GemmKernel::OuterQuads | GemmKernel::OuterLongs),
            None => !self.candidates.contains(&GemmKernel::OuterLongs),
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
        // The formulations that differ for this product (packed pairs only where they apply).
        let mut candidates: Vec<GemmKernel> = Vec::new();
        for k in &self.candidates {
            let k = k.effective(gpu, spec, a, b, slices);
            if !candidates.contains(&k) {
                candidates.push(k);
            }
        }
        if candidates.len() == 1 {
            return build(candidates[0]);
        }
        let (a_transposed, b_transposed) = (spec.a.row_stride == 1, spec.b.col_stride != 1);
        let m_class = spec.m.next_power_of_two();
        let dtypes = [a.dtype(), b.dtype(), c.dtype()];
        let types = if dtypes.iter().all(|&d| d == Dtype::F32) {
            String::new()
        } else {
            dtypes.map(|d| format!("{d:?}").to_lowercase()).join(" ")
        };
        let known = self
            .choices
            .borrow()
            .iter()
            .find(|c| {
                (
                    c.m.next_power_of_two(),
                    c.n,
                    c.k,
                    c.slices,
                    c.a_transposed,
                    c.b_transposed,
                ) == (m_class, spec.n, spec.k, slices, a_transposed, b_transposed)
                    && c.types == types
            })
            .map(|c| c.kernel);
        if let Some(kernel) = known {
            return build(kernel);
        }
        let disk_key = super::tuning_cache::key(
            gpu.adapter(),
            &format!(
                "gemm m<={m_class} n{} k{} slices{slices} a{} b{}{} among {:?}",
                spec.n,
                spec.k,
                a_transposed as u8,
                b_transposed as u8,
                if types.is_empty() {
                    String::new()
                } else {
                    format!(" types {types}")
                },
                candidates
            ),
        );
        let cached = super::tuning_cache::get(&disk_key).and_then(|name| {
            candidates
                .iter()
                .copied()
                .find(|k| format!("{k:?}") == name)
        });
        let (kernel, times_ms) = match cached {
            Some(kernel) => (kernel, Vec::new()),
            None => {
                let mut runs = Vec::new();
                for &kernel in &candidates {
                    let mut rec = Recording::new();
                    for launch in build(kernel)? {
                        launch.record(&mut rec);
                    }
                    runs.push((kernel, rec));
                }
                let times_ms = super::timing::best_times_ms(gpu, &runs, &[], |_| 0)?;
                // The fastest; ties keep the earlier (simpler) candidate.
                let kernel = super::timing::fastest(&times_ms).unwrap_or(GemmKernel::Blocked);
                super::tuning_cache::put(disk_key, format!("{kernel:?}"));
                (kernel, times_ms)
            }
        };
        self.choices.borrow_mut().push(GemmChoice {
            m: spec.m,
            n: spec.n,
            k: spec.k,
            slices,
            a_transposed,
            b_transposed,
            types,
            kernel,
            times_ms,
        });
        build(kernel)
    }
}
