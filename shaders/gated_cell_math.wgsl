// Shared by gated_cell.wgsl and gemm_quads.wgsl (the gated cells' sweeps): the LSTM and GRU
// cell math of one (sequence b, unit j) of step t, forward and backward, with PyTorch's
// equations (gated_cell.wgsl's header has the buffers' shapes). Not a module of its own: the
// host splices it in where a module has the line `// @include gated_cell_math.wgsl`
// (`gpu::typed_source`). The including module declares the bindings it uses (forward: `pre`,
// `cs`, `cache`, `gru_cache`; backward: `cs_in`, `hs_in`, `cache_in`, `dh_out`, `da`,
// `lstm_dstate`, `dstate`) and the functions `cell_batch()` (B), `cell_hidden()` (H) and
// `cell_steps()` (the chunk's T). The values the next step's recurrent product reads (h[t + 1]
// forward; backward the LSTM's da[t], the GRU's dhh[t]) are returned, not stored: the caller
// stores them through the binding that product reads them by.

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// The cell math of one (sequence b, unit j) once its recurrent sums are known:
// acc[g] = W_hh[g·H + j, :]·h_{t-1} + b_hh[g·H + j].
// Returns h[t + 1] of (b, j).
fn lstm_cell_forward(t: u32, b: u32, j: u32, acc: array<f32, 4>) -> f32 {
    let h = cell_hidden();
    let bh = cell_batch() * h;
    let prev = t * bh + b * h;
    let r = t * cell_batch() + b;
    let x = r * 4u * h;
    let ig = sigmoid(f32(pre[x + j]) + acc[0]);
    let f = sigmoid(f32(pre[x + h + j]) + acc[1]);
    let g = tanh(f32(pre[x + 2u * h + j]) + acc[2]);
    let o = sigmoid(f32(pre[x + 3u * h + j]) + acc[3]);
    let c = f * f32(cs[prev + j]) + ig * g;
    cs[prev + bh + j] = cs_t(c);
    let c4 = r * 4u * h;
    cache[c4 + j] = cache_t(ig);
    cache[c4 + h + j] = cache_t(f);
    cache[c4 + 2u * h + j] = cache_t(g);
    cache[c4 + 3u * h + j] = cache_t(o);
    return o * tanh(c);
}

// Returns h[t + 1] of (b, j), given h_prev = h[t] of (b, j).
fn gru_cell_forward(t: u32, b: u32, j: u32, acc: array<f32, 4>, h_prev: f32) -> f32 {
    let h = cell_hidden();
    let r = t * cell_batch() + b;
    let x = r * 3u * h;
    let rg = sigmoid(f32(pre[x + j]) + acc[0]);
    let z = sigmoid(f32(pre[x + h + j]) + acc[1]);
    let n = tanh(f32(pre[x + 2u * h + j]) + rg * acc[2]);
    let c4 = r * 4u * h;
    gru_cache[c4 + j] = gru_cache_t(rg);
    gru_cache[c4 + h + j] = gru_cache_t(z);
    gru_cache[c4 + 2u * h + j] = gru_cache_t(n);
    gru_cache[c4 + 3u * h + j] = gru_cache_t(acc[2]);
    return (1.0 - z) * n + z * h_prev;
}

// The cell's backward for one (b, j), given rec = Σ_q dgates[t + 1, b, q]·W_hh[q, j] (zero at
// the chunk's last step): dh = dh_out + rec. Returns da[t] of (b, j) at the 4 gates (i, f, g,
// o), which are also the gradients the recurrent product reads.
fn lstm_cell_backward(t: u32, b: u32, j: u32, rec: f32) -> vec4<f32> {
    let h = cell_hidden();
    let bh = cell_batch() * h;
    let at = t * bh + b * h + j;
    let r = t * cell_batch() + b;
    let dh = dh_out[at] + rec;
    var carried = 0.0;
    if (t + 1u < cell_steps()) {
        carried = lstm_dstate[at + bh] * f32(cache_in[(r + cell_batch()) * 4u * h + h + j]);
    }
    let c4 = r * 4u * h;
    let ig = f32(cache_in[c4 + j]);
    let f = f32(cache_in[c4 + h + j]);
    let g = f32(cache_in[c4 + 2u * h + j]);
    let o = f32(cache_in[c4 + 3u * h + j]);
    let tc = tanh(f32(cs_in[at + bh]));
    let dc = dh * o * (1.0 - tc * tc) + carried;
    lstm_dstate[at] = dc;
    return vec4<f32>(
        dc * g * ig * (1.0 - ig),
        dc * f32(cs_in[at]) * f * (1.0 - f),
        dc * ig * (1.0 - g * g),
        dh * tc * o * (1.0 - o),
    );
}

// The GRU's: stores da[t] of (b, j) and returns dhh[t] of (b, j) at the 3 gates (r, z, n; w 0).
fn gru_cell_backward(t: u32, b: u32, j: u32, rec: f32) -> vec4<f32> {
    let h = cell_hidden();
    let gh = 3u * h;
    let bh = cell_batch() * h;
    let at = t * bh + b * h + j;
    let r = t * cell_batch() + b;
    var d = dh_out[at] + rec;
    if (t + 1u < cell_steps()) {
        d = d + dstate[at + bh] * f32(cache_in[(r + cell_batch()) * 4u * h + h + j]);
    }
    dstate[at] = d;
    let c4 = r * 4u * h;
    let rg = f32(cache_in[c4 + j]);
    let z = f32(cache_in[c4 + h + j]);
    let n = f32(cache_in[c4 + 2u * h + j]);
    let hn = f32(cache_in[c4 + 3u * h + j]);
    let dn = d * (1.0 - z) * (1.0 - n * n);
    let dz = d * (f32(hs_in[at]) - n) * z * (1.0 - z);
    let dr = dn * hn * rg * (1.0 - rg);
    let q = r * gh;
    da[q + j] = dr;
    da[q + h + j] = dz;
    da[q + 2u * h + j] = dn;
    return vec4<f32>(dr, dz, dn * rg, 0.0);
}
