// Many-to-one pooling of the hidden states of one chunk, with a carry across chunks
// (truncated BPTT: earlier chunks contribute detached values).
//   last: z[b, j] = hs[T, b, j]
//   mean: acc[b, j] = carry + sum_t hs[t + 1, b, j];  z = acc / total_steps
//   max:  acc[b, j] = max(carry, max_t hs[t + 1, b, j]); z = acc; arg = step of the maximum
//         within this chunk (first one on ties), or NONE when the maximum came from the carry.
// pool_backward spreads dz[b, j] back onto dh_out[t, b, j] for every step of the chunk.
// Shapes: hs: [T + 1, B, H]; acc, z, dz, arg: [B, H]; dh_out: [T, B, H].
// Dispatch: 256 invocations per workgroup over B·H (forward) or T·B·H (backward) elements.

struct PoolParams {
    steps: u32,       // T, the chunk's length
    batch: u32,       // B
    hidden: u32,      // H
    kind: u32,        // 0 last, 1 mean, 2 max
    fresh: u32,       // 1 when this chunk starts the sequence (ignore the carry)
    _pad0: u32,
    inv_total: f32,   // 1 / (the sequence's total length), for mean
    _pad1: u32,
}

const LAST: u32 = 0u;
const MEAN: u32 = 1u;
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: PoolParams;

fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

// ---- forward: bindings 1 (hs), 2 (acc), 3 (z), 4 (arg)
@group(0) @binding(1) var<storage, read> hs: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> arg: array<u32>;

@compute @workgroup_size(256)
fn pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = linear_index(gid, groups);
    let bh = p.batch * p.hidden;
    if (idx >= bh) {
        return;
    }
    if (p.kind == LAST) {
        z[idx] = hs[p.steps * bh + idx];
        return;
    }
    if (p.kind == MEAN) {
        var s = select(acc[idx], 0.0, p.fresh == 1u);
        for (var t = 0u; t < p.steps; t++) {
            s = s + hs[(t + 1u) * bh + idx];
        }
        acc[idx] = s;
        z[idx] = s * p.inv_total;
        return;
    }
    var m = acc[idx];
    var at = NONE;
    if (p.fresh == 1u) {
        m = hs[bh + idx];
        at = 0u;
    }
    for (var t = 0u; t < p.steps; t++) {
        let v = hs[(t + 1u) * bh + idx];
        if (v > m) {
            m = v;
            at = t;
        }
    }
    acc[idx] = m;
    z[idx] = m;
    arg[idx] = at;
}

// ---- backward: bindings 1 (dz), 2 (arg), 3 (dh_out)
@group(0) @binding(1) var<storage, read> dz: array<f32>;
@group(0) @binding(2) var<storage, read> arg_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> dh_out: array<f32>;

@compute @workgroup_size(256)
fn pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = linear_index(gid, groups);
    let bh = p.batch * p.hidden;
    if (idx >= p.steps * bh) {
        return;
    }
    let t = idx / bh;
    let e = idx % bh;
    var g = 0.0;
    if (p.kind == LAST) {
        g = select(0.0, dz[e], t + 1u == p.steps);
    } else if (p.kind == MEAN) {
        g = dz[e] * p.inv_total;
    } else {
        g = select(0.0, dz[e], arg_in[e] == t);
    }
    dh_out[idx] = g;
}
