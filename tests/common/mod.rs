//! Shared test helpers: the adapter (fail loudly when none), random model cases, and
//! comparison with the failing index in the message.
#![allow(dead_code, unused_imports)]

pub mod cli;

use wgrnn::gpu::{AdapterChoice, Gpu};
use wgrnn::model::{
    Activation, Cell, InputKind, Loss, ModelConfig, OutputActivation, ParamLayout, Pool, TaskKind,
};
use wgrnn::rng::Rng;

/// The adapter named by WGRNN_ADAPTER (default auto). Panics, never skips, when none exists.
pub fn gpu() -> Gpu {
    gpu_with_checks(wgrnn::gpu::ShaderChecks::from_env().expect("valid WGRNN_SHADER_CHECKS"))
}

/// [`gpu`] with its kernels compiled with `checks`.
pub fn gpu_with_checks(checks: wgrnn::gpu::ShaderChecks) -> Gpu {
    isolate_tuning_cache();
    let choice: AdapterChoice = std::env::var("WGRNN_ADAPTER")
        .unwrap_or_else(|_| "auto".into())
        .parse()
        .expect("valid WGRNN_ADAPTER");
    match Gpu::with_shader_checks(&choice, checks) {
        Ok(g) => g,
        Err(e) => panic!("GPU tests need an adapter and none could be opened: {e}"),
    }
}

/// Tests neither read nor write the user's tuning cache (`~/.cache/wgrnn/tuning.json`): a
/// decision measured by a test on a busy machine would be reused by later real runs, and a
/// cached one would let a test skip the measuring it means to exercise. The commands that
/// tests spawn get `WGRNN_TUNING_CACHE=off` the same way (or a file of the test's own).
pub fn isolate_tuning_cache() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Set before this process opens an adapter or starts an engine, under the Once.
    ONCE.call_once(|| std::env::set_var("WGRNN_TUNING_CACHE", "off"));
}

/// Max-norm relative error: max_i |got_i - want_i| / max_i |want_i| (absolute when want is
/// all zeros). Panics with the worst index when it exceeds `tol`.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} != {}",
        got.len(),
        want.len()
    );
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let scale = if scale == 0.0 { 1.0 } else { scale };
    let (mut worst, mut at) = (0.0f64, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let e = if g.is_finite() {
            (g as f64 - w).abs() / scale
        } else {
            f64::INFINITY
        };
        if e > worst {
            worst = e;
            at = i;
        }
    }
    assert!(
        worst <= tol,
        "{what}: relative error {worst:.3e} > {tol:.0e} at index {at} (got {}, want {}, scale {scale:.3e})",
        got[at],
        want[at]
    );
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A random model and data covering activations, tasks, pools, losses and input kinds,
/// with sizes that are not multiples of any tile.
#[derive(Clone, Debug)]
pub struct Case {
    pub config: ModelConfig,
    pub batch: usize,
    pub steps: usize,
    pub seq_len: usize,
    /// Valid steps of each sequence (padding after); every third case has ragged lengths.
    pub lengths: Vec<usize>,
    pub params: Vec<f32>,
    pub tokens: Vec<u32>,   // [N=batch, T]
    pub features: Vec<f32>, // [N, T, I]
    pub classes: Vec<u32>,  // [N, T] or [N]
    pub values: Vec<f32>,   // [N, T, O] or [N, O]
}

pub fn random_case(seed: u64) -> Case {
    random_case_with(seed, Cell::Rnn)
}

/// [`random_case`] with the given recurrent cell (gated cells always use tanh).
pub fn random_case_with(seed: u64, cell: Cell) -> Case {
    random_case_arch(seed, cell, 1, false)
}

/// [`random_case_with`] with `layers` stacked layers, optionally bidirectional (then the
/// chunks hold whole sequences: seq_len = steps).
pub fn random_case_arch(seed: u64, cell: Cell, layers: usize, bidirectional: bool) -> Case {
    let mut rng = Rng::new(seed * 7919 + 17);
    let mut range = |lo: usize, hi: usize| lo + rng_below(&mut rng, hi - lo + 1);
    let activation = if seed.is_multiple_of(2) || cell.is_gated() {
        Activation::Tanh
    } else {
        Activation::Relu
    };
    let task = if (seed / 2).is_multiple_of(2) {
        TaskKind::ManyToMany
    } else {
        TaskKind::ManyToOne
    };
    let loss = [Loss::CrossEntropy, Loss::Bce, Loss::Mse, Loss::Mae][(seed / 4 % 4) as usize];
    let pool = [Pool::Last, Pool::Mean, Pool::Max][(seed / 3 % 3) as usize];
    let output_activation = match loss {
        Loss::CrossEntropy => OutputActivation::Softmax,
        Loss::Bce => OutputActivation::Sigmoid,
        _ => [
            OutputActivation::Identity,
            OutputActivation::Relu,
            OutputActivation::Sigmoid,
        ][(seed / 5 % 3) as usize],
    };
    let input = if seed.is_multiple_of(3) {
        InputKind::Dense { size: range(1, 11) }
    } else {
        InputKind::Tokens {
            vocab: range(2, 13),
            embed: range(1, 9),
        }
    };
    let hidden = range(1, 37);
    let output_size = if loss == Loss::CrossEntropy {
        range(2, 9)
    } else {
        range(1, 5)
    };
    let batch = range(1, 7);
    let steps = range(2, 9);
    let seq_len = if bidirectional {
        steps
    } else {
        range(1, steps)
    };
    let config = ModelConfig {
        cell,
        layers,
        bidirectional,
        input,
        hidden,
        output_size,
        activation,
        output_activation,
        task,
        pool,
        loss,
    };
    config.validate().expect("valid random config");
    let layout = ParamLayout::new(&config);
    let mut rng = Rng::new(seed ^ 0xabcdef);
    let params: Vec<f32> = (0..layout.total)
        .map(|_| rng.uniform(-0.6, 0.6) as f32)
        .collect();
    let n_out = if task == TaskKind::ManyToMany {
        batch * steps
    } else {
        batch
    };
    let (tokens, features) = match input {
        InputKind::Tokens { vocab, .. } => (
            (0..batch * steps)
                .map(|_| rng_below(&mut rng, vocab) as u32)
                .collect(),
            vec![],
        ),
        InputKind::Dense { size } => (
            vec![],
            (0..batch * steps * size)
                .map(|_| rng.normal() as f32)
                .collect(),
        ),
    };
    let classes = if loss == Loss::CrossEntropy {
        (0..n_out)
            .map(|_| rng_below(&mut rng, output_size) as u32)
            .collect()
    } else {
        vec![]
    };
    let values = match loss {
        Loss::CrossEntropy => vec![],
        Loss::Bce => (0..n_out * output_size)
            .map(|_| rng.next_f64() as f32)
            .collect(),
        _ => (0..n_out * output_size)
            .map(|_| rng.normal() as f32)
            .collect(),
    };
    let lengths = if seed % 3 == 1 {
        (0..batch).map(|_| 1 + rng_below(&mut rng, steps)).collect()
    } else {
        vec![steps; batch]
    };
    Case {
        config,
        batch,
        steps,
        seq_len,
        lengths,
        params,
        tokens,
        features,
        classes,
        values,
    }
}

fn rng_below(rng: &mut Rng, n: usize) -> usize {
    rng.below(n)
}

impl Case {
    /// An f32 engine for the case's model and weights, sized for its batch and chunk length.
    pub fn engine<'g>(
        &self,
        gpu: &'g Gpu,
        opt: wgrnn::optim::OptimizerConfig,
    ) -> wgrnn::engine::Engine<'g> {
        wgrnn::engine::Engine::new(
            gpu,
            self.config,
            opt,
            self.batch,
            self.seq_len,
            &self.params,
        )
        .unwrap()
    }

    /// The bits of the case's weights after two epochs in order with `kernels` for every
    /// recurrence (forward and backward sweeps).
    pub fn trained_bits(
        &self,
        gpu: &Gpu,
        opt: wgrnn::optim::OptimizerConfig,
        kernels: wgrnn::engine::RecurrenceKernels,
    ) -> Vec<u32> {
        let mut engine = self.engine(gpu, opt);
        engine.force_recurrences(kernels);
        self.train_bits(engine)
    }

    /// Trains `engine` on the case for two epochs in order; the bits of its weights.
    pub fn train_bits(&self, mut engine: wgrnn::engine::Engine) -> Vec<u32> {
        use wgrnn::train::{train, Silent, TrainOptions, TrainProgress};
        let opts = TrainOptions::new(2, self.batch, self.seq_len, wgrnn::data::Order::InOrder);
        train(
            &mut engine,
            &self.dataset(),
            None,
            &opts,
            TrainProgress::default(),
            &mut Silent,
        )
        .unwrap();
        engine
            .params()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect()
    }

    /// The case as a dataset (N = batch sequences), for the batcher.
    pub fn dataset(&self) -> wgrnn::data::Dataset {
        use wgrnn::data::{Dataset, Inputs, Targets};
        let per_step = self.config.task == TaskKind::ManyToMany;
        let inputs = match self.config.input {
            InputKind::Tokens { .. } => Inputs::Tokens {
                ids: self.tokens.clone(),
            },
            InputKind::Dense { size } => Inputs::Dense {
                values: self.features.clone(),
                size,
            },
        };
        let targets = if self.config.loss == Loss::CrossEntropy {
            Targets::Classes {
                ids: self.classes.clone(),
                per_step,
            }
        } else {
            Targets::Values {
                values: self.values.clone(),
                width: self.config.output_size,
                per_step,
            }
        };
        Dataset {
            n: self.batch,
            steps: self.steps,
            lengths: self.lengths.clone(),
            inputs,
            targets,
        }
    }
}

/// Runs every chunk of `case`'s first batch on `engine` (gradient chunks, so no optimizer
/// step: every chunk's dropout key is step 0) and on the f64 reference, and compares the
/// carried states, losses and gradients within `tol`. Returns what the engine gave, chunk
/// by chunk (carried state, then loss and gradients where the chunk has a loss).
pub fn check_chunks_against_reference(
    engine: &mut wgrnn::engine::Engine<'_>,
    case: &Case,
    dropout: Option<wgrnn::dropout::Dropout>,
    label: &str,
    tol: f64,
) -> Vec<Vec<f32>> {
    use wgrnn::data::{chunk_ranges, ChunkData};
    use wgrnn::engine::ChunkMode;
    use wgrnn::reference::{run_chunk_with, CarriedState};
    let cfg = case.config;
    let data = case.dataset();
    let seqs: Vec<usize> = (0..case.batch).collect();
    let params64 = to_f64(&case.params);
    let key = dropout.map(|d| (d, 0u32));
    let mut state = CarriedState::default();
    let mut outputs = Vec::new();
    let ranges = chunk_ranges(data.max_len(&seqs), case.seq_len);
    for (i, range) in ranges.iter().enumerate() {
        let has_loss = cfg.task == TaskKind::ManyToMany || i + 1 == ranges.len();
        let mode = if has_loss {
            ChunkMode::Gradients
        } else {
            ChunkMode::Carry
        };
        let host = ChunkData::gather(&data, &seqs, range.clone(), has_loss);
        let chunk = host.chunk(has_loss);
        engine.run_chunk(&chunk, mode, i).unwrap();
        let want = run_chunk_with(&cfg, &params64, &chunk, &mut state, has_loss, key);
        let what = format!(
            "{label}, chunk {i} {range:?} of {cfg:?}, batch {}",
            case.batch
        );
        let mut got = engine.carried(case.batch).unwrap().0;
        assert_close(
            &format!("{what}: carried state"),
            &got,
            &[state.hidden.clone(), state.cell.clone()].concat(),
            tol,
        );
        if has_loss {
            let loss = engine.loss_at(i).unwrap();
            assert_close(
                &format!("{what}: loss"),
                &[loss],
                &[want.loss.unwrap()],
                tol,
            );
            let grads = engine.grads().unwrap();
            assert_close(
                &format!("{what}: gradients"),
                &grads,
                &want.grads.unwrap(),
                tol,
            );
            got.push(loss);
            got.extend(grads);
        }
        outputs.push(got);
    }
    outputs
}
