// Embedding lookup and its gradient.
//   embed_gather: x[r, d] = params[emb_off + tokens[r] * D + d]           x: [R, D], R = T·B
//   embed_grad:   grads[emb_off + v * D + d] = sum over i in offsets[v]..offsets[v+1] of
//                 dx[positions[i], d]                                     dE: [V, D]
// The host builds (offsets [V + 1], positions [R]) from the token ids it already holds,
// positions ascending within each token: a fixed-order sum, no atomics.
// Dispatch: 256 invocations per workgroup over R·D (gather) or V·D (grad) elements,
// spread over x and y (index = x + y · num_workgroups.x · 256).

struct EmbedParams {
    rows: u32,      // R (gather) or V (grad)
    dim: u32,       // D
    emb_off: u32,   // element offset of embedding.weight in params / grads
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: EmbedParams;
@group(0) @binding(1) var<storage, read> table: array<table_t>;     // params (gather) or dx (grad)
@group(0) @binding(2) var<storage, read> index_a: array<u32>;   // tokens (gather) or offsets (grad)
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

@group(0) @binding(4) var<storage, read> positions: array<u32>;

@compute @workgroup_size(256)
fn embed_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = linear_index(gid, groups);
    if (idx >= p.rows * p.dim) {
        return;
    }
    let v = idx / p.dim;
    let d = idx % p.dim;
    var s = 0.0;
    for (var i = index_a[v]; i < index_a[v + 1u]; i++) {
        s = s + f32(table[positions[i] * p.dim + d]);
    }
    out[p.emb_off + idx] = out_t(s);
}
