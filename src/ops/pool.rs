//! Launchers of `shaders/pool.wgsl`: many-to-one pooling of a chunk's hidden states and
//! its gradient.

// Launchers bind many buffers by design: one argument per binding slot reads clearer than a
// struct per kernel.
#![allow(clippy::too_many_arguments)]

use super::{groups_for, need, u32_of, ChunkInfo, Launch, Uniforms};
use crate::error::Result;
use crate::gpu::{Buffer, Gpu, Kernel, Recording, Resource};
use crate::model::Pool;
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct PoolParams {
    steps: u32,
    batch: u32,
    hidden: u32,
    kind: u32,
    fresh: u32,
    reverse_from: u32,
    _pad: [u32; 2],
}

/// Where a chunk stands in its sequence, for pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SequenceStart {
    /// The chunk begins the sequence: ignore the pooling carry.
    Fresh,
    /// The chunk continues a sequence: fold in the carry from earlier chunks.
    Continued,
}

/// Pooling shape: a chunk of `steps` steps of `batch` sequences (their lengths and the
/// chunk's first step are in the `lengths` and `chunk_info` buffers).
#[derive(Clone, Copy, Debug)]
pub struct PoolShape {
    pub steps: usize,
    pub batch: usize,
    /// Width of the pooled rows (H, or D·H for a stacked or bidirectional model).
    pub hidden: usize,
    pub pool: Pool,
    pub start: SequenceStart,
    /// First column of a bidirectional model's reverse half (`hidden` when there is none).
    pub reverse_from: usize,
}

impl PoolShape {
    fn params(&self) -> Result<PoolParams> {
        Ok(PoolParams {
            steps: u32_of(self.steps, "steps")?,
            batch: u32_of(self.batch, "batch")?,
            hidden: u32_of(self.hidden, "hidden")?,
            kind: match self.pool {
                Pool::Last => 0,
                Pool::Mean => 1,
                Pool::Max => 2,
            },
            fresh: (self.start == SequenceStart::Fresh) as u32,
            reverse_from: u32_of(self.reverse_from, "reverse_from")?,
            _pad: [0; 2],
        })
    }
}

/// Pools the chunk's hidden states into `z` [B, H], updating the carry `acc` [B, H] and
/// the positions `arg` [B, H] that z came from (last, max).
pub fn pool_forward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &PoolShape,
    hs: &Buffer,
    acc: &Buffer,
    z: &Buffer,
    arg: &Buffer,
    info: ChunkInfo<'_>,
) -> Result<Launch> {
    let bh = shape.batch * shape.hidden;
    need(hs, (shape.steps + 1) * bh, "pool hs")?;
    need(info.lengths, shape.batch, "pool lengths")?;
    for (b, w) in [(acc, "pool acc"), (z, "pool z"), (arg, "pool arg")] {
        need(b, bh, w)?;
    }
    let uniform = u.push(gpu, &shape.params()?);
    let binding = gpu.bind(
        Kernel::PoolForward,
        &[
            uniform.resource(),
            Resource::Storage(hs),
            Resource::Storage(acc),
            Resource::Storage(z),
            Resource::Storage(arg),
            Resource::Storage(info.lengths),
            Resource::Storage(info.chunk_info),
        ],
    );
    Ok(Launch {
        binding,
        groups: groups_for(bh),
        uniform,
    })
}

/// Spreads `dz` [B, H] over `dh_out` [T, B, H], recorded into `rec`: for `last` and `max`
/// pooling dh_out is zeroed and dz scattered onto the step `arg` names (B·H invocations), for
/// `mean` one invocation per element of dh_out (per 4 elements where H is a multiple of 4).
#[allow(clippy::too_many_arguments)]
pub fn pool_backward(
    gpu: &Gpu,
    u: &mut Uniforms,
    shape: &PoolShape,
    dz: &Buffer,
    arg: &Buffer,
    dh_out: &Buffer,
    info: ChunkInfo<'_>,
    rec: &mut Recording,
) -> Result<()> {
    let bh = shape.batch * shape.hidden;
    need(dz, bh, "pool dz")?;
    need(dh_out, shape.steps * bh, "pool dh_out")?;
    let scatter = shape.pool != Pool::Mean;
    let (kernel, invocations) = if scatter {
        rec.clear_range(dh_out, 0, (shape.steps * bh * 4) as u64);
        (Kernel::PoolBackwardScatter, bh)
    } else if shape.hidden.is_multiple_of(4) {
        (Kernel::PoolBackwardMeanQuads, shape.steps * bh / 4)
    } else {
        (Kernel::PoolBackward, shape.steps * bh)
    };
    let uniform = u.push(gpu, &shape.params()?);
    // The scatter reads neither the lengths nor the chunk's place.
    let (lengths, chunk_info) = if scatter {
        (Resource::Unused, Resource::Unused)
    } else {
        (
            Resource::Storage(info.lengths),
            Resource::Storage(info.chunk_info),
        )
    };
    let binding = gpu.bind(
        kernel,
        &[
            uniform.resource(),
            Resource::Storage(dz),
            // The mean kernels do not read the positions.
            if kernel == Kernel::PoolBackwardMeanQuads {
                Resource::Unused
            } else {
                Resource::Storage(arg)
            },
            Resource::Storage(dh_out),
            lengths,
            chunk_info,
        ],
    );
    Launch {
        binding,
        groups: groups_for(invocations),
        uniform,
    }
    .record(rec);
    Ok(())
}
