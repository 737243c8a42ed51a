//! Builds the recorded dispatch list of one chunk shape: forward, loss, backward, update.

use super::buffers::Precision;
use super::buffers::{EngineBuffers, UnitBuffers};
use super::gemm_tuner::GemmTuner;
use super::RecurrenceKernels;
use crate::dropout::Dropout;
use crate::error::Result;
use crate::gpu::{Buffer, Dtype, Encoded, Gpu, Recording, UNIFORM_WINDOW};
use crate::model::{Cell, InputKind, ModelConfig, ParamLayout, TaskKind, Unit};
use crate::model::{EMBEDDING, HEAD_BIAS, HEAD_WEIGHT};
use crate::ops::{
    self, ChunkInfo, GatedBuffers, GatedShape, GemmSpec, Launch, Operand, PoolShape,
    RecurrenceShape, ReduceParams, SequenceStart, Uniforms, UnitPlacement,
};

/// What a chunk does after the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChunkMode {
    /// Forward only: carry the state (a many-to-one chunk before the final one).
    Carry,
    /// Forward and loss (validation).
    Eval,
    /// Forward and the head's outputs, no loss (prediction, generation).
    Predict,
    /// Forward, loss and gradients, no update (gradient checks).
    Gradients,
    /// Forward, loss, gradients and one optimizer step.
    Train,
}

impl ChunkMode {
    pub fn has_loss(self) -> bool {
        !matches!(self, ChunkMode::Carry | ChunkMode::Predict)
    }
    fn has_head(self) -> bool {
        self != ChunkMode::Carry
    }
    fn has_backward(self) -> bool {
        matches!(self, ChunkMode::Gradients | ChunkMode::Train)
    }
}

/// The shape of one chunk; plans are cached under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChunkShape {
    pub steps: usize,
    pub batch: usize,
    pub mode: ChunkMode,
    pub start: SequenceStart,
    /// Whether dropout applies between layers (a training chunk of a model with dropout).
    pub dropout: bool,
}

/// A recorded chunk, and the loss and metric reductions whose log slot is set per submit.
pub struct ChunkPlan {
    pub recording: Recording,
    pub log_writers: Vec<(Launch, ReduceParams)>,
    /// `recording` already recorded into a command buffer for the next chunk of this shape
    /// (recorded after each submit, while the GPU runs it).
    pub ahead: Option<Encoded>,
}

pub(crate) struct PlanContext<'a> {
    pub gpu: &'a Gpu,
    pub config: &'a ModelConfig,
    pub layout: &'a ParamLayout,
    pub bufs: &'a EngineBuffers,
    pub optimizer: Option<&'a Launch>,
    /// How this shape's recurrence sweeps are dispatched, each way (chosen by measurement).
    pub recurrence: RecurrenceKernels,
    /// The GEMM formulation of each product shape (chosen by measurement on GPUs).
    pub gemm: &'a GemmTuner,
    /// Dropout between layers, applied in chunks whose shape says so.
    pub dropout: Option<Dropout>,
}

impl PlanContext<'_> {
    pub fn build(&self, shape: &ChunkShape, u: &mut Uniforms) -> Result<ChunkPlan> {
        let (gpu, cfg, b, lay) = (self.gpu, self.config, self.bufs, self.layout);
        let (t_len, batch, h, o) = (shape.steps, shape.batch, cfg.hidden, cfg.output_size);
        let o_pad = super::buffers::head_grad_stride(o, gpu.adapter().is_software);
        let ow = cfg.output_width();
        let rows = t_len * batch;
        let bh = batch * h;
        let cell = cfg.cell;
        let gh = cell.gates() * h;
        let units = Unit::all(cfg);
        let stacked = !cfg.is_single_layer();
        let info = ChunkInfo {
            lengths: &b.lengths,
            chunk_info: &b.chunk_info,
        };
        let mut rec = Recording::new();
        // Bytes of one [B, H] state block in the activation type (H is even under f16, so
        // these copies stay 4-byte aligned).
        let act_bytes = b.precision.activations().bytes();
        let state_bytes = (bh * act_bytes) as u64;
        if b.precision == Precision::F16 {
            // The f16 weight copy the kernels read, from this chunk's master weights; all but
            // the embedding table (the layout's first tensor), whose rows the gather reads
            // from the f32 weights directly (it is the largest tensor and only B·T rows of
            // it are read).
            rec.phase("f16 weight copy");
            let skip = match cfg.input {
                InputKind::Tokens { vocab, embed } => {
                    debug_assert_eq!(lay.offset(EMBEDDING), 0);
                    vocab * embed
                }
                InputKind::Dense { .. } => 0,
            };
            ops::cast(gpu, u, skip, lay.total - skip, &b.params, &b.weights_half)?.record(&mut rec);
        }

        // The embedding gradient writes only the rows of the chunk's tokens: zero the table
        // here, among the other clears and copies ahead of the first dispatch.
        if let (InputKind::Tokens { vocab, embed }, true) = (cfg.input, shape.mode.has_backward()) {
            let bytes = (vocab * embed * 4) as u64;
            rec.clear_range(&b.grads, (lay.offset(EMBEDDING) * 4) as u64, bytes);
        }
        // States in: a forward unit starts from its carried state (zero at the start of a
        // sequence), a reverse unit from zero.
        for (unit, ub) in units.iter().zip(&b.units) {
            if unit.reverse {
                rec.clear_range(&ub.hs, 0, state_bytes);
                if cell == Cell::Lstm {
                    rec.clear_range(&ub.cs, 0, state_bytes);
                }
                continue;
            }
            if shape.start == SequenceStart::Fresh {
                rec.clear(&ub.carry);
                if cell == Cell::Lstm {
                    rec.clear(&ub.carry_c);
                }
            }
            rec.copy(&ub.carry, 0, &ub.hs, 0, state_bytes);
            if cell == Cell::Lstm {
                rec.copy(&ub.carry_c, 0, &ub.cs, 0, state_bytes);
            }
        }

        rec.phase("input projection");
        // x: [R, I] = embedding rows, or the dense features written by the host.
        if let InputKind::Tokens { embed, .. } = cfg.input {
            ops::embed_gather(
                gpu,
                u,
                ops::StorageWords::for_gpu(gpu),
                rows,
                embed,
                lay.offset(EMBEDDING),
                &b.params, // f32 even under f16 (see the weight copy above)
                &b.tokens,
                &b.x,
            )?
            .record(&mut rec);
        }
        // Layer by layer: each unit's input projection (one GEMM over all T·B rows), its
        // recurrence, and (stacked or bidirectional) its columns of the layer output.
        for layer in 0..cfg.layers {
            let (input, in_off) = self.layer_input(layer, batch);
            let iw = cfg.layer_input_width(layer);
            if cfg.bidirectional {
                ops::reverse_rows(
                    gpu,
                    u,
                    t_len,
                    batch,
                    iw,
                    false,
                    info,
                    input,
                    in_off,
                    &b.layers[layer].input_rev,
                )?
                .record(&mut rec);
            }
            for (unit, ub) in units.iter().zip(&b.units).filter(|(u, _)| u.layer == layer) {
                let off = lay.unit(*unit);
                let (x, x_off) = if unit.reverse {
                    (&b.layers[layer].input_rev, 0)
                } else {
                    (input, in_off)
                };
                // pre: [R, G·H] = x · W_ihᵀ + b_ih (+ b_hh for rnn; the gated kernels add
                // b_hh themselves, since a GRU's reset gate scales W_hn·h + b_hn).
                let projection = GemmSpec {
                    m: rows,
                    n: gh,
                    k: iw,
                    a: Operand::row_major(x_off, iw),
                    b: Operand::transposed(off.weight_ih, iw),
                    c_offset: 0,
                    bias: Some(off.bias_ih),
                    bias2: (!cell.is_gated()).then_some(off.bias_hh),
                    accumulate: false,
                };
                self.product(u, &projection, x, b.weights(), &ub.pre, &mut rec)?;
                if layer == 0 && !unit.reverse {
                    rec.phase("recurrence forward");
                }
                for launch in self.recurrence_forward(u, shape, *unit, ub)? {
                    launch.record(&mut rec);
                }
                if !unit.reverse {
                    rec.copy(
                        &ub.hs,
                        t_len as u64 * state_bytes,
                        &ub.carry,
                        0,
                        state_bytes,
                    );
                    if cell == Cell::Lstm {
                        rec.copy(
                            &ub.cs,
                            t_len as u64 * state_bytes,
                            &ub.carry_c,
                            0,
                            state_bytes,
                        );
                    }
                }
                if stacked {
                    let place = self.placement(shape, *unit);
                    ops::unit_output(gpu, u, &place, info, &ub.hs, &b.layers[layer].output)?
                        .record(&mut rec);
                }
            }
        }

        rec.phase("head and loss");
        // Head input: every output row (many-to-many) or the pooled row (many-to-one).
        let (out_buf, out_off) = if stacked {
            (&b.layers[cfg.layers - 1].output, batch * ow)
        } else {
            (&b.units[0].hs, bh)
        };
        let pool = PoolShape {
            steps: t_len,
            batch,
            hidden: ow,
            pool: cfg.pool,
            start: shape.start,
            reverse_from: if cfg.bidirectional { h } else { ow },
        };
        let (head_in, head_rows, head_in_offset) = match cfg.task {
            TaskKind::ManyToMany => (out_buf, rows, out_off),
            TaskKind::ManyToOne => {
                ops::pool_forward(gpu, u, &pool, out_buf, &b.pool_acc, &b.z, &b.pool_arg, info)?
                    .record(&mut rec);
                (&b.z, batch, 0)
            }
        };
        if !shape.mode.has_head() {
            return Ok(ChunkPlan {
                recording: rec,
                log_writers: Vec::new(),
                ahead: None,
            });
        }

        // y: [R', O] = head_in · W_headᵀ + b_head; then the fused loss.
        let head = GemmSpec {
            m: head_rows,
            n: o,
            k: ow,
            a: Operand::row_major(head_in_offset, ow),
            b: Operand::transposed(lay.offset(HEAD_WEIGHT), ow),
            c_offset: 0,
            bias: Some(lay.offset(HEAD_BIAS)),
            bias2: None,
            accumulate: false,
        };
        self.product(u, &head, head_in, b.weights(), &b.y, &mut rec)?;
        if !shape.mode.has_loss() {
            return Ok(ChunkPlan {
                recording: rec,
                log_writers: Vec::new(),
                ahead: None,
            });
        }
        ops::loss_rows(
            gpu,
            u,
            cfg.loss,
            cfg.output_activation,
            head_rows,
            o,
            o_pad,
            &b.y,
            &b.targets,
            &b.dy,
            &b.row_loss,
            &b.row_mask,
            &b.chunk_info,
            &b.row_metric,
        )?
        .record(&mut rec);
        let loss_sum = ops::loss_sum(gpu, u, head_rows, &b.row_loss, &b.loss_log, &b.chunk_info)?;
        loss_sum.0.record(&mut rec);
        let metric_sum = ops::loss_sum(
            gpu,
            u,
            head_rows,
            &b.row_metric,
            &b.metric_log,
            &b.chunk_info,
        )?;
        metric_sum.0.record(&mut rec);
        let mut log_writers = vec![loss_sum, metric_sum];
        if !shape.mode.has_backward() {
            return Ok(ChunkPlan {
                recording: rec,
                log_writers,
                ahead: None,
            });
        }

        // Head gradients: dW_head = dyᵀ · head_in, db_head = Σ_rows dy (dy's rows o_pad
        // apart: super::buffers::head_grad_stride).
        let d_head_weight = GemmSpec {
            m: o,
            n: ow,
            k: head_rows,
            a: Operand::transposed(0, o_pad),
            b: Operand::row_major(head_in_offset, ow),
            c_offset: lay.offset(HEAD_WEIGHT),
            bias: None,
            bias2: None,
            accumulate: false,
        };
        self.weight_gradient(u, &d_head_weight, &b.dy, head_in, &mut rec)?;
        self.bias_gradient(
            u,
            (head_rows, o, o_pad),
            lay.offset(HEAD_BIAS),
            None,
            &b.dy,
            &mut rec,
        )?;
        // Gradient reaching the head input: dy · W_head, onto the last layer's output; with
        // padded dy rows, over K = o_pad through a copy of W_head with o_pad - o zero rows
        // after it (the buffer's, never written), so that K is a multiple of 4.
        // The copy is a buffer copy where both hold the same type at 4-byte boundaries (a
        // [1, O·W] transpose moves one value an invocation).
        let (head_weight, head_weight_at) = if o_pad == o {
            (b.weights(), lay.offset(HEAD_WEIGHT))
        } else {
            let (src, dst) = (b.weights(), &b.head_weight_pad);
            let width = src.dtype().bytes() as u64;
            let (from, bytes) = (
                lay.offset(HEAD_WEIGHT) as u64 * width,
                (o * ow) as u64 * width,
            );
            if src.dtype() == dst.dtype() && from % 4 == 0 && bytes % 4 == 0 {
                rec.copy(src, from, dst, 0, bytes);
            } else {
                ops::transpose(gpu, u, lay.offset(HEAD_WEIGHT), 1, o * ow, src, dst)?
                    .record(&mut rec);
            }
            (&b.head_weight_pad, 0)
        };
        let d_head_in = GemmSpec {
            m: head_rows,
            n: ow,
            k: o_pad,
            a: Operand::row_major(0, o_pad),
            b: Operand::row_major(head_weight_at, ow),
            c_offset: 0,
            bias: None,
            bias2: None,
            accumulate: false,
        };
        let d_out = if stacked {
            &b.layers[cfg.layers - 1].d_output
        } else {
            &b.units[0].dh_out
        };
        match cfg.task {
            TaskKind::ManyToMany => {
                self.product(u, &d_head_in, &b.dy, head_weight, d_out, &mut rec)?
            }
            TaskKind::ManyToOne => {
                self.product(u, &d_head_in, &b.dy, head_weight, &b.dz, &mut rec)?;
                ops::pool_backward(gpu, u, &pool, &b.dz, &b.pool_arg, d_out, info, &mut rec)?;
            }
        }

        // Backpropagation through time within the chunk, last layer first.
        for layer in (0..cfg.layers).rev() {
            let (input, in_off) = self.layer_input(layer, batch);
            let iw = cfg.layer_input_width(layer);
            for (unit, ub) in units.iter().zip(&b.units).filter(|(u, _)| u.layer == layer) {
                if layer + 1 == cfg.layers && !unit.reverse {
                    rec.phase("recurrence backward");
                }
                if stacked {
                    let place = self.placement(shape, *unit);
                    ops::unit_output_grad(
                        gpu,
                        u,
                        &place,
                        info,
                        &b.layers[layer].d_output,
                        &ub.dh_out,
                    )?
                    .record(&mut rec);
                }
                for launch in self.recurrence_backward(u, shape, *unit, ub)? {
                    launch.record(&mut rec);
                }
                if layer + 1 == cfg.layers && !unit.reverse {
                    rec.phase("weight gradients");
                }
                // dW_ih = daᵀ·x, dW_hh = dhhᵀ·hs[0..T], db_ih = Σ da, db_hh = Σ dhh (dhh is
                // da except for a GRU), over all rows at once.
                let off = lay.unit(*unit);
                let (x, x_off) = if unit.reverse {
                    (&b.layers[layer].input_rev, 0)
                } else {
                    (input, in_off)
                };
                let dhh = if cell == Cell::Gru { &ub.dhh } else { &ub.da };
                let d_wih = GemmSpec {
                    m: gh,
                    n: iw,
                    k: rows,
                    a: Operand::transposed(0, gh),
                    b: Operand::row_major(x_off, iw),
                    c_offset: off.weight_ih,
                    bias: None,
                    bias2: None,
                    accumulate: false,
                };
                self.weight_gradient(u, &d_wih, &ub.da, x, &mut rec)?;
                let d_whh = GemmSpec {
                    n: h,
                    b: Operand::row_major(0, h),
                    c_offset: off.weight_hh,
                    ..d_wih
                };
                self.weight_gradient(u, &d_whh, dhh, &ub.hs, &mut rec)?;
                if cell == Cell::Gru {
                    for (offset, source) in [(off.bias_ih, &ub.da), (off.bias_hh, &ub.dhh)] {
                        self.bias_gradient(u, (rows, gh, gh), offset, None, source, &mut rec)?;
                    }
                } else {
                    let (ih, hh) = (off.bias_ih, Some(off.bias_hh));
                    self.bias_gradient(u, (rows, gh, gh), ih, hh, &ub.da, &mut rec)?;
                }
            }
            // The gradient at the layer's input: Σ over its units of da · W_ih (a reverse
            // unit's put back in sequence order), onto the previous layer's output or the
            // embeddings.
            let d_input = if layer > 0 {
                Some(&b.layers[layer - 1].d_output)
            } else if matches!(cfg.input, InputKind::Tokens { .. }) {
                Some(&b.dx)
            } else {
                None
            };
            let Some(d_input) = d_input else { continue };
            for (unit, ub) in units.iter().zip(&b.units).filter(|(u, _)| u.layer == layer) {
                let weight_ih = lay.unit(*unit).weight_ih;
                let d_x = GemmSpec {
                    m: rows,
                    n: iw,
                    k: gh,
                    a: Operand::row_major(0, gh),
                    b: Operand::row_major(weight_ih, iw),
                    c_offset: 0,
                    bias: None,
                    bias2: None,
                    accumulate: false,
                };
                // Where the tuner wants weights along k (the window quads kernels without
                // the 8-byte outer-product kernel: `GemmTuner::wants_weights_along_k`), B =
                // W_ih from its transposed copy [I, G·H], written just before the product;
                // but W_ih as it is, along n, for the outer-product kernel's rows variant
                // (`GemmKernel::outer_rows_apply`, da f32), where a window of that copy would
                // hold less than a 32-line tile (f32, G·H above 512: the gated cells at H 256;
                // W4's 2048x128x1024 14.2-15.2 -> 8.6-8.9 ms on lavapipe, BENCHMARKS.md) or
                // where the weights are f16 (the window kernels then read f32 da and f16
                // weights as the subgroup kernel does).
                let in_place = ub.da.dtype() == Dtype::F32
                    && match b.weights().dtype() {
                        Dtype::F32 => gh * 4 * 32 > UNIFORM_WINDOW as usize,
                        Dtype::F16 => true,
                    };
                let (d_x, weights) = if self.gemm.wants_weights_along_k() && !in_place {
                    ops::transpose(gpu, u, weight_ih, gh, iw, b.weights(), &b.weight_t)?
                        .record(&mut rec);
                    let spec = GemmSpec {
                        b: Operand::transposed(0, gh),
                        ..d_x
                    };
                    (spec, &b.weight_t)
                } else {
                    (d_x, b.weights())
                };
                if unit.reverse {
                    self.product(u, &d_x, &ub.da, weights, &b.d_input_rev, &mut rec)?;
                    ops::reverse_rows(
                        gpu,
                        u,
                        t_len,
                        batch,
                        iw,
                        true,
                        info,
                        &b.d_input_rev,
                        0,
                        d_input,
                    )?
                    .record(&mut rec);
                } else {
                    self.product(u, &d_x, &ub.da, weights, d_input, &mut rec)?;
                }
            }
        }
        if let InputKind::Tokens { vocab, embed } = cfg.input {
            // Over the chunk's distinct tokens only; the table was zeroed at the start.
            let index = ops::TokenIndexBuffers {
                present: &b.emb_present,
                offsets: &b.emb_offsets,
                positions: &b.emb_positions,
            };
            ops::embed_grad(
                gpu,
                u,
                ops::StorageWords::for_gpu(gpu),
                vocab.min(rows),
                vocab,
                embed,
                lay.offset(EMBEDDING),
                &b.dx,
                &index,
                &b.grads,
            )?
            .record(&mut rec);
        }
        if shape.mode == ChunkMode::Train {
            rec.phase("optimizer");
            // Always: the norm feeds clipping, the non-finite guard and the norm log.
            let (launches, params) = ops::grad_norm(
                gpu,
                u,
                ops::StorageWords::for_gpu(gpu),
                lay.total,
                &b.grads,
                &b.norm_partials,
                &b.norm,
                &b.norm_log,
                &b.loss_log,
            )?;
            for launch in &launches {
                launch.record(&mut rec);
            }
            log_writers.push((launches[1].clone(), params));
            if let Some(step) = self.optimizer {
                step.record(&mut rec);
            }
        }
        Ok(ChunkPlan {
            recording: rec,
            log_writers,
            ahead: None,
        })
    }

    /// Layer `layer`'s input and the element offset of its first row: the embeddings or
    /// features for layer 0, else the previous layer's output (rows from block 1).
    fn layer_input(&self, layer: usize, batch: usize) -> (&Buffer, usize) {
        if layer == 0 {
            (&self.bufs.x, 0)
        } else {
            (
                &self.bufs.layers[layer - 1].output,
                batch * self.config.output_width(),
            )
        }
    }

    /// Where `unit` writes in its layer's output, and the dropout applied there (between
    /// layers, in training chunks).
    fn placement(&self, shape: &ChunkShape, unit: Unit) -> UnitPlacement {
        let cfg = self.config;
        let dropout = match self.dropout {
            Some(d) if shape.dropout && unit.layer + 1 < cfg.layers => Some((unit.layer, d)),
            _ => None,
        };
        UnitPlacement {
            steps: shape.steps,
            batch: shape.batch,
            hidden: cfg.hidden,
            out_width: cfg.output_width(),
            col0: if unit.reverse { cfg.hidden } else { 0 },
            reverse: unit.reverse,
            dropout,
        }
    }

    /// The forward sweep of one unit.
    fn recurrence_forward(
        &self,
        u: &mut Uniforms,
        shape: &ChunkShape,
        unit: Unit,
        ub: &UnitBuffers,
    ) -> Result<Vec<Launch>> {
        let (cfg, b) = (self.config, self.bufs);
        if cfg.cell.is_gated() {
            ops::gated_forward(
                self.gpu,
                u,
                &self.gated_shape(shape, unit),
                self.recurrence.forward,
                &gated_buffers(b, ub),
            )
        } else {
            let rnn = self.rnn_shape(shape, unit);
            ops::rnn_forward(
                self.gpu,
                u,
                &rnn,
                self.recurrence.forward,
                b.weights(),
                &ub.pre,
                &ub.hs,
                &b.step_sum,
                Some([&b.step_copies[0], &b.step_copies[1]]),
            )
        }
    }

    /// The backward sweep of one unit (dh_out → da, dhh).
    fn recurrence_backward(
        &self,
        u: &mut Uniforms,
        shape: &ChunkShape,
        unit: Unit,
        ub: &UnitBuffers,
    ) -> Result<Vec<Launch>> {
        let (cfg, b) = (self.config, self.bufs);
        if cfg.cell.is_gated() {
            ops::gated_backward(
                self.gpu,
                u,
                &self.gated_shape(shape, unit),
                self.recurrence.backward,
                &gated_buffers(b, ub),
            )
        } else {
            let rnn = self.rnn_shape(shape, unit);
            ops::rnn_backward(
                self.gpu,
                u,
                &rnn,
                self.recurrence.backward,
                b.weights(),
                Some(&b.weight_t),
                &ub.hs,
                &ub.dh_out,
                &ub.da,
                &b.step_sum,
                Some([&b.step_copies[0], &b.step_copies[1]]),
            )
        }
    }

    fn rnn_shape(&self, shape: &ChunkShape, unit: Unit) -> RecurrenceShape {
        RecurrenceShape {
            steps: shape.steps,
            batch: shape.batch,
            hidden: self.config.hidden,
            activation: self.config.activation,
            whh_off: self.layout.unit(unit).weight_hh,
        }
    }

    fn gated_shape(&self, shape: &ChunkShape, unit: Unit) -> GatedShape {
        let off = self.layout.unit(unit);
        GatedShape {
            cell: self.config.cell,
            steps: shape.steps,
            batch: shape.batch,
            hidden: self.config.hidden,
            whh_off: off.weight_hh,
            bhh_off: off.bias_hh,
        }
    }
}

pub(super) fn gated_buffers<'a>(b: &'a EngineBuffers, ub: &'a UnitBuffers) -> GatedBuffers<'a> {
    GatedBuffers {
        params: b.weights(),
        pre: &ub.pre,
        hs: &ub.hs,
        cs: &ub.cs,
        cache: &ub.cache,
        dh_out: &ub.dh_out,
        da: &ub.da,
        dhh: &ub.dhh,
        dstate: &ub.dstate,
        step_sum: &b.step_sum,
        whh_t: Some(&b.weight_t),
    }
}

impl PlanContext<'_> {
    /// Records `c = a·b (+ biases from params)` with the formulation tuned for its shape.
    fn product(
        &self,
        u: &mut Uniforms,
        spec: &GemmSpec,
        a: &Buffer,
        b: &Buffer,
        c: &Buffer,
        rec: &mut Recording,
    ) -> Result<()> {
        let bufs = self.bufs;
        for launch in self.gemm.launches(
            self.gpu,
            u,
            spec,
            1,
            a,
            b,
            bufs.weights(),
            c,
            &bufs.split_scratch,
        )? {
            launch.record(rec);
        }
        Ok(())
    }

    /// Records a bias gradient `grads[dst + n] (and grads[dst2 + n]) = Σ_r src[r, n]` over
    /// `rows` rows of `columns` values, `stride` apart, in row slices where the adapter needs
    /// the parallelism ([`ops::column_slices`]).
    fn bias_gradient(
        &self,
        u: &mut Uniforms,
        (rows, columns, stride): (usize, usize, usize),
        dst: usize,
        dst2: Option<usize>,
        src: &Buffer,
        rec: &mut Recording,
    ) -> Result<()> {
        let bufs = self.bufs;
        let slices = ops::column_slices(self.gpu.adapter().is_software, rows, columns);
        for launch in ops::column_sum_split(
            self.gpu,
            u,
            ops::column_words(self.gpu, columns, stride),
            rows,
            columns,
            stride,
            dst,
            dst2,
            src,
            &bufs.grads,
            &bufs.split_scratch,
            slices,
        )? {
            launch.record(rec);
        }
        Ok(())
    }

    /// Records a weight-gradient product into `grads` (K = the chunk's rows), split over K
    /// where the adapter needs the parallelism ([`ops::split_slices`]).
    fn weight_gradient(
        &self,
        u: &mut Uniforms,
        spec: &GemmSpec,
        a: &Buffer,
        b: &Buffer,
        rec: &mut Recording,
    ) -> Result<()> {
        let bufs = self.bufs;
        let slices = ops::split_slices(self.gpu.adapter().is_software, spec.m, spec.n, spec.k);
        for launch in self.gemm.launches(
            self.gpu,
            u,
            spec,
            slices,
            a,
            b,
            bufs.weights(),
            &bufs.grads,
            &bufs.split_scratch,
        )? {
            launch.record(rec);
        }
        Ok(())
    }
}
