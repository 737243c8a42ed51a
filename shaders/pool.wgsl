// Many-to-one pooling of the hidden states of one chunk, over each sequence's valid steps
// (global step first_step + t < length[b]), with a carry across chunks (truncated BPTT:
// earlier chunks contribute detached values).
//   last: acc[b, j] = h at the sequence's latest valid step so far; z = acc
//   mean: acc[b, j] = carry + sum of valid hs[t + 1, b, j];       z = acc / length[b]
//   max:  acc[b, j] = max(carry, valid hs[t + 1, b, j]);           z = acc
//   arg (last, max): the step within this chunk that z came from, or NONE (the carry).
//   A bidirectional model's reverse half (columns j >= reverse_from) pools its final state,
//   which sits at step 0, for `last`.
// pool_backward spreads dz[b, j] back onto dh_out[t, b, j] for every step of the chunk
// (mean); pool_backward_scatter (last, max) writes dz[b, j] onto the one step arg names, into a
// dh_out the host has zeroed (one invocation per (b, j) instead of per (t, b, j)).
// Shapes: hs: [T + 1, B, H]; acc, z, dz, arg: [B, H]; dh_out: [T, B, H]; lengths: [B];
// chunk_info: [2] = (inv_count bits, first_step).
// Dispatch: 256 invocations per workgroup over B·H (forward) or T·B·H (backward) elements.

struct PoolParams {
    steps: u32,       // T, the chunk's length
    batch: u32,       // B
    hidden: u32,      // H
    kind: u32,        // 0 last, 1 mean, 2 max
    fresh: u32,       // 1 when this chunk starts the sequences (ignore the carry)
    reverse_from: u32, // first column of a bidirectional model's reverse half (else H)
    _pad1: u32,
    _pad2: u32,
}

const LAST: u32 = 0u;
const MEAN: u32 = 1u;
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: PoolParams;

fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

// ---- forward: bindings 1 (hs), 2 (acc), 3 (z), 4 (arg), 5 (lengths), 6 (chunk_info)
@group(0) @binding(1) var<storage, read> hs: array<hs_t>;
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> arg: array<u32>;
@group(0) @binding(5) var<storage, read> lengths: array<u32>;
@group(0) @binding(6) var<storage, read> chunk_info: array<u32>;

@compute @workgroup_size(256)
fn pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = linear_index(gid, groups);
    let bh = p.batch * p.hidden;
    if (idx >= bh) {
        return;
    }
    let length = lengths[idx / p.hidden];
    let first_step = chunk_info[1];
    // Valid steps of this chunk: t < valid.
    let valid = min(p.steps, select(0u, length - first_step, length > first_step));
    let fresh = p.fresh == 1u;
    if (p.kind == MEAN) {
        var s = select(acc[idx], 0.0, fresh);
        for (var t = 0u; t < valid; t++) {
            s = s + f32(hs[(t + 1u) * bh + idx]);
        }
        acc[idx] = s;
        z[idx] = s / f32(length);
        return;
    }
    var m = select(acc[idx], 0.0, fresh);
    var at = NONE;
    if (p.kind == LAST) {
        // The latest valid step of this chunk, read directly (one load, not one per step);
        // the carry where the chunk has none.
        if (valid > 0u) {
            at = select(valid - 1u, 0u, idx % p.hidden >= p.reverse_from);
            m = f32(hs[(at + 1u) * bh + idx]);
        }
        acc[idx] = m;
        z[idx] = m;
        arg[idx] = at;
        return;
    }
    for (var t = 0u; t < valid; t++) {
        let v = f32(hs[(t + 1u) * bh + idx]);
        if ((at == NONE && fresh) || (v > m)) {
            m = v;
            at = t;
        }
    }
    acc[idx] = m;
    z[idx] = m;
    arg[idx] = at;
}

// ---- backward: bindings 1 (dz), 2 (arg), 3 (dh_out), 4 (lengths), 5 (chunk_info)
@group(0) @binding(1) var<storage, read> dz: array<f32>;
@group(0) @binding(2) var<storage, read> arg_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> dh_out: array<f32>;
@group(0) @binding(4) var<storage, read> lengths_in: array<u32>;
@group(0) @binding(5) var<storage, read> chunk_info_in: array<u32>;

@compute @workgroup_size(256)
fn pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = linear_index(gid, groups);
    let bh = p.batch * p.hidden;
    if (idx >= p.steps * bh) {
        return;
    }
    let t = idx / bh;
    let e = idx % bh;
    let length = lengths_in[e / p.hidden];
    var g = 0.0;
    if (p.kind == MEAN) {
        if (chunk_info_in[1] + t < length) {
            g = dz[e] / f32(length);
        }
    } else if (arg_in[e] == t) {
        g = dz[e];
    }
    dh_out[idx] = g;
}

// pool_backward for mean pooling 4 consecutive (b, j) an invocation (H a multiple of 4, so
// the 4 share b): the same values, one vec4 load of dz and one vec4 store a step (on lavapipe
// a vec4 access costs far less than 4 scalar ones). Bindings 1 (dz), 3 (dh_out) as vec4s,
// 4, 5 as above. Dispatch: 256 invocations per workgroup over T·B·H / 4.
@group(0) @binding(1) var<storage, read> dz_quads: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dh_out_quads: array<vec4<f32>>;

@compute @workgroup_size(256)
fn pool_backward_mean_quads(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let q = linear_index(gid, groups);
    let quads = p.batch * p.hidden / 4u;
    if (q >= p.steps * quads) {
        return;
    }
    let t = q / quads;
    let e4 = q % quads;
    let length = lengths_in[4u * e4 / p.hidden];
    var g = vec4<f32>();
    if (chunk_info_in[1] + t < length) {
        g = dz_quads[e4] / f32(length);
    }
    dh_out_quads[q] = g;
}

// Same bindings as pool_backward. Dispatch: 256 invocations per workgroup over B·H.
@compute @workgroup_size(256)
fn pool_backward_scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = linear_index(gid, groups);
    let bh = p.batch * p.hidden;
    if (e >= bh) {
        return;
    }
    // NONE (the carry) and steps of other chunks are past p.steps: nothing to write.
    let t = arg_in[e];
    if (t < p.steps) {
        dh_out[t * bh + e] = dz[e];
    }
}
