// Elman RNN recurrence, one dispatch per time step.
//   forward step t:  hs[t + 1, b, j] = act(pre[t, b, j] + sum_k hs[t, b, k] * W_hh[j, k])
//   backward step t: g = dh_out[t, b, j] + (t + 1 < T ? sum_k da[t + 1, b, k] * W_hh[k, j] : 0)
//                    da[t, b, j] = g * act'(hs[t + 1, b, j])
// Shapes: pre, dh_out, da: [T, B, H]; hs: [T + 1, B, H] with hs[0] the carried state;
// W_hh: [H, H] row-major at params[whh_off] (PyTorch's weight_hh_l0).
// pre already holds x·W_ihᵀ + b_ih + b_hh for all T·B rows (one GEMM).
// act' is taken from the output: tanh' = 1 - h², relu' = (h > 0) (PyTorch's convention at 0).
// Dispatch: 256 invocations per workgroup over B·H elements (x + y · groups.x · 256).

struct StepParams {
    t: u32,          // this dispatch's step within the chunk
    steps: u32,      // T, the chunk's length
    batch: u32,      // B
    hidden: u32,     // H
    activation: u32, // 0 tanh, 1 relu
    whh_off: u32,    // element offset of weight_hh_l0 in params
    _pad0: u32,
    _pad1: u32,
}

const TANH: u32 = 0u;

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read> params: array<f32>;

fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

// ---- forward: bindings 2 (pre) and 3 (hs)
@group(0) @binding(2) var<storage, read> pre: array<f32>;
@group(0) @binding(3) var<storage, read_write> hs: array<f32>;

@compute @workgroup_size(256)
fn rnn_step_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = linear_index(gid, groups);
    let bh = p.batch * p.hidden;
    if (idx >= bh) {
        return;
    }
    let b = idx / p.hidden;
    let j = idx % p.hidden;
    let h_prev = p.t * bh + b * p.hidden;
    let w_row = p.whh_off + j * p.hidden;
    var s = 0.0;
    for (var k = 0u; k < p.hidden; k++) {
        s = s + hs[h_prev + k] * params[w_row + k];
    }
    s = pre[p.t * bh + idx] + s;
    var h: f32;
    if (p.activation == TANH) {
        h = tanh(s);
    } else {
        h = max(s, 0.0);
    }
    hs[(p.t + 1u) * bh + idx] = h;
}

// ---- backward: bindings 2 (hs), 3 (dh_out), 4 (da)
@group(0) @binding(2) var<storage, read> hs_in: array<f32>;
@group(0) @binding(3) var<storage, read> dh_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> da: array<f32>;

@compute @workgroup_size(256)
fn rnn_step_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = linear_index(gid, groups);
    let bh = p.batch * p.hidden;
    if (idx >= bh) {
        return;
    }
    let b = idx / p.hidden;
    let j = idx % p.hidden;
    var g = dh_out[p.t * bh + idx];
    if (p.t + 1u < p.steps) {
        let next = (p.t + 1u) * bh + b * p.hidden;
        var s = 0.0;
        for (var k = 0u; k < p.hidden; k++) {
            s = s + da[next + k] * params[p.whh_off + k * p.hidden + j];
        }
        g = g + s;
    }
    let h = hs_in[(p.t + 1u) * bh + idx];
    var d: f32;
    if (p.activation == TANH) {
        d = 1.0 - h * h;
    } else {
        d = select(0.0, 1.0, h > 0.0);
    }
    da[p.t * bh + idx] = g * d;
}
