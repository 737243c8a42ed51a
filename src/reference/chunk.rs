//! One chunk through the whole model in f64: embedding, the stacked (optionally
//! bidirectional) recurrent layers with dropout between them, pooling, head and loss, and
//! the gradient of every parameter.

use super::cell::{self, UnitShape, UnitTrace, UnitWeights};
use super::{loss_and_grad, CarriedState, ChunkResult};
use crate::dropout::Dropout;
use crate::engine::{Chunk, StepInputs};
use crate::model::{InputKind, ModelConfig, ParamLayout, Pool, TaskKind, Unit};
use crate::model::{EMBEDDING, HEAD_BIAS, HEAD_WEIGHT};
use crate::ops::SequenceStart;

/// Runs one chunk without dropout: see [`run_chunk_with`].
pub fn run_chunk(
    config: &ModelConfig,
    params: &[f64],
    chunk: &Chunk<'_>,
    state: &mut CarriedState,
    want_grads: bool,
) -> ChunkResult {
    run_chunk_with(config, params, chunk, state, want_grads, None)
}

/// The row a reverse unit reads at row `r` (= t·B + b) of its own time: the sequence's step
/// `len - 1 - t` while `t < len`, padding rows unchanged. Its own inverse.
fn reverse_row(r: usize, batch: usize, lengths: &[u32], steps: usize) -> usize {
    let (t, b) = (r / batch, r % batch);
    let len = (lengths[b] as usize).min(steps);
    if t < len {
        (len - 1 - t) * batch + b
    } else {
        r
    }
}

/// Runs one chunk: forward from `state` (updated in place to carry on), the loss when the
/// chunk has targets, and the gradients when `want_grads`. `dropout`, with the optimizer
/// step that keys its masks, applies between layers (training chunks).
pub fn run_chunk_with(
    config: &ModelConfig,
    params: &[f64],
    chunk: &Chunk<'_>,
    state: &mut CarriedState,
    want_grads: bool,
    dropout: Option<(Dropout, u32)>,
) -> ChunkResult {
    let lay = ParamLayout::new(config);
    let p = |name: &str| &params[lay.get(name).expect("tensor").range()];
    let (t_len, batch, h, o) = (chunk.steps, chunk.batch, config.hidden, config.output_size);
    let (layers, ow) = (config.layers, config.output_width());
    let rows = t_len * batch;
    let bh = batch * h;
    let rev = |r: usize| reverse_row(r, batch, chunk.lengths, t_len);

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
    let fresh = chunk.start() == SequenceStart::Fresh || state.hidden.len() != layers * bh;
    let valid_steps = |b: usize| {
        (chunk.lengths[b] as usize)
            .saturating_sub(chunk.first_step)
            .min(t_len)
    };
    let shape = |layer: usize| UnitShape {
        cell: config.cell,
        activation: config.activation,
        steps: t_len,
        batch,
        hidden: h,
        input: config.layer_input_width(layer),
    };
    let weights = |unit: Unit| {
        let n = unit.names();
        UnitWeights {
            w_ih: p(n.weight_ih),
            w_hh: p(n.weight_hh),
            b_ih: p(n.bias_ih),
            b_hh: p(n.bias_hh),
        }
    };
    // The dropout factor of element e of layer `layer`'s output: 0 or 1/(1-p).
    let drop = |layer: usize, e: usize| -> f64 {
        match dropout {
            Some((d, step)) if layer + 1 < layers => {
                if d.keep(step, layer as u32, e as u32) {
                    d.scale() as f64
                } else {
                    0.0
                }
            }
            _ => 1.0,
        }
    };

    // Forward, layer by layer. inputs[l]: [R, W_l]; traces[unit index]; y: [R, D·H].
    let mut inputs: Vec<Vec<f64>> = vec![x];
    let mut traces: Vec<UnitTrace> = Vec::new();
    let mut new_hidden = Vec::new();
    let mut new_cell = Vec::new();
    let mut y = Vec::new();
    for layer in 0..layers {
        let s = shape(layer);
        let iw = s.input;
        y = vec![0.0; rows * ow];
        for unit in Unit::all(config).into_iter().filter(|u| u.layer == layer) {
            let input = &inputs[layer];
            let zeros = vec![0.0; bh];
            let (h0, c0) = if unit.reverse || fresh {
                (&zeros[..], &zeros[..])
            } else {
                let at = layer * bh..(layer + 1) * bh;
                let c0 = if state.cell.len() == layers * bh {
                    &state.cell[at.clone()]
                } else {
                    &zeros[..]
                };
                (&state.hidden[at], c0)
            };
            let trace = if unit.reverse {
                let x_rev: Vec<f64> = (0..rows)
                    .flat_map(|r| input[rev(r) * iw..(rev(r) + 1) * iw].to_vec())
                    .collect();
                cell::forward(s, &weights(unit), &x_rev, h0, c0)
            } else {
                cell::forward(s, &weights(unit), input, h0, c0)
            };
            let d0 = unit.reverse as usize * h;
            for r in 0..rows {
                let src = if unit.reverse { rev(r) } else { r };
                for j in 0..h {
                    y[r * ow + d0 + j] = trace.hs[bh + src * h + j];
                }
            }
            if !unit.reverse {
                new_hidden.extend_from_slice(&trace.hs[t_len * bh..]);
                new_cell.extend_from_slice(&trace.cs[t_len * bh..]);
            }
            traces.push(trace);
        }
        if layer + 1 < layers {
            let next: Vec<f64> = (0..rows * ow).map(|e| y[e] * drop(layer, e)).collect();
            inputs.push(next);
        }
    }
    state.hidden = new_hidden;
    state.cell = if config.cell == crate::model::Cell::Lstm {
        new_cell
    } else {
        Vec::new()
    };

    // Head input: every output row, or the pooled output (a bidirectional model's reverse
    // half pools its final state, at step 0, for `last`).
    let mut arg = vec![usize::MAX; batch * ow];
    let (head_in, head_rows): (Vec<f64>, usize) = match config.task {
        TaskKind::ManyToMany => (y.clone(), rows),
        TaskKind::ManyToOne => {
            let n = batch * ow;
            let carried = !fresh && state.pool_acc.len() == n;
            let mut new_acc = vec![0.0; n];
            let mut z = vec![0.0; n];
            for e in 0..n {
                let (b, col) = (e / ow, e % ow);
                let valid = valid_steps(b);
                let length = chunk.lengths[b] as f64;
                let at = |t: usize| y[(t * batch + b) * ow + col];
                let prev = if carried { state.pool_acc[e] } else { 0.0 };
                new_acc[e] = match config.pool {
                    Pool::Mean => prev + (0..valid).map(at).sum::<f64>(),
                    Pool::Last if col >= h && valid > 0 => {
                        arg[e] = 0;
                        at(0)
                    }
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
    let mut out = vec![0.0; head_rows * o];
    for r in 0..head_rows {
        for k in 0..o {
            let mut v = hb[k];
            for j in 0..ow {
                v += head_in[r * ow + j] * hw[k * ow + j];
            }
            out[r * o + k] = v;
        }
    }
    let mask = chunk.row_mask(config.task);
    let (loss, dy) = loss_and_grad(
        config.loss,
        config.output_activation,
        &out,
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
    let mut d_head_in = vec![0.0; head_rows * ow];
    for r in 0..head_rows {
        for k in 0..o {
            let d = dy[r * o + k];
            g[off(HEAD_BIAS) + k] += d;
            for j in 0..ow {
                g[off(HEAD_WEIGHT) + k * ow + j] += d * head_in[r * ow + j];
                d_head_in[r * ow + j] += d * hw[k * ow + j];
            }
        }
    }
    // dy_layer: [R, D·H] gradient at the last layer's output.
    let mut d_out: Vec<f64> = match config.task {
        TaskKind::ManyToMany => d_head_in,
        TaskKind::ManyToOne => {
            let mut d = vec![0.0; rows * ow];
            for t in 0..t_len {
                for e in 0..batch * ow {
                    let b = e / ow;
                    d[t * batch * ow + e] = match config.pool {
                        Pool::Mean if t < valid_steps(b) => d_head_in[e] / chunk.lengths[b] as f64,
                        Pool::Mean => 0.0,
                        Pool::Last | Pool::Max if arg[e] == t => d_head_in[e],
                        Pool::Last | Pool::Max => 0.0,
                    };
                }
            }
            d
        }
    };
    // Backward, last layer first.
    for layer in (0..layers).rev() {
        let s = shape(layer);
        let iw = s.input;
        let mut d_in = vec![0.0; rows * iw];
        for unit in Unit::all(config).into_iter().filter(|u| u.layer == layer) {
            let trace = &traces[unit.index(config)];
            let d0 = unit.reverse as usize * h;
            // dh_out in the unit's own time.
            let mut dh_out = vec![0.0; rows * h];
            for r in 0..rows {
                let dst = if unit.reverse { rev(r) } else { r };
                for j in 0..h {
                    dh_out[dst * h + j] = d_out[r * ow + d0 + j];
                }
            }
            let w = weights(unit);
            let (dxp, dhh) = cell::backward(s, w.w_hh, trace, &dh_out);
            let names = unit.names();
            let (o_wih, o_whh, o_bih, o_bhh) = (
                off(names.weight_ih),
                off(names.weight_hh),
                off(names.bias_ih),
                off(names.bias_hh),
            );
            let gh = config.cell.gates() * h;
            let input = &inputs[layer];
            for r in 0..rows {
                let xr = if unit.reverse { rev(r) } else { r };
                for q in 0..gh {
                    let d = dxp[r * gh + q];
                    g[o_bih + q] += d;
                    for i in 0..iw {
                        g[o_wih + q * iw + i] += d * input[xr * iw + i];
                        d_in[xr * iw + i] += d * w.w_ih[q * iw + i];
                    }
                    let d = dhh[r * gh + q];
                    g[o_bhh + q] += d;
                    for k in 0..h {
                        g[o_whh + q * h + k] += d * trace.hs[r * h + k];
                    }
                }
            }
        }
        if layer > 0 {
            // Through the dropout between layer - 1 and layer.
            d_out = (0..rows * ow)
                .map(|e| d_in[e] * drop(layer - 1, e))
                .collect();
        } else if let (StepInputs::Tokens(ids), InputKind::Tokens { embed, .. }) =
            (chunk.inputs, config.input)
        {
            for (r, &id) in ids.iter().enumerate() {
                for d in 0..embed {
                    g[off(EMBEDDING) + id as usize * embed + d] += d_in[r * embed + d];
                }
            }
        }
    }
    ChunkResult {
        loss: Some(loss),
        grads: Some(g),
    }
}
