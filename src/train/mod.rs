//! The training loop: epochs of shuffled batches, each batch cut into chunks of `seq_len`
//! steps (truncated BPTT, state carried and detached between chunks, reset per batch);
//! losses read back asynchronously; validation and early stopping per epoch.

mod loss_reader;
mod stopping;

pub use loss_reader::{LossReader, StepReport};
pub use stopping::EarlyStopping;

use crate::data::{
    batches, bucketed_batches, chunk_ranges, ChunkData, Dataset, Inputs, Order, Targets,
};
use crate::engine::{ChunkMode, Engine, LOSS_LOG_SLOTS};
use crate::error::{Error, Result};
use crate::metrics::MetricStyle;
use crate::model::{InputKind, ModelConfig, TaskKind};

use std::time::Instant;

#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch: usize,
    pub seq_len: usize,
    pub order: Order,
    pub log_every: usize,
    /// Early stopping: (min_delta, patience).
    pub early_stopping: Option<(f64, usize)>,
    /// How validation results are reported.
    pub metric_style: MetricStyle,
    /// What early stopping and the best weights watch.
    pub monitor: Monitor,
    pub on_nonfinite: NonFinitePolicy,
    /// Learning rate on a plateau (PyTorch's ReduceLROnPlateau, Keras's callback of that
    /// name): (factor, patience): after `patience` epochs in a row whose monitored value
    /// improved by no more than early stopping's min_delta (0 without it), lr *= factor.
    pub lr_plateau: Option<(f64, usize)>,
}

impl TrainOptions {
    /// `epochs` epochs of `batch` sequences in chunks of `seq_len`, logging every 50
    /// iterations, no early stopping, the loss monitored, cross-entropy reported as accuracy.
    pub fn new(epochs: usize, batch: usize, seq_len: usize, order: Order) -> Self {
        Self {
            epochs,
            batch,
            seq_len,
            order,
            log_every: 50,
            early_stopping: None,
            metric_style: MetricStyle::Classification,
            monitor: Monitor::Loss,
            on_nonfinite: NonFinitePolicy::Rollback,
            lr_plateau: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub val: Option<Evaluation>,
    pub tokens_per_second: f64,
    pub seconds: f64,
}

#[derive(Clone, Debug)]
pub struct TrainReport {
    pub epochs: Vec<EpochStats>,
    pub stop_reason: String,
    pub iterations: u64,
    /// The mean loss of every iteration, in order.
    pub losses: Vec<f32>,
    /// Where training ended (to checkpoint it).
    pub progress: TrainProgress,
    /// True when [`TrainHooks::interrupted`] stopped it inside an epoch.
    pub interrupted: bool,
}

/// Checks that `data` fits `config` (input kind, vocabulary, targets, task).
pub fn check_dataset(config: &ModelConfig, data: &Dataset, what: &str) -> Result<()> {
    let fail = |m: String| Err(Error::Config(format!("{what}: {m}")));
    match (&data.inputs, config.input) {
        (Inputs::Tokens { ids }, InputKind::Tokens { vocab, .. }) => {
            if let Some((i, id)) = ids.iter().enumerate().find(|(_, &id)| id as usize >= vocab) {
                return fail(format!(
                    "token id {id} (sequence {}, step {}) is outside --vocab {vocab}",
                    i / data.steps,
                    i % data.steps
                ));
            }
        }
        (Inputs::Dense { size, .. }, InputKind::Dense { size: want }) => {
            if *size != want {
                return fail(format!(
                    "inputs have {size} features per step but --input-size is {want}"
                ));
            }
        }
        (Inputs::Tokens { .. }, _) => {
            return fail("inputs are token ids; give --vocab and --embed, not --input-size".into())
        }
        (Inputs::Dense { .. }, _) => {
            return fail("inputs are float features; give --input-size, not --vocab".into())
        }
    }
    let per_step = data.targets.per_step();
    match (config.task, per_step) {
        (TaskKind::ManyToMany, false) => {
            return fail("targets are one per sequence, which is --task many-to-one".into())
        }
        (TaskKind::ManyToOne, true) => {
            return fail("targets are one per step, which is --task many-to-many".into())
        }
        _ => {}
    }
    match (&data.targets, config.class_targets()) {
        (Targets::Classes { ids, .. }, true) => {
            if let Some(bad) = ids.iter().find(|&&k| k as usize >= config.output_size) {
                return fail(format!(
                    "target class {bad} is outside --output-size {}",
                    config.output_size
                ));
            }
        }
        (Targets::Values { width, values, .. }, false) => {
            if *width != config.output_size {
                return fail(format!(
                    "targets have {width} values per output but --output-size is {}",
                    config.output_size
                ));
            }
            if config.loss == crate::model::Loss::Bce {
                if let Some(v) = values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                    return fail(format!("--loss bce needs targets in [0, 1], found {v}"));
                }
            }
        }
        (Targets::Classes { .. }, false) => {
            return fail(format!(
                "integer class targets need --loss cross-entropy, not {}",
                config.loss
            ))
        }
        (Targets::Values { .. }, true) => {
            return fail(
                "--loss cross-entropy needs integer class targets, found float values".into(),
            )
        }
    }
    Ok(())
}

/// The chunks of one batch whose longest sequence has `steps` steps: (step range, mode).
pub fn batch_plan(
    config: &ModelConfig,
    steps: usize,
    seq_len: usize,
    last_mode: ChunkMode,
) -> Vec<(std::ops::Range<usize>, ChunkMode)> {
    let ranges = chunk_ranges(steps, seq_len);
    let n = ranges.len();
    ranges
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let mode = match config.task {
                TaskKind::ManyToMany => last_mode,
                TaskKind::ManyToOne if i + 1 == n => last_mode,
                TaskKind::ManyToOne => ChunkMode::Carry,
            };
            (r, mode)
        })
        .collect()
}

/// Loss and metric over a data set, each the mean over every valid value.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    pub loss: f64,
    /// Accuracy (cross-entropy, bce), mean absolute error (mse) or mean squared error (mae).
    pub metric: f64,
}

/// Evaluates `data` without training (no stall per chunk: the loss and metric logs are read
/// back in blocks).
pub fn evaluate(
    engine: &mut Engine<'_>,
    data: &Dataset,
    batch: usize,
    seq_len: usize,
) -> Result<Evaluation> {
    // Evaluation chunks run without dropout.
    engine.set_training(false);
    let config = *engine.config();
    let mut weights = Vec::new();
    let (mut losses, mut metrics) = (Vec::new(), Vec::new());
    let mut slot = 0;
    let read_back = |engine: &Engine<'_>,
                     slot: &mut usize,
                     losses: &mut Vec<f32>,
                     metrics: &mut Vec<f32>|
     -> Result<()> {
        if *slot > 0 {
            let l = engine.read_losses(0, *slot)?;
            let m = engine.read_metrics(0, *slot)?;
            engine.gpu().wait_idle()?;
            losses.extend(l.take(engine.gpu())?.unwrap_or_default());
            metrics.extend(m.take(engine.gpu())?.unwrap_or_default());
            *slot = 0;
        }
        Ok(())
    };
    // Sorted by length: the order does not change the mean, and batches pad less.
    let mut by_length: Vec<usize> = (0..data.n).collect();
    by_length.sort_by_key(|&i| data.lengths[i]);
    for seqs in by_length.chunks(batch.max(1)).map(|c| c.to_vec()) {
        for (range, mode) in batch_plan(&config, data.max_len(&seqs), seq_len, ChunkMode::Eval) {
            let host = ChunkData::gather(data, &seqs, range, mode.has_loss());
            let chunk = host.chunk(mode.has_loss());
            engine.run_chunk(&chunk, mode, slot)?;
            if mode.has_loss() {
                weights.push(chunk.loss_count(&config) as f64);
                slot += 1;
                if slot == LOSS_LOG_SLOTS {
                    read_back(engine, &mut slot, &mut losses, &mut metrics)?;
                }
            }
        }
    }
    read_back(engine, &mut slot, &mut losses, &mut metrics)?;
    let total: f64 = weights.iter().sum();
    let mean = |v: &[f32]| {
        v.iter()
            .zip(&weights)
            .map(|(&x, &w)| x as f64 * w)
            .sum::<f64>()
            / total
    };
    Ok(Evaluation {
        loss: mean(&losses),
        metric: mean(&metrics),
    })
}

/// What training has done so far. A checkpoint stores it, so that a resumed run goes on
/// exactly where the interrupted one was at the end of its last whole epoch.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainProgress {
    pub epochs_done: usize,
    pub iterations: u64,
    pub history: Vec<EpochStats>,
    pub stopper: Option<EarlyStopping>,
    /// The best monitored value so far (lower is better; accuracy is negated) and its epoch.
    pub best: Option<(f64, usize)>,
    /// Why training stopped, once it has.
    pub stopped: Option<String>,
    /// Rollbacks after non-finite steps so far.
    #[serde(default)]
    pub rollbacks: usize,
    /// Iterations submitted when the last rollback happened.
    #[serde(default)]
    pub rolled_back_at: u64,
    /// Where an interrupted epoch stopped (it goes on from there when resumed).
    #[serde(default)]
    pub position: Option<EpochPosition>,
    /// Stale epochs counted towards the next learning-rate cut (with lr_plateau).
    #[serde(default)]
    pub plateau: Option<EarlyStopping>,
}

/// A place inside an epoch: the batches (and chunks of the current batch) already trained,
/// their losses so far, and the state the current batch carries into its next chunk.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochPosition {
    pub epoch: usize,
    pub batches_done: usize,
    #[serde(default)]
    pub chunks_done: usize,
    pub losses: Vec<f32>,
    pub tokens: usize,
    /// `[B, H]` hidden state carried into chunk `chunks_done` (empty at a batch boundary).
    #[serde(default)]
    pub carry: Vec<f32>,
    /// `[B, H]` pooling accumulator carried likewise (many-to-one).
    #[serde(default)]
    pub pool_acc: Vec<f32>,
}

/// How many chunks a batch of `seqs` is cut into.
fn chunk_count(data: &Dataset, seqs: &[usize], seq_len: usize) -> usize {
    chunk_ranges(data.max_len(seqs), seq_len).len()
}

/// Losses and gradient norms are asked for every this many iterations (without waiting), and
/// each such point handles the reports of the iterations before the previous one: a
/// non-finite step is acted on within 16 iterations, at points that do not depend on timing.
const FLUSH_EVERY: usize = 8;

/// Rollbacks (each halving the learning rate) before training gives up.
pub const MAX_ROLLBACKS: usize = 10;

crate::model::cli_enum!(
    /// What training does when a step's loss or gradient is not finite (the GPU always
    /// skips that update): stop, skip it, or roll back to the epoch's start with half the
    /// learning rate.
    NonFinitePolicy { Stop => "stop", Skip => "skip", Rollback => "rollback" }
);

/// What early stopping and `--restore-best` watch: the loss, or the task's metric
/// (accuracy is maximised, errors minimised); on validation data when there is some.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Monitor {
    Loss,
    Metric,
}

/// Where training reports to: lines for people, every iteration's loss, progress through an
/// epoch, and the end of each epoch (checkpoints, best weights).
pub trait TrainHooks {
    fn line(&mut self, _text: &str) {}
    fn iteration(&mut self, _iteration: u64, _loss: f32) {}
    /// Every `log_every` iterations: the mean loss of the last `log_every`.
    fn logged(&mut self, _iteration: u64, _mean_loss: f64) {}
    /// `done` of `total` training chunks of the current epoch have been submitted.
    fn chunk_progress(&mut self, _epoch: usize, _done: usize, _total: usize) {}
    /// Polled between batches: true asks training to stop there (Ctrl-C), with the
    /// position inside the epoch recorded in the progress.
    fn interrupted(&mut self) -> bool {
        false
    }
    /// After each epoch; `improved` when the monitored value is the best so far.
    fn epoch_end(
        &mut self,
        _engine: &Engine<'_>,
        _progress: &TrainProgress,
        _improved: bool,
    ) -> Result<()> {
        Ok(())
    }
}

/// Hooks that ignore everything.
pub struct Silent;
impl TrainHooks for Silent {}

/// Trains `engine` on `train` from `progress` (default: the start) for the epochs left.
pub fn train(
    engine: &mut Engine<'_>,
    train: &Dataset,
    val: Option<&Dataset>,
    opts: &TrainOptions,
    mut progress: TrainProgress,
    hooks: &mut dyn TrainHooks,
) -> Result<TrainReport> {
    let config = *engine.config();
    let mut reader = LossReader::new();
    if progress.stopper.is_none() {
        progress.stopper = opts.early_stopping.map(|(d, p)| EarlyStopping::new(d, p));
    }
    if progress.plateau.is_none() {
        let min_delta = opts.early_stopping.map_or(0.0, |(d, _)| d);
        progress.plateau = opts
            .lr_plateau
            .map(|(_, patience)| EarlyStopping::new(min_delta, patience));
    }
    let log_every = opts.log_every.max(1);
    let mut window: Vec<f32> = Vec::new();
    let mut all_losses: Vec<f32> = Vec::new();
    let watched = if val.is_some() {
        "validation"
    } else {
        "training"
    };
    let mut deliver = |reports: Vec<StepReport>,
                       epoch_losses: &mut Vec<f32>,
                       delivered: &mut u64,
                       hooks: &mut dyn TrainHooks|
     -> Option<u64> {
        let mut first_bad = None;
        for r in reports {
            *delivered += 1;
            if r.skipped() {
                hooks.line(&format!(
                    "  iter {delivered:>7}  non-finite loss {} / gradient norm {}: the GPU skipped this update",
                    r.loss, r.grad_norm
                ));
                first_bad.get_or_insert(*delivered);
                continue;
            }
            epoch_losses.push(r.loss);
            window.push(r.loss);
            hooks.iteration(*delivered, r.loss);
            if window.len() == log_every {
                let mean = window.iter().map(|&x| x as f64).sum::<f64>() / window.len() as f64;
                hooks.line(&format!("  iter {delivered:>7}  loss {mean:.6}"));
                hooks.logged(*delivered, mean);
                window.clear();
            }
        }
        first_bad
    };
    // What to do once the host learns (asynchronously) that a step was non-finite. The GPU
    // has already skipped that step, so the weights are never non-finite.
    let on_bad = |bad: Option<u64>,
                  engine: &mut Engine<'_>,
                  progress: &mut TrainProgress,
                  hooks: &mut dyn TrainHooks|
     -> Result<()> {
        let Some(iteration) = bad else { return Ok(()) };
        if progress.stopped.is_some() {
            return Ok(());
        }
        match opts.on_nonfinite {
            NonFinitePolicy::Skip => {}
            NonFinitePolicy::Stop => {
                progress.stopped = Some(format!("non-finite loss or gradient at iteration {iteration} (--on-nonfinite stop); the weights are those before it"));
            }
            // Reports of steps submitted before the last rollback describe the old state.
            NonFinitePolicy::Rollback if iteration <= progress.rolled_back_at => {}
            NonFinitePolicy::Rollback => {
                progress.rolled_back_at = progress.iterations;
                progress.rollbacks += 1;
                if progress.rollbacks > MAX_ROLLBACKS {
                    progress.stopped = Some(format!("non-finite values again after {MAX_ROLLBACKS} rollbacks (iteration {iteration})"));
                    return Ok(());
                }
                engine.rollback(0.5)?;
                hooks.line(&format!(
                    "  rolled back to the weights at the start of this epoch and halved the learning rate to {} (non-finite at iteration {iteration})",
                    engine.optimizer().lr
                ));
            }
        }
        Ok(())
    };
    let mut delivered = progress.iterations;
    let start_iterations = progress.iterations;
    for epoch in progress.epochs_done + 1..=opts.epochs {
        if progress.stopped.is_some() {
            break;
        }
        let started = Instant::now();
        let resume_at = progress
            .position
            .take()
            .filter(|p| p.epoch == epoch)
            .unwrap_or_default();
        let mut tokens = resume_at.tokens;
        let mut epoch_losses: Vec<f32> = resume_at.losses;
        engine.snapshot()?;
        let epoch_batches = match opts.order {
            Order::Shuffled { seed } if train.lengths.iter().any(|&l| l != train.steps) => {
                bucketed_batches(&train.lengths, opts.batch, seed, epoch)
            }
            order => batches(train.n, opts.batch, order, epoch),
        };
        let plans: Vec<_> = epoch_batches
            .iter()
            .map(|seqs| batch_plan(&config, train.max_len(seqs), opts.seq_len, ChunkMode::Train))
            .collect();
        let total_chunks: usize = plans.iter().map(Vec::len).sum();
        let mut done = 0;
        'batches: for (batch_index, (seqs, plan)) in epoch_batches.iter().zip(plans).enumerate() {
            if batch_index < resume_at.batches_done {
                done += plan.len();
                continue;
            }
            let resumed_batch = batch_index == resume_at.batches_done;
            for (chunk_index, (range, mode)) in plan.into_iter().enumerate() {
                if progress.stopped.is_some() {
                    break 'batches;
                }
                if resumed_batch && chunk_index < resume_at.chunks_done {
                    done += 1;
                    continue;
                }
                if resumed_batch && chunk_index == resume_at.chunks_done && chunk_index > 0 {
                    // Going on inside a batch: its carried state, exactly as it was.
                    engine.restore_carried(&resume_at.carry, &resume_at.pool_acc)?;
                }
                let fresh_start =
                    (batch_index, chunk_index) == (resume_at.batches_done, resume_at.chunks_done);
                // Ctrl-C: stop between chunks (keeping a batch's carried state), and record where.
                if !fresh_start && hooks.interrupted() {
                    let arrived = reader.drain(engine)?;
                    let bad = deliver(arrived, &mut epoch_losses, &mut delivered, hooks);
                    on_bad(bad, engine, &mut progress, hooks)?;
                    let (carry, pool_acc) = if chunk_index > 0 {
                        engine.carried(seqs.len())?
                    } else {
                        (Vec::new(), Vec::new())
                    };
                    progress.position = Some(EpochPosition {
                        epoch,
                        batches_done: batch_index,
                        chunks_done: chunk_index,
                        losses: epoch_losses,
                        tokens,
                        carry,
                        pool_acc,
                    });
                    let stop_reason = format!(
                        "interrupted in epoch {epoch} at batch {} of {} (chunk {} of its {})",
                        batch_index + 1,
                        epoch_batches.len(),
                        chunk_index + 1,
                        chunk_count(train, seqs, opts.seq_len)
                    );
                    return Ok(TrainReport {
                        epochs: progress.history.clone(),
                        stop_reason,
                        iterations: progress.iterations,
                        losses: all_losses,
                        progress,
                        interrupted: true,
                    });
                }
                let host = ChunkData::gather(train, seqs, range, mode.has_loss());
                let chunk = host.chunk(mode.has_loss());
                // Training chunks: dropout on (validation in between turns it off).
                engine.set_training(true);
                engine.run_chunk(&chunk, mode, reader.next_slot())?;
                tokens += chunk
                    .lengths
                    .iter()
                    .map(|&l| {
                        (l as usize)
                            .saturating_sub(chunk.first_step)
                            .min(chunk.steps)
                    })
                    .sum::<usize>();
                done += 1;
                hooks.chunk_progress(epoch, done, total_chunks);
                if mode.has_loss() {
                    progress.iterations += 1;
                    reader.wrote(engine, FLUSH_EVERY)?;
                    if progress.iterations.is_multiple_of(FLUSH_EVERY as u64) {
                        // A decision point: the reports of every iteration up to one flush
                        // ago are handled now, whenever they arrived (usually long ago; else
                        // wait). Fixed points keep rollbacks deterministic.
                        let upto = (progress.iterations - FLUSH_EVERY as u64)
                            .saturating_sub(start_iterations);
                        let arrived = reader.reports_upto(engine, upto)?;
                        let bad = deliver(arrived, &mut epoch_losses, &mut delivered, hooks);
                        on_bad(bad, engine, &mut progress, hooks)?;
                    }
                }
            }
        }
        let arrived = reader.drain(engine)?;
        let bad = deliver(arrived, &mut epoch_losses, &mut delivered, hooks);
        on_bad(bad, engine, &mut progress, hooks)?;
        all_losses.extend_from_slice(&epoch_losses);
        let seconds = started.elapsed().as_secs_f64();
        let train_loss =
            epoch_losses.iter().map(|&x| x as f64).sum::<f64>() / epoch_losses.len().max(1) as f64;
        let val_eval = match val {
            Some(v) => Some(evaluate(engine, v, opts.batch, opts.seq_len)?),
            None => None,
        };
        let stats = EpochStats {
            epoch,
            train_loss,
            val: val_eval,
            tokens_per_second: tokens as f64 / seconds.max(1e-9),
            seconds,
        };
        hooks.line(&format!(
            "epoch {epoch}/{}: train loss {train_loss:.6}{}  {:.0} tokens/s  {seconds:.2} s",
            opts.epochs,
            val_eval.map_or(String::new(), |v| format!(
                "  val {}",
                opts.metric_style.describe(config.loss, &v)
            )),
            stats.tokens_per_second
        ));
        progress.history.push(stats);
        progress.epochs_done = epoch;
        let monitored = monitored_value(&config, opts.monitor, train_loss, val_eval);
        let improved = monitored.is_finite() && progress.best.is_none_or(|(b, _)| monitored < b);
        if improved {
            progress.best = Some((monitored, epoch));
        }
        if progress.stopped.is_some() {
            // Stopped during the epoch (non-finite steps): keep that reason.
        } else if !monitored.is_finite()
            && opts.on_nonfinite == NonFinitePolicy::Rollback
            && progress.rollbacks < MAX_ROLLBACKS
        {
            // Finite weights whose outputs overflow: back to the epoch's start, slower.
            progress.rollbacks += 1;
            progress.rolled_back_at = progress.iterations;
            engine.rollback(0.5)?;
            hooks.line(&format!(
                "  the {watched} {} is not finite: rolled back to the weights at the start of epoch {epoch} and halved the learning rate to {}",
                monitor_name(opts.monitor),
                engine.optimizer().lr
            ));
        } else if !monitored.is_finite() {
            progress.stopped = Some(format!(
                "the {watched} {} is not finite ({monitored}) at epoch {epoch}",
                monitor_name(opts.monitor)
            ));
        } else if let Some(s) = progress.stopper.as_mut() {
            if s.update(epoch, monitored) {
                let (best, best_epoch) = s.best();
                progress.stopped = Some(format!(
                    "early stop: the {watched} {} improved by less than {} for {} epoch(s) in a row (best {:.6} at epoch {best_epoch})",
                    monitor_name(opts.monitor),
                    s.min_delta,
                    s.patience,
                    best.abs()
                ));
            }
        }
        if let (Some((factor, _)), Some(plateau), None) = (
            opts.lr_plateau,
            progress.plateau.as_mut(),
            &progress.stopped,
        ) {
            if monitored.is_finite() && plateau.update(epoch, monitored) {
                plateau.restart_patience();
                engine.scale_lr(factor);
                hooks.line(&format!(
                    "  the {watched} {} has not improved for {} epoch(s): learning rate x {factor} -> {}",
                    monitor_name(opts.monitor),
                    plateau.patience,
                    engine.optimizer().lr
                ));
            }
        }
        hooks.epoch_end(engine, &progress, improved)?;
    }
    let stop_reason = progress
        .stopped
        .clone()
        .unwrap_or_else(|| format!("reached --epochs {}", opts.epochs));
    Ok(TrainReport {
        epochs: progress.history.clone(),
        stop_reason,
        iterations: progress.iterations,
        losses: all_losses,
        progress,
        interrupted: false,
    })
}

fn monitor_name(m: Monitor) -> &'static str {
    match m {
        Monitor::Loss => "loss",
        Monitor::Metric => "metric",
    }
}

/// The value early stopping minimises: the loss, the error metric, or minus the accuracy.
fn monitored_value(
    config: &ModelConfig,
    monitor: Monitor,
    train_loss: f64,
    val: Option<Evaluation>,
) -> f64 {
    match (monitor, val) {
        (Monitor::Loss, v) => v.map_or(train_loss, |v| v.loss),
        (Monitor::Metric, Some(v)) => match config.loss {
            crate::model::Loss::CrossEntropy | crate::model::Loss::Bce => -v.metric,
            _ => v.metric,
        },
        (Monitor::Metric, None) => train_loss,
    }
}
