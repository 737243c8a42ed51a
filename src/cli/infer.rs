//! `wgrnn eval`, `wgrnn predict` and `wgrnn generate`: using a checkpoint.

use super::train::metric_style;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use wgrnn::checkpoint::{self, Checkpoint};
use wgrnn::data::series::{self, SeriesOptions};
use wgrnn::data::source::{load_for_eval, DataFormat, DataMeta, ReadOptions};
use wgrnn::data::vocab::{WordOptions, UPOS};
use wgrnn::data::{conllu, text};
use wgrnn::engine::Engine;
use wgrnn::gpu::{AdapterChoice, Gpu};
use wgrnn::optim::{OptimizerConfig, OptimizerKind};

fn parse<T: std::str::FromStr<Err = wgrnn::Error>>(s: &str) -> std::result::Result<T, String> {
    s.parse().map_err(|e: wgrnn::Error| e.to_string())
}

/// A checkpoint and a data file.
#[derive(Args, Debug, Clone)]
pub struct ModelData {
    /// Checkpoint directory written by `wgrnn train --checkpoint`
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Data file (same kind as the model was trained on)
    #[arg(long)]
    pub data: PathBuf,
    /// Data format: auto | safetensors | conllu | text | csv
    #[arg(long, default_value = "auto", value_parser = parse::<DataFormat>)]
    pub format: DataFormat,
    /// Sequences per batch
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Use the best epoch's weights (kept by `train --restore-best`) instead of the last
    #[arg(long)]
    pub best: bool,
}

#[derive(Args, Debug, Clone)]
pub struct PredictArgs {
    #[command(flatten)]
    pub io: ModelData,
    /// Where to write the predictions [default: standard output]
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Checkpoint directory of a character model
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Text to start from
    #[arg(long, default_value = "\n")]
    pub prime: String,
    /// Characters to generate
    #[arg(long, default_value_t = 500)]
    pub length: usize,
    /// Sampling temperature (0: always the most likely character)
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use the best epoch's weights (kept by `train --restore-best`) instead of the last
    #[arg(long)]
    pub best: bool,
}

/// Loads a checkpoint; with `best`, its weights are replaced by those `--restore-best` kept.
fn load(dir: &std::path::Path, best: bool) -> Result<Checkpoint> {
    let mut ckpt = checkpoint::load(dir).with_context(|| format!("loading {}", dir.display()))?;
    if best {
        let path = dir.join(super::hooks::BEST_FILE);
        let layout = wgrnn::model::ParamLayout::new(&ckpt.meta.model);
        ckpt.params = wgrnn::weights::load(&path, &layout).with_context(|| {
            format!(
                "--best: {} (written by train --restore-best)",
                path.display()
            )
        })?;
    }
    Ok(ckpt)
}

fn open<'g>(gpu: &'g Gpu, ckpt: &Checkpoint, batch: usize, steps: usize) -> Result<Engine<'g>> {
    let opt = OptimizerConfig::pytorch_defaults(OptimizerKind::Sgd);
    Ok(Engine::new(
        gpu,
        ckpt.meta.model,
        opt,
        batch.max(1),
        steps.max(1),
        &ckpt.params,
    )?)
}

fn read_options(meta: &DataMeta, batch: usize) -> ReadOptions {
    let series = match meta {
        DataMeta::Series(m) => SeriesOptions {
            target: Some(m.target.clone()),
            features: m.features.clone(),
            window: m.window,
            horizon: m.horizon,
        },
        _ => SeriesOptions {
            target: None,
            features: vec![],
            window: 1,
            horizon: 1,
        },
    };
    ReadOptions {
        series,
        words: WordOptions {
            min_count: 1,
            lowercase: false,
        },
        streams: batch,
        val_fraction: 0.0,
    }
}

pub fn eval(adapter: &AdapterChoice, args: &ModelData) -> Result<()> {
    let ckpt = load(&args.checkpoint, args.best)?;
    let data = load_for_eval(
        &args.data,
        args.format,
        &ckpt.meta.data,
        read_options(&ckpt.meta.data, args.batch),
    )?;
    wgrnn::train::check_dataset(&ckpt.meta.model, &data, &args.data.display().to_string())?;
    let gpu = Gpu::new(adapter)?;
    // A bidirectional model reads whole sequences; others chunk as in training.
    let seq_len = if ckpt.meta.model.bidirectional {
        data.steps
    } else {
        ckpt.meta.run.seq_len.min(data.steps)
    }
    .max(1);
    let mut engine = open(&gpu, &ckpt, args.batch, seq_len)?;
    let e = wgrnn::train::evaluate(&mut engine, &data, args.batch, seq_len)?;
    let style = metric_style(&ckpt.meta.data, ckpt.meta.model.loss);
    println!("{}: {} sequences", args.data.display(), data.n);
    for (name, value) in style.values(ckpt.meta.model.loss, &e) {
        if name == "accuracy" {
            println!("{name}: {:.2}%", 100.0 * value);
        } else {
            println!("{name}: {value:.6}");
        }
    }
    Ok(())
}

pub fn predict(adapter: &AdapterChoice, args: &PredictArgs) -> Result<()> {
    let io = &args.io;
    if let Some(p) = &args.output {
        super::destinations::check_writable("--output", p)?;
    }
    let ckpt = load(&io.checkpoint, io.best)?;
    let gpu = Gpu::new(adapter)?;
    // The whole output first, then written at once (--output: atomically), so that an error
    // on the way leaves no half-written file and an earlier --output file as it was.
    let mut out: Vec<u8> = Vec::new();
    match &ckpt.meta.data {
        DataMeta::Tagging { words } => {
            let bytes = std::fs::read(&io.data)
                .with_context(|| format!("reading {}", io.data.display()))?;
            let sentences = conllu::parse(&io.data, &bytes)?;
            let data = conllu::to_dataset(&sentences, words);
            let mut engine = open(&gpu, &ckpt, io.batch, data.steps)?;
            let outputs = wgrnn::infer::predict(&mut engine, &data, io.batch, data.steps)?;
            let tags: Vec<&str> = outputs
                .iter()
                .flat_map(|y| {
                    y.chunks(UPOS.len())
                        .map(|row| UPOS[wgrnn::infer::argmax(row)])
                })
                .collect();
            write_tagged(&bytes, &tags, &mut out)?;
        }
        DataMeta::Series(m) => {
            let opts = SeriesOptions {
                target: Some(m.target.clone()),
                features: m.features.clone(),
                window: m.window,
                horizon: m.horizon,
            };
            let (s, _, _) = series::read(&io.data, &opts)?;
            let table = series::read_table(&io.data)?;
            let n = s.target.len();
            let data = series::windows(&s, m, 0..n);
            let mut engine = open(&gpu, &ckpt, io.batch, m.window)?;
            let outputs = wgrnn::infer::predict(&mut engine, &data, io.batch, m.window)?;
            writeln!(out, "{},prediction,actual", table.header[0])?;
            for (y, r) in outputs.iter().zip(series::target_rows(m, 0..n, n)) {
                let value = apply_output(&ckpt, y[0] as f64) * m.target_stats.1 + m.target_stats.0;
                writeln!(out, "{},{value:.4},{}", table.rows[r][0], s.target[r])?;
            }
        }
        DataMeta::Characters { .. } => bail!("a character model makes text: use `wgrnn generate`"),
        DataMeta::Tensors => {
            let data = load_for_eval(
                &io.data,
                io.format,
                &ckpt.meta.data,
                read_options(&ckpt.meta.data, io.batch),
            )?;
            let mut engine = open(&gpu, &ckpt, io.batch, data.steps)?;
            let outputs = wgrnn::infer::predict(&mut engine, &data, io.batch, data.steps)?;
            for (i, y) in outputs.iter().enumerate() {
                let values: Vec<String> = y
                    .iter()
                    .map(|&v| format!("{:.6}", apply_output(&ckpt, v as f64)))
                    .collect();
                writeln!(out, "{i}\t{}", values.join(" "))?;
            }
        }
    }
    match &args.output {
        Some(p) => wgrnn::weights::write_atomic(p, &out)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&out)?;
            stdout.flush()?;
        }
    }
    Ok(())
}

/// The head's output activation (identity, relu, sigmoid) applied to one value.
fn apply_output(ckpt: &Checkpoint, v: f64) -> f64 {
    use wgrnn::model::OutputActivation;
    match ckpt.meta.model.output_activation {
        OutputActivation::Relu => v.max(0.0),
        OutputActivation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        _ => v,
    }
}

/// Copies CoNLL-U `bytes` to `out` with column 4 of every word line replaced by the next
/// predicted tag; comments, multiword ranges, empty nodes and blank lines pass unchanged.
fn write_tagged(bytes: &[u8], tags: &[&str], out: &mut dyn Write) -> Result<()> {
    let text = std::str::from_utf8(bytes)?;
    let mut next = tags.iter();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let cols: Vec<&str> = body.split('\t').collect();
        let is_word =
            cols.len() == 10 && !body.starts_with('#') && cols[0].parse::<usize>().is_ok();
        if is_word {
            let tag = next
                .next()
                .with_context(|| format!("line {}: more words than predictions", i + 1))?;
            let mut cols = cols;
            cols[3] = tag;
            write!(out, "{}{ending}", cols.join("\t"))?;
        } else {
            write!(out, "{line}")?;
        }
    }
    Ok(())
}

pub fn generate(adapter: &AdapterChoice, args: &GenerateArgs) -> Result<()> {
    let ckpt = load(&args.checkpoint, args.best)?;
    let DataMeta::Characters { chars } = &ckpt.meta.data else {
        bail!(
            "{}: not a character model (train one on a text file)",
            args.checkpoint.display()
        );
    };
    let unknown: Vec<char> = args
        .prime
        .chars()
        .filter(|c| chars.get(&c.to_string()).is_none())
        .collect();
    if !unknown.is_empty() {
        bail!("--prime has characters the model never saw: {unknown:?}");
    }
    let prime = text::encode(&args.prime, chars);
    let gpu = Gpu::new(adapter)?;
    let mut engine = open(&gpu, &ckpt, 1, prime.len())?;
    let ids = wgrnn::infer::generate(
        &mut engine,
        &prime,
        args.length,
        args.temperature,
        args.seed,
        &[0, 1],
    )?;
    let generated: String = ids
        .iter()
        .map(|&i| chars.items[i as usize].as_str())
        .collect();
    println!("{}{generated}", args.prime);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tagged_output_keeps_everything_but_column_four() {
        let input = "# c\n1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\tdo\tAUX\t_\t_\t_\t_\t_\t_\n2\tn't\tnot\tPART\t_\t_\t_\t_\t_\t_\n\n";
        let mut out = Vec::new();
        super::write_tagged(input.as_bytes(), &["VERB", "ADV"], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# c\n1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\tdo\tVERB\t_\t_\t_\t_\t_\t_\n2\tn't\tnot\tADV\t_\t_\t_\t_\t_\t_\n\n"
        );
    }
}
