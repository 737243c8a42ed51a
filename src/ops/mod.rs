//! One launcher per kernel family: each checks its shapes against the buffers, writes its
//! uniform, binds, and returns a [`Launch`] that a [`Recording`] can replay. All checks
//! happen here, at build time, so recording and submitting cannot fail on shapes.

mod convert;
mod embed;
mod gated;
mod gated_sweep;
mod gemm;
mod layer_io;
mod loss;
mod optimizer;
mod pool;
mod reduce;
mod rnn_cell;
mod rnn_gemm;
mod uniforms;

pub use convert::*;
pub use embed::*;
pub use gated::{gated_backward, gated_forward, GatedBuffers, GatedShape};
pub use gemm::{
    gemm, gemm_launches, gemm_partials, gemm_split, gemm_step, gemm_sweep, gemm_with,
    outer_k_block, split_slices, window_chunks, GemmKernel, GemmSpec, Operand, StepCopies,
    StepEpilogue, WindowChunk, MAX_WINDOW_CHUNKS, OUTER_BLOCKS_FROM_BYTES, OUTER_BLOCK_BYTES,
};
pub use layer_io::{reverse_rows, unit_output, unit_output_grad, UnitPlacement};
pub use loss::*;
pub use optimizer::*;
pub use pool::*;
pub use reduce::*;
pub use rnn_cell::*;
pub use rnn_gemm::{recurrence_split_slices, STEP_SPLIT_SCRATCH};
pub use uniforms::{UniformRef, Uniforms};

use crate::error::{Error, Result};
use crate::gpu::{Binding, Buffer, Gpu, Kernel, Recording};

/// A bound kernel and its workgroup counts.
#[derive(Clone)]
pub struct Launch {
    pub binding: Binding,
    pub groups: [u32; 3],
    pub uniform: UniformRef,
}

impl Launch {
    pub fn record(&self, recording: &mut Recording) {
        recording.dispatch(&self.binding, self.groups);
    }
}

/// Where a chunk's sequences end and where the chunk starts: `lengths` [B] u32 (each
/// sequence's valid steps) and `chunk_info` [2] u32 (inv_count as f32 bits, first step).
#[derive(Clone, Copy)]
pub struct ChunkInfo<'a> {
    pub lengths: &'a Buffer,
    pub chunk_info: &'a Buffer,
}

/// How the streaming kernels (optimizer, gradient norm, column sums) read and write their
/// 16-byte words: four 4-byte values, or two 8-byte integers (the Longs pipelines, for
/// software adapters with 64-bit integers: [`crate::gpu::AdapterSummary::long_storage_words`]).
/// The same operations in the same order either way: the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageWords {
    Quads,
    Longs,
}

impl StorageWords {
    /// The words the engine uses on `gpu`'s adapter.
    pub fn for_gpu(gpu: &Gpu) -> Self {
        if gpu.adapter().long_storage_words() {
            StorageWords::Longs
        } else {
            StorageWords::Quads
        }
    }

    /// Every kind `gpu` can run (Longs only with 64-bit integers): for tests and benches.
    pub fn available(gpu: &Gpu) -> Vec<Self> {
        let mut out = vec![StorageWords::Quads];
        if gpu.adapter().shader_int64 {
            out.push(StorageWords::Longs);
        }
        out
    }

    fn pick(self, quads: Kernel, longs: Kernel) -> Kernel {
        match self {
            StorageWords::Quads => quads,
            StorageWords::Longs => longs,
        }
    }
}

/// Workgroup counts for `n` elements at 256 invocations per workgroup, spread over x and y
/// so that no dimension passes the 65,535 limit (kernels use x + y · groups.x · 256).
pub fn groups_for(n: usize) -> [u32; 3] {
    let total = n.div_ceil(256).max(1);
    let x = total.min(32_768);
    [x as u32, total.div_ceil(x) as u32, 1]
}

/// Fails unless `buffer` holds at least `elements` values of its element type.
pub(crate) fn need(buffer: &Buffer, elements: usize, what: &str) -> Result<()> {
    let have = buffer.size_bytes() as usize / buffer.dtype().bytes();
    if elements > have {
        return Err(Error::Config(format!(
            "{what}: buffer `{}` holds {have} values but {elements} are needed",
            buffer.label()
        )));
    }
    Ok(())
}

/// Converts a size or offset to the u32 the kernels take, or says which value overflows.
pub(crate) fn u32_of(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        Error::Limit(format!(
            "{what} = {v} does not fit the kernels' 32-bit indices"
        ))
    })
}
