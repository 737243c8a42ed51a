//! Launchers of `shaders/convert.wgsl`: element-type casts and transposed copies.

// Launchers bind many buffers by design: one argument per binding slot reads clearer than a
// struct per kernel.
#![allow(clippy::too_many_arguments)]

use super::{groups_for, need, u32_of, Launch, Uniforms};
use crate::error::Result;
use crate::gpu::{Buffer, Gpu, Kernel, Resource};
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
