// Embedding lookup and its gradient.
//   embed_gather: x[r, d] = params[emb_off + tokens[r] * D + d]           x: [R, D], R = T·B
//   embed_grad:   for each token slot j < S (S = min(V, R)) holding a token v = present[j]
//                 of the chunk: grads[emb_off + v * D + d] = sum over i in
//                 offsets[j]..offsets[j+1] of dx[positions[i], d]         dE: [V, D]
//                 slots past the chunk's distinct tokens hold NO_TOKEN and write nothing;
//                 the rows of tokens absent from the chunk are zeroed by the caller first
//                 (a buffer clear), so the kernel's work follows T·B, not the vocabulary.
// The host builds (present [S] ascending, offsets [S + 1], positions [R]) from the token
// ids it already holds, positions ascending within each token: a fixed-order sum, no atomics.
// embed_grad_quads: embed_grad for 4 consecutive d per invocation, each row of dx read as one
// 16-byte word (`quad_word`, appended by the host: four 32-bit integers, or in the Longs
// pipeline for software adapters with SHADER_INT64 two 64-bit ones) and the sums stored as
// one vec4 (f32 dx and grads, D and emb_off multiples of 4: on lavapipe a vec4 access costs
// far less than 4 scalar ones, BENCHMARKS.md). Same sums.
// Dispatch: 256 invocations per workgroup over R·D (gather), S·D (grad) elements or R·D / 4
// (gather_quads), S·D / 4 (grad_quads) vec4s, spread over x and y (index = x + y · num_workgroups.x · 256).

struct EmbedParams {
    rows: u32,      // R (gather) or S token slots (grad)
    dim: u32,       // D
    emb_off: u32,   // element offset of embedding.weight in params / grads
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: EmbedParams;
@group(0) @binding(1) var<storage, read> table: array<table_t>;     // params (gather) or dx (grad)
@group(0) @binding(2) var<storage, read> index_a: array<u32>;   // tokens (gather) or offsets [S + 1] (grad)
@group(0) @binding(3) var<storage, read_write> out: array<out_t>; // x (gather) or grads (grad)

fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

@compute @workgroup_size(256)
fn embed_gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = linear_index(gid, groups);
    if (idx >= p.rows * p.dim) {
        return;
    }
    let r = idx / p.dim;
    let d = idx % p.dim;
    out[idx] = out_t(f32(table[p.emb_off + index_a[r] * p.dim + d]));
}

// `out` as 16-byte words: x (embed_gather_quads) or the grads (embed_grad_quads).
@group(0) @binding(3) var<storage, read_write> out_quads: array<quad_word>;

// embed_gather_quads: embed_gather for 4 consecutive d per invocation, each copied as one
// 16-byte word (f32 table and x, D and emb_off multiples of 4; in the Longs pipeline two
// 64-bit integers, half the per-lane loops on lavapipe).
@group(0) @binding(1) var<storage, read> table_quads: array<quad_word>;

// The (row, d) of the first of an invocation's 4 consecutive elements of a [rows, D] array
// (the quads kernels), or (rows, 0) past its end.
fn quad_at(gid: vec3<u32>, groups: vec3<u32>) -> vec2<u32> {
    let e = 4u * linear_index(gid, groups);
    if (e >= p.rows * p.dim) {
        return vec2<u32>(p.rows, 0u);
    }
    return vec2<u32>(e / p.dim, e % p.dim);
}

@compute @workgroup_size(256)
fn embed_gather_quads(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let at = quad_at(gid, groups);
    if (at.x >= p.rows) {
        return;
    }
    let r = at.x;
    let d = at.y;
    out_quads[(r * p.dim + d) >> 2u] = table_quads[(p.emb_off + index_a[r] * p.dim + d) >> 2u];
}

@group(0) @binding(4) var<storage, read> positions: array<u32>;
// The chunk's distinct tokens, ascending, then NO_TOKEN: [S].
@group(0) @binding(5) var<storage, read> present: array<u32>;

const NO_TOKEN: u32 = 0xffffffffu;

@compute @workgroup_size(256)
fn embed_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = linear_index(gid, groups);
    if (idx >= p.rows * p.dim) {
        return;
    }
    let j = idx / p.dim;
    let d = idx % p.dim;
    let v = present[j];
    if (v == NO_TOKEN) {
        return;
    }
    var s = 0.0;
    for (var i = index_a[j]; i < index_a[j + 1u]; i++) {
        s = s + f32(table[positions[i] * p.dim + d]);
    }
    out[p.emb_off + v * p.dim + d] = out_t(s);
}

// dx as 16-byte words (embed_grad_quads).
@group(0) @binding(1) var<storage, read> dx_words: array<quad_word>;

@compute @workgroup_size(256)
fn embed_grad_quads(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let at = quad_at(gid, groups);
    if (at.x >= p.rows || present[at.x] == NO_TOKEN) {
        return;
    }
    let j = at.x;
    let d = at.y;
    let v = present[j];
    var s = vec4<f32>(0.0);
    for (var i = index_a[j]; i < index_a[j + 1u]; i++) {
        s = s + quad_f32s(dx_words[(positions[i] * p.dim + d) >> 2u]);
    }
    out_quads[(p.emb_off + v * p.dim + d) >> 2u] = f32s_word(s);
}
