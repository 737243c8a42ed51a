//! `wgrnn train`: the training job, on user data or the bundled EWT sample, fresh or resumed.

use super::args::{BatchSize, ModelArgs, OptimizerArgs, TrainArgs};
use super::hooks::{
    install_interrupt_handler, save_checkpoint, CheckpointPlan, CliHooks, BEST_FILE,
};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use wgrnn::checkpoint::{self, RunSettings};
use wgrnn::data::series::SeriesOptions;
use wgrnn::data::source::{prepare, DataMeta, Prepared, ReadOptions};
use wgrnn::data::vocab::WordOptions;
use wgrnn::data::Order;
use wgrnn::dropout::Dropout;
use wgrnn::engine::{Engine, MemoryPlan};
use wgrnn::gpu::{AdapterChoice, Gpu};
use wgrnn::metrics::MetricStyle;
use wgrnn::model::{init_params, set_forget_bias, ParamLayout, TaskKind};
use wgrnn::train::{check_dataset, train, Monitor, TrainOptions, TrainProgress};

pub fn read_options(args: &TrainArgs, batch: usize) -> ReadOptions {
    ReadOptions {
        series: SeriesOptions {
            target: args.target.clone(),
            features: args.features.clone(),
            window: args.window,
            horizon: args.horizon,
        },
        words: WordOptions {
            min_count: args.min_count,
            lowercase: args.lowercase,
        },
        streams: batch,
        val_fraction: args.val_fraction,
    }
}

/// The bundled EWT sample (CC BY-SA 4.0; see data/ewt-sample/README.md), embedded so that
/// the default job runs from any directory.
const SAMPLE_TRAIN: &[u8] = include_bytes!("../../data/ewt-sample/train.conllu");
const SAMPLE_DEV: &[u8] = include_bytes!("../../data/ewt-sample/dev.conllu");

fn builtin_data(options: ReadOptions, existing: Option<&DataMeta>) -> Result<Prepared> {
    use wgrnn::data::conllu;
    use wgrnn::data::vocab::WordVocab;
    let train = conllu::parse(
        Path::new("<built-in>/ewt-sample/train.conllu"),
        SAMPLE_TRAIN,
    )?;
    let dev = conllu::parse(Path::new("<built-in>/ewt-sample/dev.conllu"), SAMPLE_DEV)?;
    println!(
        "no --data: training a POS tagger on the bundled sample of UD English-EWT ({} training and {} dev \
         sentences; CC BY-SA 4.0, see data/ewt-sample/README.md)",
        train.len(),
        dev.len()
    );
    let words = match existing {
        Some(DataMeta::Tagging { words }) => words.clone(),
        _ => WordVocab::build(
            train
                .iter()
                .flat_map(|s| s.words.iter().map(String::as_str)),
            options.words,
        ),
    };
    Ok(Prepared {
        train: conllu::to_dataset(&train, &words),
        val: Some(conllu::to_dataset(&dev, &words)),
        meta: DataMeta::Tagging { words },
        notes: vec![],
    })
}

/// The metric style of a task: characters are a language model.
pub fn metric_style(meta: &DataMeta, loss: wgrnn::model::Loss) -> MetricStyle {
    match (meta, MetricStyle::for_loss(loss)) {
        (DataMeta::Characters { .. }, _) => MetricStyle::LanguageModel,
        (_, MetricStyle::Regression { .. }) => MetricStyle::Regression {
            scale: meta.target_scale(),
        },
        (_, style) => style,
    }
}

pub fn run(
    adapter: &AdapterChoice,
    model: &ModelArgs,
    opt: &OptimizerArgs,
    args: &TrainArgs,
) -> Result<()> {
    // The files written after training: a bad destination fails now, not after the epochs.
    for (flag, path) in [("--save", &args.save), ("--plot", &args.plot)] {
        if let Some(path) = path {
            super::destinations::check_writable(flag, path)?;
        }
    }
    if let Some(path) = &args.plot {
        wgrnn::plot::check_format(path)?;
    }
    // The checkpoint directory likewise, before the first epoch ends: created now.
    if let Some(dir) = &args.checkpoint {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "--checkpoint {}: cannot create the directory",
                dir.display()
            )
        })?;
        super::destinations::check_writable("--checkpoint", &dir.join(checkpoint::META_FILE))?;
    }
    let resumed = args
        .resume
        .as_ref()
        .map(|dir| {
            checkpoint::load(dir).with_context(|| format!("resuming from {}", dir.display()))
        })
        .transpose()?;
    let builtin = args.data.is_none();
    if builtin && args.val.is_some() {
        bail!("--val needs --data");
    }
    let run_settings = match &resumed {
        Some(c) => RunSettings {
            epochs: args.epochs.unwrap_or(c.meta.run.epochs),
            ..c.meta.run.clone()
        },
        None => RunSettings {
            seed: args.seed,
            batch: match args.batch {
                BatchSize::Fixed(n) => n,
                BatchSize::Auto => 32, // provisional: chosen once the model is known
            },
            seq_len: 0, // set below, once the data is known
            shuffle: !args.no_shuffle,
            epochs: args.epochs.unwrap_or(if builtin { 15 } else { 10 }),
            log_every: args.log_every,
            early_stopping: match (args.min_delta, args.patience) {
                (None, None) => None,
                (d, p) => Some((d.unwrap_or(0.0), p.unwrap_or(1).max(1))),
            },
            monitor: if args.monitor == "metric" {
                Monitor::Metric
            } else {
                Monitor::Loss
            },
            restore_best: args.restore_best,
            on_nonfinite: args.on_nonfinite,
            dropout: args.dropout,
            precision: args.precision,
            lr_plateau: args.lr_decay.map(|f| (f, args.lr_patience as usize)),
        },
    };
    if run_settings.batch == 0 || run_settings.epochs == 0 {
        bail!("--batch and --epochs must be at least 1");
    }
    let existing_meta = resumed.as_ref().map(|c| &c.meta.data);
    let Prepared {
        train: train_data,
        val: val_data,
        meta,
        notes,
    } = match &args.data {
        Some(path) => prepare(
            path,
            args.val.as_deref(),
            args.format,
            read_options(args, run_settings.batch),
            existing_meta,
        )?,
        None => builtin_data(read_options(args, run_settings.batch), existing_meta)?,
    };

    let (config, optimizer, params) = match &resumed {
        Some(c) => (c.meta.model, c.meta.optimizer, c.params.clone()),
        None => {
            // Sizes fixed by the data format (vocabulary, tag set) stand in for missing flags.
            let mut model = model.clone();
            if builtin {
                model.embed = model.embed.or(Some(64));
                model.hidden = model.hidden.or(Some(128));
            }
            if model.vocab.is_none() && model.input_size.is_none() {
                model.vocab = meta.vocab_size();
            }
            if model.output_size.is_none() {
                model.output_size = meta.output_size();
            }
            let init_shapes = args
                .init
                .as_ref()
                .map(|p| wgrnn::weights::shapes(p))
                .transpose()?;
            let config = model.config(Some(&train_data), init_shapes.as_ref())?;
            let layout = ParamLayout::new(&config);
            let mut params = match &args.init {
                Some(p) => wgrnn::weights::load(p, &layout)?,
                None => init_params(&config, run_settings.seed),
            };
            if let Some(value) = args.forget_bias {
                if args.init.is_some() {
                    bail!("--forget-bias sets an initial bias; it does not go with --init weights");
                }
                set_forget_bias(&config, &mut params, value)?;
            }
            let optimizer = opt.config(if builtin { 3e-3 } else { 1e-3 })?;
            (config, optimizer, params)
        }
    };
    let data_name = args
        .data
        .as_ref()
        .map_or("built-in data".into(), |p| p.display().to_string());
    check_dataset(&config, &train_data, &data_name)?;
    if let (Some(v), Some(p)) = (&val_data, &args.val) {
        check_dataset(&config, v, &p.display().to_string())?;
    }
    let seq_len = match (&resumed, args.seq_len) {
        (Some(c), _) => c.meta.run.seq_len,
        (None, Some(k)) => k,
        (None, None) => train_data.steps,
    };
    if seq_len == 0 {
        bail!("--seq-len must be at least 1");
    }
    if config.bidirectional {
        if matches!(meta, DataMeta::Characters { .. }) {
            bail!("--bidirectional reads whole sequences, but a text is cut into streams carried across chunks; use a unidirectional model for --format text");
        }
        let longest = train_data
            .steps
            .max(val_data.as_ref().map_or(0, |v| v.steps));
        if seq_len < longest {
            bail!(
                "--bidirectional needs whole sequences in one chunk: the backward direction starts at each sequence's end, and only the forward state carries across chunks. --seq-len {seq_len} would cut sequences of up to {longest} steps; use --seq-len {longest} or more (or leave it out)"
            );
        }
    }
    let run_settings = RunSettings {
        seq_len,
        ..run_settings
    };

    for note in &notes {
        println!("{note}");
    }
    let gpu = Gpu::new(adapter)?;
    let layout = ParamLayout::new(&config);
    let (mut train_data, mut val_data, mut run_settings) = (train_data, val_data, run_settings);
    if args.batch == BatchSize::Auto && resumed.is_none() {
        let steps = seq_len
            .min(train_data.steps)
            .max(val_data.as_ref().map_or(0, |v| seq_len.min(v.steps)));
        let streams = matches!(meta, DataMeta::Characters { .. });
        let cap = if streams {
            4096
        } else {
            train_data.n.max(val_data.as_ref().map_or(0, |v| v.n))
        };
        let limit = gpu.max_binding_bytes();
        let batch = MemoryPlan::largest_batch(&config, steps, limit, gpu.adapter().is_software, run_settings.precision, cap)
            .with_context(|| format!("--batch auto: not even one sequence of {steps} steps fits this adapter (see `wgrnn plan`)"))?;
        let plan = MemoryPlan::new(
            &config,
            batch,
            steps,
            limit,
            gpu.adapter().is_software,
            run_settings.precision,
        );
        let (name, bytes) = plan
            .buffers
            .iter()
            .max_by_key(|(_, b)| *b)
            .copied()
            .unwrap_or(("", 0));
        println!(
            "--batch auto: {batch} ({}; the largest buffer, `{name}`, takes {} MiB of the {} MiB the adapter binds; {} MiB in all)",
            if batch == cap { "every sequence at once" } else { "the largest that fits" },
            bytes.div_ceil(1 << 20),
            limit >> 20,
            plan.total_bytes.div_ceil(1 << 20)
        );
        run_settings.batch = batch;
        if streams {
            // A text's streams are its batch: cut it again.
            let path = args.data.as_ref().expect("text data comes from a file");
            let p = prepare(
                path,
                args.val.as_deref(),
                args.format,
                read_options(args, batch),
                Some(&meta),
            )?;
            (train_data, val_data) = (p.train, p.val);
        }
    }
    println!(
        "adapter: {} ({}, {})",
        gpu.adapter().name,
        gpu.adapter().backend,
        gpu.adapter().device_type
    );
    println!(
        "model: {:?} input, {}{} {} x {} hidden{}, head {} -> {} ({}), task {}{}, loss {}; {} parameters",
        config.input,
        if config.bidirectional { "bidirectional " } else { "" },
        config.cell,
        config.layers,
        config.hidden,
        if config.cell == wgrnn::model::Cell::Rnn { format!(" ({})", config.activation) } else { String::new() },
        config.output_width(),
        config.output_size,
        config.output_activation,
        config.task,
        if config.task == TaskKind::ManyToOne { format!(" (pool {})", config.pool) } else { String::new() },
        config.loss,
        layout.total
    );
    println!(
        "training: {} sequences x {} steps, batch {}, chunks of {} steps, optimizer {} lr {}, {} storage",
        train_data.n,
        train_data.steps,
        run_settings.batch,
        seq_len,
        optimizer.kind,
        optimizer.lr,
        run_settings.precision.name()
    );
    let max_steps = seq_len
        .min(train_data.steps)
        .max(val_data.as_ref().map_or(0, |v| seq_len.min(v.steps)));
    let mut engine = Engine::with_precision(
        &gpu,
        config,
        optimizer,
        run_settings.batch,
        max_steps,
        &params,
        run_settings.precision,
    )?;
    engine.set_dropout(Some(Dropout {
        p: run_settings.dropout,
        seed: run_settings.seed as u32,
    }))?;
    let progress = match &resumed {
        Some(c) => {
            engine.restore_optimizer(&c.moment_m, &c.moment_v, c.meta.steps_taken)?;
            println!(
                "resumed after epoch {} ({} iterations)",
                c.meta.progress.epochs_done, c.meta.progress.iterations
            );
            c.meta.progress.clone()
        }
        None => TrainProgress::default(),
    };
    let style = metric_style(&meta, config.loss);
    let opts = TrainOptions {
        epochs: run_settings.epochs,
        batch: run_settings.batch,
        seq_len,
        order: if run_settings.shuffle {
            Order::Shuffled {
                seed: run_settings.seed,
            }
        } else {
            Order::InOrder
        },
        log_every: run_settings.log_every,
        early_stopping: run_settings.early_stopping,
        metric_style: style,
        monitor: run_settings.monitor,
        on_nonfinite: run_settings.on_nonfinite,
        lr_plateau: run_settings.lr_plateau,
    };
    let checkpoint_dir = args.checkpoint.clone().or_else(|| args.resume.clone());
    let interrupt_dir = checkpoint_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("wgrnn-interrupted"));
    let plan = checkpoint_dir.map(|dir| CheckpointPlan {
        dir,
        model: config,
        data: meta.clone(),
        run: run_settings.clone(),
    });
    let mut hooks = CliHooks::new(
        args.log_json.clone(),
        plan,
        run_settings.restore_best,
        style,
        config.loss,
        resumed.is_some(),
    )?;
    if let (true, Some(c), Some(dir)) = (run_settings.restore_best, &resumed, &args.resume) {
        if let (Some((_, epoch)), Ok(best)) = (
            c.meta.progress.best,
            wgrnn::weights::load(&dir.join(BEST_FILE), &layout),
        ) {
            hooks.best = Some((epoch, best));
        }
    }
    install_interrupt_handler();
    let result = train(
        &mut engine,
        &train_data,
        val_data.as_ref(),
        &opts,
        progress,
        &mut hooks,
    );
    hooks.finish();
    let report = result?;
    if report.interrupted {
        let plan = CheckpointPlan {
            dir: interrupt_dir.clone(),
            model: config,
            data: meta.clone(),
            run: run_settings.clone(),
        };
        save_checkpoint(&plan, &engine, &report.progress)?;
        println!(
            "{}; saved a checkpoint in {}",
            report.stop_reason,
            interrupt_dir.display()
        );
        println!(
            "continue with: wgrnn train --resume {} [--data ...]",
            interrupt_dir.display()
        );
        std::process::exit(130);
    }
    if let Some(e) = hooks.error.take() {
        return Err(e);
    }
    println!(
        "stopped: {} ({} iterations)",
        report.stop_reason, report.iterations
    );
    for c in engine.recurrence_choices() {
        println!(
            "recurrence kernels for batches of {}: forward {:?} ({}), backward {:?} ({}); a {}-step sweep each way",
            c.batch,
            c.forward,
            wgrnn::engine::describe_times(&c.forward_times_ms),
            c.backward,
            wgrnn::engine::describe_times(&c.backward_times_ms),
            c.steps
        );
    }
    if builtin {
        if let Some(v) = report.epochs.last().and_then(|e| e.val) {
            println!(
                "accuracy on the bundled dev sample: {:.2}%",
                100.0 * v.metric
            );
        }
    }
    if run_settings.restore_best {
        if let Some((epoch, best)) = hooks.best.take() {
            engine.set_params(&best)?;
            println!(
                "restored the weights of epoch {epoch}, the best by the {}",
                if opts.monitor == Monitor::Metric {
                    "metric"
                } else {
                    "loss"
                }
            );
            if let Some(dir) = args.checkpoint.as_ref().or(args.resume.as_ref()) {
                println!(
                    "they are in {}: use --best with eval, predict or generate",
                    dir.join(BEST_FILE).display()
                );
            }
        }
    }
    // The weights first: nothing after them (the plot) can cost them.
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
    if let Some(path) = &args.plot {
        let per_epoch = report.losses.len() as f64 / report.epochs.len().max(1) as f64;
        let name = match style {
            MetricStyle::Regression { .. } => "validation MAE / MSE",
            _ => "validation accuracy",
        };
        wgrnn::plot::write_plot(path, &report.epochs, &report.losses, per_epoch, name)?;
        println!("plotted the curves in {}", path.display());
    }
    Ok(())
}
