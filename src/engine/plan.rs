//! Builds the recorded dispatch list of one chunk shape: forward, loss, backward, update.

use super::buffers::EngineBuffers;
use super::gemm_tuner::GemmTuner;
use crate::error::Result;
use crate::gpu::{Buffer, Gpu, Recording};
use crate::model::{Cell, InputKind, ModelConfig, ParamLayout, TaskKind};
use crate::model::{BIAS_HH, BIAS_IH, EMBEDDING, HEAD_BIAS, HEAD_WEIGHT, WEIGHT_HH, WEIGHT_IH};
use crate::ops::{
    self, ChunkInfo, GatedBuffers, GatedShape, GemmSpec, Launch, Operand, PoolShape,
    RecurrenceKernel, RecurrenceShape, ReduceParams, SequenceStart, Uniforms,
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
}

/// A recorded chunk, and the loss and metric reductions whose log slot is set per submit.
pub struct ChunkPlan {
    pub recording: Recording,
    pub log_writers: Vec<(Launch, ReduceParams)>,
}

pub(crate) struct PlanContext<'a> {
    pub gpu: &'a Gpu,
    pub config: &'a ModelConfig,
    pub layout: &'a ParamLayout,
    pub bufs: &'a EngineBuffers,
    pub optimizer: Option<&'a Launch>,
    /// How this shape's recurrence sweeps are dispatched (chosen by measurement).
    pub recurrence: RecurrenceKernel,
    /// The GEMM formulation of each product shape (chosen by measurement on GPUs).
    pub gemm: &'a GemmTuner,
}

impl PlanContext<'_> {
    pub fn build(&self, shape: &ChunkShape, u: &mut Uniforms) -> Result<ChunkPlan> {
        let (gpu, cfg, b, lay) = (self.gpu, self.config, self.bufs, self.layout);
        let (t_len, batch, h, o) = (shape.steps, shape.batch, cfg.hidden, cfg.output_size);
        let i_w = cfg.input_width();
        let rows = t_len * batch;
        let bh = batch * h;
        let mut rec = Recording::new();

        // Hidden state in: zero at the start of a sequence, else the carried state.
        if shape.start == SequenceStart::Fresh {
            rec.clear(&b.carry);
        }
        rec.copy(&b.carry, 0, &b.hs, 0, (bh * 4) as u64);
        let cell = cfg.cell;
        let gh = cell.gates() * h;
        if cell == Cell::Lstm {
            if shape.start == SequenceStart::Fresh {
                rec.clear(&b.carry_c);
            }
            rec.copy(&b.carry_c, 0, &b.cs, 0, (bh * 4) as u64);
        }

        rec.phase("input projection");
        // x: [R, I] = embedding rows, or the dense features written by the host.
        if let InputKind::Tokens { embed, .. } = cfg.input {
            ops::embed_gather(
                gpu,
                u,
                rows,
                embed,
                lay.offset(EMBEDDING),
                &b.params,
                &b.tokens,
                &b.x,
            )?
            .record(&mut rec);
        }
        // pre: [R, G·H] = x · W_ihᵀ + b_ih (+ b_hh for rnn; the gated kernels add b_hh
        // themselves, since a GRU's reset gate scales W_hn·h + b_hn), all rows at once.
        let input_projection = GemmSpec {
            m: rows,
            n: gh,
            k: i_w,
            a: Operand::row_major(0, i_w),
            b: Operand::transposed(lay.offset(WEIGHT_IH), i_w),
            c_offset: 0,
            bias: Some(lay.offset(BIAS_IH)),
            bias2: (!cell.is_gated()).then(|| lay.offset(BIAS_HH)),
            accumulate: false,
        };
        self.product(u, &input_projection, &b.x, &b.params, &b.pre, &mut rec)?;
        let rnn = RecurrenceShape {
            steps: t_len,
            batch,
            hidden: h,
            activation: cfg.activation,
            whh_off: lay.offset(WEIGHT_HH),
        };
        let gated = GatedShape {
            cell,
            steps: t_len,
            batch,
            hidden: h,
            whh_off: lay.offset(WEIGHT_HH),
            bhh_off: lay.offset(BIAS_HH),
        };
        let gated_bufs = GatedBuffers {
            params: &b.params,
            pre: &b.pre,
            hs: &b.hs,
            cs: &b.cs,
            cache: &b.cache,
            dh_out: &b.dh_out,
            da: &b.da,
            dhh: &b.dhh,
            dstate: &b.dstate,
        };
        rec.phase("recurrence forward");
        let forward = if cell.is_gated() {
            ops::gated_forward(gpu, u, &gated, &gated_bufs)?
        } else {
            ops::rnn_forward(gpu, u, &rnn, self.recurrence, &b.params, &b.pre, &b.hs)?
        };
        for launch in forward {
            launch.record(&mut rec);
        }
        rec.copy(&b.hs, (t_len * bh * 4) as u64, &b.carry, 0, (bh * 4) as u64);
        if cell == Cell::Lstm {
            rec.copy(
                &b.cs,
                (t_len * bh * 4) as u64,
                &b.carry_c,
                0,
                (bh * 4) as u64,
            );
        }

        rec.phase("head and loss");
        // Head input: every hidden state (many-to-many) or the pooled state (many-to-one).
        let pool = PoolShape {
            steps: t_len,
            batch,
            hidden: h,
            pool: cfg.pool,
            start: shape.start,
        };
        let info = ChunkInfo {
            lengths: &b.lengths,
            chunk_info: &b.chunk_info,
        };
        let (head_in, head_rows, head_in_offset) = match cfg.task {
            TaskKind::ManyToMany => (&b.hs, rows, bh),
            TaskKind::ManyToOne => {
                ops::pool_forward(gpu, u, &pool, &b.hs, &b.pool_acc, &b.z, &b.pool_arg, info)?
                    .record(&mut rec);
                (&b.z, batch, 0)
            }
        };
        if !shape.mode.has_head() {
            return Ok(ChunkPlan {
                recording: rec,
                log_writers: Vec::new(),
            });
        }

        // y: [R', O] = head_in · W_headᵀ + b_head; then the fused loss.
        let head = GemmSpec {
            m: head_rows,
            n: o,
            k: h,
            a: Operand::row_major(head_in_offset, h),
            b: Operand::transposed(lay.offset(HEAD_WEIGHT), h),
            c_offset: 0,
            bias: Some(lay.offset(HEAD_BIAS)),
            bias2: None,
            accumulate: false,
        };
        self.product(u, &head, head_in, &b.params, &b.y, &mut rec)?;
        if !shape.mode.has_loss() {
            return Ok(ChunkPlan {
                recording: rec,
                log_writers: Vec::new(),
            });
        }
        ops::loss_rows(
            gpu,
            u,
            cfg.loss,
            cfg.output_activation,
            head_rows,
            o,
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
        let log_writers = vec![loss_sum, metric_sum];
        if !shape.mode.has_backward() {
            return Ok(ChunkPlan {
                recording: rec,
                log_writers,
            });
        }

        // Head gradients: dW_head = dyᵀ · head_in, db_head = Σ_rows dy.
        let d_head_weight = GemmSpec {
            m: o,
            n: h,
            k: head_rows,
            a: Operand::transposed(0, o),
            b: Operand::row_major(head_in_offset, h),
            c_offset: lay.offset(HEAD_WEIGHT),
            bias: None,
            bias2: None,
            accumulate: false,
        };
        self.weight_gradient(u, &d_head_weight, &b.dy, head_in, &mut rec)?;
        ops::column_sum(
            gpu,
            u,
            head_rows,
            o,
            lay.offset(HEAD_BIAS),
            None,
            &b.dy,
            &b.grads,
        )?
        .record(&mut rec);
        // Gradient reaching the head input: dy · W_head.
        let d_head_in = GemmSpec {
            m: head_rows,
            n: h,
            k: o,
            a: Operand::row_major(0, o),
            b: Operand::row_major(lay.offset(HEAD_WEIGHT), h),
            c_offset: 0,
            bias: None,
            bias2: None,
            accumulate: false,
        };
        match cfg.task {
            TaskKind::ManyToMany => {
                self.product(u, &d_head_in, &b.dy, &b.params, &b.dh_out, &mut rec)?
            }
            TaskKind::ManyToOne => {
                self.product(u, &d_head_in, &b.dy, &b.params, &b.dz, &mut rec)?;
                ops::pool_backward(gpu, u, &pool, &b.dz, &b.pool_arg, &b.dh_out, info)?
                    .record(&mut rec);
            }
        }
        rec.phase("recurrence backward");
        // Backpropagation through time within the chunk.
        let backward = if cell.is_gated() {
            ops::gated_backward(gpu, u, &gated, &gated_bufs)?
        } else {
            ops::rnn_backward(
                gpu,
                u,
                &rnn,
                self.recurrence,
                &b.params,
                &b.hs,
                &b.dh_out,
                &b.da,
            )?
        };
        for launch in backward {
            launch.record(&mut rec);
        }
        rec.phase("weight gradients");
        // Weight gradients over all rows at once: dW_ih = daᵀ·x, dW_hh = dhhᵀ·hs[0..T],
        // db_ih = Σ da, db_hh = Σ dhh (dhh is da except for a GRU).
        let dhh = if cell == Cell::Gru { &b.dhh } else { &b.da };
        let d_wih = GemmSpec {
            m: gh,
            n: i_w,
            k: rows,
            a: Operand::transposed(0, gh),
            b: Operand::row_major(0, i_w),
            c_offset: lay.offset(WEIGHT_IH),
            bias: None,
            bias2: None,
            accumulate: false,
        };
        self.weight_gradient(u, &d_wih, &b.da, &b.x, &mut rec)?;
        let d_whh = GemmSpec {
            n: h,
            b: Operand::row_major(0, h),
            c_offset: lay.offset(WEIGHT_HH),
            ..d_wih
        };
        self.weight_gradient(u, &d_whh, dhh, &b.hs, &mut rec)?;
        if cell == Cell::Gru {
            for (offset, source) in [(BIAS_IH, &b.da), (BIAS_HH, &b.dhh)] {
                ops::column_sum(gpu, u, rows, gh, lay.offset(offset), None, source, &b.grads)?
                    .record(&mut rec);
            }
        } else {
            ops::column_sum(
                gpu,
                u,
                rows,
                gh,
                lay.offset(BIAS_IH),
                Some(lay.offset(BIAS_HH)),
                &b.da,
                &b.grads,
            )?
            .record(&mut rec);
        }
        if let InputKind::Tokens { vocab, embed } = cfg.input {
            // dx = da · W_ih, then summed per token in a fixed order.
            let d_x = GemmSpec {
                m: rows,
                n: embed,
                k: gh,
                a: Operand::row_major(0, gh),
                b: Operand::row_major(lay.offset(WEIGHT_IH), embed),
                c_offset: 0,
                bias: None,
                bias2: None,
                accumulate: false,
            };
            self.product(u, &d_x, &b.da, &b.params, &b.dx, &mut rec)?;
            ops::embed_grad(
                gpu,
                u,
                vocab,
                embed,
                lay.offset(EMBEDDING),
                &b.dx,
                &b.emb_offsets,
                &b.grads,
                &b.emb_positions,
            )?
            .record(&mut rec);
        }
        let mut log_writers = log_writers;
        if shape.mode == ChunkMode::Train {
            rec.phase("optimizer");
            // Always: the norm feeds clipping, the non-finite guard and the norm log.
            let (launches, params) = ops::grad_norm(
                gpu,
                u,
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
        })
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
            &bufs.params,
            c,
            &bufs.split_scratch,
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
            &bufs.params,
            &bufs.grads,
            &bufs.split_scratch,
        )? {
            launch.record(rec);
        }
        Ok(())
    }
}
