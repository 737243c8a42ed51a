//! `wgrnn plan`: a dry run of the memory an engine needs, checked against the adapter.

use super::args::{parse_batch, BatchSize, ModelArgs};
use anyhow::{bail, Result};
use clap::Args;
use wgrnn::engine::MemoryPlan;
use wgrnn::gpu::{AdapterChoice, Gpu};

#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Sequences per batch, or `auto` for the largest that fits
    #[arg(long, default_value = "auto", value_parser = parse_batch)]
    pub batch: BatchSize,
    /// Steps per chunk (--seq-len of train)
    #[arg(long)]
    pub seq_len: usize,
    /// With --batch auto: the most sequences worth batching
    #[arg(long, default_value_t = 65_536)]
    pub max_batch: usize,
    /// Storage of activations and the weight copy (--precision of train)
    #[arg(long, default_value = "f32")]
    pub precision: wgrnn::engine::Precision,
}

pub fn run(adapter: &AdapterChoice, args: &PlanArgs) -> Result<()> {
    let config = args.model.config(None, None)?;
    if args.seq_len == 0 {
        bail!("--seq-len must be at least 1");
    }
    let gpu = Gpu::new(adapter)?;
    let limit = gpu.max_binding_bytes();
    println!(
        "adapter: {} (binds at most {} MiB per buffer)",
        gpu.adapter().name,
        limit >> 20
    );
    let batch = match args.batch {
        BatchSize::Fixed(b) => b,
        BatchSize::Auto => match MemoryPlan::largest_batch(&config, args.seq_len, limit, gpu.adapter().is_software, args.precision, args.max_batch) {
            Some(b) => {
                println!("--batch auto: {b} is the largest batch of {}-step chunks that fits (capped at {})", args.seq_len, args.max_batch);
                b
            }
            None => bail!("not even one sequence of {} steps fits this adapter; use a shorter --seq-len or a smaller model", args.seq_len),
        },
    };
    let plan = MemoryPlan::new(
        &config,
        batch,
        args.seq_len,
        limit,
        gpu.adapter().is_software,
        args.precision,
    );
    let mut buffers = plan.buffers.clone();
    buffers.sort_by_key(|(_, b)| std::cmp::Reverse(*b));
    for (name, bytes) in buffers.iter().take(8) {
        let flag = if bytes.next_multiple_of(4) > limit {
            "  <- over the limit"
        } else {
            ""
        };
        println!(
            "  {name:<16} {:>10.1} MiB{flag}",
            *bytes as f64 / (1 << 20) as f64
        );
    }
    println!(
        "  ({} buffers, {:.1} MiB in all)",
        plan.buffers.len(),
        plan.total_bytes as f64 / (1 << 20) as f64
    );
    if !plan.fits() {
        bail!("batch {batch} x {} steps does not fit: a buffer exceeds the adapter's {} MiB binding limit", args.seq_len, limit >> 20);
    }
    println!("fits: batch {batch} x {} steps", args.seq_len);
    Ok(())
}
