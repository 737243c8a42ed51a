//! Launchers for `shaders/layer_io.wgsl`: reversing rows for a bidirectional model's
//! backward direction, and moving each unit's hidden states into (and gradients out of)
//! the layer output, with dropout between layers.

use super::{groups_for, need, u32_of, ChunkInfo, Launch, Uniforms};
use crate::dropout::Dropout;
use crate::error::Result;
use crate::gpu::{Buffer, Gpu, Kernel, Resource};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct IoParams {
    steps: u32,
    batch: u32,
    width: u32,
    out_width: u32,
    col0: u32,
    reverse: u32,
    accumulate: u32,
    dropout: u32,
    threshold: u32,
    scale: f32,
    seed: u32,
    layer: u32,
    src_off: u32,
    _pad: [u32; 3],
}

/// Where a unit sits in its layer's output.
#[derive(Clone, Copy, Debug)]
pub struct UnitPlacement {
    pub steps: usize,
    pub batch: usize,
    pub hidden: usize,
    /// D·H, the layer output's width.
    pub out_width: usize,
    /// The unit's first column (0, or H for the reverse direction).
    pub col0: usize,
    pub reverse: bool,
    /// Dropout applied to this layer's output (layer index, settings), if any.
    pub dropout: Option<(usize, Dropout)>,
}

impl UnitPlacement {
    fn params(&self, width: usize, accumulate: bool) -> Result<IoParams> {
        let (on, threshold, scale, seed, layer) = match self.dropout {
            Some((layer, d)) => (1, d.threshold(), d.scale(), d.seed, layer),
            None => (0, 0, 1.0, 0, 0),
        };
        Ok(IoParams {
            steps: u32_of(self.steps, "steps")?,
            batch: u32_of(self.batch, "batch")?,
            width: u32_of(width, "width")?,
            out_width: u32_of(self.out_width, "width")?,
            col0: u32_of(self.col0, "column")?,
            reverse: self.reverse as u32,
            accumulate: accumulate as u32,
            dropout: on,
            threshold,
            scale,
            seed,
            layer: u32_of(layer, "layer")?,
            src_off: 0,
            _pad: [0; 3],
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn launch(
    gpu: &Gpu,
    u: &mut Uniforms,
    kernel: Kernel,
    params: IoParams,
    elements: usize,
    info: ChunkInfo<'_>,
    src: &Buffer,
    dst: &Buffer,
) -> Launch {
    let uniform = u.push(gpu, &params);
    let binding = gpu.bind(
        kernel,
        &[
            uniform.resource(),
            Resource::Storage(info.lengths),
            Resource::Storage(info.chunk_info),
            Resource::Storage(src),
            Resource::Storage(dst),
        ],
    );
    Launch {
        binding,
        groups: groups_for(elements),
        uniform,
    }
}

/// `dst[r, :] (+)= src[src_offset + rev(r)·width ..]` for `[T·B, width]` matrices (a reverse
/// unit's input, or the gradient of it put back in sequence order).
#[allow(clippy::too_many_arguments)]
pub fn reverse_rows(
    gpu: &Gpu,
    u: &mut Uniforms,
    steps: usize,
    batch: usize,
    width: usize,
    accumulate: bool,
    info: ChunkInfo<'_>,
    src: &Buffer,
    src_offset: usize,
    dst: &Buffer,
) -> Result<Launch> {
    let n = steps * batch * width;
    need(src, src_offset + n, "reverse_rows src")?;
    need(dst, n, "reverse_rows dst")?;
    need(info.lengths, batch, "reverse_rows lengths")?;
    let place = UnitPlacement {
        steps,
        batch,
        hidden: width,
        out_width: width,
        col0: 0,
        reverse: true,
        dropout: None,
    };
    let params = IoParams {
        src_off: u32_of(src_offset, "offset")?,
        ..place.params(width, accumulate)?
    };
    Ok(launch(
        gpu,
        u,
        Kernel::ReverseRows,
        params,
        n,
        info,
        src,
        dst,
    ))
}

/// The unit's hidden states `hs` [T + 1, B, H] into its columns of the layer output `out`
/// [T + 1, B, D·H] (row block 0 unused), in sequence order, with the layer's dropout.
pub fn unit_output(
    gpu: &Gpu,
    u: &mut Uniforms,
    place: &UnitPlacement,
    info: ChunkInfo<'_>,
    hs: &Buffer,
    out: &Buffer,
) -> Result<Launch> {
    let (rows, h) = (place.steps * place.batch, place.hidden);
    need(hs, (rows + place.batch) * h, "unit_output hs")?;
    need(
        out,
        (rows + place.batch) * place.out_width,
        "unit_output out",
    )?;
    Ok(launch(
        gpu,
        u,
        Kernel::UnitOutput,
        place.params(h, false)?,
        rows * h,
        info,
        hs,
        out,
    ))
}

/// The gradient at the layer output `d_out` [T, B, D·H] back to the unit's hidden states
/// `dh_out` [T, B, H] (in the unit's own time), through the layer's dropout.
pub fn unit_output_grad(
    gpu: &Gpu,
    u: &mut Uniforms,
    place: &UnitPlacement,
    info: ChunkInfo<'_>,
    d_out: &Buffer,
    dh_out: &Buffer,
) -> Result<Launch> {
    let (rows, h) = (place.steps * place.batch, place.hidden);
    need(d_out, rows * place.out_width, "unit_output_grad d_out")?;
    need(dh_out, rows * h, "unit_output_grad dh_out")?;
    Ok(launch(
        gpu,
        u,
        Kernel::UnitOutputGrad,
        place.params(h, false)?,
        rows * h,
        info,
        d_out,
        dh_out,
    ))
}
