//! `wgrnn bench`: named workloads or a custom shape, optionally with the adapter's
//! ceilings, printed and written as JSON.

use super::args::{parse_batch, BatchSize};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use wgrnn::bench::{
    loss_after, measure_ceiling, named, run_workload, Ceiling, EarlierReport, Workload,
};
use wgrnn::engine::{MemoryPlan, Precision};
use wgrnn::gpu::{AdapterChoice, Gpu};
use wgrnn::model::{
    Activation, Cell, InputKind, Loss, ModelConfig, OutputActivation, Pool, TaskKind,
};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Named workloads, comma-separated: W1 ... W5 [default: all, unless a custom shape is given]
    #[arg(long, value_delimiter = ',')]
    pub workload: Vec<String>,
    /// Custom shape: recurrent cell, rnn | lstm | gru
    #[arg(long, value_parser = wgrnn_parse_cell)]
    pub cell: Option<Cell>,
    /// Hidden units: a custom shape's, or with --workload the named workloads' instead of
    /// their own; comma-separated for a sweep (with --batch: every pair)
    #[arg(long, value_delimiter = ',')]
    pub hidden: Vec<usize>,
    /// Sequences per step, as --hidden; `auto`: the largest batch that fits the adapter (as
    /// `wgrnn plan --batch auto`)
    #[arg(long, value_delimiter = ',', value_parser = parse_batch)]
    pub batch: Vec<BatchSize>,
    /// Steps per sequence: a custom shape's, or with --workload the named workloads'
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// With --batch auto: the most sequences worth batching
    #[arg(long, default_value_t = 65_536)]
    pub max_batch: usize,
    /// Custom shape: float features per step
    #[arg(long)]
    pub input_size: Option<usize>,
    /// Custom shape: vocabulary (token input)
    #[arg(long)]
    pub vocab: Option<usize>,
    /// Custom shape: embedding width
    #[arg(long)]
    pub embed: Option<usize>,
    /// Custom shape: outputs at every step (cross-entropy)
    #[arg(long)]
    pub output_size: Option<usize>,
    /// Also measure the adapter's multiply-add and copy ceilings (after the workloads, so that
    /// the burst cannot slow them) and report each workload against them
    #[arg(long)]
    pub ceiling: bool,
    /// Also time one more step kernel by kernel (each dispatch in a timed pass of its own,
    /// summed per entry point), and print the kernels slowest first
    #[arg(long)]
    pub kernel_times: bool,
    /// Timed steps per workload (after 3 warm-up steps), unless --max-seconds runs out first
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    #[arg(long, default_value_t = 10.0)]
    pub max_seconds: f64,
    /// Write everything (adapter, version, commit, date and time, results) to this JSON file
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Compare each workload with the same workload in an earlier run's --json report (its
    /// median step time and GPU phases, as ratios: under 1 is faster now)
    #[arg(long, value_name = "JSON")]
    pub compare: Option<PathBuf>,
    /// Storage of weights copies and activations: f32, or f16 (needs shader-f16; master
    /// weights, gradients, optimizer and sums stay f32)
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// With --precision f16: also train each workload this many steps in f16 and in f32 and
    /// report both losses (0: skip)
    #[arg(long, default_value_t = 200)]
    pub loss_steps: usize,
}

impl BenchArgs {
    /// The options given that describe a custom shape's model (not its sizes).
    fn custom_model_options(&self) -> Vec<&'static str> {
        [
            ("--cell", self.cell.is_some()),
            ("--input-size", self.input_size.is_some()),
            ("--vocab", self.vocab.is_some()),
            ("--embed", self.embed.is_some()),
            ("--output-size", self.output_size.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    /// The custom shape at its default sizes (hidden 256, batch 64, 32 steps; the sweep sets
    /// them), if any of its options is given.
    fn custom(&self) -> Option<Workload> {
        let any = !self.custom_model_options().is_empty()
            || !self.hidden.is_empty()
            || !self.batch.is_empty()
            || self.seq_len.is_some();
        if !any {
            return None;
        }
        let input = match (self.input_size, self.vocab) {
            (Some(size), _) => InputKind::Dense { size },
            (None, vocab) => InputKind::Tokens {
                vocab: vocab.unwrap_or(10_000),
                embed: self.embed.unwrap_or(128),
            },
        };
        let cell = self.cell.unwrap_or_default();
        let config = ModelConfig {
            cell,
            layers: 1,
            bidirectional: false,
            input,
            hidden: 256,
            output_size: self.output_size.unwrap_or(18),
            activation: Activation::Tanh,
            output_activation: OutputActivation::Softmax,
            task: TaskKind::ManyToMany,
            pool: Pool::Last,
            loss: Loss::CrossEntropy,
        };
        Some(Workload {
            name: "custom".into(),
            description: custom_description(&config),
            config,
            batch: 64,
            steps: 32,
            precision: self.precision,
        })
    }

    /// The workloads before the sweep: the named ones (`--workload`; all of them when
    /// nothing is given) or the custom shape.
    fn bases(&self) -> Result<Vec<Workload>> {
        if self.workload.is_empty() {
            return Ok(match self.custom() {
                Some(c) => vec![c],
                None => wgrnn::bench::NAMES
                    .iter()
                    .map(|name| named(name))
                    .collect::<wgrnn::Result<_>>()?,
            });
        }
        let custom = self.custom_model_options();
        if !custom.is_empty() {
            bail!(
                "{} (a custom shape's model) cannot change the named workloads of --workload {}: \
                 leave out --workload for a custom shape; --hidden, --batch and --seq-len resize \
                 named ones",
                custom.join(", "),
                self.workload.join(",")
            );
        }
        Ok(self
            .workload
            .iter()
            .map(|name| named(name.trim()))
            .collect::<wgrnn::Result<_>>()?)
    }

    /// Checks the sweep's sizes before anything is measured.
    fn check_sizes(&self) -> Result<()> {
        if self.hidden.contains(&0) {
            bail!("--hidden must be at least 1");
        }
        if self.batch.contains(&BatchSize::Fixed(0)) {
            bail!("--batch must be at least 1 (or `auto`)");
        }
        if self.seq_len == Some(0) {
            bail!("--seq-len must be at least 1");
        }
        if self.max_batch == 0 {
            bail!("--max-batch must be at least 1");
        }
        Ok(())
    }

    /// Every base workload at every --hidden and --batch of the sweep (hidden the outer
    /// loop), at --seq-len where given; `auto` batches resolved on `gpu`.
    fn sweep(&self, bases: &[Workload], gpu: &Gpu) -> Result<Vec<Workload>> {
        let hiddens: Vec<Option<usize>> = if self.hidden.is_empty() {
            vec![None]
        } else {
            self.hidden.iter().copied().map(Some).collect()
        };
        let batches: Vec<Option<BatchSize>> = if self.batch.is_empty() {
            vec![None]
        } else {
            self.batch.iter().copied().map(Some).collect()
        };
        let mut out = Vec::new();
        for base in bases {
            for &hidden in &hiddens {
                for &batch in &batches {
                    out.push(resized(
                        base,
                        hidden,
                        batch,
                        self.seq_len,
                        self.max_batch,
                        gpu,
                    )?);
                }
            }
        }
        Ok(out)
    }
}

fn custom_description(config: &ModelConfig) -> String {
    format!(
        "{:?}, {} {}, head at every step, cross-entropy",
        config.input, config.cell, config.hidden
    )
}

/// `base` with `hidden` units, `batch` sequences and `seq_len` steps where given; a named
/// workload so changed says so in its description. `auto`: the largest batch whose buffers
/// fit `gpu`'s binding limits, at most `max_batch` (`MemoryPlan::largest_batch`, as `wgrnn
/// plan`).
fn resized(
    base: &Workload,
    hidden: Option<usize>,
    batch: Option<BatchSize>,
    seq_len: Option<usize>,
    max_batch: usize,
    gpu: &Gpu,
) -> Result<Workload> {
    let mut w = base.clone();
    let mut changes = Vec::new();
    if let Some(h) = hidden {
        w.config.hidden = h;
        changes.push(format!("hidden {h}"));
    }
    if let Some(t) = seq_len {
        w.steps = t;
        changes.push(format!("{t} steps"));
    }
    match batch {
        None => {}
        Some(BatchSize::Fixed(b)) => {
            w.batch = b;
            changes.push(format!("batch {b}"));
        }
        Some(BatchSize::Auto) => {
            let Some(b) = MemoryPlan::largest_batch(
                &w.config,
                w.steps,
                gpu.max_binding_bytes(),
                gpu.adapter().is_software,
                w.precision,
                max_batch,
            ) else {
                bail!(
                    "--batch auto: not even one sequence of {} steps of {} (hidden {}) fits this \
                     adapter",
                    w.steps,
                    w.name,
                    w.config.hidden
                );
            };
            println!(
                "--batch auto: {b} is the largest batch of {} with hidden {} and {}-step chunks that fits (capped at {max_batch})",
                w.name, w.config.hidden, w.steps
            );
            w.batch = b;
            changes.push(format!("batch auto = {b}"));
        }
    }
    if w.name == "custom" {
        w.description = custom_description(&w.config);
    } else if !changes.is_empty() {
        w.description = format!("{}; resized: {}", w.description, changes.join(", "));
    }
    Ok(w)
}

fn wgrnn_parse_cell(s: &str) -> std::result::Result<Cell, String> {
    s.parse().map_err(|e: wgrnn::Error| e.to_string())
}

/// The UTC date and time of day now: ("2026-11-28", "21:55:51").
fn utc_now() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let of_day = secs % 86_400;
    let time = format!(
        "{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    (format!("{y:04}-{m:02}-{d:02}"), time)
}

pub fn run(adapter: &AdapterChoice, args: &BenchArgs) -> Result<()> {
    let mut bases = args.bases()?;
    for w in &mut bases {
        w.precision = args.precision;
    }
    args.check_sizes()?;
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    // Checked and read before measuring anything: a wrong file or destination fails now,
    // not after the workloads.
    if let Some(path) = &args.json {
        super::destinations::check_writable("--json", path)?;
    }
    let earlier = match &args.compare {
        Some(path) => Some(EarlierReport::read(path)?),
        None => None,
    };
    let (date, time) = utc_now();
    let gpu = Gpu::new(adapter)?;
    let a = gpu.adapter();
    println!(
        "wgrnn {} (commit {}), {date} {time} UTC",
        env!("CARGO_PKG_VERSION"),
        env!("WGRNN_COMMIT")
    );
    println!(
        "adapter: {} ({}, {}, {})",
        a.name, a.backend, a.device_type, a.driver
    );
    if let Some(e) = &earlier {
        println!(
            "comparing with {} (commit {}, {}, adapter {}{})",
            e.path.display(),
            e.commit,
            e.date,
            e.adapter,
            if e.adapter == a.name {
                ""
            } else {
                ": not this run's adapter"
            }
        );
    }
    let workloads = args.sweep(&bases, &gpu)?;
    let mut results: Vec<serde_json::Value> = Vec::new();
    // (workload, GFLOP/s, the optimizer's GB/s) for the ceilings' percentages, printed after
    // the workloads.
    let mut rates: Vec<(String, f64, Option<f64>)> = Vec::new();
    for w in &workloads {
        let r = run_workload(
            &gpu,
            w,
            args.steps,
            Duration::from_secs_f64(args.max_seconds),
            args.kernel_times,
        )?;
        rates.push((
            format!(
                "{} (H {}, B {}, T {})",
                w.name, w.config.hidden, w.batch, w.steps
            ),
            r.gflops_per_second,
            r.optimizer_gbytes_per_second,
        ));
        println!(
            "{} {} [{}] B {} T {}: median {:.2} ms, p95 {:.2} ms over {} steps; {:.0} tokens/s; {:.2} GFLOP/s; host {:.2} ms before the GPU starts ({:.0}% of the step), {:.2} ms recording the next step while it runs; {} dispatches and {} copies or clears a step",
            w.name,
            w.precision.name(),
            w.description,
            w.batch,
            w.steps,
            r.median_ms,
            r.p95_ms,
            r.steps_timed,
            r.tokens_per_second,
            r.gflops_per_second,
            r.host_median_ms,
            100.0 * r.host_median_ms / r.median_ms,
            r.record_ahead_median_ms,
            r.commands.dispatches,
            r.commands.copies_and_clears
        );
        println!(
            "   back to back (as a training loop runs them: each step submitted while the one before runs, one wait at the end): {:.2} ms a step over {} steps; {:.0} tokens/s",
            r.back_to_back_ms,
            r.back_to_back_steps,
            (w.batch * w.steps) as f64 / (r.back_to_back_ms * 1e-3)
        );
        println!(
            "   readback (as a training loop reads the losses, once per --log-every steps, off the GPU's path): {} steps' losses and gradient norms in {:.2} ms; last loss {:.5}{}",
            r.readback_slots,
            r.readback_ms,
            r.last_loss,
            if r.last_loss.is_finite() {
                ""
            } else {
                " (not finite: this workload does not train)"
            }
        );
        if !r.phases_ms.is_empty() {
            let total: f64 = r.phases_ms.iter().map(|(_, ms)| ms).sum();
            let parts: Vec<String> = r
                .phases_ms
                .iter()
                .map(|(n, ms)| format!("{n} {ms:.2}"))
                .collect();
            println!(
                "   GPU phases (ms): {}; sum {total:.2} ms, the step takes {:.2}x that ({:.2}x back to back)",
                parts.join(", "),
                r.median_ms / total,
                r.back_to_back_ms / total
            );
        }
        if args.kernel_times && r.kernel_times_ms.is_empty() {
            println!("   GPU time by kernel: none (this adapter has no timestamp queries)");
        }
        if !r.kernel_times_ms.is_empty() {
            let mut kernels = r.kernel_times_ms.clone();
            kernels.sort_by(|a, b| b.1.total_cmp(&a.1));
            let parts: Vec<String> = kernels
                .iter()
                .map(|(n, ms)| format!("{n} {ms:.2}"))
                .collect();
            println!(
                "   GPU time by kernel (ms, each dispatch timed in a pass of its own): {}",
                parts.join(", ")
            );
        }
        for c in &r.recurrence {
            println!(
                "   recurrence: forward {:?}, backward {:?} chosen (a {}-step sweep each way: forward {}; backward {})",
                c.forward,
                c.backward,
                c.steps,
                wgrnn::engine::describe_times(&c.forward_times_ms),
                wgrnn::engine::describe_times(&c.backward_times_ms)
            );
        }
        if r.gemm.is_empty() {
            println!("   gemm: one formulation for every product (the only candidate here, or as WGRNN_GEMM forces)");
        }
        for c in &r.gemm {
            let mut times: Vec<String> = c
                .times_ms
                .iter()
                .map(|(k, t)| format!("{t:.3} ms {k:?}"))
                .collect();
            if times.is_empty() {
                times.push("from the tuning cache".into());
            }
            println!(
                "   gemm {}x{}x{}{}: {:?} chosen ({})",
                c.m,
                c.n,
                c.k,
                if c.slices > 1 {
                    format!(" in {} K slices", c.slices)
                } else {
                    String::new()
                },
                c.kernel,
                times.join(", ")
            );
        }
        let mut entry = serde_json::to_value(&r)?;
        if w.precision == Precision::F16 && args.loss_steps > 0 {
            let half = loss_after(&gpu, w, args.loss_steps)?;
            let full = loss_after(
                &gpu,
                &Workload {
                    precision: Precision::F32,
                    ..w.clone()
                },
                args.loss_steps,
            )?;
            let diff = (half as f64 - full as f64) / full as f64;
            println!(
                "   loss after {} steps: f16 {half:.5}, f32 {full:.5} ({:+.3}%)",
                args.loss_steps,
                100.0 * diff
            );
            entry["loss_check"] = serde_json::json!({
                "steps": args.loss_steps, "f16": half, "f32": full, "relative_difference": diff,
            });
        }
        if let Some(e) = &earlier {
            match e.compare(&entry) {
                Some(c) => {
                    println!("   against the earlier run: {}", c.describe(e));
                    entry["compared_with"] = c.to_json(e);
                }
                None => println!(
                    "   against the earlier run: {} has no {} with this shape and precision",
                    e.path.display(),
                    w.name
                ),
            }
        }
        results.push(entry);
    }
    // The ceiling is measured after the workloads: its burst at the card's full multiply-add
    // rate once left an H200 slow for the next half minute (BENCHMARKS.md, 22:20 UTC).
    let ceiling: Option<Ceiling> = if args.ceiling {
        Some(measure_ceiling(&gpu)?)
    } else {
        None
    };
    if let Some(c) = &ceiling {
        println!(
            "ceiling: {:.1} GFLOP/s multiply-add, {:.1} GB/s copy",
            c.fma_gflops, c.copy_gbytes_per_second
        );
        for ((name, gflops, optimizer), entry) in rates.iter().zip(results.iter_mut()) {
            let fma_share = 100.0 * gflops / c.fma_gflops;
            entry["percent_of_fma_ceiling"] = serde_json::json!(fma_share);
            let optimizer = optimizer
                .map(|gbps| {
                    let copy_share = 100.0 * gbps / c.copy_gbytes_per_second;
                    entry["optimizer_percent_of_copy_ceiling"] = serde_json::json!(copy_share);
                    format!("; optimizer {gbps:.1} GB/s, {copy_share:.1}% of the copy ceiling")
                })
                .unwrap_or_default();
            println!("   {name}: {gflops:.2} GFLOP/s, {fma_share:.1}% of the ceiling{optimizer}");
        }
    }
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "wgrnn_version": env!("CARGO_PKG_VERSION"),
            "commit": env!("WGRNN_COMMIT"),
            "date": date,
            "time_utc": time,
            "adapter": { "name": a.name, "backend": a.backend, "device_type": a.device_type, "driver": a.driver, "shader_checks": a.shader_checks },
            "ceiling": ceiling,
            "flop_count": "3 x sum over forward matrix products of 2*M*N*K (input projection, recurrence, head)",
            "results": results,
        });
        wgrnn::weights::write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
