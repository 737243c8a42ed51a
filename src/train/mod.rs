//! The training loop: epochs of shuffled batches, each batch cut into chunks of `seq_len`
//! steps (truncated BPTT, state carried and detached between chunks, reset per batch);
//! losses read back asynchronously; validation and early stopping per epoch.

mod loss_reader;
mod stopping;

pub use loss_reader::LossReader;
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
}

#[derive(Clone, Debug)]
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
fn batch_plan(
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
#[derive(Clone, Copy, Debug, PartialEq)]
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

/// Trains `engine` on `train`; `log` receives every line meant for the user.
pub fn train(
    engine: &mut Engine<'_>,
    train: &Dataset,
    val: Option<&Dataset>,
    opts: &TrainOptions,
    log: &mut dyn FnMut(&str),
) -> Result<TrainReport> {
    let config = *engine.config();
    let mut reader = LossReader::new();
    let mut stopper = opts.early_stopping.map(|(d, p)| EarlyStopping::new(d, p));
    let mut history = Vec::new();
    let mut window: Vec<f32> = Vec::new();
    let mut iteration: u64 = 0;
    let mut stop_reason = format!("reached --epochs {}", opts.epochs);
    let log_every = opts.log_every.max(1);
    let deliver = |values: Vec<f32>,
                   epoch_losses: &mut Vec<f32>,
                   window: &mut Vec<f32>,
                   delivered: &mut u64,
                   log: &mut dyn FnMut(&str)| {
        for v in values {
            *delivered += 1;
            epoch_losses.push(v);
            window.push(v);
            if window.len() == log_every {
                let mean = window.iter().map(|&x| x as f64).sum::<f64>() / window.len() as f64;
                log(&format!("  iter {delivered:>7}  loss {mean:.6}"));
                window.clear();
            }
        }
    };
    let mut delivered: u64 = 0;
    let mut all_losses: Vec<f32> = Vec::new();
    for epoch in 1..=opts.epochs {
        let started = Instant::now();
        let mut tokens = 0usize;
        let mut epoch_losses: Vec<f32> = Vec::new();
        let epoch_batches = match opts.order {
            Order::Shuffled { seed } if train.lengths.iter().any(|&l| l != train.steps) => {
                bucketed_batches(&train.lengths, opts.batch, seed, epoch)
            }
            order => batches(train.n, opts.batch, order, epoch),
        };
        for seqs in epoch_batches {
            for (range, mode) in batch_plan(
                &config,
                train.max_len(&seqs),
                opts.seq_len,
                ChunkMode::Train,
            ) {
                let host = ChunkData::gather(train, &seqs, range, mode.has_loss());
                let chunk = host.chunk(mode.has_loss());
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
                if mode.has_loss() {
                    iteration += 1;
                    reader.wrote(engine, log_every)?;
                    let arrived = reader.ready(engine)?;
                    deliver(arrived, &mut epoch_losses, &mut window, &mut delivered, log);
                }
            }
        }
        let arrived = reader.drain(engine)?;
        deliver(arrived, &mut epoch_losses, &mut window, &mut delivered, log);
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
        log(&format!(
            "epoch {epoch}/{}: train loss {train_loss:.6}{}  {:.0} tokens/s  {seconds:.2} s",
            opts.epochs,
            val_eval.map_or(String::new(), |v| format!(
                "  val {}",
                opts.metric_style.describe(config.loss, &v)
            )),
            stats.tokens_per_second
        ));
        history.push(stats);
        let monitored = val_eval.map_or(train_loss, |v| v.loss);
        if !monitored.is_finite() {
            stop_reason = format!(
                "the {} loss is not finite ({monitored}) at epoch {epoch}",
                if val.is_some() {
                    "validation"
                } else {
                    "training"
                }
            );
            break;
        }
        if let Some(s) = stopper.as_mut() {
            if s.update(epoch, monitored) {
                let (best, best_epoch) = s.best();
                stop_reason = format!(
                    "early stop: the {} loss improved by less than {} for {} epoch(s) in a row (best {best:.6} at epoch {best_epoch})",
                    if val.is_some() { "validation" } else { "training" },
                    s.min_delta,
                    s.patience
                );
                break;
            }
        }
    }
    Ok(TrainReport {
        epochs: history,
        stop_reason,
        iterations: iteration,
        losses: all_losses,
    })
}
