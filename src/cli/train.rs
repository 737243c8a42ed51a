//! `wgrnn train`: the training job, on user data or the built-in task.

use super::args::{ModelArgs, OptimizerArgs, TrainArgs};
use anyhow::{Context, Result};
use std::collections::HashMap;
use wgrnn::data::source::{prepare, DataMeta, TextOptions};
use wgrnn::data::vocab::WordOptions;
use wgrnn::data::{delayed_echo, DelayedEcho, Order};
use wgrnn::engine::Engine;
use wgrnn::gpu::{AdapterChoice, Gpu};
use wgrnn::metrics::MetricStyle;
use wgrnn::model::{init_params, ParamLayout};
use wgrnn::train::{check_dataset, train, TrainOptions};

pub fn run(
    adapter: &AdapterChoice,
    model: &ModelArgs,
    opt: &OptimizerArgs,
    args: &TrainArgs,
) -> Result<()> {
    let builtin = args.data.is_none();
    let (train_data, val_data, meta) = if let Some(path) = &args.data {
        let options = TextOptions {
            words: WordOptions {
                min_count: args.min_count,
                lowercase: args.lowercase,
            },
            streams: args.batch,
            val_fraction: args.val_fraction,
        };
        let p = prepare(path, args.val.as_deref(), args.format, options)?;
        (p.train, p.val, p.meta)
    } else {
        if args.val.is_some() {
            anyhow::bail!("--val needs --data");
        }
        let task = DelayedEcho::default();
        println!(
            "no --data: training the built-in delayed-echo task ({} sequences of {} tokens from a vocabulary of {}; \
             each target is the token {} steps back)",
            task.sequences, task.steps, task.vocab, task.delay
        );
        let val = delayed_echo(
            &DelayedEcho {
                sequences: 128,
                ..task
            },
            args.seed.wrapping_add(2),
        );
        (
            delayed_echo(&task, args.seed.wrapping_add(1)),
            Some(val),
            DataMeta::Tensors,
        )
    };
    // Sizes fixed by the data format (vocabulary, tag set) stand in for missing flags.
    let mut model = model.clone();
    if model.vocab.is_none() && model.input_size.is_none() {
        model.vocab = meta.vocab_size();
    }
    if model.output_size.is_none() {
        model.output_size = meta.output_size();
    }
    let model = &model;
    let init_shapes = args
        .init
        .as_ref()
        .map(|p| wgrnn::weights::shapes(p))
        .transpose()?;
    let config = model.config(Some(&train_data), init_shapes.as_ref())?;
    check_dataset(
        &config,
        &train_data,
        &args
            .data
            .as_ref()
            .map_or("built-in data".into(), |p| p.display().to_string()),
    )?;
    if let (Some(v), Some(p)) = (&val_data, &args.val) {
        check_dataset(&config, v, &p.display().to_string())?;
    }
    let default_lr = if builtin { 1e-2 } else { 1e-3 };
    let optimizer = opt.config(default_lr)?;
    let seq_len = args
        .seq_len
        .unwrap_or(if builtin { 8 } else { train_data.steps });
    if seq_len == 0 || args.batch == 0 || args.epochs == 0 {
        anyhow::bail!("--seq-len, --batch and --epochs must be at least 1");
    }
    let layout = ParamLayout::new(&config);
    let params = match &args.init {
        Some(p) => wgrnn::weights::load(p, &layout)?,
        None => init_params(&config, args.seed),
    };

    let gpu = Gpu::new(adapter)?;
    println!(
        "adapter: {} ({}, {})",
        gpu.adapter().name,
        gpu.adapter().backend,
        gpu.adapter().device_type
    );
    println!(
        "model: {:?} input, rnn {} hidden ({}), head {} -> {} ({}), task {}{}, loss {}; {} parameters",
        config.input,
        config.hidden,
        config.activation,
        config.hidden,
        config.output_size,
        config.output_activation,
        config.task,
        if config.task == wgrnn::model::TaskKind::ManyToOne { format!(" (pool {})", config.pool) } else { String::new() },
        config.loss,
        layout.total
    );
    println!(
        "training: {} sequences x {} steps, batch {}, chunks of {} steps, optimizer {} lr {}",
        train_data.n, train_data.steps, args.batch, seq_len, optimizer.kind, optimizer.lr
    );
    let max_steps = seq_len
        .min(train_data.steps)
        .max(val_data.as_ref().map_or(0, |v| seq_len.min(v.steps)));
    let mut engine = Engine::new(&gpu, config, optimizer, args.batch, max_steps, &params)?;
    let early_stopping = match (args.min_delta, args.patience) {
        (None, None) => None,
        (d, p) => Some((d.unwrap_or(0.0), p.unwrap_or(1).max(1))),
    };
    let opts = TrainOptions {
        epochs: args.epochs,
        batch: args.batch,
        seq_len,
        order: if args.no_shuffle {
            Order::InOrder
        } else {
            Order::Shuffled { seed: args.seed }
        },
        log_every: args.log_every,
        early_stopping,
        metric_style: MetricStyle::for_loss(config.loss),
    };
    let report = train(
        &mut engine,
        &train_data,
        val_data.as_ref(),
        &opts,
        &mut |line| println!("{line}"),
    )?;
    println!(
        "stopped: {} ({} iterations)",
        report.stop_reason, report.iterations
    );
    if let Some(path) = &args.save {
        let params = engine.params()?;
        let mut meta = HashMap::new();
        // One metadata entry only: safetensors writes a map's entries in hash order, and
        // the same seed must give the same file, byte for byte.
        meta.insert("wgrnn.config".to_string(), format!("{config:?}"));
        wgrnn::weights::save(path, &layout, &params, meta)
            .with_context(|| format!("saving weights to {}", path.display()))?;
        println!("saved weights to {}", path.display());
    }
    Ok(())
}
