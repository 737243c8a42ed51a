//! Launcher for `shaders/gemm.wgsl`: C = A·B (+ bias) (+ bias2) (+ C).

use super::{need, u32_of, Launch, Uniforms};
use crate::error::Result;
use crate::gpu::{Buffer, Gpu, Kernel, Resource};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GemmParams {
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
    _pad: [u32; 2],
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

pub fn gemm(
    gpu: &Gpu,
    uniforms: &mut Uniforms,
    spec: &GemmSpec,
    a: &Buffer,
    b: &Buffer,
    bias: &Buffer,
    c: &Buffer,
) -> Result<Launch> {
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
    let flags = spec.bias.map_or(0, |_| 1)
        | spec.bias2.map_or(0, |_| 2)
        | if spec.accumulate { 4 } else { 0 };
    let params = GemmParams {
        m: u32_of(m, "gemm m")?,
        n: u32_of(n, "gemm n")?,
        k: u32_of(k, "gemm k")?,
        a_off: u32_of(spec.a.offset, "gemm a offset")?,
        a_rs: u32_of(spec.a.row_stride, "gemm a stride")?,
        a_cs: u32_of(spec.a.col_stride, "gemm a stride")?,
        b_off: u32_of(spec.b.offset, "gemm b offset")?,
        b_rs: u32_of(spec.b.row_stride, "gemm b stride")?,
        b_cs: u32_of(spec.b.col_stride, "gemm b stride")?,
        c_off: u32_of(spec.c_offset, "gemm c offset")?,
        c_rs: u32_of(n, "gemm n")?,
        bias_off: u32_of(spec.bias.unwrap_or(0), "gemm bias offset")?,
        bias2_off: u32_of(spec.bias2.unwrap_or(0), "gemm bias offset")?,
        flags,
        _pad: [0; 2],
    };
    let uniform = uniforms.push(gpu, &params);
    let binding = gpu.bind(
        Kernel::Gemm,
        &[
            uniform.resource(),
            Resource::Storage(a),
            Resource::Storage(b),
            Resource::Storage(bias),
            Resource::Storage(c),
        ],
    );
    let groups = if m == 0 || n == 0 {
        [0, 0, 0]
    } else {
        [n.div_ceil(64) as u32, m.div_ceil(32) as u32, 1]
    };
    Ok(Launch {
        binding,
        groups,
        uniform,
    })
}
