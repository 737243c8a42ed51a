//! The GPU training engine: owns the device buffers of one model, records each chunk
//! shape once, and runs chunks (one submit each) from host-side inputs.

mod buffers;
mod gemm_tuner;
mod plan;
mod timing;
mod tuning_cache;

pub use buffers::{buffer_sizes, buffer_specs, BufferSpec, Precision, LOSS_LOG_SLOTS};
pub use gemm_tuner::{GemmChoice, GemmTuner};
pub use plan::{ChunkMode, ChunkShape};

use crate::dropout::Dropout;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, PendingRead, ProfileBy, UNIFORM_WINDOW};
use crate::model::{Cell, InputKind, ModelConfig, ParamLayout, TaskKind, Unit};
use crate::ops::{
    self, Launch, OptimParams, RecurrenceKernel, SequenceStart, Uniforms, UpdateRule,
};
use crate::optim::{OptimizerConfig, OptimizerKind};
use buffers::EngineBuffers;
use plan::{ChunkPlan, PlanContext};
use std::collections::HashMap;

/// The inputs of one chunk, time-major (row r = t·B + b).
#[derive(Clone, Copy, Debug)]
pub enum StepInputs<'a> {
    /// `[T, B]` token ids.
    Tokens(&'a [u32]),
    /// `[T, B, I]` features.
    Dense(&'a [f32]),
}

/// The targets of one chunk: one row per output (T·B rows many-to-many, B many-to-one).
#[derive(Clone, Copy, Debug)]
pub enum StepTargets<'a> {
    /// `[R]` class ids.
    Classes(&'a [u32]),
    /// `[R, O]` values.
    Values(&'a [f32]),
}

/// One chunk of a batch of sequences.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    pub steps: usize,
    pub batch: usize,
    /// The chunk's first step within its sequences; 0 starts them (the state resets).
    pub first_step: usize,
    /// `[B]` valid steps of each sequence; steps at or past a length are padding.
    pub lengths: &'a [u32],
    pub inputs: StepInputs<'a>,
    pub targets: Option<StepTargets<'a>>,
}

impl Chunk<'_> {
    pub fn start(&self) -> SequenceStart {
        if self.first_step == 0 {
            SequenceStart::Fresh
        } else {
            SequenceStart::Continued
        }
    }

    /// 1 for each output row that counts in the loss, 0 for padding: `[T, B]` for
    /// many-to-many, `[B]` (all valid) for many-to-one.
    pub fn row_mask(&self, task: TaskKind) -> Vec<f32> {
        match task {
            TaskKind::ManyToOne => vec![1.0; self.batch],
            TaskKind::ManyToMany => (0..self.steps)
                .flat_map(|t| {
                    self.lengths
                        .iter()
                        .map(move |&len| ((self.first_step + t) < len as usize) as u8 as f32)
                })
                .collect(),
        }
    }

    /// How many values the chunk's mean loss averages over.
    pub fn loss_count(&self, config: &ModelConfig) -> usize {
        Self::count_of(&self.row_mask(config.task), config)
    }

    /// The values averaged over, given the chunk's row mask.
    fn count_of(mask: &[f32], config: &ModelConfig) -> usize {
        ops::loss_count(
            config.loss,
            mask.iter().filter(|&&m| m != 0.0).count(),
            config.output_size,
        )
    }
}

/// From `WGRNN_RECORD_AHEAD`: unset or `on` records each chunk's next commands while the GPU
/// runs it ([`Engine::record_ahead`]); `off` records them when the chunk is submitted.
fn record_ahead_from_env() -> Result<bool> {
    match std::env::var("WGRNN_RECORD_AHEAD").as_deref() {
        Err(_) | Ok("on") | Ok("") => Ok(true),
        Ok("off") => Ok(false),
        Ok(other) => Err(Error::Config(format!(
            "WGRNN_RECORD_AHEAD is `{other}`; expected `on` or `off`"
        ))),
    }
}

/// The most workgroups one dispatch dimension takes (WebGPU's default limit).
const MAX_WORKGROUPS_PER_DIM: usize = 65_535;

pub struct Engine<'g> {
    gpu: &'g Gpu,
    config: ModelConfig,
    layout: ParamLayout,
    optimizer: OptimizerConfig,
    bufs: EngineBuffers,
    uniforms: Uniforms,
    update: Launch,
    plans: HashMap<ChunkShape, ChunkPlan>,
    /// The shape of the last chunk submitted, whose next commands [`Engine::record_ahead`]
    /// records.
    last_submitted: Option<ChunkShape>,
    /// Whether [`Engine::record_ahead`] records (`WGRNN_RECORD_AHEAD=off` turns it off, to
    /// measure what it saves).
    recording_ahead: bool,
    max_batch: usize,
    max_steps: usize,
    steps_taken: u64,
    recurrence_choices: Vec<RecurrenceChoice>,
    forced_recurrence: Option<RecurrenceKernels>,
    gemm_tuner: GemmTuner,
    dropout: Option<Dropout>,
    training: bool,
}

impl<'g> Engine<'g> {
    /// Allocates every buffer for chunks of up to `max_steps` steps of `max_batch` sequences,
    /// and uploads `params` (the flat layout of `ParamLayout::new(config)`); all in f32.
    pub fn new(
        gpu: &'g Gpu,
        config: ModelConfig,
        optimizer: OptimizerConfig,
        max_batch: usize,
        max_steps: usize,
        params: &[f32],
    ) -> Result<Self> {
        Self::with_precision(
            gpu,
            config,
            optimizer,
            max_batch,
            max_steps,
            params,
            Precision::F32,
        )
    }

    /// [`Engine::new`] storing weights copies and activations in `precision`
    /// (see [`Precision`]).
    pub fn with_precision(
        gpu: &'g Gpu,
        config: ModelConfig,
        optimizer: OptimizerConfig,
        max_batch: usize,
        max_steps: usize,
        params: &[f32],
        precision: Precision,
    ) -> Result<Self> {
        config.validate()?;
        if precision == Precision::F16 {
            if !gpu.adapter().shader_f16 {
                return Err(Error::Config(format!(
                    "--precision f16 needs the adapter's shader-f16 feature, which {} lacks; \
                     use --precision f32",
                    gpu.adapter().name
                )));
            }
            if !config.hidden.is_multiple_of(2) {
                return Err(Error::Config(format!(
                    "--precision f16 needs an even --hidden (got {}): f16 states are copied \
                     between chunks in 4-byte words",
                    config.hidden
                )));
            }
        }
        optimizer.validate()?;
        if max_batch == 0 || max_steps == 0 {
            return Err(Error::Config(
                "batch size and sequence length must be at least 1".into(),
            ));
        }
        let gate_width = if config.cell.is_gated() { 4 } else { 1 } * config.hidden;
        let widest = [gate_width, config.output_size, config.input_width()]
            .into_iter()
            .max()
            .unwrap_or(1);
        if (max_batch as u128) * (max_steps as u128 + 1) * (widest as u128) > u32::MAX as u128 {
            return Err(Error::Limit(format!(
                "batch {max_batch} x {max_steps} steps x width {widest} is beyond the kernels' 32-bit indices; use a smaller --batch or --seq-len"
            )));
        }
        let layout = ParamLayout::new(&config);
        if params.len() != layout.total {
            return Err(Error::Config(format!(
                "expected {} parameters, got {}",
                layout.total,
                params.len()
            )));
        }
        let bufs = EngineBuffers::new(gpu, &config, &layout, max_batch, max_steps, precision)?;
        gpu.write(&bufs.params, 0, params);
        let mut uniforms = Uniforms::new();
        let rule = match optimizer.kind {
            OptimizerKind::Sgd => UpdateRule::Sgd,
            OptimizerKind::Adam | OptimizerKind::AdamW => UpdateRule::Adam,
        };
        let update = ops::optimizer_step(
            gpu,
            &mut uniforms,
            ops::StorageWords::for_gpu(gpu),
            rule,
            layout.total,
            &bufs.params,
            &bufs.grads,
            &bufs.norm,
            &bufs.moment_m,
            &bufs.moment_v,
        )?;
        gpu.check()?;
        Ok(Self {
            gpu,
            config,
            layout,
            optimizer,
            bufs,
            uniforms,
            update,
            plans: HashMap::new(),
            last_submitted: None,
            recording_ahead: record_ahead_from_env()?,
            max_batch,
            max_steps,
            steps_taken: 0,
            recurrence_choices: Vec::new(),
            forced_recurrence: None,
            gemm_tuner: GemmTuner::new(gpu),
            dropout: None,
            training: false,
        })
    }

    /// How weights copies and activations are stored.
    pub fn precision(&self) -> Precision {
        self.bufs.precision
    }
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }
    pub fn gpu(&self) -> &Gpu {
        self.gpu
    }
    /// Optimizer steps taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.steps_taken
    }

    /// Runs one chunk in `mode` (one submit). With a loss, its mean is written to slot
    /// `loss_slot` of the loss log; read it with [`Engine::read_losses`]. Then, while the GPU
    /// runs it, records the commands of the next chunk of this shape ([`Engine::record_ahead`]).
    pub fn run_chunk(
        &mut self,
        chunk: &Chunk<'_>,
        mode: ChunkMode,
        loss_slot: usize,
    ) -> Result<()> {
        self.submit_chunk(chunk, mode, loss_slot)?;
        self.record_ahead();
        Ok(())
    }

    /// The host's part of [`Engine::run_chunk`] before the GPU can start: checks and uploads
    /// the chunk, then submits the commands recorded ahead for its shape (or records them
    /// now: the first chunk of a shape, or one after a chunk of another shape).
    pub fn submit_chunk(
        &mut self,
        chunk: &Chunk<'_>,
        mode: ChunkMode,
        loss_slot: usize,
    ) -> Result<()> {
        let shape = self.prepare(chunk, mode, loss_slot)?;
        let gpu = self.gpu;
        let plan = self.plans.get_mut(&shape).expect("prepare builds the plan");
        let encoded = match plan.ahead.take() {
            Some(encoded) => encoded,
            None => gpu.encode_for_later(&plan.recording),
        };
        self.last_submitted = Some(shape);
        gpu.submit_encoded(encoded)
    }

    /// The commands of the chunk last submitted (its shape's recording), if any.
    pub fn last_chunk_commands(&self) -> Option<crate::gpu::CommandCounts> {
        let shape = self.last_submitted?;
        Some(self.plans.get(&shape)?.recording.command_counts())
    }

    /// Records the commands of the next chunk of the shape last submitted, unless they are
    /// recorded already. Every chunk of a shape runs the same commands (its data and per-chunk
    /// values go through queue writes), so this host work can overlap the GPU's.
    pub fn record_ahead(&mut self) {
        if !self.recording_ahead {
            return;
        }
        let gpu = self.gpu;
        if let Some(plan) = self
            .last_submitted
            .and_then(|shape| self.plans.get_mut(&shape))
        {
            if plan.ahead.is_none() {
                plan.ahead = Some(gpu.encode_for_later(&plan.recording));
            }
        }
    }

    /// Like [`Engine::run_chunk`], but waits and returns the GPU time of each phase (input
    /// projection, recurrence forward, head and loss, recurrence backward, weight gradients,
    /// optimizer) or of each kernel ([`ProfileBy`]) in milliseconds; empty without timestamp
    /// queries.
    pub fn run_chunk_profiled(
        &mut self,
        chunk: &Chunk<'_>,
        mode: ChunkMode,
        loss_slot: usize,
        by: ProfileBy,
    ) -> Result<Vec<(&'static str, f64)>> {
        let shape = self.prepare(chunk, mode, loss_slot)?;
        self.gpu.submit_profiled(&self.plans[&shape].recording, by)
    }

    /// Checks and uploads the chunk, builds its plan if new, and sets the per-chunk uniforms.
    fn prepare(
        &mut self,
        chunk: &Chunk<'_>,
        mode: ChunkMode,
        loss_slot: usize,
    ) -> Result<ChunkShape> {
        self.check_chunk(chunk, mode)?;
        self.upload(chunk, mode)?;
        let dropout = self.dropout.is_some()
            && match mode {
                ChunkMode::Train | ChunkMode::Gradients => true,
                ChunkMode::Carry => self.training,
                ChunkMode::Eval | ChunkMode::Predict => false,
            };
        let shape = ChunkShape {
            steps: chunk.steps,
            batch: chunk.batch,
            mode,
            start: chunk.start(),
            dropout,
        };
        if !self.plans.contains_key(&shape) {
            let recurrence = self.recurrence_kernels(chunk.batch, chunk.steps)?;
            let ctx = PlanContext {
                gpu: self.gpu,
                config: &self.config,
                layout: &self.layout,
                bufs: &self.bufs,
                optimizer: Some(&self.update),
                recurrence,
                gemm: &self.gemm_tuner,
                dropout: self.dropout,
            };
            let plan = ctx.build(&shape, &mut self.uniforms)?;
            self.plans.insert(shape, plan);
        }
        let plan = &self.plans[&shape];
        for (launch, params) in &plan.log_writers {
            ops::set_loss_slot(
                self.gpu,
                launch,
                params,
                (loss_slot % LOSS_LOG_SLOTS) as u32,
            );
        }
        if mode == ChunkMode::Train {
            self.steps_taken += 1;
            self.update.uniform.write(self.gpu, &self.optim_params());
        }
        Ok(shape)
    }

    /// The recurrence kernels for chunks of `batch` sequences, one per direction: one fused
    /// dispatch per step, chunk-persistent, or per step a GEMM (each candidate formulation)
    /// plus a finishing kernel, or (Elman cell) a GEMM finishing the step in its store or
    /// (GPU) a GEMM split over K; each direction takes whichever ran its own sweep of up to
    /// 16 steps fastest here (measured once per batch size; a GEMM can suit one direction's
    /// operands and not the other's). WGRNN_RECURRENCE=per-step|persistent|gemm forces one
    /// both ways. All but the split-K products compute every sum in the same order, so on an
    /// adapter that does not fuse multiply-adds the choice among them does not change the
    /// results (the split one is offered on GPUs only).
    fn recurrence_kernels(&mut self, batch: usize, steps: usize) -> Result<RecurrenceKernels> {
        if let Some(kernels) = self.forced_recurrence {
            return Ok(kernels);
        }
        match std::env::var("WGRNN_RECURRENCE").as_deref() {
            Ok("per-step") => return Ok(RecurrenceKernels::both(RecurrenceKernel::PerStep)),
            Ok("persistent") => return Ok(RecurrenceKernels::both(RecurrenceKernel::Persistent)),
            Ok("gemm") => {
                let best = *ops::GemmKernel::candidates(self.gpu)
                    .last()
                    .expect("the blocked kernel is always a candidate");
                return Ok(RecurrenceKernels::both(RecurrenceKernel::Gemm(best)));
            }
            _ => {}
        }
        if let Some(choice) = self.recurrence_choices.iter().find(|c| c.batch == batch) {
            return Ok(choice.kernels());
        }
        let mut candidates = vec![RecurrenceKernel::PerStep];
        if batch <= MAX_WORKGROUPS_PER_DIM {
            // A workgroup per sequence.
            candidates.push(RecurrenceKernel::Persistent);
        }
        let gemm_kernels: Vec<ops::GemmKernel> = ops::GemmKernel::candidates(self.gpu)
            .into_iter()
            // Packed pairs read f16 states and weights; with f32 they are the subgroup kernel.
            // The 8-byte words serve f32 operands; with f16 they are the 4-byte outer kernel.
            .filter(|k| match k {
                ops::GemmKernel::SubgroupPairs => self.bufs.precision == Precision::F16,
                ops::GemmKernel::OuterLongs => self.bufs.precision == Precision::F32,
                _ => true,
            })
            // The window kernels, where W_hh (B's windows) or h[t] (A's windows) fits about
            // half of their most windows (the launch plans the windows, and runs the subgroup
            // kernel where none fit): elsewhere there is nothing new to measure.
            .filter(|k| {
                let (hidden, bytes) = (
                    self.config.hidden,
                    self.bufs.precision.activations().bytes(),
                );
                let operand_bytes = match k {
                    ops::GemmKernel::SubgroupWindow | ops::GemmKernel::WindowQuads => {
                        self.config.cell.gates() * hidden * hidden
                    }
                    ops::GemmKernel::SubgroupWindowA | ops::GemmKernel::WindowQuadsA => {
                        batch * hidden
                    }
                    // The others, OuterQuads and OuterLongs included: their A_ROWS loads serve
                    // the backward products (x·W's layout, da[t + 1]·W_hh; W_hh in place, one
                    // dispatch a step); forward they run as the subgroup kernel (not measured
                    // twice, below).
                    _ => return true,
                } * bytes;
                self.gpu.uniform_window_alignment().is_some()
                    && operand_bytes as u64 <= ops::MAX_WINDOW_CHUNKS as u64 / 2 * UNIFORM_WINDOW
            })
            .collect();
        candidates.extend(gemm_kernels.iter().copied().map(RecurrenceKernel::Gemm));
        if !self.config.cell.is_gated() {
            // The Elman step finished in the product's store (one dispatch a step).
            candidates.extend(
                gemm_kernels
                    .iter()
                    .copied()
                    .filter(|k| k.step_kernel().is_some())
                    .map(RecurrenceKernel::GemmFused),
            );
        }
        // A chunk's steps in one dispatch each way (f32): the Elman steps finished in the
        // product's store (`ops::gemm_sweep`), the gated cells' products and cell math
        // (`gated_quads_sweep_*`).
        if gemm_kernels.contains(&ops::GemmKernel::WindowQuads)
            && self.bufs.precision == Precision::F32
            && self.config.hidden.is_multiple_of(4)
        {
            // With 8-byte storage words where the adapter has 64-bit integers, else 16-byte
            // ones. Not both: the 16-byte sweeps were slower in every gated run measured
            // (BENCHMARKS.md, "the gated cells' steps of a chunk in one dispatch") and the
            // Elman one 1.1-1.25x slower, taken in 3 of 32 tuned directions by 8-12%, within
            // the noise ("the Elman sweep with 8-byte storage words"), while each costs a fresh
            // machine seconds of compiling on lavapipe (the Elman one 9 s of the default
            // job's first run: "what a first run compiles").
            candidates.push(if self.gpu.adapter().shader_int64 {
                RecurrenceKernel::GemmSweepLongs(ops::GemmKernel::WindowQuads)
            } else {
                RecurrenceKernel::GemmSweep(ops::GemmKernel::WindowQuads)
            });
        }
        // On GPUs, the 64x64 kernels' products split over K where [B, H] has few tiles (the
        // finishing kernel sums the slices; gated cells: their backward products), if
        // `step_sum` holds the partials.
        let hidden = self.config.hidden;
        let slices = ops::recurrence_split_slices(batch, hidden, self.config.cell.gates() * hidden);
        let room = self.bufs.step_sum.size_bytes() as usize / 4;
        if !self.gpu.adapter().is_software && slices > 1 && slices * batch * hidden <= room {
            candidates.extend(
                gemm_kernels
                    .iter()
                    .copied()
                    .filter(|k| matches!(k, ops::GemmKernel::Tiled | ops::GemmKernel::TiledQuads))
                    .map(|k| RecurrenceKernel::GemmSplit(k, slices)),
            );
        }
        let disk_key = tuning_cache::key(
            self.gpu.adapter(),
            &format!(
                "recurrence {} B{batch} H{}{} per direction among {candidates:?}",
                self.config.cell,
                self.config.hidden,
                match self.bufs.precision {
                    Precision::F32 => "",
                    Precision::F16 => " f16",
                }
            ),
        );
        // Cached as "FORWARD / BACKWARD", each a candidate's name.
        let named = |name: &str| {
            candidates
                .iter()
                .copied()
                .find(|k| format!("{k:?}") == name)
        };
        let cached = tuning_cache::get(&disk_key).and_then(|value| {
            let (forward, backward) = value.split_once(" / ")?;
            Some(RecurrenceKernels {
                forward: named(forward)?,
                backward: named(backward)?,
            })
        });
        if let Some(kernels) = cached {
            self.recurrence_choices.push(RecurrenceChoice {
                batch,
                steps: steps.min(16),
                forward: kernels.forward,
                backward: kernels.backward,
                forward_times_ms: Vec::new(),
                backward_times_ms: Vec::new(),
            });
            return Ok(kernels);
        }
        let shape = ops::RecurrenceShape {
            steps: steps.min(16),
            batch,
            hidden: self.config.hidden,
            activation: self.config.activation,
            whh_off: self.layout.offset(crate::model::WEIGHT_HH),
        };
        let gated = ops::GatedShape {
            cell: self.config.cell,
            steps: shape.steps,
            batch,
            hidden: self.config.hidden,
            whh_off: self.layout.offset(crate::model::WEIGHT_HH),
            bhh_off: self.layout.offset(crate::model::BIAS_HH),
        };
        let is_gated = self.config.cell.is_gated();
        let (b, ub) = (&self.bufs, &self.bufs.units[0]);
        // One recording per candidate and direction (the backward sweep reads whatever the
        // buffers hold: its time does not depend on the values), over `steps` steps.
        let mut record = |kernel, forward: bool, steps: usize| -> Result<crate::gpu::Recording> {
            let shape = ops::RecurrenceShape { steps, ..shape };
            let gated = ops::GatedShape { steps, ..gated };
            let mut rec = crate::gpu::Recording::new();
            let launches = if is_gated {
                let bufs = plan::gated_buffers(b, ub);
                if forward {
                    ops::gated_forward(self.gpu, &mut self.uniforms, &gated, kernel, &bufs)?
                } else {
                    ops::gated_backward(self.gpu, &mut self.uniforms, &gated, kernel, &bufs)?
                }
            } else if forward {
                ops::rnn_forward(
                    self.gpu,
                    &mut self.uniforms,
                    &shape,
                    kernel,
                    b.weights(),
                    &ub.pre,
                    &ub.hs,
                    &b.step_sum,
                    Some([&b.step_copies[0], &b.step_copies[1]]),
                )?
            } else {
                ops::rnn_backward(
                    self.gpu,
                    &mut self.uniforms,
                    &shape,
                    kernel,
                    b.weights(),
                    Some(&b.weight_t),
                    &ub.hs,
                    &ub.dh_out,
                    &ub.da,
                    &b.step_sum,
                    Some([&b.step_copies[0], &b.step_copies[1]]),
                )?
            };
            for l in launches {
                l.record(&mut rec);
            }
            Ok(rec)
        };
        // After an untimed 2-step sweep of every candidate (which compiles its kernels); each
        // direction's candidates pruned against each other.
        let mut runs = Vec::new();
        let mut warm_ups = Vec::new();
        for forward in [true, false] {
            for &kernel in &candidates {
                let outer = [ops::GemmKernel::OuterQuads, ops::GemmKernel::OuterLongs]
                    .map(RecurrenceKernel::Gemm);
                if forward && outer.contains(&kernel) {
                    continue;
                }
                warm_ups.push(record(kernel, forward, shape.steps.min(2))?);
                runs.push(((forward, kernel), record(kernel, forward, shape.steps)?));
            }
        }
        let times_ms =
            timing::best_times_ms(self.gpu, &runs, &warm_ups, |&(forward, _)| forward as usize)?;
        let of_direction = |forward: bool| -> Vec<(RecurrenceKernel, f64)> {
            times_ms
                .iter()
                .filter(|((f, _), _)| *f == forward)
                .map(|&((_, k), t)| (k, t))
                .collect()
        };
        let (forward_times_ms, backward_times_ms) = (of_direction(true), of_direction(false));
        // The fastest each way; ties keep the earlier candidate.
        let kernels = RecurrenceKernels {
            forward: timing::fastest(&forward_times_ms).unwrap_or(RecurrenceKernel::PerStep),
            backward: timing::fastest(&backward_times_ms).unwrap_or(RecurrenceKernel::PerStep),
        };
        self.recurrence_choices.push(RecurrenceChoice {
            batch,
            steps: shape.steps,
            forward: kernels.forward,
            backward: kernels.backward,
            forward_times_ms,
            backward_times_ms,
        });
        tuning_cache::put(
            disk_key,
            format!("{:?} / {:?}", kernels.forward, kernels.backward),
        );
        Ok(kernels)
    }

    /// Uses `kernel` for every recurrence sweep, both ways, from now on (for plans not built
    /// yet), instead of measuring.
    pub fn force_recurrence(&mut self, kernel: RecurrenceKernel) {
        self.force_recurrences(RecurrenceKernels::both(kernel));
    }

    /// Uses `kernels.forward` for every forward sweep and `kernels.backward` for every backward
    /// one from now on (for plans not built yet), instead of measuring.
    pub fn force_recurrences(&mut self, kernels: RecurrenceKernels) {
        self.forced_recurrence = Some(kernels);
    }

    /// Runs `kernel` for every product outside the recurrences (input projections, head,
    /// weight gradients) from now on (for plans not built yet), instead of measuring.
    pub fn force_gemm(&mut self, kernel: ops::GemmKernel) {
        self.gemm_tuner.force(kernel);
    }

    /// The recurrence kernels chosen so far, with the timings that chose them.
    pub fn recurrence_choices(&self) -> &[RecurrenceChoice] {
        &self.recurrence_choices
    }

    /// The GEMM formulation measured for each product shape so far (empty where only one
    /// formulation is a candidate, or WGRNN_GEMM forces one).
    pub fn gemm_choices(&self) -> Vec<GemmChoice> {
        self.gemm_tuner.choices()
    }

    fn optim_params(&self) -> OptimParams {
        OptimParams::for_step(&self.optimizer, self.layout.total, self.steps_taken)
    }

    fn check_chunk(&self, c: &Chunk<'_>, mode: ChunkMode) -> Result<()> {
        if c.steps == 0 || c.batch == 0 || c.steps > self.max_steps || c.batch > self.max_batch {
            return Err(Error::Config(format!(
                "chunk of {} steps x {} sequences does not fit the engine's {} x {}",
                c.steps, c.batch, self.max_steps, self.max_batch
            )));
        }
        let rows = c.steps * c.batch;
        if self.config.bidirectional
            && (c.first_step > 0 || c.lengths.iter().any(|&l| l as usize > c.steps))
        {
            return Err(Error::Config(format!(
                "a bidirectional model reads whole sequences, but this chunk holds steps {}..{} of sequences up to {} steps long",
                c.first_step,
                c.first_step + c.steps,
                c.lengths.iter().max().copied().unwrap_or(0)
            )));
        }
        if c.lengths.len() != c.batch {
            return Err(Error::Config(format!(
                "chunk has {} sequence lengths for {} sequences",
                c.lengths.len(),
                c.batch
            )));
        }
        if let Some(b) = c.lengths.iter().position(|&l| l == 0) {
            return Err(Error::Config(format!(
                "sequence {b} of the chunk has length 0"
            )));
        }
        match (c.inputs, self.config.input) {
            (StepInputs::Tokens(ids), InputKind::Tokens { vocab, .. }) => {
                if ids.len() != rows {
                    return Err(Error::Config(format!(
                        "chunk has {} token ids, expected {rows}",
                        ids.len()
                    )));
                }
                if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
                    return Err(Error::Config(format!(
                        "token id {bad} is outside the vocabulary of {vocab}"
                    )));
                }
            }
            (StepInputs::Dense(x), InputKind::Dense { size }) => {
                if x.len() != rows * size {
                    return Err(Error::Config(format!(
                        "chunk has {} input values, expected {}",
                        x.len(),
                        rows * size
                    )));
                }
            }
            _ => {
                return Err(Error::Config(
                    "chunk inputs do not match the model's input kind".into(),
                ))
            }
        }
        if mode.has_loss() {
            let out_rows = match self.config.task {
                TaskKind::ManyToMany => rows,
                TaskKind::ManyToOne => c.batch,
            };
            let o = self.config.output_size;
            match (c.targets, self.config.class_targets()) {
                (Some(StepTargets::Classes(t)), true) => {
                    if t.len() != out_rows {
                        return Err(Error::Config(format!(
                            "chunk has {} targets, expected {out_rows}",
                            t.len()
                        )));
                    }
                    if let Some(bad) = t.iter().find(|&&k| k as usize >= o) {
                        return Err(Error::Config(format!(
                            "target class {bad} is outside --output-size {o}"
                        )));
                    }
                }
                (Some(StepTargets::Values(t)), false) => {
                    if t.len() != out_rows * o {
                        return Err(Error::Config(format!(
                            "chunk has {} target values, expected {}",
                            t.len(),
                            out_rows * o
                        )));
                    }
                }
                (None, _) => return Err(Error::Config("a chunk with a loss needs targets".into())),
                _ => {
                    return Err(Error::Config(format!(
                        "targets do not match --loss {}",
                        self.config.loss
                    )))
                }
            }
        }
        Ok(())
    }

    fn upload(&self, c: &Chunk<'_>, mode: ChunkMode) -> Result<()> {
        let (gpu, b) = (self.gpu, &self.bufs);
        match c.inputs {
            StepInputs::Tokens(ids) => {
                gpu.write(&b.tokens, 0, ids);
                if matches!(mode, ChunkMode::Train | ChunkMode::Gradients) {
                    if let InputKind::Tokens { vocab, .. } = self.config.input {
                        let index = token_index(ids, vocab);
                        gpu.write(&b.emb_present, 0, &index.present);
                        gpu.write(&b.emb_offsets, 0, &index.offsets);
                        gpu.write(&b.emb_positions, 0, &index.positions);
                    }
                }
            }
            StepInputs::Dense(x) => gpu.write_f32(&b.x, 0, x)?,
        }
        gpu.write(&b.lengths, 0, c.lengths);
        let mask = c.row_mask(self.config.task);
        let count = Chunk::count_of(&mask, &self.config).max(1);
        gpu.write(
            &b.chunk_info,
            0,
            &[
                ((1.0 / count as f64) as f32).to_bits(),
                c.first_step as u32,
                // The dropout key: optimizer steps completed before this chunk.
                self.steps_taken as u32,
            ],
        );
        if mode.has_loss() {
            gpu.write(&b.row_mask, 0, &mask);
            match c.targets {
                Some(StepTargets::Classes(t)) => gpu.write(&b.targets, 0, t),
                Some(StepTargets::Values(t)) => gpu.write(&b.targets, 0, t),
                None => {}
            }
        }
        Ok(())
    }

    /// Starts reading loss-log slots `first..first + count` (no ring wrap) without waiting.
    pub fn read_losses(&self, first: usize, count: usize) -> Result<PendingRead> {
        debug_assert!(first + count <= LOSS_LOG_SLOTS);
        self.gpu
            .read_later(&self.bufs.loss_log, (first * 4) as u64, (count * 4) as u64)
    }

    /// Starts reading gradient-norm slots `first..first + count` (training chunks) without
    /// waiting. A non-finite norm means the step was skipped on the GPU.
    pub fn read_norms(&self, first: usize, count: usize) -> Result<PendingRead> {
        debug_assert!(first + count <= LOSS_LOG_SLOTS);
        self.gpu
            .read_later(&self.bufs.norm_log, (first * 4) as u64, (count * 4) as u64)
    }

    /// Copies the parameters and optimizer moments aside (on the device), as the state
    /// [`Engine::rollback`] returns to.
    pub fn snapshot(&self) -> Result<()> {
        let b = &self.bufs;
        let bytes = (self.layout.total * 4) as u64;
        let mut rec = crate::gpu::Recording::new();
        rec.copy(&b.params, 0, &b.snapshot_params, 0, bytes);
        rec.copy(&b.moment_m, 0, &b.snapshot_m, 0, bytes);
        rec.copy(&b.moment_v, 0, &b.snapshot_v, 0, bytes);
        self.gpu.submit(&rec)
    }

    /// Returns to the last snapshot and multiplies the learning rate by `lr_factor`.
    pub fn rollback(&mut self, lr_factor: f64) -> Result<()> {
        let b = &self.bufs;
        let bytes = (self.layout.total * 4) as u64;
        let mut rec = crate::gpu::Recording::new();
        rec.copy(&b.snapshot_params, 0, &b.params, 0, bytes);
        rec.copy(&b.snapshot_m, 0, &b.moment_m, 0, bytes);
        rec.copy(&b.snapshot_v, 0, &b.moment_v, 0, bytes);
        self.optimizer.lr *= lr_factor;
        self.gpu.submit(&rec)
    }

    /// Multiplies the learning rate by `factor` from the next step on.
    pub fn scale_lr(&mut self, factor: f64) {
        self.optimizer.lr *= factor;
    }

    /// The optimizer settings in use (the learning rate changes on rollback).
    pub fn optimizer(&self) -> &OptimizerConfig {
        &self.optimizer
    }

    /// Starts reading metric-log slots `first..first + count` (no ring wrap) without waiting:
    /// accuracy (cross-entropy, bce), mean absolute error (mse) or mean squared error (mae).
    pub fn read_metrics(&self, first: usize, count: usize) -> Result<PendingRead> {
        debug_assert!(first + count <= LOSS_LOG_SLOTS);
        self.gpu.read_later(
            &self.bufs.metric_log,
            (first * 4) as u64,
            (count * 4) as u64,
        )
    }

    /// Reads the parameters back (waits for the GPU).
    pub fn params(&self) -> Result<Vec<f32>> {
        self.gpu.read_f32(&self.bufs.params, 0, self.layout.total)
    }
    /// Reads the optimizer's moment buffers `(m, v)` (waits for the GPU).
    pub fn optimizer_state(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let n = self.layout.total;
        Ok((
            self.gpu.read_f32(&self.bufs.moment_m, 0, n)?,
            self.gpu.read_f32(&self.bufs.moment_v, 0, n)?,
        ))
    }

    /// Replaces the parameters (flat layout).
    pub fn set_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.layout.total {
            return Err(Error::Config(format!(
                "expected {} parameters, got {}",
                self.layout.total,
                params.len()
            )));
        }
        self.gpu.write(&self.bufs.params, 0, params);
        Ok(())
    }

    /// Restores the optimizer where a checkpoint left it: moments and steps taken.
    pub fn restore_optimizer(&mut self, m: &[f32], v: &[f32], steps_taken: u64) -> Result<()> {
        let n = self.layout.total;
        if m.len() != n || v.len() != n {
            return Err(Error::Config(format!(
                "optimizer state has {} and {} values; the model has {n} parameters",
                m.len(),
                v.len()
            )));
        }
        self.gpu.write(&self.bufs.moment_m, 0, m);
        self.gpu.write(&self.bufs.moment_v, 0, v);
        self.steps_taken = steps_taken;
        Ok(())
    }

    /// Reads the gradients of the last backward pass (waits for the GPU).
    pub fn grads(&self) -> Result<Vec<f32>> {
        self.gpu.read_f32(&self.bufs.grads, 0, self.layout.total)
    }
    /// Reads the head's outputs of the last chunk run with a head (waits for the GPU):
    /// `[T·B, O]` time-major (many-to-many) or `[B, O]` (many-to-one), before the output
    /// activation.
    pub fn outputs(&self, rows: usize) -> Result<Vec<f32>> {
        self.gpu
            .read_f32(&self.bufs.y, 0, rows * self.config.output_size)
    }

    /// The carry buffers of the forward units (layer order), h then (LSTM) c.
    fn carry_buffers(&self) -> Vec<&crate::gpu::Buffer> {
        let forward = || {
            Unit::all(&self.config)
                .into_iter()
                .zip(&self.bufs.units)
                .filter(|(u, _)| !u.reverse)
                .map(|(_, b)| b)
        };
        let mut out: Vec<_> = forward().map(|b| &b.carry).collect();
        if self.config.cell == Cell::Lstm {
            out.extend(forward().map(|b| &b.carry_c));
        }
        out
    }

    /// Reads what a batch carries into its next chunk: the recurrent state of each layer's
    /// forward direction (`[layers, B, H]`, then an LSTM's cell states `[layers, B, H]`) and
    /// the pooling accumulator `[B, D·H]` (waits for the GPU).
    pub fn carried(&self, batch: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let n = batch * self.config.hidden;
        let mut state = Vec::new();
        for buffer in self.carry_buffers() {
            state.extend(self.gpu.read_f32(buffer, 0, n)?);
        }
        let pool = self
            .gpu
            .read_f32(&self.bufs.pool_acc, 0, batch * self.config.output_width())?;
        Ok((state, pool))
    }

    /// Puts back what [`Engine::carried`] read, before the chunk that continues the batch.
    pub fn restore_carried(&mut self, state: &[f32], pool_acc: &[f32]) -> Result<()> {
        let buffers = self.carry_buffers();
        let ow = self.config.output_width();
        let batch = pool_acc.len() / ow;
        let n = batch * self.config.hidden;
        if batch > self.max_batch
            || pool_acc.len() != batch * ow
            || state.len() != buffers.len() * n
        {
            return Err(Error::Config(format!(
                "carried state of {} and {} values does not fit {} x [B, {}] and [B, {ow}] with B <= {}",
                state.len(),
                pool_acc.len(),
                buffers.len(),
                self.config.hidden,
                self.max_batch,
            )));
        }
        for (buffer, part) in buffers.iter().zip(state.chunks(n.max(1))) {
            self.gpu.write_f32(buffer, 0, part)?;
        }
        self.gpu.write(&self.bufs.pool_acc, 0, pool_acc);
        Ok(())
    }

    /// Sets dropout between layers (PyTorch's `dropout`): applied in training chunks, keyed
    /// by the run's seed and the optimizer step. Needs at least two layers.
    pub fn set_dropout(&mut self, dropout: Option<Dropout>) -> Result<()> {
        if let Some(d) = dropout {
            if !(0.0..1.0).contains(&d.p) {
                return Err(Error::Config(format!(
                    "--dropout {} must be at least 0 and below 1",
                    d.p
                )));
            }
            if d.p > 0.0 && self.config.layers < 2 {
                return Err(Error::Config(format!(
                    "--dropout {} applies between stacked layers (as in PyTorch); it needs --layers 2 or more",
                    d.p
                )));
            }
        }
        self.dropout = dropout.filter(|d| d.p > 0.0);
        self.plans.clear();
        Ok(())
    }

    /// Marks the chunks that follow as training (dropout on in forward-only chunks that carry
    /// into a training chunk) or evaluation (dropout off).
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// Reads one loss-log slot (waits for the GPU).
    pub fn loss_at(&self, slot: usize) -> Result<f32> {
        Ok(self
            .gpu
            .read_f32(&self.bufs.loss_log, slot % LOSS_LOG_SLOTS, 1)?[0])
    }
}

/// The recurrence formulations of a chunk shape: one for the forward sweeps, one for the
/// backward sweeps (any pair works together: they share only the states and caches, which
/// every formulation writes and reads alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecurrenceKernels {
    pub forward: RecurrenceKernel,
    pub backward: RecurrenceKernel,
}

impl RecurrenceKernels {
    /// `kernel` both ways.
    pub fn both(kernel: RecurrenceKernel) -> Self {
        RecurrenceKernels {
            forward: kernel,
            backward: kernel,
        }
    }
}

/// An autotuning decision: the faster recurrence kernel each way for a batch size on this
/// adapter.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RecurrenceChoice {
    pub batch: usize,
    /// Steps of the measured sweeps.
    pub steps: usize,
    pub forward: RecurrenceKernel,
    pub backward: RecurrenceKernel,
    /// Each candidate's best time for the forward sweep and for the backward sweep, ms
    /// (empty when the choice came from the tuning cache).
    pub forward_times_ms: Vec<(RecurrenceKernel, f64)>,
    pub backward_times_ms: Vec<(RecurrenceKernel, f64)>,
}

impl RecurrenceChoice {
    pub fn kernels(&self) -> RecurrenceKernels {
        RecurrenceKernels {
            forward: self.forward,
            backward: self.backward,
        }
    }
}

/// "12.30 ms PerStep, 40.10 ms Persistent, ..." for a tuner's measurements.
pub fn describe_times<K: std::fmt::Debug>(times: &[(K, f64)]) -> String {
    if times.is_empty() {
        return "from the tuning cache".into();
    }
    times
        .iter()
        .map(|(k, t)| format!("{t:.2} ms {k:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How an engine's buffers fit an adapter's per-buffer binding limit.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    pub batch: usize,
    pub steps: usize,
    /// Every buffer and its size in bytes.
    pub buffers: Vec<(&'static str, u64)>,
    pub total_bytes: u64,
    /// The adapter's max_storage_buffer_binding_size.
    pub limit_bytes: u64,
}

impl MemoryPlan {
    pub fn new(
        config: &ModelConfig,
        batch: usize,
        steps: usize,
        limit_bytes: u64,
        software: bool,
        precision: Precision,
    ) -> Self {
        let buffers: Vec<(&'static str, u64)> = buffer_specs(
            config,
            &ParamLayout::new(config),
            batch,
            steps,
            software,
            precision,
        )
        .iter()
        .map(|s| (s.name, s.bytes))
        .collect();
        let total_bytes = buffers.iter().map(|(_, b)| b).sum();
        Self {
            batch,
            steps,
            buffers,
            total_bytes,
            limit_bytes,
        }
    }

    /// Every buffer fits the binding limit and the kernels' 32-bit indices.
    pub fn fits(&self) -> bool {
        let widest = self.buffers.iter().map(|&(_, b)| b).max().unwrap_or(0);
        widest.next_multiple_of(4) <= self.limit_bytes && widest / 4 <= u32::MAX as u64
    }

    /// The largest batch (at most `cap`) whose buffers fit, or None if not even one does.
    pub fn largest_batch(
        config: &ModelConfig,
        steps: usize,
        limit_bytes: u64,
        software: bool,
        precision: Precision,
        cap: usize,
    ) -> Option<usize> {
        let fits =
            |b: usize| MemoryPlan::new(config, b, steps, limit_bytes, software, precision).fits();
        if !fits(1) {
            return None;
        }
        let (mut lo, mut hi) = (1usize, cap.max(1));
        if fits(hi) {
            return Some(hi);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    }
}

/// Which rows hold each token of a chunk, for the embedding gradient
/// ([`crate::ops::TokenIndexBuffers`]): `present` the distinct tokens ascending, padded with
/// [`crate::ops::NO_TOKEN`] to min(vocab, rows) slots; `offsets` [slots + 1] where each one's
/// rows start in `positions`, which lists the rows of each token in ascending order (so the
/// gradient sums in a fixed order). Its cost follows the chunk's rows, not the vocabulary.
#[derive(Debug, PartialEq, Eq)]
pub struct TokenIndex {
    pub present: Vec<u32>,
    pub offsets: Vec<u32>,
    pub positions: Vec<u32>,
}

pub fn token_index(ids: &[u32], vocab: usize) -> TokenIndex {
    // (token, row) pairs in one u64 each: sorted, they group the rows by token, ascending.
    let mut pairs: Vec<u64> = ids
        .iter()
        .enumerate()
        .map(|(row, &id)| (u64::from(id) << 32) | row as u64)
        .collect();
    pairs.sort_unstable();
    let slots = vocab.min(ids.len());
    let mut present = Vec::with_capacity(slots);
    let mut offsets = Vec::with_capacity(slots + 1);
    let mut positions = Vec::with_capacity(ids.len());
    for (i, &pair) in pairs.iter().enumerate() {
        let token = (pair >> 32) as u32;
        if present.last() != Some(&token) {
            present.push(token);
            offsets.push(i as u32);
        }
        positions.push(pair as u32);
    }
    offsets.push(positions.len() as u32);
    // Unused slots: no token, and an empty range (never read, but defined).
    offsets.resize(slots + 1, positions.len() as u32);
    present.resize(slots, crate::ops::NO_TOKEN);
    TokenIndex {
        present,
        offsets,
        positions,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_index_groups_rows_by_token_in_row_order() {
        use crate::ops::NO_TOKEN;
        // 3 of 4 tokens present in 5 rows: 4 slots, the last one empty.
        let index = super::token_index(&[2, 0, 2, 1, 2], 4);
        assert_eq!(index.present, vec![0, 1, 2, NO_TOKEN]);
        assert_eq!(index.offsets, vec![0, 1, 2, 5, 5]);
        assert_eq!(index.positions, vec![1, 3, 0, 2, 4]);
        // More rows than tokens: as many slots as tokens.
        let index = super::token_index(&[1, 1, 0], 2);
        assert_eq!(index.present, vec![0, 1]);
        assert_eq!(index.offsets, vec![0, 1, 3]);
        assert_eq!(index.positions, vec![2, 0, 1]);
        // A vocabulary far larger than the chunk: slots follow the rows.
        let index = super::token_index(&[9_999, 5, 9_999], 10_000);
        assert_eq!(index.present, vec![5, 9_999, NO_TOKEN]);
        assert_eq!(index.offsets, vec![0, 1, 3, 3]);
        assert_eq!(index.positions, vec![1, 0, 2]);
    }
}
