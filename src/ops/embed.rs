//! Launchers of `shaders/embed.wgsl`: the embedding lookup and its gradient.

// Launchers bind many buffers by design: one argument per binding slot reads clearer than a
// struct per kernel.
#![allow(clippy::too_many_arguments)]

use super::{groups_for, need, u32_of, Launch, StorageWords, Uniforms};
use crate::error::Result;
use crate::gpu::{Buffer, Dtype, Gpu, Kernel, Resource};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct EmbedParams {
    rows: u32,
    dim: u32,
    emb_off: u32,
    _pad: u32,
}

/// `x[r, :] = params[emb_off + tokens[r]·D ..]` for `rows` rows.   x: [rows, D]
/// Where D and the offset are multiples of 4 and both buffers f32, 4 values an invocation as
/// one storage word of the kind `words` names ([`StorageWords::for_gpu`] in the engine).
#[allow(clippy::too_many_arguments)]
pub fn embed_gather(
    gpu: &Gpu,
    u: &mut Uniforms,
    words: StorageWords,
    rows: usize,
    dim: usize,
    emb_off: usize,
    params: &Buffer,
    tokens: &Buffer,
    x: &Buffer,
) -> Result<Launch> {
    need(tokens, rows, "embed_gather tokens")?;
    need(x, rows * dim, "embed_gather x")?;
    let p = EmbedParams {
        rows: u32_of(rows, "rows")?,
        dim: u32_of(dim, "embed")?,
        emb_off: u32_of(emb_off, "offset")?,
        _pad: 0,
    };
    let uniform = u.push(gpu, &p);
    // 4 consecutive d per invocation where they are one aligned vec4 of f32s both sides.
    let quads = params.dtype() == Dtype::F32
        && x.dtype() == Dtype::F32
        && dim.is_multiple_of(4)
        && emb_off.is_multiple_of(4);
    let binding = gpu.bind(
        if quads {
            words.pick(Kernel::EmbedGatherQuads, Kernel::EmbedGatherLongs)
        } else {
            Kernel::EmbedGather
        },
        &[
            uniform.resource(),
            Resource::Storage(params),
            Resource::Storage(tokens),
            Resource::Storage(x),
        ],
    );
    Ok(Launch {
        binding,
        groups: groups_for(if quads { rows * dim / 4 } else { rows * dim }),
        uniform,
    })
}

/// A slot of [`TokenIndexBuffers::present`] past the chunk's distinct tokens.
pub const NO_TOKEN: u32 = u32::MAX;

/// A chunk's token index on the GPU (`engine::token_index` builds it on the host): `present`
/// [S] the distinct tokens, ascending, then [`NO_TOKEN`]; `offsets` [S + 1] where each one's
/// rows start in `positions` [R], the rows of each token ascending. S = min(V, R).
pub struct TokenIndexBuffers<'a> {
    pub present: &'a Buffer,
    pub offsets: &'a Buffer,
    pub positions: &'a Buffer,
}

/// `grads[emb_off + v·D + d] = Σ_{i ∈ offsets[j]..offsets[j+1]} dx[positions[i], d]` for each
/// token v = present[j] of the chunk (j < `slots`); dE: [vocab, D]. The rows of the tokens
/// absent from the chunk are not written: the caller zeroes the table first. `words`: how
/// dx's quads are read where 4 consecutive d are summed an invocation
/// ([`StorageWords::for_gpu`] in the engine).
pub fn embed_grad(
    gpu: &Gpu,
    u: &mut Uniforms,
    words: StorageWords,
    slots: usize,
    vocab: usize,
    dim: usize,
    emb_off: usize,
    dx: &Buffer,
    index: &TokenIndexBuffers<'_>,
    grads: &Buffer,
) -> Result<Launch> {
    need(index.present, slots, "embed_grad present tokens")?;
    need(index.offsets, slots + 1, "embed_grad offsets")?;
    need(grads, emb_off + vocab * dim, "embed_grad grads")?;
    let p = EmbedParams {
        rows: u32_of(slots, "token slots")?,
        dim: u32_of(dim, "embed")?,
        emb_off: u32_of(emb_off, "offset")?,
        _pad: 0,
    };
    let uniform = u.push(gpu, &p);
    // 4 consecutive d per invocation where they are one aligned 16-byte word of f32 dx and
    // grads.
    let quads = grads.dtype() == Dtype::F32
        && dx.dtype() == Dtype::F32
        && dim.is_multiple_of(4)
        && emb_off.is_multiple_of(4);
    let binding = gpu.bind(
        if quads {
            words.pick(Kernel::EmbedGradQuads, Kernel::EmbedGradLongs)
        } else {
            Kernel::EmbedGrad
        },
        &[
            uniform.resource(),
            Resource::Storage(dx),
            Resource::Storage(index.offsets),
            Resource::Storage(grads),
            Resource::Storage(index.positions),
            Resource::Storage(index.present),
        ],
    );
    Ok(Launch {
        binding,
        groups: groups_for(if quads { slots * dim / 4 } else { slots * dim }),
        uniform,
    })
}
