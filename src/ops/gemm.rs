//! Launcher for `shaders/gemm.wgsl`: C = A·B (+ bias) (+ bias2) (+ C), in one pass or
//! split over K (partial sums, then a fixed-order reduction).

use super::{groups_for, need, u32_of, Launch, Uniforms};
use crate::error::Result;
use crate::gpu::{Buffer, Dtype, Gpu, Kernel, Resource, UNIFORM_WINDOW};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    c_rs: u32,
    bias_off: u32,
    bias2_off: u32,
    flags: u32,
    k_slice: u32,
    slices: u32,
    /// Where a fused step's copy of its outputs starts (`shaders/gemm_quads.wgsl`'s
    /// STEP_COPY; the other shaders' structs end before it).
    copy_off: u32,
    /// `gemm_window_quads_sweep`: the steps it runs, and how far each moves the offsets of
    /// A, C, the inputs and aux (elements, wrapping: backward sweeps move down).
    pub(super) steps: u32,
    step_shift: u32,
    /// The gated sweeps (`gated_quads_sweep_*`, [`super::gated_sweep`]): the chunk's B and H,
    /// and the first step's t.
    pub(super) cell_batch: u32,
    pub(super) cell_hidden: u32,
    pub(super) cell_t0: u32,
}

impl GemmParams {
    /// The kernels' parameters for `spec`, C at `c_off`, with `flags` (bias, bias2,
    /// accumulate) and `slices` K slices of `k_slice` values (0: no split).
    pub(super) fn of(
        spec: &GemmSpec,
        c_off: usize,
        flags: u32,
        k_slice: usize,
        slices: usize,
    ) -> Result<Self> {
        Ok(Self {
            m: u32_of(spec.m, "gemm m")?,
            n: u32_of(spec.n, "gemm n")?,
            k: u32_of(spec.k, "gemm k")?,
            a_off: u32_of(spec.a.offset, "gemm a offset")?,
            a_rs: u32_of(spec.a.row_stride, "gemm a stride")?,
            a_cs: u32_of(spec.a.col_stride, "gemm a stride")?,
            b_off: u32_of(spec.b.offset, "gemm b offset")?,
            b_rs: u32_of(spec.b.row_stride, "gemm b stride")?,
            b_cs: u32_of(spec.b.col_stride, "gemm b stride")?,
            c_off: u32_of(c_off, "gemm c offset")?,
            c_rs: u32_of(spec.n, "gemm n")?,
            bias_off: u32_of(spec.bias.unwrap_or(0), "gemm bias offset")?,
            bias2_off: u32_of(spec.bias2.unwrap_or(0), "gemm bias offset")?,
            flags,
            k_slice: u32_of(k_slice, "gemm k slice")?,
            slices: u32_of(slices, "gemm slices")?,
            copy_off: 0,
            steps: 0,
            step_shift: 0,
            cell_batch: 0,
            cell_hidden: 0,
            cell_t0: 0,
        })
    }
}

// The kernels' flag bits (`shaders/gemm.wgsl`, `shaders/gemm_subgroup.wgsl`).
const ADD_BIAS: u32 = 1;
const ADD_BIAS2: u32 = 2;
const ACCUMULATE: u32 = 4;
const STEP_FORWARD: u32 = 8;
const STEP_BACKWARD: u32 = 16;
const RELU: u32 = 32;
const QUAD_STORE: u32 = 64;
const CONTINUE: u32 = 128;

/// The binding slots of gemm_quads.wgsl's GEMM kernels (0..=25; the gated sweeps' 15..=23
/// undeclared there), and the two the Elman sweep reads its inputs and aux through as words.
const QUADS_SLOTS: usize = 26;
const SWEEP_INPUT_WORDS: usize = 24;
const SWEEP_AUX_WORDS: usize = 25;

/// The kernels' flag bits for `spec`: add bias, add bias2, accumulate into C.
fn flags_of(spec: &GemmSpec) -> u32 {
    spec.bias.map_or(0, |_| ADD_BIAS)
        | spec.bias2.map_or(0, |_| ADD_BIAS2)
        | if spec.accumulate { ACCUMULATE } else { 0 }
}

/// Whether the quads kernels can load this product's operands 4 values a 16-byte word (or
/// two words of f16 pairs): A read with unit stride along k (`a_along_k`) or else along m,
/// B along k (`b_along_k`) or else along n; K, both offsets and each operand's other stride
/// multiples of 4.
fn quad_layout(spec: &GemmSpec, a_along_k: bool, b_along_k: bool) -> bool {
    let whole = |v: usize| v.is_multiple_of(4);
    let (a_unit, a_other) = if a_along_k {
        (spec.a.col_stride, spec.a.row_stride)
    } else {
        (spec.a.row_stride, spec.a.col_stride)
    };
    let (b_unit, b_other) = if b_along_k {
        (spec.b.row_stride, spec.b.col_stride)
    } else {
        (spec.b.col_stride, spec.b.row_stride)
    };
    spec.k > 0
        && whole(spec.k)
        && a_unit == 1
        && b_unit == 1
        && whole(spec.a.offset)
        && whole(a_other)
        && whole(spec.b.offset)
        && whole(b_other)
}

/// The quads kernels' QUAD_STORE flag where C (row stride `n`, first element `c_offset`) can
/// be stored four values a word: an f32 C whose rows and offset are whole 16-byte words.
fn quad_store_flag(c: &Buffer, c_offset: usize, n: usize) -> u32 {
    if c.dtype() == Dtype::F32 && c_offset.is_multiple_of(4) && n.is_multiple_of(4) {
        QUAD_STORE
    } else {
        0
    }
}

/// A strided view of a matrix operand: element (row, col) is at `offset + row·row_stride +
/// col·col_stride`. A transposed view just swaps the strides.
#[derive(Clone, Copy, Debug)]
pub struct Operand {
    pub offset: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl Operand {
    /// A row-major `[rows, cols]` matrix at `offset`.
    pub fn row_major(offset: usize, cols: usize) -> Self {
        Self {
            offset,
            row_stride: cols,
            col_stride: 1,
        }
    }
    /// The transpose of a row-major `[rows, cols]` matrix at `offset`.
    pub fn transposed(offset: usize, cols: usize) -> Self {
        Self {
            offset,
            row_stride: 1,
            col_stride: cols,
        }
    }
    fn last_index(&self, rows: usize, cols: usize) -> usize {
        self.offset + (rows - 1) * self.row_stride + (cols - 1) * self.col_stride
    }
}

/// `C[m, n] (row-major at c_offset) = A(m, k) · B(k, n) + bias[n] + bias2[n] (+ C)`.
#[derive(Clone, Copy, Debug)]
pub struct GemmSpec {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: Operand,
    pub b: Operand,
    pub c_offset: usize,
    /// Element offsets of up to two bias vectors of length n in the `bias` buffer.
    pub bias: Option<usize>,
    pub bias2: Option<usize>,
    pub accumulate: bool,
}

/// The GEMM formulations (same sums in the same order): the register-blocked kernel (each
/// invocation a 4x8 block, no workgroup memory), the workgroup-tiled ones (64x64 tiles, or
/// 128x128 tiles with 8x8 blocks per invocation, staged through workgroup memory: the GPU
/// formulations) and the subgroup-broadcast one (fewer loads per multiply-add on 8-lane
/// subgroups: the lavapipe formulation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum GemmKernel {
    Blocked,
    Tiled,
    /// 128x128 tiles, an 8x8 block per invocation: large products on GPUs.
    Wide,
    /// [`GemmKernel::Wide`] reading its operands 4 values a load (`gemm_wide_quads`; f32 16
    /// bytes, f16 8), where [`GemmKernel::tile_quads_apply`]; elsewhere it runs as
    /// [`GemmKernel::Wide`].
    WideQuads,
    /// [`GemmKernel::Tiled`] reading its operands 4 values a load (`gemm_tiled_quads`; f32 16
    /// bytes, f16 8), where [`GemmKernel::tile_quads_apply`]; elsewhere it runs as
    /// [`GemmKernel::Tiled`].
    TiledQuads,
    /// 128x64 tiles reading their operands 4 values a load (`gemm_tall_quads`: an 8x4 block
    /// an invocation, between [`GemmKernel::TiledQuads`]' 4x4 and [`GemmKernel::WideQuads`]'
    /// 8x8), where [`GemmKernel::tile_quads_apply`]; elsewhere it runs as
    /// [`GemmKernel::Tiled`].
    TallQuads,
    /// Subgroup broadcasts of A (`shaders/gemm_subgroup.wgsl`): adapters with 8-lane subgroups.
    Subgroup,
    /// The subgroup kernel loading each (k, k + 1) pair of f16 operands as one word, where
    /// [`GemmKernel::pairs_apply`]; elsewhere it runs as [`GemmKernel::Subgroup`].
    SubgroupPairs,
    /// The subgroup kernel reading B through 64 KiB uniform-buffer windows (cheaper loads on
    /// lavapipe), one dispatch per window, where [`window_chunks`] finds a plan (f16 pairs
    /// where they apply); elsewhere it runs as [`GemmKernel::Subgroup`].
    SubgroupWindow,
    /// The subgroup kernel reading A through 64 KiB uniform-buffer windows (products with a
    /// small A and a large B: a recurrence step), one dispatch per window, where
    /// [`window_chunks`] finds a plan; elsewhere it runs as [`GemmKernel::Subgroup`].
    SubgroupWindowA,
    /// The window kernel loading 4 consecutive k values a load from both operands, B through
    /// the windows (`shaders/gemm_quads.wgsl`), where [`GemmKernel::quads_apply`];
    /// elsewhere it runs as [`GemmKernel::SubgroupWindow`].
    WindowQuads,
    /// [`GemmKernel::WindowQuads`] with A through the windows (the transposed product
    /// Cᵀ = Bᵀ·Aᵀ); elsewhere it runs as [`GemmKernel::SubgroupWindowA`].
    WindowQuadsA,
    /// Outer products of 4 consecutive values of A's columns and B's rows a load, both from
    /// storage (`gemm_outer_quads`: dYᵀ·X, the weight gradients), where
    /// [`GemmKernel::outer_apply`]; or of A's rows read 4 k values a load (x·W, the gated
    /// cells' input gradient) where [`GemmKernel::outer_rows_apply`]; elsewhere it runs as
    /// [`GemmKernel::Subgroup`].
    OuterQuads,
    /// [`GemmKernel::OuterQuads`] with its 16-byte storage words read and written as two
    /// 64-bit integers (half the per-lane load loops on lavapipe), for f32 operands on
    /// adapters with 64-bit integers; elsewhere it runs as [`GemmKernel::OuterQuads`]. Both
    /// are measured: this one ran 1.2-1.3x faster at most shapes and, in some processes, 2.5x
    /// slower at one (BENCHMARKS.md, "8-byte storage words").
    OuterLongs,
}

impl GemmKernel {
    /// The formulations worth measuring on `gpu`: the tiled kernels on GPUs (workgroup memory
    /// and barriers are known to cost more than they save on software adapters), the
    /// subgroup kernel where subgroups are exactly 8 lanes.
    pub fn candidates(gpu: &Gpu) -> Vec<GemmKernel> {
        let a = gpu.adapter();
        let mut out = vec![GemmKernel::Blocked];
        if !a.is_software {
            out.extend([
                GemmKernel::Tiled,
                GemmKernel::Wide,
                GemmKernel::WideQuads,
                GemmKernel::TiledQuads,
                GemmKernel::TallQuads,
            ]);
        }
        if a.fixed_subgroup_size == Some(8) {
            out.extend([GemmKernel::Subgroup, GemmKernel::OuterQuads]);
            if a.shader_int64 {
                out.push(GemmKernel::OuterLongs);
            }
            if a.shader_f16 {
                out.push(GemmKernel::SubgroupPairs);
            }
            if gpu.uniform_window_alignment().is_some() {
                out.extend([
                    GemmKernel::SubgroupWindow,
                    GemmKernel::SubgroupWindowA,
                    GemmKernel::WindowQuads,
                    GemmKernel::WindowQuadsA,
                ]);
            }
        }
        out
    }

    /// The formulation that runs when this one is asked for `spec` on `a`, `b` in `slices`
    /// K slices: the packed-pairs kernel runs as the plain subgroup one where its loads do
    /// not apply, and so does the window kernel where it has no plan ([`window_chunks`]);
    /// the quads kernels run as the window kernels where their loads do not apply.
    pub fn effective(
        self,
        gpu: &Gpu,
        spec: &GemmSpec,
        a: &Buffer,
        b: &Buffer,
        slices: usize,
    ) -> Self {
        let k_slice = if slices > 1 {
            spec.k.div_ceil(slices)
        } else {
            0
        };
        match self {
            GemmKernel::WindowQuads | GemmKernel::WindowQuadsA
                if !GemmKernel::quads_apply(spec, a, b) =>
            {
                self.quads_fallback().effective(gpu, spec, a, b, slices)
            }
            GemmKernel::SubgroupPairs if !GemmKernel::pairs_apply(spec, a, b, k_slice) => {
                GemmKernel::Subgroup
            }
            GemmKernel::WideQuads | GemmKernel::TiledQuads | GemmKernel::TallQuads
                if !GemmKernel::tile_quads_apply(spec, k_slice) =>
            {
                self.tile_quads_fallback()
            }
            GemmKernel::OuterLongs if !GemmKernel::longs_apply(a, b) => {
                GemmKernel::OuterQuads.effective(gpu, spec, a, b, slices)
            }
            GemmKernel::OuterQuads | GemmKernel::OuterLongs
                if slices > 1
                    || !(GemmKernel::outer_apply(spec)
                        || GemmKernel::outer_rows_apply(spec, a, b)) =>
            {
                GemmKernel::Subgroup
            }
            GemmKernel::SubgroupWindow
            | GemmKernel::SubgroupWindowA
            | GemmKernel::WindowQuads
            | GemmKernel::WindowQuadsA
                if slices > 1
                    || window_chunks(gpu, spec, self, a, b, MAX_WINDOW_CHUNKS).is_none() =>
            {
                GemmKernel::Subgroup
            }
            other => other,
        }
    }

    /// Whether the packed-pairs loads serve this product: f16 A and B, both read along k
    /// with unit stride, from even offsets with even strides, in slices starting at even k.
    pub fn pairs_apply(spec: &GemmSpec, a: &Buffer, b: &Buffer, k_slice: usize) -> bool {
        let even = |v: usize| v.is_multiple_of(2);
        a.dtype() == Dtype::F16
            && b.dtype() == Dtype::F16
            && spec.a.col_stride == 1
            && spec.b.row_stride == 1
            && even(spec.a.offset)
            && even(spec.a.row_stride)
            && even(spec.b.offset)
            && even(spec.b.col_stride)
            && even(k_slice)
    }

    /// Whether the quads kernels' loads serve this product: A and B both f32 or both f16
    /// read along k with unit stride, K, their offsets and their line strides multiples of
    /// 4 (one 16-byte load of f32s, two words of f16 pairs).
    pub fn quads_apply(spec: &GemmSpec, a: &Buffer, b: &Buffer) -> bool {
        a.dtype() == b.dtype() && quad_layout(spec, true, true)
    }

    /// Whether the outer-product kernel's loads serve this product (its layout only: A and B
    /// may each be f32 or f16, in either mix): A read along m and B along n with unit stride, K, their offsets and
    /// their strides along k multiples of 4 (one 16-byte load of f32s, two words of f16
    /// pairs).
    pub fn outer_apply(spec: &GemmSpec) -> bool {
        quad_layout(spec, false, false)
    }

    /// Whether `gemm_outer_quads`' A_ROWS variant serves this product (x·W's layout: the
    /// gated cells' input gradient dGates·W_ih, the recurrences' backward products
    /// da[t + 1]·W_hh): f32 A, f32 or f16 B (f16 weights), A along k and B along n with unit
    /// stride, K, both offsets and both row strides multiples of 4.
    pub fn outer_rows_apply(spec: &GemmSpec, a: &Buffer, b: &Buffer) -> bool {
        a.dtype() == Dtype::F32
            && matches!(b.dtype(), Dtype::F32 | Dtype::F16)
            && quad_layout(spec, true, false)
    }

    /// Whether the outer-product formulations run this product as `gemm_outer_narrow` (a
    /// lane owns 4 rows of C and all its columns, instead of 32x32 tiles whose lanes past N
    /// idle): where [`GemmKernel::outer_apply`], C has at most 8 columns (W2's dW_ih over 8
    /// input features) and A and B are f32.
    pub fn outer_narrow_apply(spec: &GemmSpec, a: &Buffer, b: &Buffer) -> bool {
        spec.n <= 8
            && GemmKernel::outer_apply(spec)
            && a.dtype() == Dtype::F32
            && b.dtype() == Dtype::F32
    }

    /// Whether the outer-product formulations run this product with the multiply-adds of
    /// only the first 20 of each tile's 32 rows (`gemm_outer_quads` with ROW_QUADS 5): where
    /// [`GemmKernel::outer_apply`], M is at most 20 (the head's weight gradient over a POS
    /// tagger's 17 or 18 tags) and A and B are f32.
    pub fn outer_short_apply(spec: &GemmSpec, a: &Buffer, b: &Buffer) -> bool {
        spec.m <= 20
            && GemmKernel::outer_apply(spec)
            && a.dtype() == Dtype::F32
            && b.dtype() == Dtype::F32
    }

    /// Whether [`GemmKernel::OuterLongs`] serves operands `a`, `b` (where the outer-product
    /// kernel does): both f32 (f16 operands keep [`GemmKernel::OuterQuads`]' loads of 4
    /// values as two 4-byte words: as one 8-byte word they measured 12-17% slower).
    pub fn longs_apply(a: &Buffer, b: &Buffer) -> bool {
        a.dtype() == Dtype::F32 && b.dtype() == Dtype::F32
    }

    /// The kernel a tiled quads kernel runs as where its loads do not apply.
    fn tile_quads_fallback(self) -> Self {
        match self {
            GemmKernel::WideQuads => GemmKernel::Wide,
            GemmKernel::TiledQuads | GemmKernel::TallQuads => GemmKernel::Tiled,
            other => other,
        }
    }

    /// Whether the wide and tiled quads kernels' quad loads serve this product in slices of
    /// `k_slice` values (0: no split): A and B (f32: 16 bytes a load, f16: 8; each operand
    /// its own type), each read along its unit-stride direction (A along
    /// k where its column stride is 1, else along m; B along n where its column stride is 1,
    /// else along k), with that direction's extent, the offset and the other stride multiples
    /// of 4, and `k_slice` a multiple of 4 (a quad is inside the matrix and the K range
    /// entirely or not at all).
    pub fn tile_quads_apply(spec: &GemmSpec, k_slice: usize) -> bool {
        GemmKernel::a_quads_apply(spec) && GemmKernel::b_quads_apply(spec, k_slice)
    }

    /// A's half of [`GemmKernel::tile_quads_apply`] (the kernel reads A along k where its
    /// column stride is 1).
    fn a_quads_apply(spec: &GemmSpec) -> bool {
        let whole = |v: usize| v.is_multiple_of(4);
        let a = spec.a;
        whole(a.offset)
            && if a.col_stride == 1 {
                whole(spec.k) && whole(a.row_stride)
            } else {
                a.row_stride == 1 && whole(spec.m) && whole(a.col_stride)
            }
    }

    /// B's half of [`GemmKernel::tile_quads_apply`] (the kernel reads B along n where its
    /// column stride is 1), which is all the fused step's variant needs (A is read through C).
    fn b_quads_apply(spec: &GemmSpec, k_slice: usize) -> bool {
        let whole = |v: usize| v.is_multiple_of(4);
        let op = spec.b;
        whole(k_slice)
            && whole(op.offset)
            && if op.col_stride == 1 {
                whole(spec.n) && whole(op.row_stride)
            } else {
                op.row_stride == 1 && whole(spec.k) && whole(op.col_stride)
            }
    }

    /// The window kernel a quads kernel runs as where its loads do not apply.
    fn quads_fallback(self) -> Self {
        match self {
            GemmKernel::WindowQuads => GemmKernel::SubgroupWindow,
            GemmKernel::WindowQuadsA => GemmKernel::SubgroupWindowA,
            other => other,
        }
    }

    /// Whether this kernel reads B's windows (else A's), for the window kernels.
    fn windows_b(self) -> bool {
        matches!(self, GemmKernel::SubgroupWindow | GemmKernel::WindowQuads)
    }

    fn kernel(self) -> Kernel {
        match self {
            GemmKernel::Blocked => Kernel::Gemm,
            GemmKernel::Tiled => Kernel::GemmTiled,
            GemmKernel::Wide => Kernel::GemmWide,
            GemmKernel::WideQuads => Kernel::GemmWideQuads,
            GemmKernel::TiledQuads => Kernel::GemmTiledQuads,
            GemmKernel::TallQuads => Kernel::GemmTallQuads,
            GemmKernel::Subgroup => Kernel::GemmSubgroup,
            GemmKernel::SubgroupPairs => Kernel::GemmSubgroupPairs,
            GemmKernel::SubgroupWindow => Kernel::GemmSubgroupWindow,
            GemmKernel::SubgroupWindowA => Kernel::GemmSubgroupWindowA,
            GemmKernel::WindowQuads => Kernel::GemmWindowQuads,
            GemmKernel::WindowQuadsA => Kernel::GemmWindowQuadsA,
            GemmKernel::OuterQuads => Kernel::GemmOuterQuads,
            GemmKernel::OuterLongs => Kernel::GemmOuterLongs,
        }
    }
    /// Workgroups covering an `m` x `n` C, (0, 0, 0) when it is empty (the transposed
    /// [`GemmKernel::WindowQuadsA`]: x over C's rows, y over its columns).
    fn groups(self, m: usize, n: usize) -> [u32; 3] {
        if m == 0 || n == 0 {
            return [0, 0, 0];
        }
        let (rows, cols) = self.tile();
        if self == GemmKernel::WindowQuadsA {
            return [m.div_ceil(rows) as u32, n.div_ceil(cols) as u32, 1];
        }
        [n.div_ceil(cols) as u32, m.div_ceil(rows) as u32, 1]
    }
    /// Rows and columns of C per workgroup.
    fn tile(self) -> (usize, usize) {
        match self {
            GemmKernel::Blocked | GemmKernel::Subgroup | GemmKernel::SubgroupPairs => (32, 64),
            GemmKernel::Tiled | GemmKernel::TiledQuads | GemmKernel::SubgroupWindowA => (64, 64),
            GemmKernel::SubgroupWindow => (128, 32),
            GemmKernel::WindowQuads
            | GemmKernel::WindowQuadsA
            | GemmKernel::OuterQuads
            | GemmKernel::OuterLongs => (32, 32),
            GemmKernel::Wide | GemmKernel::WideQuads => (128, 128),
            GemmKernel::TallQuads => (128, 64),
        }
    }
}

/// The register-blocked product ([`gemm_with`] with [`GemmKernel::Blocked`]).
pub fn gemm(
    gpu: &Gpu,
    uniforms: &mut Uniforms,
    spec: &GemmSpec,
    a: &Buffer,
    b: &Buffer,
    bias: &Buffer,
    c: &Buffer,
) -> Result<Launch> {
    gemm_with(gpu, uniforms, spec, GemmKernel::Blocked, a, b, bias, c)
}

// One argument per binding slot, as in the other launchers.
#[allow(clippy::too_many_arguments)]
/// One pass of `kernel` over the whole product.
pub fn gemm_with(
    gpu: &Gpu,
    uniforms: &mut Uniforms,
    spec: &GemmSpec,
    kernel: GemmKernel,
    a: &Buffer,
    b: &Buffer,
    bias: &Buffer,
    c: &Buffer,
) -> Result<Launch> {
    gemm_pass(gpu, uniforms, spec, kernel, 0, a, b, bias, c)
}

/// Whether the buffers hold what `spec` reads and writes (A and B where the product is not
/// empty, C where it has outputs, the biases).
fn need_operands(spec: &GemmSpec, a: &Buffer, b: &Buffer, bias: &Buffer, c: &Buffer) -> Result<()> {
    let GemmSpec { m, n, k, .. } = *spec;
    if m > 0 && n > 0 && k > 0 {
        need(a, spec.a.last_index(m, k) + 1, "gemm A")?;
        need(b, spec.b.last_index(k, n) + 1, "gemm B")?;
    }
    if m > 0 && n > 0 {
        need(c, spec.c_offset + m * n, "gemm C")?;
    }
    for off in [spec.bias, spec.bias2].into_iter().flatten() {
        need(bias, off + n, "gemm bias")?;
    }
    Ok(())
}

// One argument per binding slot, as in the other launchers.
#[allow(clippy::too_many_arguments)]
/// [`gemm_with`], for K slices of `k_slice` values (0: the whole K; the caller writes the
/// split parameters), which decide whether the packed-pairs loads apply.
fn gemm_pass(
    gpu: &Gpu,
    uniforms: &mut Uniforms,
    spec: &GemmSpec,
    kernel: GemmKernel,
    k_slice: usize,
    a: &Buffer,
    b: &Buffer,
    bias: &Buffer,
    c: &Buffer,
) -> Result<Launch> {
    // The window kernels take one launch per window (`gemm_launches`); a single pass (no
    // window plan, or K slices) runs as the subgroup kernel.
    let kernel = match kernel {
        GemmKernel::SubgroupPairs if !GemmKernel::pairs_apply(spec, a, b, k_slice) => {
            GemmKernel::Subgroup
        }
        GemmKernel::OuterQuads | GemmKernel::OuterLongs
            if k_slice > 0
                || !(GemmKernel::outer_apply(spec) || GemmKernel::outer_rows_apply(spec, a, b)) =>
        {
            GemmKernel::Subgroup
        }
        GemmKernel::OuterLongs if !GemmKernel::longs_apply(a, b) => GemmKernel::OuterQuads,
        GemmKernel::WideQuads | GemmKernel::TiledQuads | GemmKernel::TallQuads
            if !GemmKernel::tile_quads_apply(spec, k_slice) =>
        {
            kernel.tile_quads_fallback()
        }
        GemmKernel::SubgroupWindow
        | GemmKernel::SubgroupWindowA
        | GemmKernel::WindowQuads
        | GemmKernel::WindowQuadsA => GemmKernel::Subgroup,
        other => other,
    };
    let GemmSpec { m, n, .. } = *spec;
    need_operands(spec, a, b, bias, c)?;
    let flags = flags_of(spec)
        | if matches!(kernel, GemmKernel::OuterQuads | GemmKernel::OuterLongs) {
            quad_store_flag(c, spec.c_offset, n)
        } else {
            0
        };
    let params = GemmParams::of(spec, spec.c_offset, flags, 0, 1)?;
    let uniform = uniforms.push(gpu, &params);
    if matches!(kernel, GemmKernel::OuterQuads | GemmKernel::OuterLongs) {
        // A and B as 16- and 8-byte words (slots 9 to 12); no other operand slots. A along k
        // (x·W's layout) where A along m does not apply.
        let narrow = GemmKernel::outer_narrow_apply(spec, a, b);
        let short = !narrow && GemmKernel::outer_short_apply(spec, a, b);
        let entry = match (a.dtype(), b.dtype()) {
            _ if narrow && kernel == GemmKernel::OuterLongs => Kernel::GemmOuterNarrowLongs,
            _ if narrow => Kernel::GemmOuterNarrow,
            _ if short && kernel == GemmKernel::OuterLongs => Kernel::GemmOuterLongsShort,
            _ if short => Kernel::GemmOuterQuadsShort,
            _ if kernel == GemmKernel::OuterLongs && !GemmKernel::outer_apply(spec) => {
                Kernel::GemmOuterLongsRows
            }
            _ if kernel == GemmKernel::OuterLongs => Kernel::GemmOuterLongs,
            (_, Dtype::F16) if !GemmKernel::outer_apply(spec) => Kernel::GemmOuterQuadsRowsYPairs,
            _ if !GemmKernel::outer_apply(spec) => Kernel::GemmOuterQuadsRows,
            (Dtype::F16, Dtype::F16) => Kernel::GemmOuterQuadsPairs,
            (Dtype::F16, _) => Kernel::GemmOuterQuadsXPairs,
            (_, Dtype::F16) => Kernel::GemmOuterQuadsYPairs,
            _ => Kernel::GemmOuterQuads,
        };
        let mut resources = vec![Resource::Unused; QUADS_SLOTS];
        resources[0] = uniform.resource();
        resources[3] = Resource::Storage(bias);
        resources[4] = Resource::Storage(c);
        // The fused steps' aux operand and copy (unused here: C stands in for the copy), and
        // the sweep's inputs and aux as words (the bias stands in).
        resources[7] = Resource::Storage(bias);
        resources[SWEEP_INPUT_WORDS] = Resource::Storage(bias);
        resources[SWEEP_AUX_WORDS] = Resource::Storage(bias);
        resources[13] = Resource::Storage(c);
        // C as 16-byte words (QUAD_STORE).
        resources[14] = Resource::Storage(c);
        resources[9..13].copy_from_slice(&[
            Resource::Storage(a),
            Resource::Storage(a),
            Resource::Storage(b),
            Resource::Storage(b),
        ]);
        // (The narrow kernel's one workgroup per 32 rows, all of C's at most 8 columns, is
        // the tiles' grid for such an N.)
        return Ok(Launch {
            binding: gpu.bind(entry, &resources),
            groups: kernel.groups(m, n),
            uniform,
        });
    }
    let mut resources = vec![
        uniform.resource(),
        Resource::Storage(a),
        Resource::Storage(b),
        Resource::Storage(bias),
        Resource::Storage(c),
    ];
    if matches!(kernel, GemmKernel::Subgroup | GemmKernel::SubgroupPairs) {
        // A and B again, as the raw words the packed-pairs loads read.
        resources.extend([Resource::Storage(a), Resource::Storage(b)]);
    }
    // The fused steps' aux operand, unused here (any read-only buffer).
    resources.push(Resource::Storage(bias));
    if matches!(
        kernel,
        GemmKernel::WideQuads | GemmKernel::TiledQuads | GemmKernel::TallQuads
    ) {
        // A and B again, as the vec4s the 16-byte loads read; B is read only as those.
        resources[2] = Resource::Unused;
        resources.extend([Resource::Storage(a), Resource::Storage(b)]);
    }
    let binding = gpu.bind(kernel.kernel(), &resources);
    Ok(Launch {
        binding,
        groups: kernel.groups(m, n),
        uniform,
    })
}

// One argument per binding slot, as in the other launchers.
#[allow(clippy::too_many_arguments)]
/// The whole product with `kernel` in one pass: one launch, or one per window for the window
/// kernels ([`window_chunks`], at most [`MAX_WINDOW_CHUNKS`]).
pub fn gemm_launches(
    gpu: &Gpu,
    uniforms: &mut Uniforms,
    spec: &GemmSpec,
    kernel: GemmKernel,
    a: &Buffer,
    b: &Buffer,
    bias: &Buffer,
    c: &Buffer,
) -> Result<Vec<Launch>> {
    let kernel = match kernel {
        GemmKernel::WindowQuads | GemmKernel::WindowQuadsA
            if !GemmKernel::quads_apply(spec, a, b) =>
        {
            kernel.quads_fallback()
        }
        other => other,
    };
    if let Some(block) = outer_k_block(gpu, spec, kernel, a, b, c) {
        return outer_k_blocks(gpu, uniforms, spec, kernel, block, a, b, bias, c);
    }
    if matches!(
        kernel,
        GemmKernel::SubgroupWindow
            | GemmKernel::SubgroupWindowA
            | GemmKernel::WindowQuads
            | GemmKernel::WindowQuadsA
    ) {
        let most = MAX_WINDOW_CHUNKS;
        if let Some(launches) = window_launches(gpu, uniforms, spec, kernel, a, b, bias, c, most)? {
            return Ok(launches);
        }
    }
    Ok(vec![gemm_with(gpu, uniforms, spec, kernel, a, b, bias, c)?])
}

/// The bytes of A's and B's rows one dispatch of the outer-product kernel reads, at most, on
/// a software adapter, where a long K runs in blocks of rows ([`outer_k_block`]).
pub const OUTER_BLOCK_BYTES: usize = 2 << 20;

/// The bytes of A's and B's rows from which a product runs in blocks ([`outer_k_block`]):
/// half the development machine's 32 MiB L3. Below it one pass measured as fast or faster
/// (W1's 256x256x2048, 4 MiB: 3.8-3.9 ms in one pass, 4.0-4.2 in two blocks; W2's
/// 128x128x12800, 13 MiB, unchanged).
pub const OUTER_BLOCKS_FROM_BYTES: usize = 16 << 20;

/// The rows of K each dispatch of `kernel` covers for `spec` where it walks K in blocks
/// ([`outer_k_blocks`]): the outer-product kernels on a software adapter whose product reads
/// more than [`OUTER_BLOCKS_FROM_BYTES`] of A's and B's rows (a weight gradient over a
/// large chunk's T·B rows). Each of its 32x32 tiles walks all of K; in one dispatch the
/// tiles sharing a row of A walk it one after another, long after it left the caches,
/// while in blocks of [`OUTER_BLOCK_BYTES`] they find it there (W3's dW_hh, 512x512x32768
/// on lavapipe: 294-335 ms in one pass, 265-290 in blocks; BENCHMARKS.md, "long K in
/// blocks"). f32 operands only (f16 ones ran slower in blocks). The block's sums continue in
/// C (flag CONTINUE), so only where C is f32 and stored by quads, and not where the product
/// adds to C (ACCUMULATE adds C after the sum, which blocks would reorder). None: one pass.
pub fn outer_k_block(
    gpu: &Gpu,
    spec: &GemmSpec,
    kernel: GemmKernel,
    a: &Buffer,
    b: &Buffer,
    c: &Buffer,
) -> Option<usize> {
    let GemmSpec { m, n, k, .. } = *spec;
    let runs = match kernel {
        GemmKernel::OuterQuads | GemmKernel::OuterLongs => {
            GemmKernel::outer_apply(spec) || GemmKernel::outer_rows_apply(spec, a, b)
        }
        _ => false,
    };
    // f32 operands only: f16 pairs (half the bytes a row) measured 12-15% slower in blocks
    // (512x512x32768: 196 ms in one pass, 219-229 in blocks of 1024 rows).
    let f32_operands = a.dtype() == Dtype::F32 && b.dtype() == Dtype::F32;
    if !runs
        || !f32_operands
        || !gpu.adapter().is_software
        || spec.accumulate
        || quad_store_flag(c, spec.c_offset, n) == 0
        || m == 0
        || n == 0
    {
        return None;
    }
    let row_bytes = (m + n) * 4;
    // Whole quads of rows (the kernel reads K 4 at a time).
    let block = (OUTER_BLOCK_BYTES / row_bytes) / 4 * 4;
    (block >= 256 && k * row_bytes > OUTER_BLOCKS_FROM_BYTES).then_some(block)
}

// One argument per binding slot, as in the other launchers.
#[allow(clippy::too_many_arguments)]
/// The outer-product `kernel`'s product over K in blocks of `block` rows, one dispatch each:
/// the first from zero, each next continuing the sums from C (flag CONTINUE); the biases
/// added by the last. The same additions in the same order as one pass.
fn outer_k_blocks(
    gpu: &Gpu,
    uniforms: &mut Uniforms,
    spec: &GemmSpec,
    kernel: GemmKernel,
    block: usize,
    a: &Buffer,
    b: &Buffer,
    bias: &Buffer,
    c: &Buffer,
) -> Result<Vec<Launch>> {
    need_operands(spec, a, b, bias, c)?;
    let mut launches = Vec::new();
    let mut k0 = 0;
    while k0 < spec.k {
        let len = block.min(spec.k - k0);
        let last = k0 + len == spec.k;
        let part = GemmSpec {
            k: len,
            a: Operand {
                offset: spec.a.offset + k0 * spec.a.col_stride,
                ..spec.a
            },
            b: Operand {
                offset: spec.b.offset + k0 * spec.b.row_stride,
                ..spec.b
            },
            bias: spec.bias.filter(|_| last),
            bias2: spec.bias2.filter(|_| last),
            ..*spec
        };
        let launch = gemm_with(gpu, uniforms, &part, kernel, a, b, bias, c)?;
        if k0 > 0 {
            let flags = flags_of(&part) | QUAD_STORE | CONTINUE;
            launch
                .uniform
                .write(gpu, &GemmParams::of(&part, part.c_offset, flags, 0, 1)?);
        }
        launches.push(launch);
        k0 += len;
    }
    Ok(launches)
}

/// The most dispatches (windows) a product is split into for a window kernel: each costs
/// lavapipe about 30 us (512x512x512 in f32 takes 16 windows of B; the tuner weighs it).
pub const MAX_WINDOW_CHUNKS: usize = 32;

/// One dispatch of a window kernel: C's columns (B's window) or rows (A's window) `start ..
/// start + count`, the operand read from the window at byte `window` of its buffer, where
/// its first element for them is element `offset` of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowChunk {
    pub start: usize,
    pub count: usize,
    pub window: u64,
    pub offset: usize,
}

/// How a window kernel ([`GemmKernel::SubgroupWindow`]: B's window, or
/// [`GemmKernel::SubgroupWindowA`]: A's) covers its operand in at most `most` dispatches:
/// one window when all of the operand fits in one (any layout), else ranges of B's columns
/// or A's rows when the operand is read along k with unit stride (x·Wᵀ's W, a row-major A).
/// None where it does not apply: another kernel, no uniform windows on this adapter, the
/// operand's buffer smaller than a window, an f16 operand whose pairs do not apply
/// ([`GemmKernel::pairs_apply`]; a window holds f32 values or f16 pairs), or more than `most`
/// dispatches.
pub fn window_chunks(
    gpu: &Gpu,
    spec: &GemmSpec,
    kernel: GemmKernel,
    a: &Buffer,
    b: &Buffer,
    most: usize,
) -> Option<Vec<WindowChunk>> {
    let mut align = gpu.uniform_window_alignment()?;
    let GemmSpec { m, n, k, .. } = *spec;
    // The operand, its lines (B's columns, A's rows): how many, how far apart, the stride
    // along k, and the tile of lines one workgroup covers.
    let (buffer, op, lines, line_stride, along, tile) = match kernel {
        GemmKernel::SubgroupWindow => (b, spec.b, n, spec.b.col_stride, spec.b.row_stride, 32),
        GemmKernel::SubgroupWindowA => (a, spec.a, m, spec.a.row_stride, spec.a.col_stride, 64),
        GemmKernel::WindowQuads | GemmKernel::WindowQuadsA
            if GemmKernel::quads_apply(spec, a, b) =>
        {
            // Windows start at 16-byte words (the kernel reads the window by the word).
            align = align.max(16);
            if kernel == GemmKernel::WindowQuads {
                (b, spec.b, n, spec.b.col_stride, 1, 32)
            } else {
                (a, spec.a, m, spec.a.row_stride, 1, 32)
            }
        }
        _ => return None,
    };
    if m == 0 || n == 0 || k == 0 || buffer.size_bytes() < UNIFORM_WINDOW {
        return None;
    }
    if buffer.dtype() == Dtype::F16 && !GemmKernel::pairs_apply(spec, a, b, 0) {
        return None;
    }
    let bytes = buffer.dtype().bytes() as u64;
    // The window holding elements first..=last, and `first`'s place in it.
    let place = |first: usize, last: usize| -> Option<(u64, usize)> {
        let start = (first as u64 * bytes / align * align)
            .min((buffer.size_bytes() - UNIFORM_WINDOW) / align * align);
        let fits =
            start <= first as u64 * bytes && (last as u64 + 1) * bytes <= start + UNIFORM_WINDOW;
        fits.then(|| (start, first - (start / bytes) as usize))
    };
    let last = if kernel.windows_b() {
        op.last_index(k, n)
    } else {
        op.last_index(m, k)
    };
    if let Some((window, offset)) = place(op.offset, last) {
        return Some(vec![WindowChunk {
            start: 0,
            count: lines,
            window,
            offset,
        }]);
    }
    if along != 1 || line_stride < k {
        return None;
    }
    // Ranges of at most `most_lines` lines, as few as that allows, balanced: whole tiles
    // where they fit, else multiples of 4 lines.
    let ranges = |most_lines: usize| -> Option<Vec<WindowChunk>> {
        if most_lines == 0 || lines.div_ceil(most_lines) > most {
            return None;
        }
        let windows = lines.div_ceil(most_lines);
        let mut count = lines.div_ceil(windows).next_multiple_of(tile);
        if count > most_lines {
            count = lines.div_ceil(windows).next_multiple_of(4).min(most_lines);
        }
        (0..lines)
            .step_by(count)
            .map(|start| {
                let count = count.min(lines - start);
                let first = op.offset + start * line_stride;
                let (window, offset) = place(first, first + (count - 1) * line_stride + k - 1)?;
                Some(WindowChunk {
                    start,
                    count,
                    window,
                    offset,
                })
            })
            .collect()
    };
    // The most lines a window holds when they start at aligned offsets; failing that,
    // leaving room for the alignment.
    let window_elems = (UNIFORM_WINDOW / bytes) as usize;
    let most_lines = |room: usize| room.checked_sub(k).map_or(0, |r| r / line_stride + 1);
    ranges(most_lines(window_elems))
        .or_else(|| ranges(most_lines(window_elems - (align / bytes) as usize)))
}

/// The part of `spec` one window of a window kernel covers, as a product of its own: C's
/// columns `chunk.start .. + count` (B's windows; the per-column biases moved with them)
/// or rows (A's windows), the windowed operand's offset relative to its window. C's row
/// stride stays N (the caller sets it).
fn window_part(spec: &GemmSpec, kernel: GemmKernel, chunk: &WindowChunk) -> GemmSpec {
    if kernel.windows_b() {
        GemmSpec {
            n: chunk.count,
            b: Operand {
                offset: chunk.offset,
                ..spec.b
            },
            c_offset: spec.c_offset + chunk.start,
            bias: spec.bias.map(|o| o + chunk.start),
            bias2: spec.bias2.map(|o| o + chunk.start),
            ..*spec
        }
    } else {
        GemmSpec {
            m: chunk.count,
            a: Operand {
                offset: chunk.offset,
                ..spec.a
            },
            c_offset: spec.c_offset + chunk.start * spec.n,
            ..*spec
        }
    }
}

// One argument per binding slot, as in the other launchers.
#[allow(clippy::too_many_arguments)]
/// A window kernel's launches for `spec`, one per [`window_chunks`] (at most `most`), or
/// None where it has no plan.
fn window_launches(
    gpu: &Gpu,
    uniforms: &mut Uniforms,
    spec: &GemmSpec,
    kernel: GemmKernel,
    a: &Buffer,
    b: &Buffer,
    bias: &Buffer,
    c: &Buffer,
    most: usize,
) -> Result<Option<Vec<Launch>>> {
    let Some(chunks) = window_chunks(gpu, spec, kernel, a, b, most) else {
        return Ok(None);
    };
    let n = spec.n;
    need_operands(spec, a, b, bias, c)?;
    let pairs = GemmKernel::pairs_apply(spec, a, b, 0);
    let mut launches = Vec::new();
    let half = a.dtype() == Dtype::F16;
    for chunk in chunks {
        let part = window_part(spec, kernel, &chunk);
        // Binding slots 1, 2 (A, B), 5, 6 (their raw words, for the packed-pairs loads), 7
        // (the fused steps' aux operand: any read-only buffer), 8 (the window) and 9 (the
        // quads kernels' storage operand; 10 the same).
        let (entry, slots) = match kernel {
            GemmKernel::SubgroupWindow => (
                if b.dtype() == Dtype::F16 {
                    Kernel::GemmSubgroupWindowPairs
                } else {
                    Kernel::GemmSubgroupWindow
                },
                [
                    Resource::Storage(a),
                    Resource::Unused,
                    Resource::Storage(a),
                    Resource::Unused,
                    Resource::Storage(bias),
                    Resource::UniformWindow(b, chunk.window),
                    Resource::Unused,
                ],
            ),
            GemmKernel::SubgroupWindowA => (
                if a.dtype() == Dtype::F16 && pairs {
                    Kernel::GemmSubgroupWindowAPairs
                } else {
                    Kernel::GemmSubgroupWindowA
                },
                [
                    Resource::Unused,
                    Resource::Storage(b),
                    Resource::Unused,
                    Resource::Storage(b),
                    Resource::Storage(bias),
                    Resource::UniformWindow(a, chunk.window),
                    Resource::Unused,
                ],
            ),
            _ => {
                let (entry, window, storage) = match (kernel.windows_b(), half) {
                    (true, false) => (Kernel::GemmWindowQuads, b, a),
                    (true, true) => (Kernel::GemmWindowQuadsPairs, b, a),
                    (false, false) => (Kernel::GemmWindowQuadsA, a, b),
                    (false, true) => (Kernel::GemmWindowQuadsAPairs, a, b),
                };
                (
                    entry,
                    [
                        Resource::Unused,
                        Resource::Unused,
                        Resource::Unused,
                        Resource::Unused,
                        // The fused steps' aux operand, unused here (any read-only buffer).
                        Resource::Storage(bias),
                        Resource::UniformWindow(window, chunk.window),
                        Resource::Storage(storage),
                    ],
                )
            }
        };
        let quads = matches!(kernel, GemmKernel::WindowQuads | GemmKernel::WindowQuadsA);
        let flags = flags_of(spec)
            | if quads {
                quad_store_flag(c, part.c_offset, n)
            } else {
                0
            };
        let mut params = GemmParams::of(&part, part.c_offset, flags, 0, 1)?;
        params.c_rs = u32_of(n, "gemm n")?;
        let uniform = uniforms.push(gpu, &params);
        let [a_slot, b_slot, a_words, b_words, aux, window, storage] = slots;
        // The quads kernels' copy slot and C's words (13, 14): C stands in for the copy.
        let c_slot = if quads {
            Resource::Storage(c)
        } else {
            Resource::Unused
        };
        let mut resources = vec![
            uniform.resource(),
            a_slot,
            b_slot,
            Resource::Storage(bias),
            Resource::Storage(c),
            a_words,
            b_words,
            aux,
            window,
            storage,
            // The quads kernels' storage operand again, as 8-byte words.
            storage,
            // gemm_outer_quads' B (11, 12), undeclared here; the fused steps' copy
            // (13) and C's words (14).
            Resource::Unused,
            Resource::Unused,
            c_slot,
            c_slot,
        ];
        if quads {
            // The sweep's inputs and aux as words (the bias stands in).
            resources.resize(QUADS_SLOTS, Resource::Unused);
            resources[SWEEP_INPUT_WORDS] = Resource::Storage(bias);
            resources[SWEEP_AUX_WORDS] = Resource::Storage(bias);
        }
        let binding = gpu.bind(entry, &resources);
        launches.push(Launch {
            binding,
            groups: kernel.groups(part.m, part.n),
            uniform,
        });
    }
    Ok(Some(launches))
}

/// Scratch values a split-K product may use at most (128 MiB of f32, within every adapter's
/// default binding limit).
pub const SPLIT_SCRATCH_MAX: usize = 32 << 20;

/// How many K slices the product `[m, k]·[k, n]` is split into (1: none). On a GPU a product
/// with a small M×N occupies few workgroups (ceil(N/128)·ceil(M/128) of the wide kernel's
/// tiles), far too few to fill the device when K is long (the weight gradients, K = T·B):
/// splitting K brings the count to about 512 wide tiles (4096 of the blocked kernel's), at
/// least 256 k values per slice. A software adapter runs a few wide threads and gains
/// nothing. WGRNN_SPLIT_K=S forces S (for measurements).
pub fn split_slices(software: bool, m: usize, n: usize, k: usize) -> usize {
    let cap = |s: usize| {
        s.min(k.max(1))
            .min(SPLIT_SCRATCH_MAX / (m * n).max(1))
            .max(1)
    };
    if let Some(s) = std::env::var("WGRNN_SPLIT_K")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return cap(s);
    }
    let groups = n.div_ceil(128) * m.div_ceil(128);
    if software || groups >= 256 || k < 512 {
        return 1;
    }
    cap(512usize.div_ceil(groups).min(k / 256).min(64))
}

// One argument per binding slot, as in the other launchers.
#[allow(clippy::too_many_arguments)]
/// `C = A·B (+ bias) (+ bias2) (+ C)` in `slices` K slices: partial products into `scratch`
/// (`[S, M, N]`), then their sum in slice order into C. One launch (plain [`gemm`]) when
/// `slices` is 1.
pub fn gemm_split(
    gpu: &Gpu,
    uniforms: &mut Uniforms,
    spec: &GemmSpec,
    kernel: GemmKernel,
    slices: usize,
    a: &Buffer,
    b: &Buffer,
    bias: &Buffer,
    c: &Buffer,
    scratch: &Buffer,
) -> Result<Vec<Launch>> {
    let GemmSpec { m, n, k, .. } = *spec;
    if slices <= 1 || m == 0 || n == 0 || k == 0 {
        return gemm_launches(gpu, uniforms, spec, kernel, a, b, bias, c);
    }
    need(c, spec.c_offset + m * n, "gemm C")?;
    // Pass 1: the raw partial sums of the slices.
    let (partial, slices, k_slice) =
        gemm_partials(gpu, uniforms, spec, kernel, slices, a, b, scratch)?;
    // Pass 2: sum the slices in order, add the biases, store (or accumulate) into C.
    for off in [spec.bias, spec.bias2].into_iter().flatten() {
        need(bias, off + n, "gemm bias")?;
    }
    let params = GemmParams::of(spec, spec.c_offset, flags_of(spec), k_slice, slices)?;
    let uniform = uniforms.push(gpu, &params);
    let binding = gpu.bind(
        Kernel::GemmSplitReduce,
        &[
            uniform.resource(),
            Resource::Storage(scratch),
            Resource::Storage(bias),
            Resource::Storage(c),
        ],
    );
    let reduce = Launch {
        binding,
        groups: groups_for(m * n),
        uniform,
    };
    Ok(vec![partial, reduce])
}

// One argument per binding slot, as in the other launchers.
#[allow(clippy::too_many_arguments)]
/// Pass 1 of [`gemm_split`]: the raw partial sums of A·B over K in about `slices` slices of
/// ceil(K / slices) values (biases and accumulation ignored), slice z's into
/// `scratch[z·M·N + m·N + n]`. Returns the launch, the number of slices (ceil(K / slice))
/// and the slice length.
pub fn gemm_partials(
    gpu: &Gpu,
    uniforms: &mut Uniforms,
    spec: &GemmSpec,
    kernel: GemmKernel,
    slices: usize,
    a: &Buffer,
    b: &Buffer,
    scratch: &Buffer,
) -> Result<(Launch, usize, usize)> {
    let GemmSpec { m, n, k, .. } = *spec;
    if m == 0 || n == 0 || k == 0 || slices == 0 {
        return Err(crate::error::Error::Config(format!(
            "gemm partials of an empty product ({m}x{n}x{k}, {slices} slices)"
        )));
    }
    let k_slice = k.div_ceil(slices);
    let slices = k.div_ceil(k_slice);
    need(scratch, slices * m * n, "gemm split-K scratch")?;
    // The plain product's checks and parameters (B stands in for the unused bias binding).
    let mut partial = gemm_pass(
        gpu,
        uniforms,
        &GemmSpec {
            c_offset: 0,
            bias: None,
            bias2: None,
            accumulate: false,
            ..*spec
        },
        kernel,
        k_slice,
        a,
        b,
        b,
        scratch,
    )?;
    partial
        .uniform
        .write(gpu, &GemmParams::of(spec, 0, 0, k_slice, slices)?);
    partial.groups[2] = u32_of(slices, "gemm slices")?;
    Ok((partial, slices, k_slice))
}

/// Where a fused Elman step with A's windows ([`GemmKernel::WindowQuadsA`], [`gemm_step`])
/// reads its A rows and copies its outputs: `read` holds A (h[t] or da[t + 1], [B, K]
/// row-major at 0), written by the previous step's store or a copy before the sweep;
/// `write` receives the step's [B, N] outputs at 0, for the next step. Two distinct f32
/// buffers of at least [`UNIFORM_WINDOW`] bytes (a window of `read` is bound beside `write`
/// and the state buffer, which a dispatch cannot bind read-write too).
#[derive(Clone, Copy)]
pub struct StepCopies<'a> {
    pub read: &'a Buffer,
    pub write: &'a Buffer,
}

/// How a fused Elman step ([`gemm_step`]) finishes each output of its product `sum`
/// (`shaders/gemm_subgroup.wgsl`; the same operations as `rnn_step_combine_*`). Offsets are
/// of the step's `[B, H]` block in each buffer.
#[derive(Clone, Copy, Debug)]
pub enum StepEpilogue {
    /// `h[t + 1] = act(pre[t] + sum)`, pre at `pre_offset` of the inputs buffer.
    Forward { relu: bool, pre_offset: usize },
    /// `da[t] = (dh_out[t] + sum) · act'(h[t + 1])`: dh_out at `dh_offset` of the inputs
    /// buffer, h[t + 1] at `h_offset` of the aux buffer.
    Backward {
        relu: bool,
        dh_offset: usize,
        h_offset: usize,
    },
}

impl StepEpilogue {
    /// The kernels' flags (STEP_FORWARD or STEP_BACKWARD, and RELU), and where the inputs
    /// (bias slot) and aux (bias2 slot) are read.
    fn kernel_terms(self) -> (u32, usize, usize) {
        let (flags, relu, inputs, aux) = match self {
            StepEpilogue::Forward { relu, pre_offset } => (STEP_FORWARD, relu, pre_offset, 0),
            StepEpilogue::Backward {
                relu,
                dh_offset,
                h_offset,
            } => (STEP_BACKWARD, relu, dh_offset, h_offset),
        };
        (flags | if relu { RELU } else { 0 }, inputs, aux)
    }
}

impl GemmKernel {
    /// The variant of this formulation that finishes an Elman step in its store
    /// ([`gemm_step`]): the tiled, wide and subgroup kernels, and the window quads kernels
    /// (with A's windows, through [`StepCopies`]; the packed-pairs subgroup loads cannot read
    /// A through the C binding, nor can the subgroup window kernels; the register-blocked
    /// kernel never wins a recurrence).
    pub fn step_kernel(self) -> Option<Kernel> {
        match self {
            GemmKernel::Tiled => Some(Kernel::GemmTiledStep),
            GemmKernel::Wide => Some(Kernel::GemmWideStep),
            GemmKernel::WideQuads => Some(Kernel::GemmWideQuadsStep),
            GemmKernel::TiledQuads => Some(Kernel::GemmTiledQuadsStep),
            GemmKernel::TallQuads => Some(Kernel::GemmTallQuadsStep),
            GemmKernel::Subgroup => Some(Kernel::GemmSubgroupStep),
            GemmKernel::WindowQuads => Some(Kernel::GemmWindowQuadsStep),
            GemmKernel::WindowQuadsA => Some(Kernel::GemmWindowQuadsAStep),
            GemmKernel::Blocked
            | GemmKernel::SubgroupPairs
            | GemmKernel::SubgroupWindow
            | GemmKernel::SubgroupWindowA
            | GemmKernel::OuterQuads
            | GemmKernel::OuterLongs => None,
        }
    }
}

// One argument per binding slot, as in the other launchers.
#[allow(clippy::too_many_arguments)]
/// One Elman step as one dispatch of `kernel`'s [`GemmKernel::step_kernel`] (the window
/// quads kernels: one per window, [`window_chunks`]): `C = finish(A·B)` where A's rows are
/// read from `state` (the same buffer C is written to: `spec.a` and `spec.c_offset` must
/// not overlap), or with [`GemmKernel::WindowQuadsA`] from `copies.read` (which the step's
/// outputs are then also copied from, into `copies.write`), B from `b` (W_hh), and the
/// step's other operands from `inputs` and `aux` ([`StepEpilogue`]). C's row stride is N.
/// Where a window kernel's loads, f32, quad stores or window plan do not apply (or, with A's
/// windows, `copies` is None), the step runs as the subgroup kernel's (the same sums in the
/// same order).
pub fn gemm_step(
    gpu: &Gpu,
    uniforms: &mut Uniforms,
    spec: &GemmSpec,
    kernel: GemmKernel,
    epilogue: StepEpilogue,
    b: &Buffer,
    state: &Buffer,
    inputs: &Buffer,
    aux: &Buffer,
    copies: Option<StepCopies>,
) -> Result<Vec<Launch>> {
    // The tiled quads kernels' steps read B in quads where they apply, else they are the
    // plain kernels' steps. The window quads kernels' steps: A read from `state` (B's
    // windows) or from `copies.read` at 0 (A's windows).
    let window_a = match (kernel, copies) {
        (GemmKernel::WindowQuads, _) => Some((spec.a, state)),
        (GemmKernel::WindowQuadsA, Some(copies)) => Some((
            Operand {
                offset: 0,
                ..spec.a
            },
            copies.read,
        )),
        _ => None,
    };
    let windows = window_a.and_then(|(a_op, a_buffer)| {
        let product = GemmSpec { a: a_op, ..*spec };
        // The quads kernels finish a step only in their stores of whole quads (QUAD_STORE).
        (state.dtype() == Dtype::F32
            && a_buffer.dtype() == Dtype::F32
            && quad_store_flag(state, spec.c_offset, spec.n) != 0
            && GemmKernel::quads_apply(&product, a_buffer, b))
        .then(|| window_chunks(gpu, &product, kernel, a_buffer, b, MAX_WINDOW_CHUNKS))
        .flatten()
        .map(|chunks| (product, chunks))
    });
    let kernel = match kernel {
        GemmKernel::WideQuads | GemmKernel::TiledQuads | GemmKernel::TallQuads
            if !GemmKernel::b_quads_apply(spec, 0) =>
        {
            kernel.tile_quads_fallback()
        }
        GemmKernel::WindowQuads | GemmKernel::WindowQuadsA if windows.is_none() => {
            GemmKernel::Subgroup
        }
        other => other,
    };
    let Some(step_kernel) = kernel.step_kernel() else {
        return Err(crate::error::Error::Config(format!(
            "the {kernel:?} GEMM has no fused Elman step"
        )));
    };
    let GemmSpec { m, n, k, .. } = *spec;
    let a_last = spec.a.last_index(m.max(1), k.max(1)) + 1;
    let c_range = spec.c_offset..spec.c_offset + m * n;
    if m > 0 && n > 0 && k > 0 {
        need(state, a_last, "step A")?;
        need(b, spec.b.last_index(k, n) + 1, "step B")?;
        // A's rows and C's block must not overlap (one dispatch reads one and writes the other).
        let a_range = spec.a.offset..a_last;
        if a_range.start < c_range.end && c_range.start < a_range.end {
            return Err(crate::error::Error::Config(format!(
                "fused step: A {a_range:?} overlaps C {c_range:?}"
            )));
        }
    }
    need(state, c_range.end, "step C")?;
    let (flags, bias_off, aux_off) = epilogue.kernel_terms();
    need(inputs, bias_off + m * n, "step inputs")?;
    if matches!(epilogue, StepEpilogue::Backward { .. }) {
        need(aux, aux_off + m * n, "step aux")?;
    }
    if let Some((product, chunks)) = windows {
        let operands = StepOperands {
            b,
            state,
            inputs,
            aux,
            copies,
        };
        return window_step_launches(
            gpu, uniforms, &product, kernel, &chunks, flags, bias_off, aux_off, operands,
        );
    }
    let params = GemmParams::of(
        &GemmSpec {
            bias: Some(bias_off),
            bias2: Some(aux_off),
            ..*spec
        },
        spec.c_offset,
        flags,
        0,
        1,
    )?;
    let uniform = uniforms.push(gpu, &params);
    // A (binding 1) is read through C: B stands in for it, and for the subgroup kernel's
    // raw words of A and B (5, 6).
    let mut resources = vec![
        uniform.resource(),
        Resource::Storage(b),
        Resource::Storage(b),
        Resource::Storage(inputs),
        Resource::Storage(state),
    ];
    if kernel == GemmKernel::Subgroup {
        resources.extend([Resource::Storage(b), Resource::Storage(b)]);
    }
    resources.push(Resource::Storage(aux));
    if matches!(
        kernel,
        GemmKernel::WideQuads | GemmKernel::TiledQuads | GemmKernel::TallQuads
    ) {
        // B is read only as quads (7), and stands in for A's quads (6).
        resources[2] = Resource::Unused;
        resources.extend([Resource::Storage(b), Resource::Storage(b)]);
    }
    let binding = gpu.bind(step_kernel, &resources);
    Ok(vec![Launch {
        binding,
        groups: kernel.groups(m, n),
        uniform,
    }])
}

/// The buffers of a window quads step ([`gemm_step`]).
struct StepOperands<'a> {
    b: &'a Buffer,
    state: &'a Buffer,
    inputs: &'a Buffer,
    aux: &'a Buffer,
    copies: Option<StepCopies<'a>>,
}

// One argument per binding slot, as in the other launchers.
#[allow(clippy::too_many_arguments)]
/// [`gemm_step`] with a window quads kernel (f32): one dispatch per window (`chunks`), each
/// finishing C's columns (B's windows) or rows (A's windows, read from `copies.read`)
/// `start .. start + count`, its offsets into C, the inputs, aux and the copy moved to its
/// first element (their row stride stays N).
fn window_step_launches(
    gpu: &Gpu,
    uniforms: &mut Uniforms,
    spec: &GemmSpec,
    kernel: GemmKernel,
    chunks: &[WindowChunk],
    flags: u32,
    bias_off: usize,
    aux_off: usize,
    operands: StepOperands,
) -> Result<Vec<Launch>> {
    let StepOperands { b, copies, .. } = operands;
    let state = operands.state;
    let n = spec.n;
    let mut launches = Vec::new();
    for chunk in chunks {
        let part = window_part(spec, kernel, chunk);
        // The chunk's first element of C's [B, N] block (the inputs', aux's and copy's too).
        let first = if kernel.windows_b() {
            chunk.start
        } else {
            chunk.start * n
        };
        let flags = flags | quad_store_flag(state, part.c_offset, n);
        let mut params = GemmParams::of(&part, part.c_offset, flags, 0, 1)?;
        params.c_rs = u32_of(n, "gemm n")?;
        params.bias_off = u32_of(bias_off + first, "step inputs offset")?;
        params.bias2_off = u32_of(aux_off + first, "step aux offset")?;
        params.copy_off = u32_of(first, "step copy offset")?;
        let uniform = uniforms.push(gpu, &params);
        // B's windows: `window_step_resources`. A's windows: X is Bᵀ (9, 10), the window is
        // of the copy the previous step wrote, and this step writes the next one's (13).
        let operands = StepOperands { copies, ..operands };
        let (entry, resources) = match copies.filter(|_| !kernel.windows_b()) {
            None => (
                Kernel::GemmWindowQuadsStep,
                window_step_resources(&uniform, &operands, chunk.window),
            ),
            Some(copies) => {
                let mut resources = window_step_resources(&uniform, &operands, chunk.window);
                resources[8] = Resource::UniformWindow(copies.read, chunk.window);
                resources[9] = Resource::Storage(b);
                resources[10] = Resource::Storage(b);
                resources[13] = Resource::Storage(copies.write);
                (Kernel::GemmWindowQuadsAStep, resources)
            }
        };
        launches.push(Launch {
            binding: gpu.bind(entry, &resources),
            groups: kernel.groups(part.m, part.n),
            uniform,
        });
    }
    Ok(launches)
}

/// The bindings of a window quads step with B's windows (`gemm_window_quads`'s step and
/// sweep): B's window at byte `window`; A comes through C, so X's storage slots (9, 10) are
/// not read (the inputs stand in), nor is the copy (13: C stands in); slots 1, 2, 5, 6, 11
/// and 12 undeclared; C's words: 14; the inputs and aux again as words (24, 25: read by the
/// sweep, whose conditions `gemm_sweep` checks).
fn window_step_resources<'a>(
    uniform: &'a super::UniformRef,
    operands: &StepOperands<'a>,
    window: u64,
) -> Vec<Resource<'a>> {
    let mut resources = vec![Resource::Unused; QUADS_SLOTS];
    resources[SWEEP_INPUT_WORDS] = Resource::Storage(operands.inputs);
    resources[SWEEP_AUX_WORDS] = Resource::Storage(operands.aux);
    resources[0] = uniform.resource();
    resources[3] = Resource::Storage(operands.inputs);
    resources[4] = Resource::Storage(operands.state);
    resources[14] = Resource::Storage(operands.state);
    resources[7] = Resource::Storage(operands.aux);
    resources[8] = Resource::UniformWindow(operands.b, window);
    resources[9] = Resource::Storage(operands.inputs);
    resources[10] = Resource::Storage(operands.inputs);
    resources[13] = Resource::Storage(operands.state);
    resources
}

// One argument per binding slot, as in the other launchers.
#[allow(clippy::too_many_arguments)]
/// `steps` fused Elman steps as one dispatch of `gemm_window_quads_sweep` (a workgroup per
/// 32 rows of the batch, looping over the steps): step s is [`gemm_step`]'s step with
/// [`GemmKernel::WindowQuads`] for `first` and `epilogue` with every offset (A's, C's, the
/// inputs' and aux's) moved by s·`shift` elements (the steps run in that order: forward
/// `shift` = B·H, backward -B·H), so each step's results are the next one's A. The same
/// sums in the same order as the step-by-step dispatches. B (W_hh, or its transposed copy)
/// is read through one window where it fits, else from its storage buffer. With
/// `long_words` the kernel's 16-byte storage words are two 64-bit integers
/// ([`Kernel::long_words`]; the caller offers it where the adapter has them). None where it
/// does not apply: no windows on this adapter, an operand not f32, the quads loads or
/// stores not applying, the inputs' or aux's offset not a multiple of 4 (the epilogue reads
/// them as 16-byte words); the caller then runs the steps one by one.
pub fn gemm_sweep(
    gpu: &Gpu,
    uniforms: &mut Uniforms,
    long_words: bool,
    first: &GemmSpec,
    steps: usize,
    shift: isize,
    epilogue: StepEpilogue,
    b: &Buffer,
    state: &Buffer,
    inputs: &Buffer,
    aux: &Buffer,
) -> Result<Option<Launch>> {
    let GemmSpec { m, n, k, .. } = *first;
    let applies = steps > 0
        && m > 0
        && n > 0
        && k > 0
        && state.dtype() == Dtype::F32
        && b.dtype() == Dtype::F32
        && shift.unsigned_abs().is_multiple_of(4)
        && quad_store_flag(state, first.c_offset, n) != 0
        && GemmKernel::quads_apply(first, state, b);
    if !applies || gpu.uniform_window_alignment().is_none() {
        return Ok(None);
    }
    // W_hh through one window where it fits; else from its storage buffer, with a window of
    // a read-only operand large enough bound where the kernel declares one (not read; the
    // state, bound read-write, cannot be a uniform buffer in the same dispatch).
    let (in_window, in_storage) = if long_words {
        (
            Kernel::GemmWindowLongsSweep,
            Kernel::GemmWindowLongsSweepStorage,
        )
    } else {
        (
            Kernel::GemmWindowQuadsSweep,
            Kernel::GemmWindowQuadsSweepStorage,
        )
    };
    let (entry, part, window_of, window) =
        match window_chunks(gpu, first, GemmKernel::WindowQuads, state, b, 1)
            .and_then(|chunks| chunks.first().copied())
        {
            Some(chunk) => (
                in_window,
                window_part(first, GemmKernel::WindowQuads, &chunk),
                b,
                chunk.window,
            ),
            None => {
                let Some(stand_in) = [b, inputs, aux]
                    .into_iter()
                    .find(|buffer| buffer.size_bytes() >= UNIFORM_WINDOW)
                else {
                    return Ok(None);
                };
                (in_storage, *first, stand_in, 0)
            }
        };
    // Every step's operands in range and its A apart from its C: the first's and the last's
    // (the offsets move by the same shift).
    let moved = |offset: usize, steps: usize| -> Result<usize> {
        offset
            .checked_add_signed(shift * steps as isize)
            .ok_or_else(|| {
                crate::error::Error::Config(format!("sweep: offset {offset} moved below 0"))
            })
    };
    let (flags, bias_off, aux_off) = epilogue.kernel_terms();
    // The epilogue reads the inputs (and backward aux) as 16-byte words: f32, from offsets
    // that are multiples of 4 (each step's too: the shift is one).
    let backward = matches!(epilogue, StepEpilogue::Backward { .. });
    if inputs.dtype() != Dtype::F32
        || !bias_off.is_multiple_of(4)
        || (backward && (aux.dtype() != Dtype::F32 || !aux_off.is_multiple_of(4)))
    {
        return Ok(None);
    }
    for s in [0, steps - 1] {
        let a_first = moved(first.a.offset, s)?;
        let c_first = moved(first.c_offset, s)?;
        let a_range = a_first..first.a.last_index(m, k) - first.a.offset + a_first + 1;
        let c_range = c_first..c_first + m * n;
        need(state, a_range.end.max(c_range.end), "sweep state")?;
        if a_range.start < c_range.end && c_range.start < a_range.end {
            return Err(crate::error::Error::Config(format!(
                "sweep step {s}: A {a_range:?} overlaps C {c_range:?}"
            )));
        }
        need(inputs, moved(bias_off, s)? + m * n, "sweep inputs")?;
        if backward {
            need(aux, moved(aux_off, s)? + m * n, "sweep aux")?;
        }
    }
    need(b, first.b.last_index(k, n) + 1, "sweep B")?;
    let flags = flags | QUAD_STORE;
    let mut params = GemmParams::of(&part, part.c_offset, flags, 0, 1)?;
    params.bias_off = u32_of(bias_off, "sweep inputs offset")?;
    params.bias2_off = u32_of(aux_off, "sweep aux offset")?;
    params.steps = u32_of(steps, "sweep steps")?;
    // Wrapping: a backward sweep's shift is -B·H.
    params.step_shift = i32::try_from(shift)
        .map_err(|_| crate::error::Error::Config(format!("sweep shift {shift} too large")))?
        as u32;
    let uniform = uniforms.push(gpu, &params);
    let operands = StepOperands {
        b,
        state,
        inputs,
        aux,
        copies: None,
    };
    let mut resources = window_step_resources(&uniform, &operands, window);
    if entry == in_storage {
        resources[8] = Resource::UniformWindow(window_of, 0);
        resources[9] = Resource::Storage(b);
    }
    Ok(Some(Launch {
        binding: gpu.bind(entry, &resources),
        groups: [u32_of(m.div_ceil(32), "sweep sequence tiles")?, 1, 1],
        uniform,
    }))
}
