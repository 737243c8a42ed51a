//! Launchers of `shaders/convert.wgsl`: element-type casts and transposed copies.

// Launchers bind many buffers by design: one argument per binding slot reads clearer than a
// struct per kernel.
#![allow(clippy::too_many_arguments)]

use super::{groups_for, need, u32_of, Launch, StorageWords, UniformRef, Uniforms};
use crate::error::{Error, Result};
use crate::gpu::{Buffer, Dtype, Gpu, Kernel, Resource};
use bytemuck::{Pod, Zeroable};

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
/// `offset`, transposed into `dst` (`[cols, rows]` at 0), in `dst`'s element type; by 4x4
/// blocks where [`transpose_words`] says so.
pub fn transpose(
    gpu: &Gpu,
    u: &mut Uniforms,
    offset: usize,
    rows: usize,
    cols: usize,
    src: &Buffer,
    dst: &Buffer,
) -> Result<Launch> {
    let words = transpose_words(gpu, offset, rows, cols, src, dst);
    transpose_in(gpu, u, words, offset, rows, cols, src, dst)
}

/// How [`transpose`] moves the values: by 4x4 blocks of 16-byte words (`transpose_quads`) on
/// software adapters, where each value moved alone costs a per-lane load, store and integer
/// division, for f32 buffers whose rows, columns and offset are multiples of 4 (and rows / 4
/// within one dispatch dimension); None: value by value (`transpose_elements`).
pub fn transpose_words(
    gpu: &Gpu,
    offset: usize,
    rows: usize,
    cols: usize,
    src: &Buffer,
    dst: &Buffer,
) -> Option<StorageWords> {
    (gpu.adapter().is_software && blocks_fit(offset, rows, cols, src, dst))
        .then(|| StorageWords::for_gpu(gpu))
}

/// Whether `transpose_quads` can move this block: f32 buffers, rows, columns and offset
/// multiples of 4, rows / 4 within one dispatch dimension.
fn blocks_fit(offset: usize, rows: usize, cols: usize, src: &Buffer, dst: &Buffer) -> bool {
    let whole = |v: usize| v.is_multiple_of(4);
    whole(offset)
        && whole(rows)
        && whole(cols)
        && rows / 4 <= u16::MAX as usize
        && src.dtype() == Dtype::F32
        && dst.dtype() == Dtype::F32
}

/// [`transpose`] by the kernel `words` names (`Some`: 4x4 blocks, which need what
/// [`transpose_words`] checks; tests run every kind).
pub fn transpose_in(
    gpu: &Gpu,
    u: &mut Uniforms,
    words: Option<StorageWords>,
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
    if words.is_some() && !blocks_fit(offset, rows, cols, src, dst) {
        return Err(Error::Gpu(format!(
            "transpose of {rows}x{cols} at {offset} ({:?} into {:?}): 4x4 blocks need f32 \
             buffers and rows, columns and offset multiples of 4",
            src.dtype(),
            dst.dtype()
        )));
    }
    let Some(words) = words else {
        return convert(
            gpu,
            u,
            Kernel::Transpose,
            offset,
            count,
            (rows, cols),
            src,
            dst,
        );
    };
    let uniform = push_params(gpu, u, offset, count, (rows, cols))?;
    let binding = gpu.bind(
        words.pick(Kernel::TransposeQuads, Kernel::TransposeLongs),
        &[
            uniform.resource(),
            Resource::Unused,
            Resource::Unused,
            Resource::Storage(src),
            Resource::Storage(dst),
        ],
    );
    let groups = if count == 0 {
        [0, 0, 0]
    } else {
        [
            u32_of(cols.div_ceil(32), "column blocks")?,
            u32_of(rows / 4, "row blocks")?,
            1,
        ]
    };
    Ok(Launch {
        binding,
        groups,
        uniform,
    })
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
    let uniform = push_params(gpu, u, offset, count, (rows, cols))?;
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

/// The kernels' parameters, pushed to the uniform ring.
fn push_params(
    gpu: &Gpu,
    u: &mut Uniforms,
    offset: usize,
    count: usize,
    (rows, cols): (usize, usize),
) -> Result<UniformRef> {
    Ok(u.push(
        gpu,
        &CastParams {
            count: u32_of(count, "count")?,
            offset: u32_of(offset, "offset")?,
            rows: u32_of(rows, "rows")?,
            cols: u32_of(cols, "cols")?,
        },
    ))
}
