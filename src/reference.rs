//! The whole forward and backward pass, and the optimizers, in f64 on the CPU: the
//! oracle the GPU kernels are tested against (itself checked by finite differences).
//! Same layout and conventions as the engine: rows are time-major (r = t·B + b).

use crate::engine::{Chunk, StepInputs, StepTargets};
use crate::model::{
    Activation, Cell, InputKind, Loss, ModelConfig, OutputActivation, ParamLayout, Pool, TaskKind,
};
use crate::model::{BIAS_HH, BIAS_IH, EMBEDDING, HEAD_BIAS, HEAD_WEIGHT, WEIGHT_HH, WEIGHT_IH};
use crate::ops::SequenceStart;
use crate::optim::{Momentum, OptimizerConfig, OptimizerKind};

/// What carries from one chunk to the next: the hidden state (and an LSTM's cell state)
/// and the pooling accumulator.
#[derive(Clone, Debug, Default)]
pub struct CarriedState {
    pub hidden: Vec<f64>,   // [B, H]
    pub cell: Vec<f64>,     // [B, H] LSTM only
    pub pool_acc: Vec<f64>, // [B, H]
}

/// The result of one chunk.
#[derive(Clone, Debug)]
pub struct ChunkResult {
    /// Mean loss, when the chunk has targets.
    pub loss: Option<f64>,
    /// d(loss)/d(params) in the flat layout, when asked for.
    pub grads: Option<Vec<f64>>,
}

fn act(a: Activation, s: f64) -> f64 {
    match a {
        Activation::Tanh => s.tanh(),
        Activation::Relu => s.max(0.0),
    }
}

fn act_grad_from_output(a: Activation, h: f64) -> f64 {
    match a {
        Activation::Tanh => 1.0 - h * h,
        Activation::Relu => {
            if h > 0.0 {
                1.0
            } else {
                0.0
            }
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Mean loss over the valid rows of `y` [R, O] (`mask[r]` = 0 marks padding; `None`: all
/// valid) and its gradient d(loss)/dy.
pub fn loss_and_grad(
    loss: Loss,
    out_act: OutputActivation,
    y: &[f64],
    rows: usize,
    o: usize,
    targets: &StepTargets<'_>,
    mask: Option<&[f32]>,
) -> (f64, Vec<f64>) {
    let mut dy = vec![0.0; rows * o];
    let mut total = 0.0;
    let valid = |r: usize| mask.is_none_or(|m| m[r] != 0.0);
    let valid_rows = (0..rows).filter(|&r| valid(r)).count();
    let count = match loss {
        Loss::CrossEntropy => valid_rows,
        _ => valid_rows * o,
    } as f64;
    for r in (0..rows).filter(|&r| valid(r)) {
        let yr = &y[r * o..(r + 1) * o];
        match (loss, targets) {
            (Loss::CrossEntropy, StepTargets::Classes(t)) => {
                let m = yr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = yr.iter().map(|v| (v - m).exp()).sum();
                let k = t[r] as usize;
                total += m + s.ln() - yr[k];
                for j in 0..o {
                    dy[r * o + j] =
                        ((yr[j] - m).exp() / s - if j == k { 1.0 } else { 0.0 }) / count;
                }
            }
            (_, StepTargets::Values(t)) => {
                for j in 0..o {
                    let x = yr[j];
                    let tv = t[r * o + j] as f64;
                    let (l, g) = match loss {
                        Loss::Bce => (
                            x.max(0.0) - x * tv + (1.0 + (-x.abs()).exp()).ln(),
                            sigmoid(x) - tv,
                        ),
                        _ => {
                            let (a, da) = match out_act {
                                OutputActivation::Relu => {
                                    (x.max(0.0), if x > 0.0 { 1.0 } else { 0.0 })
                                }
                                OutputActivation::Sigmoid => {
                                    let s = sigmoid(x);
                                    (s, s * (1.0 - s))
                                }
                                _ => (x, 1.0),
                            };
                            let d = a - tv;
                            if loss == Loss::Mse {
                                (d * d, 2.0 * d * da)
                            } else {
                                (
                                    d.abs(),
                                    if d > 0.0 {
                                        da
                                    } else if d < 0.0 {
                                        -da
                                    } else {
                                        0.0
                                    },
                                )
                            }
                        }
                    };
                    total += l;
                    dy[r * o + j] = g / count;
                }
            }
            _ => panic!("targets do not match the loss"),
        }
    }
    (total / count, dy)
}

/// The metric the loss kernel reports beside the loss, over valid rows: accuracy for
/// cross-entropy (first maximum = target) and bce (sign vs. target side of 0.5); mean
/// absolute error for mse; mean squared error for mae.
pub fn metric(
    loss: Loss,
    out_act: OutputActivation,
    y: &[f64],
    rows: usize,
    o: usize,
    targets: &StepTargets<'_>,
    mask: Option<&[f32]>,
) -> f64 {
    let valid: Vec<usize> = (0..rows)
        .filter(|&r| mask.is_none_or(|m| m[r] != 0.0))
        .collect();
    let mut total = 0.0;
    for &r in &valid {
        let yr = &y[r * o..(r + 1) * o];
        match (loss, targets) {
            (Loss::CrossEntropy, StepTargets::Classes(t)) => {
                let best = (0..o).fold(0, |b, j| if yr[j] > yr[b] { j } else { b });
                total += (best == t[r] as usize) as u8 as f64;
            }
            (_, StepTargets::Values(t)) => {
                for j in 0..o {
                    let (x, tv) = (yr[j], t[r * o + j] as f64);
                    let a = match out_act {
                        OutputActivation::Relu => x.max(0.0),
                        OutputActivation::Sigmoid => sigmoid(x),
                        _ => x,
                    };
                    total += match loss {
                        Loss::Bce => ((x > 0.0) == (tv > 0.5)) as u8 as f64,
                        Loss::Mse => (a - tv).abs(),
                        _ => (a - tv) * (a - tv),
                    };
                }
            }
            _ => panic!("targets do not match the loss"),
        }
    }
    let per_row = if loss == Loss::CrossEntropy { 1 } else { o };
    total / (valid.len() * per_row) as f64
}

/// Runs one chunk: forward from `state` (updated in place to carry on), the loss when
/// the chunk has targets, and the gradients when `want_grads`.
pub fn run_chunk(
    config: &ModelConfig,
    params: &[f64],
    chunk: &Chunk<'_>,
    state: &mut CarriedState,
    want_grads: bool,
) -> ChunkResult {
    let lay = ParamLayout::new(config);
    let p = |name: &str| &params[lay.get(name).expect("tensor").range()];
    let (t_len, batch, h, o) = (chunk.steps, chunk.batch, config.hidden, config.output_size);
    let iw = config.input_width();
    let rows = t_len * batch;
    let bh = batch * h;

    // x: [R, I]
    let x: Vec<f64> = match (chunk.inputs, config.input) {
        (StepInputs::Tokens(ids), InputKind::Tokens { embed, .. }) => {
            let e = p(EMBEDDING);
            ids.iter()
                .flat_map(|&id| e[id as usize * embed..(id as usize + 1) * embed].to_vec())
                .collect()
        }
        (StepInputs::Dense(v), InputKind::Dense { .. }) => v.iter().map(|&f| f as f64).collect(),
        _ => panic!("inputs do not match the model"),
    };
    let (wih, whh, bih, bhh) = (p(WEIGHT_IH), p(WEIGHT_HH), p(BIAS_IH), p(BIAS_HH));
    let cell = config.cell;
    let gh = cell.gates() * h;
    let fresh = chunk.start() == SequenceStart::Fresh || state.hidden.len() != bh;
    let valid_steps = |b: usize| {
        (chunk.lengths[b] as usize)
            .saturating_sub(chunk.first_step)
            .min(t_len)
    };
    // pre: [R, G·H] = x·W_ihᵀ + b_ih
    let mut pre = vec![0.0; rows * gh];
    for r in 0..rows {
        for q in 0..gh {
            let mut s = bih[q];
            for i in 0..iw {
                s += x[r * iw + i] * wih[q * iw + i];
            }
            pre[r * gh + q] = s;
        }
    }
    let mut hs = vec![0.0; (t_len + 1) * bh]; // [T + 1, B, H]
    let mut cs = vec![0.0; (t_len + 1) * bh]; // [T + 1, B, H] LSTM cell states
    let mut cache = vec![0.0; rows * 4 * h]; // [R, 4H] LSTM i|f|g|o, GRU r|z|n|(W_hn·h + b_hn)
    if !fresh {
        hs[..bh].copy_from_slice(&state.hidden);
        if cell == Cell::Lstm {
            cs[..bh].copy_from_slice(&state.cell);
        }
    }
    for t in 0..t_len {
        for b in 0..batch {
            let r = t * batch + b;
            let (prev, next) = (t * bh + b * h, (t + 1) * bh + b * h);
            // hh: [G·H] = W_hh·h_{t-1} + b_hh
            let hh: Vec<f64> = (0..gh)
                .map(|q| bhh[q] + (0..h).map(|k| hs[prev + k] * whh[q * h + k]).sum::<f64>())
                .collect();
            let (pr, c4) = (&pre[r * gh..(r + 1) * gh], r * 4 * h);
            for j in 0..h {
                match cell {
                    Cell::Rnn => hs[next + j] = act(config.activation, pr[j] + hh[j]),
                    Cell::Lstm => {
                        let i = sigmoid(pr[j] + hh[j]);
                        let f = sigmoid(pr[h + j] + hh[h + j]);
                        let g = (pr[2 * h + j] + hh[2 * h + j]).tanh();
                        let o = sigmoid(pr[3 * h + j] + hh[3 * h + j]);
                        let c = f * cs[prev + j] + i * g;
                        cs[next + j] = c;
                        hs[next + j] = o * c.tanh();
                        cache[c4 + j..]
                            .iter_mut()
                            .step_by(h)
                            .zip([i, f, g, o])
                            .for_each(|(d, v)| *d = v);
                    }
                    Cell::Gru => {
                        let rg = sigmoid(pr[j] + hh[j]);
                        let z = sigmoid(pr[h + j] + hh[h + j]);
                        let hn = hh[2 * h + j];
                        let n = (pr[2 * h + j] + rg * hn).tanh();
                        hs[next + j] = (1.0 - z) * n + z * hs[prev + j];
                        cache[c4 + j..]
                            .iter_mut()
                            .step_by(h)
                            .zip([rg, z, n, hn])
                            .for_each(|(d, v)| *d = v);
                    }
                }
            }
        }
    }
    state.hidden = hs[t_len * bh..].to_vec();
    state.cell = if cell == Cell::Lstm {
        cs[t_len * bh..].to_vec()
    } else {
        Vec::new()
    };

    // Head input: every hidden state, or the pooled state.
    let mut arg = vec![usize::MAX; bh];
    let (head_in, head_rows): (Vec<f64>, usize) = match config.task {
        TaskKind::ManyToMany => (hs[bh..].to_vec(), rows),
        TaskKind::ManyToOne => {
            let carried = !fresh && state.pool_acc.len() == bh;
            let mut new_acc = vec![0.0; bh];
            let mut z = vec![0.0; bh];
            for e in 0..bh {
                let valid = valid_steps(e / h);
                let length = chunk.lengths[e / h] as f64;
                let at = |t: usize| hs[(t + 1) * bh + e];
                let prev = if carried { state.pool_acc[e] } else { 0.0 };
                new_acc[e] = match config.pool {
                    Pool::Mean => prev + (0..valid).map(at).sum::<f64>(),
                    Pool::Last | Pool::Max => {
                        let (mut m, mut a) = (prev, usize::MAX);
                        for t in 0..valid {
                            if config.pool == Pool::Last
                                || (a == usize::MAX && !carried)
                                || at(t) > m
                            {
                                m = at(t);
                                a = t;
                            }
                        }
                        arg[e] = a;
                        m
                    }
                };
                z[e] = if config.pool == Pool::Mean {
                    new_acc[e] / length
                } else {
                    new_acc[e]
                };
            }
            state.pool_acc = new_acc;
            (z, batch)
        }
    };
    let Some(targets) = chunk.targets else {
        return ChunkResult {
            loss: None,
            grads: None,
        };
    };
    let (hw, hb) = (p(HEAD_WEIGHT), p(HEAD_BIAS));
    let mut y = vec![0.0; head_rows * o];
    for r in 0..head_rows {
        for k in 0..o {
            let mut s = hb[k];
            for j in 0..h {
                s += head_in[r * h + j] * hw[k * h + j];
            }
            y[r * o + k] = s;
        }
    }
    let mask = chunk.row_mask(config.task);
    let (loss, dy) = loss_and_grad(
        config.loss,
        config.output_activation,
        &y,
        head_rows,
        o,
        &targets,
        Some(&mask),
    );
    if !want_grads {
        return ChunkResult {
            loss: Some(loss),
            grads: None,
        };
    }

    let mut g = vec![0.0; lay.total];
    let off = |name: &str| lay.offset(name);
    // Head.
    let mut d_head_in = vec![0.0; head_rows * h];
    for r in 0..head_rows {
        for k in 0..o {
            let d = dy[r * o + k];
            g[off(HEAD_BIAS) + k] += d;
            for j in 0..h {
                g[off(HEAD_WEIGHT) + k * h + j] += d * head_in[r * h + j];
                d_head_in[r * h + j] += d * hw[k * h + j];
            }
        }
    }
    // dh_out: [T, B, H]
    let dh_out: Vec<f64> = match config.task {
        TaskKind::ManyToMany => d_head_in,
        TaskKind::ManyToOne => {
            let mut d = vec![0.0; rows * h];
            for t in 0..t_len {
                for e in 0..bh {
                    d[t * bh + e] = match config.pool {
                        Pool::Mean if t < valid_steps(e / h) => {
                            d_head_in[e] / chunk.lengths[e / h] as f64
                        }
                        Pool::Mean => 0.0,
                        Pool::Last | Pool::Max if arg[e] == t => d_head_in[e],
                        Pool::Last | Pool::Max => 0.0,
                    };
                }
            }
            d
        }
    };
    // BPTT. dxp: [R, G·H] gradient at the input projection (pre); dhh: [R, G·H] gradient at
    // W_hh·h + b_hh (they differ only in a GRU's n block, which r scales); dst: [T, B, H] the
    // gradient carried straight to the previous step (LSTM: dc; GRU: dh through z·h_{t-1}).
    let mut dxp = vec![0.0; rows * gh];
    let mut dhh = vec![0.0; rows * gh];
    let mut dst = vec![0.0; rows * h];
    for t in (0..t_len).rev() {
        for b in 0..batch {
            let r = t * batch + b;
            let (c4, rn) = (r * 4 * h, (r + batch) * 4 * h);
            for j in 0..h {
                let e = b * h + j;
                let mut dh = dh_out[t * bh + e];
                let mut carried = 0.0;
                if t + 1 < t_len {
                    let next = (r + batch) * gh;
                    for q in 0..gh {
                        dh += dhh[next + q] * whh[q * h + j];
                    }
                    carried = dst[(t + 1) * bh + e];
                }
                let q = r * gh;
                match cell {
                    Cell::Rnn => {
                        let da = dh * act_grad_from_output(config.activation, hs[(t + 1) * bh + e]);
                        dxp[q + j] = da;
                        dhh[q + j] = da;
                    }
                    Cell::Lstm => {
                        let [i, f, g, o] = [0, 1, 2, 3].map(|k| cache[c4 + k * h + j]);
                        let tc = cs[(t + 1) * bh + e].tanh();
                        let f_next = if t + 1 < t_len {
                            cache[rn + h + j]
                        } else {
                            0.0
                        };
                        let dc = dh * o * (1.0 - tc * tc) + carried * f_next;
                        dst[t * bh + e] = dc;
                        let grads = [
                            dc * g * i * (1.0 - i),
                            dc * cs[t * bh + e] * f * (1.0 - f),
                            dc * i * (1.0 - g * g),
                            dh * tc * o * (1.0 - o),
                        ];
                        for (k, d) in grads.into_iter().enumerate() {
                            dxp[q + k * h + j] = d;
                            dhh[q + k * h + j] = d;
                        }
                    }
                    Cell::Gru => {
                        let [rg, z, n, hn] = [0, 1, 2, 3].map(|k| cache[c4 + k * h + j]);
                        let z_next = if t + 1 < t_len {
                            cache[rn + h + j]
                        } else {
                            0.0
                        };
                        let dh = dh + carried * z_next;
                        dst[t * bh + e] = dh;
                        let dn = dh * (1.0 - z) * (1.0 - n * n);
                        let dz = dh * (hs[t * bh + e] - n) * z * (1.0 - z);
                        let dr = dn * hn * rg * (1.0 - rg);
                        dxp[q + j] = dr;
                        dxp[q + h + j] = dz;
                        dxp[q + 2 * h + j] = dn;
                        dhh[q + j] = dr;
                        dhh[q + h + j] = dz;
                        dhh[q + 2 * h + j] = dn * rg;
                    }
                }
            }
        }
    }
    let mut dx = vec![0.0; rows * iw];
    for r in 0..rows {
        for q in 0..gh {
            let d = dxp[r * gh + q];
            g[off(BIAS_IH) + q] += d;
            for i in 0..iw {
                g[off(WEIGHT_IH) + q * iw + i] += d * x[r * iw + i];
                dx[r * iw + i] += d * wih[q * iw + i];
            }
            let d = dhh[r * gh + q];
            g[off(BIAS_HH) + q] += d;
            for k in 0..h {
                g[off(WEIGHT_HH) + q * h + k] += d * hs[r * h + k];
            }
        }
    }
    if let (StepInputs::Tokens(ids), InputKind::Tokens { embed, .. }) = (chunk.inputs, config.input)
    {
        for (r, &id) in ids.iter().enumerate() {
            for d in 0..embed {
                g[off(EMBEDDING) + id as usize * embed + d] += dx[r * embed + d];
            }
        }
    }
    ChunkResult {
        loss: Some(loss),
        grads: Some(g),
    }
}

/// The optimizers in f64, with PyTorch's update rules (and `clip_grad_norm_` first).
#[derive(Clone, Debug)]
pub struct RefOptimizer {
    pub config: OptimizerConfig,
    m: Vec<f64>,
    v: Vec<f64>,
    step: u64,
}

impl RefOptimizer {
    pub fn new(config: OptimizerConfig, params: usize) -> Self {
        Self {
            config,
            m: vec![0.0; params],
            v: vec![0.0; params],
            step: 0,
        }
    }

    pub fn step(&mut self, params: &mut [f64], grads: &[f64]) {
        let c = self.config;
        self.step += 1;
        let coef = match c.clip_norm {
            Some(max) => {
                let norm = grads.iter().map(|g| g * g).sum::<f64>().sqrt();
                (max / (norm + 1e-6)).min(1.0)
            }
            None => 1.0,
        };
        let (step_size, bc2_sqrt) = c.adam_scalars(self.step);
        for i in 0..params.len() {
            let mut g = grads[i] * coef;
            match c.kind {
                OptimizerKind::Sgd => {
                    g += c.weight_decay * params[i];
                    if c.momentum != 0.0 {
                        let buf = if self.step == 1 {
                            g
                        } else {
                            c.momentum * self.m[i] + g
                        };
                        self.m[i] = buf;
                        g = if c.momentum_kind == Momentum::Nesterov {
                            g + c.momentum * buf
                        } else {
                            buf
                        };
                    }
                    params[i] -= c.lr * g;
                }
                OptimizerKind::Adam | OptimizerKind::AdamW => {
                    if c.kind == OptimizerKind::AdamW {
                        params[i] *= 1.0 - c.lr * c.weight_decay;
                    } else {
                        g += c.weight_decay * params[i];
                    }
                    self.m[i] += (1.0 - c.beta1) * (g - self.m[i]);
                    self.v[i] = self.v[i] * c.beta2 + (1.0 - c.beta2) * g * g;
                    let denom = self.v[i].sqrt() / bc2_sqrt + c.eps;
                    params[i] -= step_size * self.m[i] / denom;
                }
            }
        }
    }
}
