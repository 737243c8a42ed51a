//! How `wgrnn train` reports: a progress bar on a terminal (plain lines otherwise), a JSON
//! log, checkpoints every epoch, and the best weights so far.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use wgrnn::checkpoint::{self, CheckpointMeta, RunSettings};
use wgrnn::data::source::DataMeta;
use wgrnn::engine::Engine;
use wgrnn::metrics::MetricStyle;
use wgrnn::model::{Loss, ModelConfig};
use wgrnn::train::{TrainHooks, TrainProgress};

/// Everything a checkpoint needs besides the engine's tensors and the progress.
pub struct CheckpointPlan {
    pub dir: PathBuf,
    pub model: ModelConfig,
    pub data: DataMeta,
    pub run: RunSettings,
}

pub struct CliHooks {
    bar: Option<ProgressBar>,
    json: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    checkpoint: Option<CheckpointPlan>,
    keep_best: bool,
    pub best: Option<(usize, Vec<f32>)>,
    metric_style: MetricStyle,
    loss: Loss,
    last_loss: f32,
    pub error: Option<anyhow::Error>,
}

impl CliHooks {
    pub fn new(
        json: Option<PathBuf>,
        checkpoint: Option<CheckpointPlan>,
        keep_best: bool,
        metric_style: MetricStyle,
        loss: Loss,
        append_json: bool,
    ) -> Result<Self> {
        let json = match json {
            Some(p) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(append_json)
                    .write(true)
                    .truncate(!append_json)
                    .open(&p)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                Some((p, std::io::BufWriter::new(f)))
            }
            None => None,
        };
        Ok(Self {
            bar: None,
            json,
            checkpoint,
            keep_best,
            best: None,
            metric_style,
            loss,
            last_loss: f32::NAN,
            error: None,
        })
    }

    fn json_line(&mut self, value: serde_json::Value) {
        if let Some((path, w)) = self.json.as_mut() {
            if let Err(e) = writeln!(w, "{value}").and_then(|_| w.flush()) {
                self.error
                    .get_or_insert(anyhow::anyhow!("{}: {e}", path.display()));
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl TrainHooks for CliHooks {
    fn line(&mut self, text: &str) {
        match &self.bar {
            Some(bar) if !text.starts_with("epoch ") => bar.set_message(text.trim().to_string()),
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
    }

    fn iteration(&mut self, _iteration: u64, loss: f32) {
        self.last_loss = loss;
    }

    fn logged(&mut self, iteration: u64, mean_loss: f64) {
        self.json_line(
            serde_json::json!({"event": "iteration", "iteration": iteration, "loss": mean_loss}),
        );
    }

    fn chunk_progress(&mut self, epoch: usize, done: usize, total: usize) {
        if !std::io::stdout().is_terminal() {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} chunks  {per_sec}  eta {eta}  {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b
        });
        if done == 1 {
            bar.reset();
            bar.set_length(total as u64);
            bar.set_prefix(epoch.to_string());
        }
        bar.set_position(done as u64);
    }

    fn epoch_end(
        &mut self,
        engine: &Engine<'_>,
        progress: &TrainProgress,
        improved: bool,
    ) -> wgrnn::Result<()> {
        if let Some(stats) = progress.history.last() {
            let val = stats.val.map(|v| {
                self.metric_style
                    .values(self.loss, &v)
                    .into_iter()
                    .map(|(k, x)| (k.to_string(), serde_json::json!(x)))
                    .collect::<serde_json::Map<_, _>>()
            });
            self.json_line(serde_json::json!({
                "event": "epoch", "epoch": stats.epoch, "train_loss": stats.train_loss, "val": val,
                "tokens_per_second": stats.tokens_per_second, "seconds": stats.seconds,
                "iterations": progress.iterations,
            }));
        }
        if self.keep_best && improved {
            self.best = Some((progress.epochs_done, engine.params()?));
        }
        if let Some(plan) = &self.checkpoint {
            save_checkpoint(plan, engine, progress)?;
            if let (true, Some((_, best))) = (improved && self.keep_best, &self.best) {
                let layout = engine.layout();
                wgrnn::weights::save(&plan.dir.join(BEST_FILE), layout, best, Default::default())?;
            }
        }
        Ok(())
    }

    fn interrupted(&mut self) -> bool {
        INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Set by the Ctrl-C handler; training stops at the next batch boundary.
pub static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The first Ctrl-C asks training to stop cleanly (and checkpoint); a second one exits at once.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: stopping after the current chunk and saving a checkpoint (Ctrl-C again to quit at once)");
    });
}

/// Writes a checkpoint of the engine and `progress` into `plan.dir`.
pub fn save_checkpoint(
    plan: &CheckpointPlan,
    engine: &Engine<'_>,
    progress: &TrainProgress,
) -> wgrnn::Result<()> {
    let (m, v) = engine.optimizer_state()?;
    let meta = CheckpointMeta::new(
        plan.model,
        *engine.optimizer(),
        plan.data.clone(),
        plan.run.clone(),
        progress.clone(),
        engine.steps_taken(),
    );
    checkpoint::save(&plan.dir, meta, &engine.params()?, &m, &v)
}

/// The best weights so far, beside the checkpoint (with --restore-best).
pub const BEST_FILE: &str = "best.safetensors";
