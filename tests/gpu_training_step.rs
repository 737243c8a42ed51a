//! Tier 3 (whole step) and tier 5: the engine's chunks and full training runs against the
//! f64 reference on random configurations; determinism; the built-in task learns.

mod common;

use common::{
    assert_close, check_chunks_against_reference, gpu, random_case, random_case_arch,
    random_case_with, to_f64, Case,
};
use wgrnn::data::{chunk_ranges, ChunkData, Order};
use wgrnn::dropout::Dropout;
use wgrnn::engine::{ChunkMode, Engine, RecurrenceKernels};
use wgrnn::model::{Cell, ModelConfig, TaskKind};
use wgrnn::ops::{GemmKernel, RecurrenceKernel};
use wgrnn::optim::{Momentum, OptimizerConfig, OptimizerKind};
use wgrnn::reference::{run_chunk, CarriedState, RefOptimizer};
use wgrnn::train::{train, Silent, TrainOptions, TrainProgress};

#[test]
fn every_chunk_matches_reference_loss_gradients_and_carried_state() {
    let gpu = gpu();
    for (seed, cell) in (0..24u64).flat_map(|s| [Cell::Rnn, Cell::Lstm, Cell::Gru].map(|c| (s, c)))
    {
        check_every_chunk(
            &gpu,
            &random_case_with(seed, cell),
            None,
            None,
            &format!("seed {seed}"),
        );
    }
}

/// Stacked and bidirectional models of every cell, some with dropout between layers:
/// (seed, cell, layers, bidirectional, dropout p).
fn stacked_architectures() -> Vec<(u64, Cell, usize, bool, f32)> {
    let cells = [Cell::Rnn, Cell::Lstm, Cell::Gru];
    (0..24u64)
        .map(|seed| {
            let (layers, bidirectional) =
                [(2, false), (1, true), (2, true), (3, false)][seed as usize % 4];
            let p = if layers > 1 && seed % 3 != 0 {
                0.3
            } else {
                0.0
            };
            (
                seed + 300,
                cells[seed as usize % 3],
                layers,
                bidirectional,
                p,
            )
        })
        .collect()
}

#[test]
fn stacked_and_bidirectional_chunks_match_reference() {
    let gpu = gpu();
    for (seed, cell, layers, bidirectional, p) in stacked_architectures() {
        let case = random_case_arch(seed, cell, layers, bidirectional);
        let dropout = (p > 0.0).then_some(Dropout {
            p,
            seed: seed as u32,
        });
        // Every third seed with every product in the window quads kernel where it is a
        // candidate: the layer-input gradients then read W_ih through its transposed copy
        // (the tuner's own picks read it as it is where the 8-byte outer kernel exists).
        let windows = GemmKernel::WindowQuads;
        let product =
            (seed % 3 == 2 && GemmKernel::candidates(&gpu).contains(&windows)).then_some(windows);
        let label = format!("seed {seed}, dropout {p}, products {product:?}");
        check_every_chunk(&gpu, &case, dropout, product, &label);
    }
}

/// Runs every chunk of `case`'s first batch on an f32 engine and on the f64 reference.
/// `product`: the GEMM formulation forced on every product (else the tuner's picks).
fn check_every_chunk(
    gpu: &wgrnn::gpu::Gpu,
    case: &Case,
    dropout: Option<Dropout>,
    product: Option<GemmKernel>,
    label: &str,
) {
    let opt = OptimizerConfig::pytorch_defaults(OptimizerKind::Sgd);
    let mut engine = case.engine(gpu, opt);
    if let Some(kernel) = product {
        engine.force_gemm(kernel);
    }
    engine.set_dropout(dropout).unwrap();
    engine.set_training(true);
    check_chunks_against_reference(&mut engine, case, dropout, label, 1e-4);
}

fn optimizer_for(seed: u64) -> OptimizerConfig {
    let kind = [
        OptimizerKind::Sgd,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
    ][(seed % 3) as usize];
    let mut c = OptimizerConfig::pytorch_defaults(kind);
    c.lr = 0.01;
    if kind == OptimizerKind::Sgd {
        c.lr = 0.05;
        c.momentum = if seed.is_multiple_of(2) { 0.9 } else { 0.0 };
        if seed.is_multiple_of(4) {
            c.momentum_kind = Momentum::Nesterov;
        }
        c.weight_decay = if seed.is_multiple_of(5) { 0.01 } else { 0.0 };
    }
    if seed % 3 == 1 {
        c.clip_norm = Some(0.25);
    }
    c
}

/// The reference training loop: batches in order, chunks of seq_len, one step per chunk
/// with a loss, state reset per batch.
fn reference_training(
    case: &common::Case,
    opt: OptimizerConfig,
    batch: usize,
    epochs: usize,
) -> (Vec<f64>, Vec<f64>) {
    let cfg = case.config;
    let data = case.dataset();
    let mut params = to_f64(&case.params);
    let mut optimizer = RefOptimizer::new(opt, params.len());
    let mut losses = Vec::new();
    for epoch in 1..=epochs {
        for seqs in wgrnn::data::batches(data.n, batch, Order::InOrder, epoch) {
            let mut state = CarriedState::default();
            let ranges = chunk_ranges(data.max_len(&seqs), case.seq_len);
            for (i, range) in ranges.iter().enumerate() {
                let has_loss = cfg.task == TaskKind::ManyToMany || i + 1 == ranges.len();
                let host = ChunkData::gather(&data, &seqs, range.clone(), has_loss);
                let chunk = host.chunk(has_loss);
                let r = run_chunk(&cfg, &params, &chunk, &mut state, has_loss);
                if let (Some(l), Some(g)) = (r.loss, r.grads) {
                    losses.push(l);
                    optimizer.step(&mut params, &g);
                }
            }
        }
    }
    (params, losses)
}

#[test]
fn training_runs_match_reference_weights_and_losses() {
    let gpu = gpu();
    // Every cell on each seed: the 21 seeds cover every optimizer, loss, task and pool.
    for (seed, cell) in (0..21u64).flat_map(|s| [Cell::Rnn, Cell::Lstm, Cell::Gru].map(|c| (s, c)))
    {
        let case = random_case_with(seed + 100, cell);
        let opt = optimizer_for(seed);
        // Two batches (the last one smaller when the case allows) over two epochs.
        let batch = case.batch.div_ceil(2);
        let (want_params, want_losses) = reference_training(&case, opt, batch, 2);
        let mut engine =
            Engine::new(&gpu, case.config, opt, batch, case.seq_len, &case.params).unwrap();
        let opts = TrainOptions {
            log_every: 3,
            ..TrainOptions::new(2, batch, case.seq_len, Order::InOrder)
        };
        let report = train(
            &mut engine,
            &case.dataset(),
            None,
            &opts,
            TrainProgress::default(),
            &mut Silent,
        )
        .unwrap();
        let what = format!(
            "seed {seed}: {:?} with {:?}, batch {batch}, seq_len {}",
            case.config, opt, case.seq_len
        );
        assert_close(
            &format!("{what}: losses"),
            &report.losses,
            &want_losses,
            1e-4,
        );
        assert_close(
            &format!("{what}: final weights"),
            &engine.params().unwrap(),
            &want_params,
            1e-4,
        );
    }
}

#[test]
fn same_seed_gives_identical_bits() {
    let gpu = gpu();
    let run = || {
        let case = random_case(5);
        let opt = optimizer_for(1);
        let mut engine =
            Engine::new(&gpu, case.config, opt, 3, case.seq_len, &case.params).unwrap();
        let opts = TrainOptions {
            log_every: 1,
            ..TrainOptions::new(3, 3, case.seq_len, Order::Shuffled { seed: 9 })
        };
        let report = train(
            &mut engine,
            &case.dataset(),
            None,
            &opts,
            TrainProgress::default(),
            &mut Silent,
        )
        .unwrap();
        (engine.params().unwrap(), report.losses)
    };
    let (a, la) = run();
    let (b, lb) = run();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&a),
        bits(&b),
        "weights differ between two runs with the same seed"
    );
    assert_eq!(
        bits(&la),
        bits(&lb),
        "losses differ between two runs with the same seed"
    );
}

#[test]
fn builtin_task_loss_falls_on_the_adapter() {
    use wgrnn::data::{delayed_echo, DelayedEcho};
    use wgrnn::model::{Activation, InputKind, Loss, ModelConfig, OutputActivation, Pool};
    let gpu = gpu();
    let task = DelayedEcho {
        sequences: 128,
        steps: 32,
        vocab: 8,
        delay: 2,
    };
    let data = delayed_echo(&task, 1);
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
    let params = wgrnn::model::init_params(&config, 0);
    let mut engine = Engine::new(&gpu, config, opt, 16, 8, &params).unwrap();
    let opts = TrainOptions {
        log_every: 10,
        ..TrainOptions::new(4, 16, 8, Order::Shuffled { seed: 0 })
    };
    let report = train(
        &mut engine,
        &data,
        Some(&data),
        &opts,
        TrainProgress::default(),
        &mut Silent,
    )
    .unwrap();
    let first = report.epochs[0].train_loss;
    let last = report.epochs.last().unwrap().val.unwrap().loss;
    // Chance level is ln(8) = 2.08; the echo is learnable well below it.
    assert!(
        first > 0.0 && last < 0.5 * first && last < 1.0,
        "loss did not fall: first epoch {first}, last validation {last}"
    );
}

#[test]
fn padded_batch_equals_the_unpadded_sequences() {
    // Mean loss over a padded batch = the token-weighted mean of each sequence's own loss,
    // and likewise for the gradients: padding contributes nothing. For a bidirectional model
    // this holds only if the backward direction starts at each sequence's own last step.
    let gpu = gpu();
    let mut checked = 0;
    let archs = [
        (Cell::Rnn, 1, false),
        (Cell::Lstm, 1, true),
        (Cell::Gru, 2, true),
    ];
    for (seed, (cell, layers, bidirectional)) in (0..40u64).flat_map(|s| archs.map(|a| (s, a))) {
        let mut case = random_case_arch(seed, cell, layers, bidirectional);
        if case.config.task != TaskKind::ManyToMany || case.batch < 2 {
            continue;
        }
        checked += 1;
        let mut rng = wgrnn::rng::Rng::new(seed);
        case.lengths = (0..case.batch).map(|_| 1 + rng.below(case.steps)).collect();
        case.lengths[0] = case.steps;
        let cfg = case.config;
        let data = case.dataset();
        let opt = OptimizerConfig::pytorch_defaults(OptimizerKind::Sgd);
        let all: Vec<usize> = (0..case.batch).collect();
        let mut engine = Engine::new(&gpu, cfg, opt, case.batch, case.steps, &case.params).unwrap();
        let host = ChunkData::gather(&data, &all, 0..case.steps, true);
        engine
            .run_chunk(&host.chunk(true), ChunkMode::Gradients, 0)
            .unwrap();
        let padded_loss = engine.loss_at(0).unwrap() as f64;
        let padded_grads = engine.grads().unwrap();
        let (mut loss, mut grads, mut count) = (0.0, vec![0.0f64; padded_grads.len()], 0.0);
        for s in 0..case.batch {
            let len = case.lengths[s];
            let host = ChunkData::gather(&data, &[s], 0..len, true);
            engine
                .run_chunk(&host.chunk(true), ChunkMode::Gradients, 1)
                .unwrap();
            let n = host.chunk(true).loss_count(&cfg) as f64;
            loss += engine.loss_at(1).unwrap() as f64 * n;
            for (g, v) in grads.iter_mut().zip(engine.grads().unwrap()) {
                *g += v as f64 * n;
            }
            count += n;
        }
        let what = format!("seed {seed} ({cfg:?}), lengths {:?}", case.lengths);
        assert_close(
            &format!("{what}: loss"),
            &[padded_loss as f32],
            &[loss / count],
            1e-5,
        );
        let want: Vec<f64> = grads.iter().map(|g| g / count).collect();
        assert_close(&format!("{what}: gradients"), &padded_grads, &want, 1e-4);
    }
    assert!(checked >= 24, "only {checked} cases checked");
}

#[test]
fn every_recurrence_kernel_trains_to_the_same_bits() {
    // The autotuner may pick any kernel; all sum in the same order, so a run must not
    // depend on which one it picked.
    let gpu = gpu();
    let cells = [Cell::Rnn, Cell::Lstm, Cell::Gru];
    for (seed, cell) in [0u64, 3, 6, 9]
        .into_iter()
        .flat_map(|s| cells.map(|c| (s, c)))
    {
        let case = random_case_with(seed + 200, cell);
        let opt = optimizer_for(seed);
        let run = |kernel| case.trained_bits(&gpu, opt, RecurrenceKernels::both(kernel));
        let per_step = run(RecurrenceKernel::PerStep);
        let mut others = vec![RecurrenceKernel::Persistent];
        let gemms = wgrnn::ops::GemmKernel::candidates(&gpu);
        others.extend(gemms.iter().map(|&k| RecurrenceKernel::Gemm(k)));
        if cell == Cell::Rnn {
            // The Elman step finished in the product's store, the GPU kernels' too.
            others.extend(
                [wgrnn::ops::GemmKernel::Tiled, wgrnn::ops::GemmKernel::Wide]
                    .into_iter()
                    .chain(gemms.iter().copied())
                    .filter(|k| k.step_kernel().is_some())
                    .map(RecurrenceKernel::GemmFused),
            );
        }
        // A chunk's steps in one dispatch each way (the Elman cell's fused steps at these
        // sizes step by step; the gated cells' sweeps where H is a multiple of 4).
        if gemms.contains(&wgrnn::ops::GemmKernel::WindowQuads) {
            others.push(RecurrenceKernel::GemmSweep(
                wgrnn::ops::GemmKernel::WindowQuads,
            ));
        }
        for kernel in others {
            assert_eq!(
                per_step,
                run(kernel),
                "seed {seed}, {cell}: per-step and {kernel:?} recurrences trained to different weights"
            );
        }
        // A different formulation each way (the tuner picks each direction on its own).
        let last = RecurrenceKernel::Gemm(*gemms.last().expect("a GEMM candidate"));
        for kernels in [
            RecurrenceKernels {
                forward: RecurrenceKernel::Persistent,
                backward: last,
            },
            RecurrenceKernels {
                forward: last,
                backward: RecurrenceKernel::PerStep,
            },
        ] {
            assert_eq!(
                per_step,
                case.trained_bits(&gpu, opt, kernels),
                "seed {seed}, {cell}: per-step and {kernels:?} recurrences trained to different weights"
            );
        }
    }
}

/// A case of `config` (dense input, MSE targets) with `batch` sequences of `steps` steps
/// trained in chunks of `seq_len`: weights uniform in ±0.1, inputs and targets normal, all
/// from `seed`.
fn dense_case(config: ModelConfig, batch: usize, steps: usize, seq_len: usize, seed: u64) -> Case {
    config.validate().unwrap();
    let wgrnn::model::InputKind::Dense { size } = config.input else {
        panic!("a dense input");
    };
    let layout = wgrnn::model::ParamLayout::new(&config);
    let mut rng = wgrnn::rng::Rng::new(seed);
    let params: Vec<f32> = (0..layout.total)
        .map(|_| rng.uniform(-0.1, 0.1) as f32)
        .collect();
    let targets = if config.task == TaskKind::ManyToMany {
        batch * steps
    } else {
        batch
    };
    Case {
        config,
        batch,
        steps,
        seq_len,
        lengths: vec![steps; batch],
        params,
        tokens: vec![],
        features: (0..batch * steps * size)
            .map(|_| rng.normal() as f32)
            .collect(),
        classes: vec![],
        values: (0..targets * config.output_size)
            .map(|_| rng.normal() as f32)
            .collect(),
    }
}

#[test]
fn gated_quads_recurrences_train_to_the_per_step_bits() {
    // LSTM and GRU at a size where the quads GEMMs run their own kernels in the recurrence:
    // h[t] ([64, 256] f32) fills one 64 KiB window, W_hh ([4H or 3H, 256]) spans several,
    // and the backward products read the transposed copy of W_hh (the window kernels) or
    // W_hh itself, 4 k values of da[t + 1]'s rows a load (the outer kernel's A_ROWS loads,
    // with 4- and 8-byte storage words). Same sums in the same order: the weights after two
    // epochs equal the per-step kernel's, bit for bit.
    use wgrnn::model::{Activation, InputKind, Loss, ModelConfig, OutputActivation, Pool};
    use wgrnn::ops::GemmKernel;
    let gpu = gpu();
    let quads = [
        GemmKernel::WindowQuads,
        GemmKernel::WindowQuadsA,
        GemmKernel::OuterQuads,
        GemmKernel::OuterLongs,
    ];
    if !quads
        .iter()
        .all(|k| GemmKernel::candidates(&gpu).contains(k))
    {
        assert!(
            !gpu.adapter().is_software,
            "lavapipe must offer the quads GEMMs"
        );
        return;
    }
    let (batch, steps, size, out) = (64, 3, 8, 4);
    for cell in [Cell::Lstm, Cell::Gru] {
        let config = ModelConfig {
            cell,
            layers: 1,
            bidirectional: false,
            input: InputKind::Dense { size },
            hidden: 256,
            output_size: out,
            activation: Activation::Tanh,
            output_activation: OutputActivation::Identity,
            task: TaskKind::ManyToMany,
            pool: Pool::Last,
            loss: Loss::Mse,
        };
        let case = dense_case(config, batch, steps, steps, 31);
        let opt = optimizer_for(1);
        let run = |kernel| case.trained_bits(&gpu, opt, RecurrenceKernels::both(kernel));
        let per_step = run(RecurrenceKernel::PerStep);
        for kernel in quads {
            assert_eq!(
                per_step,
                run(RecurrenceKernel::Gemm(kernel)),
                "{cell}: per-step and Gemm({kernel:?}) recurrences trained to different weights"
            );
        }
    }
}

/// A one-layer model of `cell` with 8 dense inputs, 3 outputs and MSE.
fn sweep_config(
    cell: Cell,
    activation: wgrnn::model::Activation,
    task: TaskKind,
    hidden: usize,
) -> ModelConfig {
    use wgrnn::model::{InputKind, Loss, OutputActivation, Pool};
    ModelConfig {
        cell,
        layers: 1,
        bidirectional: false,
        input: InputKind::Dense { size: 8 },
        hidden,
        output_size: 3,
        activation,
        output_activation: OutputActivation::Identity,
        task,
        pool: Pool::Last,
        loss: Loss::Mse,
    }
}

/// A case of `config` with B 40 (a part tile of 32 sequences) and `steps` steps trained in
/// chunks of `chunk`, checked to train to the per-step kernel's weights, bit for bit, with
/// each of `kernels` (each computes the same sums in the same order).
fn assert_sweeps_train_to_the_per_step_bits(
    gpu: &wgrnn::gpu::Gpu,
    config: ModelConfig,
    (steps, chunk): (usize, usize),
    seed: u64,
    kernels: &[RecurrenceKernel],
) {
    let case = dense_case(config, 40, steps, chunk, seed);
    let opt = optimizer_for(1);
    let run = |kernel| case.trained_bits(gpu, opt, RecurrenceKernels::both(kernel));
    let per_step = run(RecurrenceKernel::PerStep);
    let ModelConfig {
        cell,
        activation,
        task,
        hidden,
        layers,
        bidirectional,
        ..
    } = config;
    for &kernel in kernels {
        assert_eq!(
            per_step,
            run(kernel),
            "{cell}, {activation}, {task:?}, H {hidden}, {layers} layers, bidirectional \
             {bidirectional}, chunks of {chunk} of {steps} steps: per-step and {kernel:?} \
             recurrences trained to different weights"
        );
    }
}

/// The window quads kernel's sweeps of a chunk in one dispatch (`GemmSweep`, and with 8-byte
/// storage words `GemmSweepLongs` where the adapter has 64-bit integers, as lavapipe does),
/// after `first`; None where the adapter has no quads kernels (not lavapipe: it must).
fn sweep_kernels(
    gpu: &wgrnn::gpu::Gpu,
    first: &[RecurrenceKernel],
) -> Option<Vec<RecurrenceKernel>> {
    use wgrnn::ops::GemmKernel;
    if !GemmKernel::candidates(gpu).contains(&GemmKernel::WindowQuads) {
        assert!(
            !gpu.adapter().is_software,
            "lavapipe must offer the quads GEMMs"
        );
        return None;
    }
    assert!(gpu.adapter().shader_int64 || !gpu.adapter().is_software);
    let mut kernels = first.to_vec();
    kernels.push(RecurrenceKernel::GemmSweep(GemmKernel::WindowQuads));
    if gpu.adapter().shader_int64 {
        kernels.push(RecurrenceKernel::GemmSweepLongs(GemmKernel::WindowQuads));
    }
    Some(kernels)
}

#[test]
fn elman_sweeps_train_to_the_per_step_bits() {
    // The Elman cell at a size where W_hh ([128, 128] f32) fills one 64 KiB window, so the
    // window quads steps of a sweep run in one dispatch reading it through the window; the
    // weights after two epochs equal the per-step kernel's and the step-by-step fused
    // dispatches', bit for bit. At H 24 the backward sweep's W_hhᵀ copy is smaller than a
    // window: it reads the copy from storage, with a window of a read-only operand bound in
    // its place (chunks of 18 steps: the gradients' buffers, 18·40·24 values, are larger
    // than a window).
    use wgrnn::model::Activation;
    let gpu = gpu();
    let fused = RecurrenceKernel::GemmFused(wgrnn::ops::GemmKernel::WindowQuads);
    let Some(kernels) = sweep_kernels(&gpu, &[fused]) else {
        return;
    };
    for (activation, task, hidden, steps) in [
        (Activation::Tanh, TaskKind::ManyToMany, 128, (6, 3)),
        (Activation::Relu, TaskKind::ManyToOne, 128, (6, 3)),
        (Activation::Tanh, TaskKind::ManyToMany, 24, (36, 18)),
    ] {
        let config = sweep_config(Cell::Rnn, activation, task, hidden);
        assert_sweeps_train_to_the_per_step_bits(&gpu, config, steps, 37, &kernels);
    }
}

#[test]
fn gated_sweeps_train_to_the_per_step_bits() {
    // LSTM and GRU steps of a chunk in one dispatch each way (`gated_quads_sweep_*`): H 36
    // leaves a part tile of units (32 + 4), H 64 is two whole ones; chunks of half the steps
    // carry the state (and the backward sweep's last step is its own kernel's). The weights
    // after two epochs equal the per-step kernel's, bit for bit.
    // (`gated_sweeps_run_in_one_dispatch_each_way` checks these shapes take the sweep.)
    use wgrnn::model::Activation;
    let gpu = gpu();
    let Some(kernels) = sweep_kernels(&gpu, &[]) else {
        return;
    };
    for (cell, hidden, steps, task) in [
        (Cell::Lstm, 36, (6, 3), TaskKind::ManyToMany),
        (Cell::Gru, 36, (6, 3), TaskKind::ManyToMany),
        (Cell::Lstm, 64, (4, 4), TaskKind::ManyToOne),
        (Cell::Gru, 64, (4, 4), TaskKind::ManyToOne),
        // One part tile of 4 units; chunks of 2, 2 and 1 steps (a backward sweep of one step,
        // and a chunk with none).
        (Cell::Gru, 4, (5, 2), TaskKind::ManyToMany),
    ] {
        let config = sweep_config(cell, Activation::Tanh, task, hidden);
        assert_sweeps_train_to_the_per_step_bits(&gpu, config, steps, 41, &kernels);
    }
    // Two layers each way (whole sequences a chunk): every layer and direction sweeps its own
    // weights and states.
    let config = ModelConfig {
        layers: 2,
        bidirectional: true,
        ..sweep_config(Cell::Lstm, Activation::Tanh, TaskKind::ManyToMany, 12)
    };
    assert_sweeps_train_to_the_per_step_bits(&gpu, config, (6, 6), 43, &kernels);
}

#[test]
fn gated_sweeps_run_in_one_dispatch_each_way() {
    // At the shapes of `gated_sweeps_train_to_the_per_step_bits`, the sweeps are one launch
    // forward and, backward, the W_hh copy, the last step's cell kernel and one launch; the
    // GEMM steps one by one are a product and a cell kernel a step (a sweep that fell back to
    // them would leave that test checking those only).
    use wgrnn::ops::{
        gated_backward, gated_forward, GatedBuffers, GatedShape, GemmKernel, Uniforms,
    };
    let gpu = gpu();
    if !GemmKernel::candidates(&gpu).contains(&GemmKernel::WindowQuads) {
        assert!(
            !gpu.adapter().is_software,
            "lavapipe must offer the quads GEMMs"
        );
        return;
    }
    for (cell, hidden, steps) in [(Cell::Lstm, 36, 3), (Cell::Gru, 36, 3), (Cell::Lstm, 64, 4)] {
        let (batch, gates) = (40, cell.gates());
        let gh = gates * hidden;
        let storage = |what: &str, values: usize| gpu.storage(what, (values * 4) as u64).unwrap();
        // Parameters as a one-layer model with 8 dense inputs lays them out (W_hh after W_ih).
        let whh_off = gh * 8;
        let params = storage("params", whh_off + gh * hidden + 2 * gh);
        let (pre, hs, cs) = (
            storage("pre", steps * batch * gh),
            storage("hs", (steps + 1) * batch * hidden),
            storage("cs", (steps + 1) * batch * hidden),
        );
        let (cache, dh_out, da, dhh) = (
            storage("cache", steps * batch * 4 * hidden),
            storage("dh_out", steps * batch * hidden),
            storage("da", steps * batch * gh),
            storage("dhh", steps * batch * gh),
        );
        let (dstate, step_sum, whh_t) = (
            storage("dstate", steps * batch * hidden),
            storage("step_sum", batch * gh),
            storage("whh_t", gh * hidden),
        );
        let buffers = GatedBuffers {
            params: &params,
            pre: &pre,
            hs: &hs,
            cs: &cs,
            cache: &cache,
            dh_out: &dh_out,
            da: &da,
            dhh: &dhh,
            dstate: &dstate,
            step_sum: &step_sum,
            whh_t: Some(&whh_t),
        };
        let shape = GatedShape {
            cell,
            steps,
            batch,
            hidden,
            whh_off,
            bhh_off: whh_off + gh * hidden + gh,
        };
        let mut u = Uniforms::new();
        for kernel in [
            RecurrenceKernel::GemmSweep(GemmKernel::WindowQuads),
            RecurrenceKernel::GemmSweepLongs(GemmKernel::WindowQuads),
        ] {
            let launches = gated_forward(&gpu, &mut u, &shape, kernel, &buffers).unwrap();
            assert_eq!(launches.len(), 1, "{cell} H {hidden}: {kernel:?} forward");
            let launches = gated_backward(&gpu, &mut u, &shape, kernel, &buffers).unwrap();
            assert_eq!(launches.len(), 3, "{cell} H {hidden}: {kernel:?} backward");
        }
        // The steps one by one: at least a launch a step each way.
        let steps_one_by_one = RecurrenceKernel::Gemm(GemmKernel::WindowQuads);
        let launches = gated_forward(&gpu, &mut u, &shape, steps_one_by_one, &buffers).unwrap();
        assert!(
            launches.len() >= 2 * steps,
            "{cell} H {hidden}: {} launches",
            launches.len()
        );
    }
}

#[test]
fn split_k_recurrences_match_the_reference() {
    // The recurrence's products split over K (Elman both ways, gated cells backward; the
    // tuner offers it on GPUs only), forced here on every adapter: every cell, stacked and
    // bidirectional, slices that divide K unevenly, against the f64 reference.
    let gpu = gpu();
    let archs = [(1, false), (2, false), (1, true)];
    let kernels = [
        RecurrenceKernel::GemmSplit(wgrnn::ops::GemmKernel::Tiled, 3),
        RecurrenceKernel::GemmSplit(wgrnn::ops::GemmKernel::TiledQuads, 2),
        RecurrenceKernel::GemmSplit(wgrnn::ops::GemmKernel::Wide, 8),
    ];
    for seed in 0..9u64 {
        let cell = [Cell::Rnn, Cell::Lstm, Cell::Gru][seed as usize % 3];
        let (layers, bidirectional) = archs[seed as usize / 3];
        let case = random_case_arch(seed + 900, cell, layers, bidirectional);
        let kernel = kernels[(seed as usize + seed as usize / 3) % 3];
        let opt = OptimizerConfig::pytorch_defaults(OptimizerKind::Sgd);
        let mut engine = case.engine(&gpu, opt);
        engine.force_recurrence(kernel);
        check_chunks_against_reference(
            &mut engine,
            &case,
            None,
            &format!("seed {seed}, {cell}, {kernel:?}"),
            1e-4,
        );
    }
}
