//! One recurrent unit (a layer read in one direction) in f64: the Elman RNN, LSTM and GRU
//! with PyTorch's equations, forward over a chunk and backpropagation through it.
//! Rows are time-major (r = t·B + b); a reverse unit is run on time-reversed rows by the
//! caller, so here every unit runs forward in its own time.

use super::sigmoid;
use crate::model::{Activation, Cell};

/// A unit's weights (PyTorch layout, gate blocks stacked).
pub struct UnitWeights<'a> {
    pub w_ih: &'a [f64], // [G·H, I]
    pub w_hh: &'a [f64], // [G·H, H]
    pub b_ih: &'a [f64], // [G·H]
    pub b_hh: &'a [f64], // [G·H]
}

/// Everything the backward pass needs from the forward pass.
pub struct UnitTrace {
    pub hs: Vec<f64>,    // [T + 1, B, H]; hs[0] the initial state
    pub cs: Vec<f64>,    // [T + 1, B, H] LSTM cell states
    pub cache: Vec<f64>, // [T, B, 4H] LSTM i|f|g|o, GRU r|z|n|(W_hn·h + b_hn)
}

/// Shape of one unit's sweep.
#[derive(Clone, Copy)]
pub struct UnitShape {
    pub cell: Cell,
    pub activation: Activation,
    pub steps: usize,
    pub batch: usize,
    pub hidden: usize,
    pub input: usize,
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

/// Runs the unit over `x` ([T·B, I]) from `h0`/`c0` ([B, H] each; `c0` LSTM only).
pub fn forward(s: UnitShape, w: &UnitWeights<'_>, x: &[f64], h0: &[f64], c0: &[f64]) -> UnitTrace {
    let (t_len, batch, h, iw) = (s.steps, s.batch, s.hidden, s.input);
    let (bh, gh, rows) = (batch * h, s.cell.gates() * h, t_len * batch);
    // pre: [R, G·H] = x·W_ihᵀ + b_ih
    let mut pre = vec![0.0; rows * gh];
    for r in 0..rows {
        for q in 0..gh {
            let mut v = w.b_ih[q];
            for i in 0..iw {
                v += x[r * iw + i] * w.w_ih[q * iw + i];
            }
            pre[r * gh + q] = v;
        }
    }
    let mut hs = vec![0.0; (t_len + 1) * bh];
    let mut cs = vec![0.0; (t_len + 1) * bh];
    let mut cache = vec![0.0; rows * 4 * h];
    hs[..bh].copy_from_slice(h0);
    if s.cell == Cell::Lstm {
        cs[..bh].copy_from_slice(c0);
    }
    for t in 0..t_len {
        for b in 0..batch {
            let r = t * batch + b;
            let (prev, next) = (t * bh + b * h, (t + 1) * bh + b * h);
            // hh: [G·H] = W_hh·h_{t-1} + b_hh
            let hh: Vec<f64> = (0..gh)
                .map(|q| {
                    w.b_hh[q]
                        + (0..h)
                            .map(|k| hs[prev + k] * w.w_hh[q * h + k])
                            .sum::<f64>()
                })
                .collect();
            let (pr, c4) = (&pre[r * gh..(r + 1) * gh], r * 4 * h);
            for j in 0..h {
                let mut put = |vals: [f64; 4]| {
                    for (k, v) in vals.into_iter().enumerate() {
                        cache[c4 + k * h + j] = v;
                    }
                };
                match s.cell {
                    Cell::Rnn => hs[next + j] = act(s.activation, pr[j] + hh[j]),
                    Cell::Lstm => {
                        let i = sigmoid(pr[j] + hh[j]);
                        let f = sigmoid(pr[h + j] + hh[h + j]);
                        let g = (pr[2 * h + j] + hh[2 * h + j]).tanh();
                        let o = sigmoid(pr[3 * h + j] + hh[3 * h + j]);
                        let c = f * cs[prev + j] + i * g;
                        cs[next + j] = c;
                        hs[next + j] = o * c.tanh();
                        put([i, f, g, o]);
                    }
                    Cell::Gru => {
                        let rg = sigmoid(pr[j] + hh[j]);
                        let z = sigmoid(pr[h + j] + hh[h + j]);
                        let hn = hh[2 * h + j];
                        let n = (pr[2 * h + j] + rg * hn).tanh();
                        hs[next + j] = (1.0 - z) * n + z * hs[prev + j];
                        put([rg, z, n, hn]);
                    }
                }
            }
        }
    }
    UnitTrace { hs, cs, cache }
}

/// Backpropagation through the chunk (truncated: nothing flows past its first step).
/// `dh_out`: [T, B, H] loss gradient reaching each hidden state. Returns (dxp, dhh), both
/// [T·B, G·H]: the gradients at the input projection and at W_hh·h + b_hh (equal except
/// for a GRU's n block, which the reset gate scales).
pub fn backward(
    s: UnitShape,
    w_hh: &[f64],
    tr: &UnitTrace,
    dh_out: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let (t_len, batch, h) = (s.steps, s.batch, s.hidden);
    let (bh, gh, rows) = (batch * h, s.cell.gates() * h, t_len * batch);
    let (hs, cs, cache) = (&tr.hs, &tr.cs, &tr.cache);
    let mut dxp = vec![0.0; rows * gh];
    let mut dhh = vec![0.0; rows * gh];
    // dst: [T, B, H] gradient carried straight to the previous step (LSTM dc, GRU dh).
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
                        dh += dhh[next + q] * w_hh[q * h + j];
                    }
                    carried = dst[(t + 1) * bh + e];
                }
                let q = r * gh;
                match s.cell {
                    Cell::Rnn => {
                        let da = dh * act_grad_from_output(s.activation, hs[(t + 1) * bh + e]);
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
    (dxp, dhh)
}
