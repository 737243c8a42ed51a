// Elman RNN recurrence, one dispatch per time step.
//   forward step t:  hs[t + 1, b, j] = act(pre[t, b, j] + sum_k hs[t, b, k] * W_hh[j, k])
//   backward step t: g = dh_out[t, b, j] + (t + 1 < T ? sum_k da[t + 1, b, k] * W_hh[k, j] : 0)
//                    da[t, b, j] = g * act'(hs[t + 1, b, j])
// Shapes: pre, dh_out, da: [T, B, H]; hs: [T + 1, B, H] with hs[0] the carried state;
// W_hh: [H, H] row-major at params[whh_off] (PyTorch's weight_hh_l0).
// pre already holds x·W_ihᵀ + b_ih + b_hh for all T·B rows (one GEMM).
// act' is taken from the output: tanh' = 1 - h², relu' = (h > 0) (PyTorch's convention at 0).
// Each invocation owns a 4x4 block (4 sequences x 4 hidden units): 8 loads per 16
// multiply-adds. A workgroup of 8x8 owns 32 sequences x 32 units.
// Dispatch: (ceil(H / 32), ceil(B / 32), 1).

struct StepParams {
    t: u32,          // this dispatch's step within the chunk
    steps: u32,      // T, the chunk's length
    batch: u32,      // B
    hidden: u32,     // H
    activation: u32, // 0 tanh, 1 relu
    whh_off: u32,    // element offset of weight_hh_l0 in params
    slices: u32,     // combine kernels: partial products in step_sum (1 unless split over K)
    _pad1: u32,
}

const TANH: u32 = 0u;

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read> params: array<params_t>;

fn activate(s: f32) -> f32 {
    if (p.activation == TANH) {
        return tanh(s);
    }
    return max(s, 0.0);
}

fn activation_grad(h: f32) -> f32 {
    if (p.activation == TANH) {
        return 1.0 - h * h;
    }
    return select(0.0, 1.0, h > 0.0);
}

// ---- forward: bindings 2 (pre) and 3 (hs)
@group(0) @binding(2) var<storage, read> pre: array<pre_t>;
@group(0) @binding(3) var<storage, read_write> hs: array<hs_t>;

@compute @workgroup_size(8, 8)
fn rnn_step_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b0 = gid.y * 4u;
    let j0 = gid.x * 4u;
    if (b0 >= p.batch || j0 >= p.hidden) {
        return;
    }
    let bh = p.batch * p.hidden;
    // Out-of-range rows/units reuse the last valid one; their results are not stored.
    var h_row: array<u32, 4>;
    var w_row: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        h_row[i] = p.t * bh + min(b0 + i, p.batch - 1u) * p.hidden;
        w_row[i] = p.whh_off + min(j0 + i, p.hidden - 1u) * p.hidden;
    }
    var acc: array<array<f32, 4>, 4>;
    for (var k = 0u; k < p.hidden; k++) {
        var hv: array<f32, 4>;
        var wv: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) {
            hv[i] = f32(hs[h_row[i] + k]);
            wv[i] = f32(params[w_row[i] + k]);
        }
        for (var i = 0u; i < 4u; i++) {
            for (var jj = 0u; jj < 4u; jj++) {
                acc[i][jj] = acc[i][jj] + hv[i] * wv[jj];
            }
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let b = b0 + i;
        if (b >= p.batch) {
            break;
        }
        for (var jj = 0u; jj < 4u; jj++) {
            let j = j0 + jj;
            if (j >= p.hidden) {
                break;
            }
            let at = b * p.hidden + j;
            hs[(p.t + 1u) * bh + at] = hs_t(activate(f32(pre[p.t * bh + at]) + acc[i][jj]));
        }
    }
}

// ---- backward: bindings 2 (hs), 3 (dh_out), 4 (da)
@group(0) @binding(2) var<storage, read> hs_in: array<hs_in_t>;
@group(0) @binding(3) var<storage, read> dh_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> da: array<f32>;

@compute @workgroup_size(8, 8)
fn rnn_step_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b0 = gid.y * 4u;
    let j0 = gid.x * 4u;
    if (b0 >= p.batch || j0 >= p.hidden) {
        return;
    }
    let bh = p.batch * p.hidden;
    var acc: array<array<f32, 4>, 4>;
    if (p.t + 1u < p.steps) {
        var d_row: array<u32, 4>;
        var w_col: array<u32, 4>;
        for (var i = 0u; i < 4u; i++) {
            d_row[i] = (p.t + 1u) * bh + min(b0 + i, p.batch - 1u) * p.hidden;
            w_col[i] = p.whh_off + min(j0 + i, p.hidden - 1u);
        }
        for (var k = 0u; k < p.hidden; k++) {
            var dv: array<f32, 4>;
            var wv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                dv[i] = da[d_row[i] + k];
                wv[i] = f32(params[w_col[i] + k * p.hidden]);
            }
            for (var i = 0u; i < 4u; i++) {
                for (var jj = 0u; jj < 4u; jj++) {
                    acc[i][jj] = acc[i][jj] + dv[i] * wv[jj];
                }
            }
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let b = b0 + i;
        if (b >= p.batch) {
            break;
        }
        for (var jj = 0u; jj < 4u; jj++) {
            let j = j0 + jj;
            if (j >= p.hidden) {
                break;
            }
            let at = p.t * bh + b * p.hidden + j;
            let g = dh_out[at] + acc[i][jj];
            da[at] = g * activation_grad(f32(hs_in[at + bh]));
        }
    }
}

// ---- Chunk-persistent variants: one workgroup per sequence loops over all T steps of the
// chunk inside one dispatch, with barriers between steps (the recurrence couples hidden
// units only within a sequence, so no grid-wide synchronisation is needed). Same bindings
// and results as the per-step kernels; `p.t` is unused. Dispatch: (B, 1, 1).

const PERSISTENT_THREADS: u32 = 64u;

@compute @workgroup_size(64)
fn rnn_chunk_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let b = wid.x;
    let bh = p.batch * p.hidden;
    for (var t = 0u; t < p.steps; t++) {
        let h_prev = t * bh + b * p.hidden;
        for (var j = lane; j < p.hidden; j += PERSISTENT_THREADS) {
            let w_row = p.whh_off + j * p.hidden;
            var s = 0.0;
            for (var k = 0u; k < p.hidden; k++) {
                s = s + f32(hs[h_prev + k]) * f32(params[w_row + k]);
            }
            hs[(t + 1u) * bh + b * p.hidden + j] = hs_t(activate(f32(pre[t * bh + b * p.hidden + j]) + s));
        }
        storageBarrier();
        workgroupBarrier();
    }
}

@compute @workgroup_size(64)
fn rnn_chunk_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let b = wid.x;
    let bh = p.batch * p.hidden;
    for (var step = 0u; step < p.steps; step++) {
        let t = p.steps - 1u - step;
        for (var j = lane; j < p.hidden; j += PERSISTENT_THREADS) {
            let at = t * bh + b * p.hidden + j;
            var g = dh_out[at];
            if (t + 1u < p.steps) {
                let next = (t + 1u) * bh + b * p.hidden;
                var s = 0.0;
                for (var k = 0u; k < p.hidden; k++) {
                    s = s + da[next + k] * f32(params[p.whh_off + k * p.hidden + j]);
                }
                g = g + s;
            }
            da[at] = g * activation_grad(f32(hs_in[at + bh]));
        }
        storageBarrier();
        workgroupBarrier();
    }
}

// ---- GEMM-based steps: the product h·W_hhᵀ (or da·W_hh) is one GEMM per step into
// `step_sum` [B, H] (any GEMM formulation: the tuned one), and these kernels finish the step
// with the same additions in the same order as the kernels above:
//   rnn_step_combine_forward:  hs[t + 1] = act(pre[t] + step_sum)
//   rnn_step_combine_backward: da[t] = (dh_out[t] + (t + 1 < T ? step_sum : 0)) · act'(hs[t + 1])
// where step_sum is the sum, in slice order, of p.slices partial products [S, B, H] (a product
// split over K; one for an unsplit product). Bindings: 1 step_sum, then as the per-step kernels (forward: 2 pre, 3 hs; backward: 2 hs,
// 3 dh_out, 4 da). Dispatch: 256 invocations per workgroup over B·H, index = x + y·groups.x·256.
@group(0) @binding(1) var<storage, read> step_sum: array<f32>;

// Element e of the step's product: its partial sums in slice order.
fn step_sum_at(e: u32) -> f32 {
    var s = step_sum[e];
    for (var z = 1u; z < p.slices; z++) {
        s = s + step_sum[z * p.batch * p.hidden + e];
    }
    return s;
}

@compute @workgroup_size(256)
fn rnn_step_combine_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = gid.x + gid.y * groups.x * 256u;
    let bh = p.batch * p.hidden;
    if (e >= bh) {
        return;
    }
    hs[(p.t + 1u) * bh + e] = hs_t(activate(f32(pre[p.t * bh + e]) + step_sum_at(e)));
}

@compute @workgroup_size(256)
fn rnn_step_combine_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = gid.x + gid.y * groups.x * 256u;
    let bh = p.batch * p.hidden;
    if (e >= bh) {
        return;
    }
    let at = p.t * bh + e;
    var g = dh_out[at];
    if (p.t + 1u < p.steps) {
        g = g + step_sum_at(e);
    }
    da[at] = g * activation_grad(f32(hs_in[at + bh]));
}

// ---- The combine kernels 4 elements an invocation (`*_quads`), where B·H is a multiple of 4:
// each element's operations exactly as above; on lavapipe a vec4 storage access costs far
// less than 4 scalar ones (BENCHMARKS.md). Same bindings. Dispatch over B·H / 4 vec4s.
@group(0) @binding(1) var<storage, read> step_sum4: array<vec4<f32>>;

// Quad q of the step's product: its partial sums in slice order.
fn step_sum4_at(q: u32) -> vec4<f32> {
    var s = step_sum4[q];
    for (var z = 1u; z < p.slices; z++) {
        s = s + step_sum4[z * p.batch * p.hidden / 4u + q];
    }
    return s;
}
@group(0) @binding(2) var<storage, read> pre4: array<vec4<pre_t>>;
@group(0) @binding(3) var<storage, read_write> hs4: array<vec4<hs_t>>;

@compute @workgroup_size(256)
fn rnn_step_combine_forward_quads(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let q = gid.x + gid.y * groups.x * 256u;
    let quads = p.batch * p.hidden / 4u;
    if (q >= quads) {
        return;
    }
    let g = vec4<f32>(pre4[p.t * quads + q]) + step_sum4_at(q);
    let h = vec4<f32>(activate(g.x), activate(g.y), activate(g.z), activate(g.w));
    hs4[(p.t + 1u) * quads + q] = vec4<hs_t>(h);
}

@group(0) @binding(2) var<storage, read> hs_in4: array<vec4<hs_in_t>>;
@group(0) @binding(3) var<storage, read> dh_out4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> da4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn rnn_step_combine_backward_quads(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let q = gid.x + gid.y * groups.x * 256u;
    let quads = p.batch * p.hidden / 4u;
    if (q >= quads) {
        return;
    }
    let at = p.t * quads + q;
    var g = dh_out4[at];
    if (p.t + 1u < p.steps) {
        g = g + step_sum4_at(q);
    }
    let h = vec4<f32>(hs_in4[at + quads]);
    let d = vec4<f32>(
        activation_grad(h.x),
        activation_grad(h.y),
        activation_grad(h.z),
        activation_grad(h.w),
    );
    da4[at] = g * d;
}
