// Shared by gated_cell.wgsl and gemm_quads.wgsl (the gated cells' sweeps): the LSTM and GRU
// cell math of one (sequence, unit) of a step, forward and backward, with PyTorch's
// equations (gated_cell.wgsl's header has the buffers' shapes). Values in, values out: each
// caller loads the inputs and stores the outputs its own way (gated_cell.wgsl one value a
// load, the sweeps 4 units a word). Not a module of its own: the host splices it in where a
// module has the line `// @include gated_cell_math.wgsl` (`gpu::typed_source`).

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// An LSTM unit's step: the gates after their activations (i, f, g, o), the cell state c and
// the hidden state h.
struct LstmStep {
    gates: vec4<f32>,
    c: f32,
    h: f32,
}

// pre: the gates' x·W_ihᵀ + b_ih (i, f, g, o), acc: their h_{t-1}·W_hhᵀ + b_hh; c_prev: c_{t-1}.
fn lstm_forward(pre: vec4<f32>, acc: vec4<f32>, c_prev: f32) -> LstmStep {
    let ig = sigmoid(pre.x + acc.x);
    let f = sigmoid(pre.y + acc.y);
    let g = tanh(pre.z + acc.z);
    let o = sigmoid(pre.w + acc.w);
    let c = f * c_prev + ig * g;
    return LstmStep(vec4<f32>(ig, f, g, o), c, o * tanh(c));
}

// A GRU unit's step: the gates after their activations (r, z, n) and W_hn·h_{t-1} + b_hn (the
// cache's 4 values), and the hidden state h.
struct GruStep {
    cache: vec4<f32>,
    h: f32,
}

// pre: the gates' x·W_ihᵀ + b_ih (r, z, n; w unused), acc: their h_{t-1}·W_hhᵀ + b_hh;
// h_prev: h_{t-1}.
fn gru_forward(pre: vec4<f32>, acc: vec4<f32>, h_prev: f32) -> GruStep {
    let rg = sigmoid(pre.x + acc.x);
    let z = sigmoid(pre.y + acc.y);
    let n = tanh(pre.z + rg * acc.z);
    return GruStep(vec4<f32>(rg, z, n, acc.z), (1.0 - z) * n + z * h_prev);
}

// An LSTM unit's backward: dc_t (carried to the previous step) and da (the gradient at the
// gates' pre-activations, i, f, g, o: also what the recurrent product reads).
struct LstmGrad {
    dc: f32,
    da: vec4<f32>,
}

// dh: dh_out + the recurrent product's sum; carried: dc_{t+1}·f_{t+1} (0 at the chunk's last
// step); gates: i, f, g, o after their activations; c_prev, c: c_{t-1}, c_t.
fn lstm_backward(dh: f32, carried: f32, gates: vec4<f32>, c_prev: f32, c: f32) -> LstmGrad {
    let ig = gates.x;
    let f = gates.y;
    let g = gates.z;
    let o = gates.w;
    let tc = tanh(c);
    let dc = dh * o * (1.0 - tc * tc) + carried;
    let da = vec4<f32>(
        dc * g * ig * (1.0 - ig),
        dc * c_prev * f * (1.0 - f),
        dc * ig * (1.0 - g * g),
        dh * tc * o * (1.0 - o),
    );
    return LstmGrad(dc, da);
}

// A GRU unit's backward: da (at the gates' x·W_ihᵀ + b_ih: r, z, n; w 0) and dhh (at their
// h·W_hhᵀ + b_hh: what the recurrent product reads; w 0).
struct GruGrad {
    da: vec4<f32>,
    dhh: vec4<f32>,
}

// d: the total dh_t (dh_out + the recurrent product's sum + dh_{t+1}·z_{t+1}); cache: r, z, n,
// W_hn·h_{t-1} + b_hn; h_prev: h_{t-1}.
fn gru_backward(d: f32, cache: vec4<f32>, h_prev: f32) -> GruGrad {
    let rg = cache.x;
    let z = cache.y;
    let n = cache.z;
    let hn = cache.w;
    let dn = d * (1.0 - z) * (1.0 - n * n);
    let dz = d * (h_prev - n) * z * (1.0 - z);
    let dr = dn * hn * rg * (1.0 - rg);
    return GruGrad(vec4<f32>(dr, dz, dn, 0.0), vec4<f32>(dr, dz, dn * rg, 0.0));
}
