//! Training-step workloads: a full step (forward, loss, backward, Adam update) on random
//! data generated in place, timed step by step.

use crate::engine::{Chunk, ChunkMode, Engine, Precision, StepInputs, StepTargets, LOSS_LOG_SLOTS};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, ProfileBy};
use crate::model::{
    init_params, Activation, Cell, InputKind, Loss, ModelConfig, OutputActivation, Pool, TaskKind,
};
use crate::optim::{OptimizerConfig, OptimizerKind};
use crate::rng::Rng;
use serde::Serialize;
use std::time::{Duration, Instant};

/// A model and the shape of its training step.
#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    pub name: String,
    pub description: String,
    pub config: ModelConfig,
    pub batch: usize,
    pub steps: usize,
    /// How weights copies and activations are stored (`--precision`).
    pub precision: Precision,
}

/// The named workloads: W4 and W5 are W1 with an LSTM and a GRU cell.
pub const NAMES: &[&str] = &["W1", "W2", "W3", "W4", "W5"];

fn tagger(vocab: usize, embed: usize, hidden: usize, outputs: usize) -> ModelConfig {
    ModelConfig {
        cell: Cell::Rnn,
        layers: 1,
        bidirectional: false,
        input: InputKind::Tokens { vocab, embed },
        hidden,
        output_size: outputs,
        activation: Activation::Tanh,
        output_activation: OutputActivation::Softmax,
        task: TaskKind::ManyToMany,
        pool: Pool::Last,
        loss: Loss::CrossEntropy,
    }
}

/// The workload called `name` (W1, W2, W3).
pub fn named(name: &str) -> Result<Workload> {
    let w = |description: &str, config, batch, steps| Workload {
        name: name.to_uppercase(),
        description: description.into(),
        config,
        batch,
        steps,
        precision: Precision::F32,
    };
    match name.to_uppercase().as_str() {
        "W1" => Ok(w("tagger: vocab 10000, embed 128, tanh RNN 256, head 256->18 at every step, cross-entropy", tagger(10_000, 128, 256, 18), 64, 32)),
        "W2" => Ok(w(
            "regression: 8 features, tanh RNN 128, last state, head 128->1 with ReLU, MSE",
            ModelConfig {
                cell: Cell::Rnn,
                layers: 1,
                bidirectional: false,
                input: InputKind::Dense { size: 8 },
                hidden: 128,
                output_size: 1,
                activation: Activation::Tanh,
                output_activation: OutputActivation::Relu,
                task: TaskKind::ManyToOne,
                pool: Pool::Last,
                loss: Loss::Mse,
            },
            256,
            50,
        )),
        "W3" => Ok(w("large batch: vocab 96, embed 64, tanh RNN 512, head 512->96 at every step, cross-entropy", tagger(96, 64, 512, 96), 512, 64)),
        "W4" => Ok(w("W1 with an LSTM: vocab 10000, embed 128, LSTM 256, head 256->18 at every step, cross-entropy", ModelConfig { cell: Cell::Lstm, ..tagger(10_000, 128, 256, 18) }, 64, 32)),
        "W5" => Ok(w("W1 with a GRU: vocab 10000, embed 128, GRU 256, head 256->18 at every step, cross-entropy", ModelConfig { cell: Cell::Gru, ..tagger(10_000, 128, 256, 18) }, 64, 32)),
        _ => Err(Error::Config(format!("unknown workload {name:?}; the named ones are {}", NAMES.join(", ")))),
    }
}

/// Bytes the optimizer phase of one Adam step moves, read plus written (as the copy ceiling
/// counts them): the gradient norm reads the gradients (4 bytes a parameter), the update
/// reads the parameters, the gradients and both moments and writes the parameters and the
/// moments back (28): 32 bytes a parameter, over the flat buffers rounded up to whole vec4s
/// (`shaders/optim.wgsl`, `shaders/reduce.wgsl`). The norm's partial sums (one per
/// workgroup) are not counted.
pub fn adam_bytes_per_step(parameters: usize) -> f64 {
    32.0 * parameters.next_multiple_of(4) as f64
}

/// FLOPs of one training step: 2·M·N·K for every matrix product of the forward pass (input
/// projection T·B×I×G·H, recurrence T·B×H×G·H with G gate blocks (1 RNN, 4 LSTM, 3 GRU),
/// head R×H×O with R = T·B or B), times 3 for
/// forward plus backward. Elementwise work, the embedding lookup and the optimizer are not
/// counted.
pub fn flops_per_step(config: &ModelConfig, batch: usize, steps: usize) -> f64 {
    let (b, t, h, o, i) = (
        batch as f64,
        steps as f64,
        config.hidden as f64,
        config.output_size as f64,
        config.input_width() as f64,
    );
    let rows_out = if config.task == TaskKind::ManyToMany {
        t * b
    } else {
        b
    };
    let g = config.cell.gates() as f64;
    3.0 * (2.0 * t * b * i * g * h + 2.0 * t * b * h * g * h + 2.0 * rows_out * h * o)
}

/// Timings of one workload.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadResult {
    pub workload: Workload,
    pub parameters: usize,
    pub steps_timed: usize,
    pub median_ms: f64,
    pub p95_ms: f64,
    /// Batch × sequence length / median step time.
    pub tokens_per_second: f64,
    pub gflops_per_second: f64,
    /// Steps run back to back after the timed ones, each submitted while the one before
    /// runs and one wait at the end (a training loop's pace): as many as were timed.
    pub back_to_back_steps: usize,
    /// Their mean time a step: the wait for each step's end, the submit and the wake-up no
    /// longer in it (the median and p95 are of steps each waited for).
    pub back_to_back_ms: f64,
    /// The dispatches and the copies and clears of one step.
    pub commands: crate::gpu::CommandCounts,
    /// Loss-log slots read back after the back-to-back steps (their losses and gradient
    /// norms, as a training loop reads them, once per --log-every steps, off the GPU's path).
    pub readback_slots: usize,
    /// The time from asking for them to having them on the host.
    pub readback_ms: f64,
    /// The loss of the last back-to-back step (not finite: the workload does not train).
    pub last_loss: f32,
    /// Median host time before the GPU can start a step: checks, uploads, submit (the
    /// host's share of a step).
    pub host_median_ms: f64,
    /// Median host time recording the next step's commands, after the submit, while the GPU
    /// runs the step (part of the step's time only where it outlasts the GPU's work).
    pub record_ahead_median_ms: f64,
    /// GPU time of each phase, the median of three more steps, from timestamp queries (empty
    /// without).
    pub phases_ms: Vec<(String, f64)>,
    /// With `--kernel-times`: the GPU time of each kernel (entry point) in one more step,
    /// summed over its dispatches, each dispatch timed in a pass of its own (so each carries
    /// a pass's fixed cost too: the sum exceeds the phases').
    pub kernel_times_ms: Vec<(String, f64)>,
    /// The optimizer phase's bytes ([`adam_bytes_per_step`]) over its GPU time, in GB/s
    /// (without timestamp queries, none).
    pub optimizer_gbytes_per_second: Option<f64>,
    /// The recurrence kernel the autotuner chose, with its measurements.
    pub recurrence: Vec<crate::engine::RecurrenceChoice>,
    /// The GEMM formulation the autotuner chose for each product shape (GPUs only).
    pub gemm: Vec<crate::engine::GemmChoice>,
}

/// The workload's one batch of random data (seed 7), trained on at every step.
struct WorkloadData {
    tokens: Vec<u32>,
    features: Vec<f32>,
    classes: Vec<u32>,
    values: Vec<f32>,
    lengths: Vec<u32>,
}

impl WorkloadData {
    fn new(w: &Workload) -> Self {
        let config = w.config;
        let mut rng = Rng::new(7);
        let rows = w.batch * w.steps;
        let (tokens, features): (Vec<u32>, Vec<f32>) = match config.input {
            InputKind::Tokens { vocab, .. } => {
                ((0..rows).map(|_| rng.below(vocab) as u32).collect(), vec![])
            }
            InputKind::Dense { size } => (
                vec![],
                (0..rows * size)
                    .map(|_| rng.uniform(-1.0, 1.0) as f32)
                    .collect(),
            ),
        };
        let out_rows = if config.task == TaskKind::ManyToMany {
            rows
        } else {
            w.batch
        };
        let classes: Vec<u32> = (0..out_rows)
            .map(|_| rng.below(config.output_size) as u32)
            .collect();
        let values: Vec<f32> = (0..out_rows * config.output_size)
            .map(|_| rng.next_f64() as f32)
            .collect();
        Self {
            tokens,
            features,
            classes,
            values,
            lengths: vec![w.steps as u32; w.batch],
        }
    }

    fn chunk(&self, w: &Workload) -> Chunk<'_> {
        Chunk {
            steps: w.steps,
            batch: w.batch,
            first_step: 0,
            lengths: &self.lengths,
            inputs: if self.tokens.is_empty() {
                StepInputs::Dense(&self.features)
            } else {
                StepInputs::Tokens(&self.tokens)
            },
            targets: Some(if w.config.loss == Loss::CrossEntropy {
                StepTargets::Classes(&self.classes)
            } else {
                StepTargets::Values(&self.values)
            }),
        }
    }
}

/// An engine for `w`: Adam with PyTorch's defaults, seed-0 weights, `w.precision`.
fn workload_engine<'g>(gpu: &'g Gpu, w: &Workload) -> Result<Engine<'g>> {
    w.config.validate()?;
    let params = init_params(&w.config, 0);
    let opt = OptimizerConfig::pytorch_defaults(OptimizerKind::Adam);
    Engine::with_precision(gpu, w.config, opt, w.batch, w.steps, &params, w.precision)
}

/// The training loss of `w` after `steps` Adam steps (PyTorch defaults, seed-0 weights) on
/// its batch of random data, in `w.precision`: the loss of the last step. Compares
/// precisions (the random targets are memorised, so the loss falls well below ln O).
pub fn loss_after(gpu: &Gpu, w: &Workload, steps: usize) -> Result<f32> {
    let mut engine = workload_engine(gpu, w)?;
    let data = WorkloadData::new(w);
    let chunk = data.chunk(w);
    let slots = crate::engine::LOSS_LOG_SLOTS;
    for i in 0..steps.max(1) {
        engine.run_chunk(&chunk, ChunkMode::Train, i % slots)?;
    }
    engine.loss_at((steps.max(1) - 1) % slots)
}

/// Steps profiled for the phases' times (each phase's median is reported).
const PHASE_PROFILES: usize = 3;

/// Each phase's median over `profiles` (each a step's phases, in the same order: the same
/// recording each time).
fn median_phases(profiles: &[Vec<(&'static str, f64)>]) -> Vec<(String, f64)> {
    let Some(first) = profiles.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let mut times: Vec<f64> = profiles
                .iter()
                .filter_map(|p| p.get(i))
                .map(|p| p.1)
                .collect();
            times.sort_by(f64::total_cmp);
            (name.to_string(), percentile(&times, 0.5))
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Times full training steps of `w`: three warm-up steps, then steps until `min_steps` are
/// done or `max_time` has passed, whichever comes first (at least 3).
pub fn run_workload(
    gpu: &Gpu,
    w: &Workload,
    min_steps: usize,
    max_time: Duration,
    kernel_times: bool,
) -> Result<WorkloadResult> {
    let config = w.config;
    let mut engine = workload_engine(gpu, w)?;
    let data = WorkloadData::new(w);
    let chunk = data.chunk(w);
    // A step as `run_chunk` runs it, its two host parts timed apart: before the GPU can
    // start (upload, submit), and the next step's commands recorded while the GPU runs.
    let mut step = |slot: usize| -> Result<(f64, f64, f64)> {
        let t0 = Instant::now();
        engine.submit_chunk(&chunk, ChunkMode::Train, slot)?;
        let host = t0.elapsed().as_secs_f64();
        engine.record_ahead();
        let ahead = t0.elapsed().as_secs_f64() - host;
        gpu.wait_idle()?;
        Ok((t0.elapsed().as_secs_f64(), host, ahead))
    };
    for i in 0..3 {
        step(i)?;
    }
    let started = Instant::now();
    let (mut times, mut hosts, mut aheads) = (Vec::new(), Vec::new(), Vec::new());
    while times.len() < 3 || (times.len() < min_steps && started.elapsed() < max_time) {
        let (t, h, a) = step(times.len())?;
        times.push(t);
        hosts.push(h);
        aheads.push(a);
    }
    // The same steps back to back, as a training loop runs them (it reads losses back
    // without waiting: `train::LossReader`): each submitted while the one before runs, one
    // wait at the end. The host's upload, submit and recording then overlap the GPU's work
    // instead of adding to it; what remains is the GPU's own time between and within passes.
    let back_to_back_steps = times.len();
    let started = Instant::now();
    for i in 0..back_to_back_steps {
        engine.submit_chunk(&chunk, ChunkMode::Train, i % LOSS_LOG_SLOTS)?;
        engine.record_ahead();
    }
    gpu.wait_idle()?;
    let back_to_back_ms = started.elapsed().as_secs_f64() * 1e3 / back_to_back_steps as f64;
    let commands = engine.last_chunk_commands().unwrap_or_default();
    // The host's third part: reading the steps' losses and gradient norms back, as a training
    // loop does once per --log-every steps (`train::LossReader`), timed to their arrival.
    let slots = back_to_back_steps.min(LOSS_LOG_SLOTS);
    let started = Instant::now();
    let (losses, norms) = (engine.read_losses(0, slots)?, engine.read_norms(0, slots)?);
    gpu.wait_idle()?;
    let losses = losses.take(gpu)?.unwrap_or_default();
    norms.take(gpu)?;
    let readback_ms = started.elapsed().as_secs_f64() * 1e3;
    let last_loss = losses
        .get((back_to_back_steps - 1) % LOSS_LOG_SLOTS)
        .copied()
        .unwrap_or(f32::NAN);
    // Each phase's median over three more steps (one step's timestamps alone carry a burst
    // of load from another process into the sum the step times are compared with).
    let mut profiles = Vec::new();
    for _ in 0..PHASE_PROFILES {
        profiles.push(engine.run_chunk_profiled(&chunk, ChunkMode::Train, 0, ProfileBy::Phase)?);
    }
    let phases_ms = median_phases(&profiles);
    let kernel_times_ms: Vec<(String, f64)> = if kernel_times {
        engine
            .run_chunk_profiled(&chunk, ChunkMode::Train, 0, ProfileBy::Kernel)?
            .into_iter()
            .map(|(n, ms)| (n.to_string(), ms))
            .collect()
    } else {
        Vec::new()
    };
    let parameters = crate::model::ParamLayout::new(&config).total;
    let optimizer_gbytes_per_second = phases_ms
        .iter()
        .find(|(name, ms)| name == "optimizer" && *ms > 0.0)
        .map(|(_, ms)| adam_bytes_per_step(parameters) / (ms * 1e-3) / 1e9);
    times.sort_by(f64::total_cmp);
    hosts.sort_by(f64::total_cmp);
    aheads.sort_by(f64::total_cmp);
    let median = percentile(&times, 0.5);
    Ok(WorkloadResult {
        workload: w.clone(),
        parameters,
        steps_timed: times.len(),
        median_ms: median * 1e3,
        p95_ms: percentile(&times, 0.95) * 1e3,
        tokens_per_second: (w.batch * w.steps) as f64 / median,
        gflops_per_second: flops_per_step(&config, w.batch, w.steps) / median / 1e9,
        back_to_back_steps,
        back_to_back_ms,
        commands,
        readback_slots: slots,
        readback_ms,
        last_loss,
        host_median_ms: percentile(&hosts, 0.5) * 1e3,
        record_ahead_median_ms: percentile(&aheads, 0.5) * 1e3,
        phases_ms,
        optimizer_gbytes_per_second,
        kernel_times_ms,
        recurrence: engine.recurrence_choices().to_vec(),
        gemm: engine.gemm_choices(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn phases_are_each_the_median_of_their_profiles() {
        let profiles = vec![
            vec![("input projection", 3.0), ("optimizer", 0.5)],
            vec![("input projection", 1.0), ("optimizer", 9.0)],
            vec![("input projection", 2.0), ("optimizer", 0.7)],
        ];
        assert_eq!(
            super::median_phases(&profiles),
            vec![
                ("input projection".to_string(), 2.0),
                ("optimizer".to_string(), 0.7)
            ]
        );
        assert!(super::median_phases(&[]).is_empty());
    }

    #[test]
    fn flop_count_follows_the_documented_formula() {
        let w = super::named("W2").unwrap();
        // T·B = 12,800 rows: 2·12800·8·128 + 2·12800·128·128 + 2·256·128·1, times 3.
        let want = 3.0
            * (2.0 * 12800.0 * 8.0 * 128.0 + 2.0 * 12800.0 * 128.0 * 128.0 + 2.0 * 256.0 * 128.0);
        assert_eq!(super::flops_per_step(&w.config, w.batch, w.steps), want);
        // W4: an LSTM's stacked products are 4H wide: T·B = 2048 rows, I 128, H 256, O 18.
        let w = super::named("W4").unwrap();
        let want = 3.0
            * (2.0 * 2048.0 * 128.0 * 1024.0
                + 2.0 * 2048.0 * 256.0 * 1024.0
                + 2.0 * 2048.0 * 256.0 * 18.0);
        assert_eq!(super::flops_per_step(&w.config, w.batch, w.steps), want);
        assert!(super::named("W6").is_err());
    }
}
