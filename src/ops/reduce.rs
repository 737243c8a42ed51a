//! Launchers of `shaders/reduce.wgsl`: fixed-order sums (the chunk's loss, bias gradients,
//! the gradient norm).

// Launchers bind many buffers by design: one argument per binding slot reads clearer than a
// struct per kernel.
#![allow(clippy::too_many_arguments)]

use super::{need, u32_of, Launch, StorageWords, Uniforms};
use crate::error::{Error, Result};
use crate::gpu::{Buffer, Gpu, Kernel, Resource};
use bytemuck::{Pod, Zeroable};

/// Number of partial sums (one per invocation, 64 workgroups of 256) the gradient-norm
/// reduction's first stage writes (fixed, so the summation order, and the bits, never
/// depend on the model size).
pub const NORM_PARTIALS: usize = 64 * 256;

/// The uniform of the reduction kernels (`shaders/reduce.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct ReduceParams {
    pub count: u32,
    pub columns: u32,
    pub dst_off: u32,
    pub dst2_off: u32,
    /// column sums: the distance between the source's rows (>= columns).
    pub src_stride: u32,
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
        src_stride: 0,
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

/// How a column sum reads rows `stride` values apart: one invocation per column (GPUs, or N
/// or the stride not a multiple of 4), or 4 columns an invocation in storage words of the
/// given kind (software adapters: `column_sum_quads`, workgroups of 8). The same additions in
/// the same order: the same bits.
pub fn column_words(gpu: &Gpu, columns: usize, stride: usize) -> Option<StorageWords> {
    (gpu.adapter().is_software && columns.is_multiple_of(4) && stride.is_multiple_of(4))
        .then(|| StorageWords::for_gpu(gpu))
}

/// `grads[dst + n] (and grads[dst2 + n]) = Σ_r src[r, n]` over `rows` rows of `columns`
/// values, `stride` apart (`stride >= columns`), by the kernel `words` names
/// ([`column_words`]; `Some` needs N and the stride multiples of 4).
#[allow(clippy::too_many_arguments)]
pub fn column_sum(
    gpu: &Gpu,
    u: &mut Uniforms,
    words: Option<StorageWords>,
    rows: usize,
    columns: usize,
    stride: usize,
    dst: usize,
    dst2: Option<usize>,
    src: &Buffer,
    grads: &Buffer,
) -> Result<Launch> {
    source_rows(src, rows, columns, stride)?;
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
        src_stride: u32_of(stride, "stride")?,
        slot: 0,
        slice_rows: 0,
        _pad: 0,
    };
    let uniform = u.push(gpu, &p);
    let (kernel, groups) = column_kernel(words, columns, stride, 1)?;
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
    stride: usize,
    slices: usize,
) -> Result<(Kernel, [u32; 3])> {
    let slices = u32_of(slices, "column slices")?;
    Ok(match words {
        Some(words) => {
            if !columns.is_multiple_of(4) || !stride.is_multiple_of(4) {
                return Err(Error::Config(format!(
                    "column sums 4 columns an invocation need multiples of 4 columns and row \
                     stride, not {columns} and {stride}"
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

/// Checks a column sum's source: `rows` rows of `columns` values, `stride` apart.
fn source_rows(src: &Buffer, rows: usize, columns: usize, stride: usize) -> Result<()> {
    if stride < columns {
        return Err(Error::Config(format!(
            "column_sum: row stride {stride} is shorter than the {columns} columns"
        )));
    }
    need(
        src,
        rows.saturating_sub(1) * stride + columns,
        "column_sum src",
    )
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
    words: Option<StorageWords>,
    rows: usize,
    columns: usize,
    stride: usize,
    dst: usize,
    dst2: Option<usize>,
    src: &Buffer,
    grads: &Buffer,
    scratch: &Buffer,
    slices: usize,
) -> Result<Vec<Launch>> {
    if slices <= 1 || rows == 0 || columns == 0 {
        return Ok(vec![column_sum(
            gpu, u, words, rows, columns, stride, dst, dst2, src, grads,
        )?]);
    }
    let slice_rows = rows.div_ceil(slices);
    let slices = rows.div_ceil(slice_rows);
    source_rows(src, rows, columns, stride)?;
    need(scratch, slices * columns, "column_sum scratch")?;
    let p = ReduceParams {
        count: u32_of(rows, "rows")?,
        columns: u32_of(columns, "columns")?,
        dst_off: 0,
        dst2_off: u32::MAX,
        src_stride: u32_of(stride, "stride")?,
        slot: 0,
        slice_rows: u32_of(slice_rows, "rows")?,
        _pad: 0,
    };
    let uniform = u.push(gpu, &p);
    let (kernel, groups) = column_kernel(words, columns, stride, slices)?;
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
    let total = column_sum(
        gpu, u, words, slices, columns, columns, dst, dst2, scratch, grads,
    )?;
    Ok(vec![partials, total])
}

/// The global L2 norm of `grads[0..count]` into `norm[0]` (and `norm_log[slot]`), in two
/// fixed-order stages; `norm[1]` flags a non-finite norm or loss (`loss_log[slot]`), which
/// makes the optimizer skip the step. Point it at a slot with [`set_loss_slot`]. `words`: how
/// the gradients are read ([`StorageWords::for_gpu`] in the engine).
#[allow(clippy::too_many_arguments)]
pub fn grad_norm(
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
        src_stride: 0,
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
