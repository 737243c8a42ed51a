//! Soak test: trains for many thousands of chunks on one engine and reports resident
//! memory and device-buffer memory at the start and at the end, which must stay flat.
//!
//!     cargo bench --bench soak              # 20,000 chunks
//!     cargo bench --bench soak -- 100000    # more
//!
//! The task mixes sequence lengths (ragged padded batches, many chunk shapes) so that the
//! per-shape plan cache and the readback path are exercised, not just one recording.

use std::time::Instant;
use wgrnn::data::{delayed_echo, DelayedEcho, Order};
use wgrnn::engine::Engine;
use wgrnn::gpu::{AdapterChoice, Gpu};
use wgrnn::model::{
    init_params, Activation, InputKind, Loss, ModelConfig, OutputActivation, Pool, TaskKind,
};
use wgrnn::optim::{OptimizerConfig, OptimizerKind};
use wgrnn::train::{train, Silent, TrainOptions, TrainProgress};

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let target_chunks: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let choice: AdapterChoice = std::env::var("WGRNN_ADAPTER")
        .unwrap_or_else(|_| "auto".into())
        .parse()
        .unwrap();
    let gpu = Gpu::new(&choice).expect("an adapter");
    let task = DelayedEcho {
        sequences: 256,
        steps: 24,
        vocab: 10,
        delay: 3,
    };
    let mut data = delayed_echo(&task, 1);
    // Ragged lengths: 1..=24 steps.
    data.lengths = (0..data.n).map(|i| 1 + (i * 7919) % data.steps).collect();
    let config = ModelConfig {
        cell: Default::default(),
        layers: 1,
        bidirectional: false,
        input: InputKind::Tokens {
            vocab: task.vocab,
            embed: 16,
        },
        hidden: 32,
        output_size: task.vocab,
        activation: Activation::Tanh,
        output_activation: OutputActivation::Softmax,
        task: TaskKind::ManyToMany,
        pool: Pool::Last,
        loss: Loss::CrossEntropy,
    };
    let mut opt = OptimizerConfig::pytorch_defaults(OptimizerKind::Adam);
    opt.lr = 0.01;
    let (batch, seq_len) = (16, 8);
    let mut engine =
        Engine::new(&gpu, config, opt, batch, seq_len, &init_params(&config, 0)).unwrap();
    let chunks_per_epoch: usize = {
        let opts = TrainOptions::new(1, batch, seq_len, Order::Shuffled { seed: 3 });
        let r = train(
            &mut engine,
            &data,
            None,
            &opts,
            TrainProgress::default(),
            &mut Silent,
        )
        .unwrap();
        r.iterations as usize
    };
    let epochs = target_chunks.div_ceil(chunks_per_epoch);
    let (rss0, hwm0, (gpu0, _)) = (
        status_kib("VmRSS:"),
        status_kib("VmHWM:"),
        gpu.buffer_bytes(),
    );
    println!("adapter: {} ({})", gpu.adapter().name, gpu.adapter().driver);
    println!("{epochs} epochs x {chunks_per_epoch} chunks; after the first epoch: resident {rss0} KiB (peak {hwm0} KiB), device buffers {} KiB", gpu0 >> 10);
    let started = Instant::now();
    let opts = TrainOptions {
        log_every: 1000,
        ..TrainOptions::new(epochs + 1, batch, seq_len, Order::Shuffled { seed: 3 })
    };
    let progress = TrainProgress {
        epochs_done: 1,
        ..Default::default()
    };
    let report = train(
        &mut engine,
        &data,
        Some(&data),
        &opts,
        progress,
        &mut Silent,
    )
    .unwrap();
    let (rss1, hwm1, (gpu1, gpu_peak)) = (
        status_kib("VmRSS:"),
        status_kib("VmHWM:"),
        gpu.buffer_bytes(),
    );
    let last = report.epochs.last().unwrap();
    println!(
        "after {} chunks ({:.0} s): resident {rss1} KiB (peak {hwm1} KiB), device buffers {} KiB (peak {} KiB); last epoch train loss {:.4}",
        report.iterations,
        started.elapsed().as_secs_f64(),
        gpu1 >> 10,
        gpu_peak >> 10,
        last.train_loss
    );
    println!(
        "resident growth: {:+} KiB; device-buffer growth: {:+} KiB",
        rss1 as i64 - rss0 as i64,
        (gpu1 as i64 - gpu0 as i64) >> 10
    );
}
