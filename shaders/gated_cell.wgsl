// LSTM and GRU recurrences with PyTorch's equations, one dispatch per time step. Each
// invocation owns one hidden unit j of four sequences b0..b0+3: it does the unit's rows of
// the one stacked recurrent product (all G gate blocks of W_hh) for the four sequences, then
// their cell math, in the same kernel. Per k it loads 4 hidden values and G weights for 4·G
// multiply-adds (the weight is shared by the four sequences).
//
// Shapes (rows r = t·B + b, time-major; G = 4 for LSTM, 3 for GRU):
//   pre:    [T, B, G·H]   x·W_ihᵀ + b_ih for all T·B rows (one GEMM)
//   hs:     [T + 1, B, H] hidden states; hs[0] is the carried state
//   cs:     [T + 1, B, H] LSTM cell states; cs[0] is the carried cell state
//   cache:  [T, B, 4H]    LSTM: i | f | g | o (after their activations);
//                         GRU:  r | z | n | W_hn·h_{t-1} + b_hn
//   dh_out: [T, B, H]     loss gradient reaching each hidden state
//   da:     [T, B, G·H]   gradient at pre (feeds dW_ih, db_ih and dx)
//   dhh:    [T, B, G·H]   gradient at W_hh·h_{t-1} + b_hh (feeds dW_hh, db_hh); for LSTM it
//                         equals da, so the LSTM kernels use da for both
//   dstate: [T, B, H]     gradient carried straight to the previous step:
//                         LSTM dc_t; GRU the total dh_t (reaches h_{t-1} through z)
// W_hh: [G·H, H] row-major at params[whh_off]; b_hh: [G·H] at params[bhh_off].
// LSTM: i = σ(.), f = σ(.), g = tanh(.), o = σ(.), c = f·c_{t-1} + i·g, h = o·tanh(c).
// GRU:  r = σ(.), z = σ(.), n = tanh(x_n + r·(W_hn·h + b_hn)), h = (1 - z)·n + z·h_{t-1}.
// Truncated BPTT: nothing flows back past the chunk's first step (the carried state is detached).
// Dispatch: (ceil(H / 64), ceil(B / 4), 1). Chunk-persistent variants at the end of the file.

struct GatedParams {
    t: u32,       // this dispatch's step within the chunk
    steps: u32,   // T
    batch: u32,   // B
    hidden: u32,  // H
    whh_off: u32, // element offset of weight_hh_l0 in params
    bhh_off: u32, // element offset of bias_hh_l0 in params
    slices: u32,  // GEMM-based backward: partial products in step_sum (1 unless split over K)
    _pad1: u32,
}

const SEQS: u32 = 4u;

@group(0) @binding(0) var<uniform> p: GatedParams;
@group(0) @binding(1) var<storage, read> params: array<params_t>;

// The cell math (`lstm_forward`, `gru_forward`, `lstm_backward`, `gru_backward`), shared with
// gemm_quads.wgsl's sweeps.
// @include gated_cell_math.wgsl

// Row offsets of the invocation's four sequences in a [*, B, width] buffer at step t;
// sequences past the batch repeat the last one (computed, never stored).
fn seq_rows(t: u32, b0: u32, width: u32) -> array<u32, 4> {
    var rows: array<u32, 4>;
    for (var i = 0u; i < SEQS; i++) {
        rows[i] = (t * p.batch + min(b0 + i, p.batch - 1u)) * width;
    }
    return rows;
}

// acc[g][i] = W_hh[g·H + j, :]·hs[t, b0 + i, :] + b_hh[g·H + j] for the G gate blocks.
// Each sum runs over k in ascending order from zero and the bias comes last: exactly what a
// GEMM with a bias computes, so the GEMM-based step below gives the same bits.
fn recurrent_block(t: u32, b0: u32, j: u32, gates: u32) -> array<array<f32, 4>, 4> {
    let h = p.hidden;
    let rows = seq_rows(t, b0, h);
    var acc: array<array<f32, 4>, 4>;
    for (var k = 0u; k < h; k++) {
        var hv: array<f32, 4>;
        for (var i = 0u; i < SEQS; i++) {
            hv[i] = f32(hs_state[rows[i] + k]);
        }
        for (var g = 0u; g < 4u; g++) {
            if (g < gates) {
                let w = f32(params[p.whh_off + (g * h + j) * h + k]);
                for (var i = 0u; i < SEQS; i++) {
                    acc[g][i] = acc[g][i] + hv[i] * w;
                }
            }
        }
    }
    for (var g = 0u; g < 4u; g++) {
        if (g < gates) {
            let bias = f32(params[p.bhh_off + g * h + j]);
            for (var i = 0u; i < SEQS; i++) {
                acc[g][i] = acc[g][i] + bias;
            }
        }
    }
    return acc;
}

// Bindings are numbered consecutively per entry point (the host binds them in order); the
// GEMM-based `*_combine_*` entries bind `step_sum` at 1 where the fused ones bind params:
//   lstm_step_forward:  2 pre, 3 hs, 4 cs, 5 cache
//   gru_step_forward:   2 pre, 3 hs, 4 cache
//   lstm_step_backward: 2 cs, 3 cache, 4 dh_out, 5 da, 6 dstate
//   gru_step_backward:  2 hs, 3 cache, 4 dh_out, 5 da, 6 dhh, 7 dstate
@group(0) @binding(1) var<storage, read> step_sum: array<f32>;
@group(0) @binding(2) var<storage, read> pre: array<pre_t>;
@group(0) @binding(3) var<storage, read_write> hs_state: array<hs_state_t>;
@group(0) @binding(4) var<storage, read_write> cs: array<cs_t>;
@group(0) @binding(5) var<storage, read_write> cache: array<cache_t>;
@group(0) @binding(4) var<storage, read_write> gru_cache: array<gru_cache_t>;



// The cell's forward for one (sequence b, unit j) once its recurrent sums are known:
// acc[g] = W_hh[g·H + j, :]·h_{t-1} + b_hh[g·H + j]. Loads its inputs and stores its outputs.
fn lstm_finish_forward(t: u32, b: u32, j: u32, acc: array<f32, 4>) {
    let h = p.hidden;
    let bh = p.batch * h;
    let prev = t * bh + b * h + j;
    let x = (t * p.batch + b) * 4u * h + j;
    let pre4 = vec4<f32>(f32(pre[x]), f32(pre[x + h]), f32(pre[x + 2u * h]), f32(pre[x + 3u * h]));
    let step = lstm_forward(pre4, vec4<f32>(acc[0], acc[1], acc[2], acc[3]), f32(cs[prev]));
    cs[prev + bh] = cs_t(step.c);
    hs_state[prev + bh] = hs_state_t(step.h);
    cache[x] = cache_t(step.gates.x);
    cache[x + h] = cache_t(step.gates.y);
    cache[x + 2u * h] = cache_t(step.gates.z);
    cache[x + 3u * h] = cache_t(step.gates.w);
}

fn gru_finish_forward(t: u32, b: u32, j: u32, acc: array<f32, 4>) {
    let h = p.hidden;
    let bh = p.batch * h;
    let prev = t * bh + b * h + j;
    let r = t * p.batch + b;
    let x = r * 3u * h + j;
    let pre3 = vec4<f32>(f32(pre[x]), f32(pre[x + h]), f32(pre[x + 2u * h]), 0.0);
    let step = gru_forward(pre3, vec4<f32>(acc[0], acc[1], acc[2], 0.0), f32(hs_state[prev]));
    hs_state[prev + bh] = hs_state_t(step.h);
    let c4 = r * 4u * h + j;
    gru_cache[c4] = gru_cache_t(step.cache.x);
    gru_cache[c4 + h] = gru_cache_t(step.cache.y);
    gru_cache[c4 + 2u * h] = gru_cache_t(step.cache.z);
    gru_cache[c4 + 3u * h] = gru_cache_t(step.cache.w);
}

fn block_column(acc: array<array<f32, 4>, 4>, i: u32) -> array<f32, 4> {
    return array<f32, 4>(acc[0][i], acc[1][i], acc[2][i], acc[3][i]);
}

@compute @workgroup_size(64)
fn lstm_step_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let b0 = gid.y * SEQS;
    if (j >= p.hidden || b0 >= p.batch) {
        return;
    }
    let acc = recurrent_block(p.t, b0, j, 4u);
    for (var i = 0u; i < SEQS; i++) {
        if (b0 + i >= p.batch) {
            break;
        }
        lstm_finish_forward(p.t, b0 + i, j, block_column(acc, i));
    }
}

@compute @workgroup_size(64)
fn gru_step_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let b0 = gid.y * SEQS;
    if (j >= p.hidden || b0 >= p.batch) {
        return;
    }
    let acc = recurrent_block(p.t, b0, j, 3u);
    for (var i = 0u; i < SEQS; i++) {
        if (b0 + i >= p.batch) {
            break;
        }
        gru_finish_forward(p.t, b0 + i, j, block_column(acc, i));
    }
}

// GEMM-based forward step: step_sum [B, G·H] = h_{t-1}·W_hhᵀ + b_hh (one GEMM), then the
// cell math for every (b, j). Dispatch: 256 invocations per workgroup over B·H elements,
// index = x + y·groups.x·256.
fn combine_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

fn step_sums(b: u32, j: u32, gates: u32) -> array<f32, 4> {
    var acc: array<f32, 4>;
    let row = b * gates * p.hidden;
    for (var g = 0u; g < gates; g++) {
        acc[g] = step_sum[row + g * p.hidden + j];
    }
    return acc;
}

@compute @workgroup_size(256)
fn lstm_step_combine_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = combine_index(gid, groups);
    if (e >= p.batch * p.hidden) {
        return;
    }
    let b = e / p.hidden;
    let j = e % p.hidden;
    lstm_finish_forward(p.t, b, j, step_sums(b, j, 4u));
}

@compute @workgroup_size(256)
fn gru_step_combine_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = combine_index(gid, groups);
    if (e >= p.batch * p.hidden) {
        return;
    }
    let b = e / p.hidden;
    let j = e % p.hidden;
    gru_finish_forward(p.t, b, j, step_sums(b, j, 3u));
}

// ---- backward
@group(0) @binding(2) var<storage, read> cs_in: array<cs_in_t>;
@group(0) @binding(2) var<storage, read> hs_in: array<hs_in_t>;
@group(0) @binding(3) var<storage, read> cache_in: array<cache_in_t>;
@group(0) @binding(4) var<storage, read> dh_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> da: array<f32>;
@group(0) @binding(6) var<storage, read_write> lstm_dstate: array<f32>;
@group(0) @binding(6) var<storage, read_write> dhh: array<f32>;
@group(0) @binding(7) var<storage, read_write> dstate: array<f32>;



// A unit's 4 cached values (LSTM: i, f, g, o; GRU: r, z, n, W_hn·h + b_hn) from element c4 of
// the cache [T, B, 4H], H apart.
fn cached_unit(c4: u32) -> vec4<f32> {
    let h = p.hidden;
    return vec4<f32>(f32(cache_in[c4]), f32(cache_in[c4 + h]), f32(cache_in[c4 + 2u * h]), f32(cache_in[c4 + 3u * h]));
}

// The cell's backward for one (b, j), given rec = Σ_q dgates[t + 1, b, q]·W_hh[q, j] (zero at
// the chunk's last step). Loads its inputs and stores its outputs.
fn lstm_finish_backward(t: u32, b: u32, j: u32, rec: f32) {
    let h = p.hidden;
    let bh = p.batch * h;
    let at = t * bh + b * h + j;
    let r = t * p.batch + b;
    var carried = 0.0;
    if (t + 1u < p.steps) {
        carried = lstm_dstate[at + bh] * f32(cache_in[(r + p.batch) * 4u * h + h + j]);
    }
    let c4 = r * 4u * h + j;
    let gates = cached_unit(c4);
    let grad = lstm_backward(dh_out[at] + rec, carried, gates, f32(cs_in[at]), f32(cs_in[at + bh]));
    lstm_dstate[at] = grad.dc;
    da[c4] = grad.da.x;
    da[c4 + h] = grad.da.y;
    da[c4 + 2u * h] = grad.da.z;
    da[c4 + 3u * h] = grad.da.w;
}

fn gru_finish_backward(t: u32, b: u32, j: u32, rec: f32) {
    let h = p.hidden;
    let bh = p.batch * h;
    let at = t * bh + b * h + j;
    let r = t * p.batch + b;
    var d = dh_out[at] + rec;
    if (t + 1u < p.steps) {
        d = d + dstate[at + bh] * f32(cache_in[(r + p.batch) * 4u * h + h + j]);
    }
    dstate[at] = d;
    let grad = gru_backward(d, cached_unit(r * 4u * h + j), f32(hs_in[at]));
    let q = r * 3u * h + j;
    da[q] = grad.da.x;
    da[q + h] = grad.da.y;
    da[q + 2u * h] = grad.da.z;
    dhh[q] = grad.dhh.x;
    dhh[q + h] = grad.dhh.y;
    dhh[q + 2u * h] = grad.dhh.z;
}

@compute @workgroup_size(64)
fn lstm_step_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let b0 = gid.y * SEQS;
    if (j >= p.hidden || b0 >= p.batch) {
        return;
    }
    // LSTM: dhh is da.
    let h = p.hidden;
    let gh = 4u * h;
    var rec: array<f32, 4>;
    if (p.t + 1u < p.steps) {
        let next = seq_rows(p.t + 1u, b0, gh);
        for (var q = 0u; q < gh; q++) {
            let w = f32(params[p.whh_off + q * h + j]);
            for (var i = 0u; i < SEQS; i++) {
                rec[i] = rec[i] + da[next[i] + q] * w;
            }
        }
    }
    for (var i = 0u; i < SEQS; i++) {
        if (b0 + i >= p.batch) {
            break;
        }
        lstm_finish_backward(p.t, b0 + i, j, rec[i]);
    }
}

@compute @workgroup_size(64)
fn gru_step_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let b0 = gid.y * SEQS;
    if (j >= p.hidden || b0 >= p.batch) {
        return;
    }
    let h = p.hidden;
    let gh = 3u * h;
    var rec: array<f32, 4>;
    if (p.t + 1u < p.steps) {
        let next = seq_rows(p.t + 1u, b0, gh);
        for (var q = 0u; q < gh; q++) {
            let w = f32(params[p.whh_off + q * h + j]);
            for (var i = 0u; i < SEQS; i++) {
                rec[i] = rec[i] + dhh[next[i] + q] * w;
            }
        }
    }
    for (var i = 0u; i < SEQS; i++) {
        if (b0 + i >= p.batch) {
            break;
        }
        gru_finish_backward(p.t, b0 + i, j, rec[i]);
    }
}

// GEMM-based backward step: step_sum [B, H] = dgates[t + 1]·W_hh (one GEMM; not run at the
// chunk's last step, where the sum is zero), then the cell's backward for every (b, j). A
// product split over K leaves p.slices partial products [S, B, H], summed here in order.
fn backward_step_sum(e: u32) -> f32 {
    var s = step_sum[e];
    for (var z = 1u; z < p.slices; z++) {
        s = s + step_sum[z * p.batch * p.hidden + e];
    }
    return s;
}

@compute @workgroup_size(256)
fn lstm_step_combine_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = combine_index(gid, groups);
    if (e >= p.batch * p.hidden) {
        return;
    }
    let rec = select(0.0, backward_step_sum(e), p.t + 1u < p.steps);
    lstm_finish_backward(p.t, e / p.hidden, e % p.hidden, rec);
}

@compute @workgroup_size(256)
fn gru_step_combine_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = combine_index(gid, groups);
    if (e >= p.batch * p.hidden) {
        return;
    }
    let rec = select(0.0, backward_step_sum(e), p.t + 1u < p.steps);
    gru_finish_backward(p.t, e / p.hidden, e % p.hidden, rec);
}

// ---- Chunk-persistent variants (as in rnn_cell.wgsl): one workgroup per sequence loops over
// all T steps of the chunk in one dispatch, with barriers between steps (the recurrence
// couples hidden units only within a sequence). Same bindings as the fused per-step kernels
// and the same sums in the same order, so the same bits; `p.t` is unused.
// Dispatch: (B, 1, 1).

const CHUNK_THREADS: u32 = 64u;

// W_hh[g·H + j, :]·hs[t, b, :] + b_hh[g·H + j] for one sequence, in recurrent_block's order.
fn recurrent_sums(t: u32, b: u32, j: u32, gates: u32) -> array<f32, 4> {
    let h = p.hidden;
    let row = (t * p.batch + b) * h;
    var acc: array<f32, 4>;
    for (var k = 0u; k < h; k++) {
        let hv = f32(hs_state[row + k]);
        for (var g = 0u; g < 4u; g++) {
            if (g < gates) {
                acc[g] = acc[g] + hv * f32(params[p.whh_off + (g * h + j) * h + k]);
            }
        }
    }
    for (var g = 0u; g < 4u; g++) {
        if (g < gates) {
            acc[g] = acc[g] + f32(params[p.bhh_off + g * h + j]);
        }
    }
    return acc;
}

@compute @workgroup_size(64)
fn lstm_chunk_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    for (var t = 0u; t < p.steps; t++) {
        for (var j = lane; j < p.hidden; j += CHUNK_THREADS) {
            lstm_finish_forward(t, wid.x, j, recurrent_sums(t, wid.x, j, 4u));
        }
        storageBarrier();
        workgroupBarrier();
    }
}

@compute @workgroup_size(64)
fn gru_chunk_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    for (var t = 0u; t < p.steps; t++) {
        for (var j = lane; j < p.hidden; j += CHUNK_THREADS) {
            gru_finish_forward(t, wid.x, j, recurrent_sums(t, wid.x, j, 3u));
        }
        storageBarrier();
        workgroupBarrier();
    }
}

@compute @workgroup_size(64)
fn lstm_chunk_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let h = p.hidden;
    let gh = 4u * h;
    for (var step = 0u; step < p.steps; step++) {
        let t = p.steps - 1u - step;
        for (var j = lane; j < h; j += CHUNK_THREADS) {
            var rec = 0.0;
            if (t + 1u < p.steps) {
                let next = ((t + 1u) * p.batch + wid.x) * gh;
                for (var q = 0u; q < gh; q++) {
                    rec = rec + da[next + q] * f32(params[p.whh_off + q * h + j]);
                }
            }
            lstm_finish_backward(t, wid.x, j, rec);
        }
        storageBarrier();
        workgroupBarrier();
    }
}

@compute @workgroup_size(64)
fn gru_chunk_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let h = p.hidden;
    let gh = 3u * h;
    for (var step = 0u; step < p.steps; step++) {
        let t = p.steps - 1u - step;
        for (var j = lane; j < h; j += CHUNK_THREADS) {
            var rec = 0.0;
            if (t + 1u < p.steps) {
                let next = ((t + 1u) * p.batch + wid.x) * gh;
                for (var q = 0u; q < gh; q++) {
                    rec = rec + dhh[next + q] * f32(params[p.whh_off + q * h + j]);
                }
            }
            gru_finish_backward(t, wid.x, j, rec);
        }
        storageBarrier();
        workgroupBarrier();
    }
}
