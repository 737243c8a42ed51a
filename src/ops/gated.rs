//! Launchers for `shaders/gated_cell.wgsl`: one LSTM or GRU step, forward or backward.
//! Buffer shapes are documented in the shader's header.

// One argument per binding slot reads clearer than a struct per kernel.
#![allow(clippy::too_many_arguments)]

use super::{need, u32_of, Launch, Uniforms};
use crate::error::{Error, Result};
use crate::gpu::{Buffer, Gpu, Kernel, Resource};
use crate::model::Cell;
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GatedParams {
    t: u32,
    steps: u32,
    batch: u32,
    hidden: u32,
    whh_off: u32,
    bhh_off: u32,
    _pad: [u32; 2],
}

/// One gated recurrence sweep: `steps` steps of `batch` sequences of `hidden` units.
#[derive(Clone, Copy, Debug)]
pub struct GatedShape {
    pub cell: Cell,
    pub steps: usize,
    pub batch: usize,
    pub hidden: usize,
    /// Element offsets of weight_hh_l0 `[G·H, H]` and bias_hh_l0 `[G·H]` in params.
    pub whh_off: usize,
    pub bhh_off: usize,
}

/// The buffers of a gated sweep (shapes in `shaders/gated_cell.wgsl`).
pub struct GatedBuffers<'a> {
    pub params: &'a Buffer,
    pub pre: &'a Buffer,    // [T, B, G·H]
    pub hs: &'a Buffer,     // [T + 1, B, H]
    pub cs: &'a Buffer,     // [T + 1, B, H] (LSTM)
    pub cache: &'a Buffer,  // [T, B, 4H]
    pub dh_out: &'a Buffer, // [T, B, H]
    pub da: &'a Buffer,     // [T, B, G·H]
    pub dhh: &'a Buffer,    // [T, B, G·H] (GRU)
    pub dstate: &'a Buffer, // [T, B, H]
}

impl GatedShape {
    /// 64 units per workgroup along x, four sequences per invocation along y.
    fn groups(&self) -> Result<[u32; 3]> {
        Ok([
            self.hidden.div_ceil(64) as u32,
            u32_of(self.batch.div_ceil(4), "batch")?,
            1,
        ])
    }

    fn params(&self, t: usize) -> Result<GatedParams> {
        Ok(GatedParams {
            t: u32_of(t, "step")?,
            steps: u32_of(self.steps, "steps")?,
            batch: u32_of(self.batch, "batch")?,
            hidden: u32_of(self.hidden, "hidden")?,
            whh_off: u32_of(self.whh_off, "offset")?,
            bhh_off: u32_of(self.bhh_off, "offset")?,
            _pad: [0; 2],
        })
    }

    fn check(&self, b: &GatedBuffers<'_>) -> Result<()> {
        let (t, bh) = (self.steps, self.batch * self.hidden);
        let gbh = self.cell.gates() * bh;
        need(b.pre, t * gbh, "gated pre")?;
        need(b.hs, (t + 1) * bh, "gated hs")?;
        need(b.cache, t * 4 * bh, "gated cache")?;
        need(b.dh_out, t * bh, "gated dh_out")?;
        need(b.da, t * gbh, "gated da")?;
        need(b.dstate, t * bh, "gated dstate")?;
        match self.cell {
            Cell::Lstm => need(b.cs, (t + 1) * bh, "gated cs"),
            Cell::Gru => need(b.dhh, t * gbh, "gated dhh"),
            Cell::Rnn => Err(Error::Config(
                "the gated kernels run lstm and gru cells, not rnn".into(),
            )),
        }
    }
}

/// The forward sweep: T launches, step 0 first.
pub fn gated_forward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &GatedShape,
    b: &GatedBuffers<'_>,
) -> Result<Vec<Launch>> {
    shape.check(b)?;
    (0..shape.steps)
        .map(|t| {
            let uniform = u.push(gpu, &shape.params(t)?);
            let mut resources = vec![
                uniform.resource(),
                Resource::Storage(b.params),
                Resource::Storage(b.pre),
                Resource::Storage(b.hs),
            ];
            let kernel = if shape.cell == Cell::Lstm {
                resources.push(Resource::Storage(b.cs));
                Kernel::LstmStepForward
            } else {
                Kernel::GruStepForward
            };
            resources.push(Resource::Storage(b.cache));
            Ok(Launch {
                binding: gpu.bind(kernel, &resources),
                groups: shape.groups()?,
                uniform,
            })
        })
        .collect()
}

/// The backward sweep: T launches, last step first.
pub fn gated_backward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &GatedShape,
    b: &GatedBuffers<'_>,
) -> Result<Vec<Launch>> {
    shape.check(b)?;
    (0..shape.steps)
        .rev()
        .map(|t| {
            let uniform = u.push(gpu, &shape.params(t)?);
            let mut resources = vec![uniform.resource(), Resource::Storage(b.params)];
            // Binding order as listed in the shader's header.
            let kernel = if shape.cell == Cell::Lstm {
                resources.extend([
                    Resource::Storage(b.cs),
                    Resource::Storage(b.cache),
                    Resource::Storage(b.dh_out),
                    Resource::Storage(b.da),
                    Resource::Storage(b.dstate),
                ]);
                Kernel::LstmStepBackward
            } else {
                resources.extend([
                    Resource::Storage(b.hs),
                    Resource::Storage(b.cache),
                    Resource::Storage(b.dh_out),
                    Resource::Storage(b.da),
                    Resource::Storage(b.dhh),
                    Resource::Storage(b.dstate),
                ]);
                Kernel::GruStepBackward
            };
            Ok(Launch {
                binding: gpu.bind(kernel, &resources),
                groups: shape.groups()?,
                uniform,
            })
        })
        .collect()
}
