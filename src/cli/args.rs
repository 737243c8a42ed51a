//! Command-line flags shared by the commands, and their conversion into library configs.

use anyhow::{bail, Result};
use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;
use wgrnn::data::source::DataFormat;
use wgrnn::data::Dataset;
use wgrnn::model::{
    Activation, Cell, InputKind, Loss, ModelConfig, OutputActivation, Pool, TaskKind,
};
use wgrnn::model::{EMBEDDING, HEAD_WEIGHT, WEIGHT_HH, WEIGHT_IH};
use wgrnn::optim::{Momentum, OptimizerConfig, OptimizerKind};
use wgrnn::train::NonFinitePolicy;

fn parse<T: std::str::FromStr<Err = wgrnn::Error>>(s: &str) -> std::result::Result<T, String> {
    s.parse().map_err(|e: wgrnn::Error| e.to_string())
}

/// The model's architecture (PyTorch: embedding → nn.RNN/nn.LSTM/nn.GRU(batch_first=True) →
/// nn.Linear).
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Recurrent cell: rnn (Elman) | lstm | gru, with PyTorch's equations and weight layout
    #[arg(long, default_value = "rnn", value_parser = parse::<Cell>)]
    pub cell: Cell,
    /// Stacked recurrent layers (PyTorch's num_layers)
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    /// Read each sequence in both directions and concatenate the outputs (needs whole
    /// sequences per chunk: --seq-len at least the longest sequence)
    #[arg(long)]
    pub bidirectional: bool,
    /// Nonlinearity of the rnn cell: tanh | relu
    #[arg(long, default_value = "tanh", value_parser = parse::<Activation>)]
    pub activation: Activation,
    /// Float features per step (dense input)
    #[arg(long, conflicts_with = "vocab")]
    pub input_size: Option<usize>,
    /// Vocabulary size (token-id input through an embedding)
    #[arg(long)]
    pub vocab: Option<usize>,
    /// Embedding width (with --vocab)
    #[arg(long)]
    pub embed: Option<usize>,
    /// Hidden units of the RNN [default: 64, or the --init file's]
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Outputs of the linear head (classes, or values per output)
    #[arg(long)]
    pub output_size: Option<usize>,
    /// Activation on the head's output: identity | relu | sigmoid | softmax (default: the one the loss is fused with)
    #[arg(long, value_parser = parse::<OutputActivation>)]
    pub output_activation: Option<OutputActivation>,
    /// many-to-many (output at every step) | many-to-one (one output per sequence)
    #[arg(long, value_parser = parse::<TaskKind>)]
    pub task: Option<TaskKind>,
    /// Many-to-one pooling of hidden states: last | mean | max
    #[arg(long, default_value = "last", value_parser = parse::<Pool>)]
    pub pool: Pool,
    /// cross-entropy (softmax) | bce (sigmoid) | mse | mae
    #[arg(long, default_value = "cross-entropy", value_parser = parse::<Loss>)]
    pub loss: Loss,
}

impl ModelArgs {
    /// The model config. Sizes the flags leave out come from the initial weights' shapes
    /// (`init`: PyTorch names), then from `data`, then from defaults.
    pub fn config(
        &self,
        data: Option<&Dataset>,
        init: Option<&HashMap<String, Vec<usize>>>,
    ) -> Result<ModelConfig> {
        let shape = |name: &str, dim: usize| {
            init.and_then(|m| m.get(name))
                .and_then(|s| s.get(dim))
                .copied()
        };
        let mut args = self.clone();
        args.vocab = args.vocab.or(if args.input_size.is_none() {
            shape(EMBEDDING, 0)
        } else {
            None
        });
        args.embed = args.embed.or(shape(EMBEDDING, 1));
        if args.vocab.is_none() && args.input_size.is_none() && data.is_none() {
            args.input_size = shape(WEIGHT_IH, 1);
        }
        args.output_size = args.output_size.or(shape(HEAD_WEIGHT, 0));
        // weight_hh_l0 is [G·H, H] for every cell.
        let hidden = args.hidden.or(shape(WEIGHT_HH, 1)).unwrap_or(64);
        args.build(data, hidden)
    }

    fn build(&self, data: Option<&Dataset>, hidden: usize) -> Result<ModelConfig> {
        let input = match (self.input_size, self.vocab, data.map(|d| &d.inputs)) {
            (Some(size), None, _) => InputKind::Dense { size },
            (None, Some(vocab), _) => InputKind::Tokens { vocab, embed: self.embed.unwrap_or(32) },
            (None, None, Some(wgrnn::data::Inputs::Dense { size, .. })) => InputKind::Dense { size: *size },
            (None, None, Some(wgrnn::data::Inputs::Tokens { .. })) => InputKind::Tokens {
                vocab: data.and_then(|d| d.vocab_needed()).unwrap_or(1),
                embed: self.embed.unwrap_or(32),
            },
            (None, None, None) => bail!("give the input: --input-size I (float features) or --vocab V [--embed D] (token ids)"),
            (Some(_), Some(_), _) => bail!("--input-size and --vocab exclude each other"),
        };
        let output_size = match (self.output_size, data) {
            (Some(o), _) => o,
            (None, Some(d)) => d.outputs_needed(),
            (None, None) => bail!("give --output-size (classes, or values per output)"),
        };
        let task = match (self.task, data) {
            (Some(t), _) => t,
            (None, Some(d)) if !d.targets.per_step() => TaskKind::ManyToOne,
            _ => TaskKind::ManyToMany,
        };
        let config = ModelConfig {
            cell: self.cell,
            layers: self.layers,
            bidirectional: self.bidirectional,
            input,
            hidden,
            output_size,
            activation: self.activation,
            output_activation: self
                .output_activation
                .unwrap_or(ModelConfig::default_output_activation(self.loss)),
            task,
            pool: self.pool,
            loss: self.loss,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Optimizer flags, with PyTorch's defaults.
#[derive(Args, Debug, Clone)]
pub struct OptimizerArgs {
    /// sgd | adam | adamw
    #[arg(long, default_value = "adam", value_parser = parse::<OptimizerKind>)]
    pub optimizer: OptimizerKind,
    /// Learning rate (PyTorch's default 1e-3)
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD momentum
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f64,
    /// SGD with Nesterov momentum
    #[arg(long)]
    pub nesterov: bool,
    /// L2 penalty (sgd, adam) or decoupled decay (adamw; default 1e-2)
    #[arg(long)]
    pub weight_decay: Option<f64>,
    #[arg(long, default_value_t = 0.9)]
    pub beta1: f64,
    #[arg(long, default_value_t = 0.999)]
    pub beta2: f64,
    #[arg(long, default_value_t = 1e-8)]
    pub eps: f64,
    /// Clip the global gradient norm to this (torch.nn.utils.clip_grad_norm_)
    #[arg(long)]
    pub clip_norm: Option<f64>,
}

impl OptimizerArgs {
    pub fn config(&self, default_lr: f64) -> Result<OptimizerConfig> {
        let mut c = OptimizerConfig::pytorch_defaults(self.optimizer);
        c.lr = self.lr.unwrap_or(default_lr);
        c.momentum = self.momentum;
        c.momentum_kind = if self.nesterov {
            Momentum::Nesterov
        } else {
            Momentum::Classic
        };
        if let Some(wd) = self.weight_decay {
            c.weight_decay = wd;
        }
        c.beta1 = self.beta1;
        c.beta2 = self.beta2;
        c.eps = self.eps;
        c.clip_norm = self.clip_norm;
        c.validate()?;
        Ok(c)
    }
}

/// Data, schedule and output flags of `wgrnn train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Training data (safetensors, CoNLL-U, text or CSV; see --format) [default: the bundled EWT sample]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Validation data, same format
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Initial weights (safetensors, PyTorch names)
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// LSTM only: initialise the forget gate's bias to this value (bias_ih_l0's f block; the
    /// f block of bias_hh_l0 is set to 0). Off by default, as in PyTorch
    #[arg(long)]
    pub forget_bias: Option<f32>,
    /// Where to save the final weights (safetensors, PyTorch names)
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Text and CSV: without --val, hold out this final fraction for validation
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
    /// CSV: the target column (name or 0-based index) [default: the last column]
    #[arg(long)]
    pub target: Option<String>,
    /// CSV: feature columns, comma-separated [default: the target alone]
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,
    /// CSV: steps in each input window
    #[arg(long, default_value_t = 30)]
    pub window: usize,
    /// CSV: predict the target this many steps after the window's last step
    #[arg(long, default_value_t = 1)]
    pub horizon: usize,
    /// Data format: auto (from the extension) | safetensors | conllu | text | csv
    #[arg(long, default_value = "auto", value_parser = parse::<DataFormat>)]
    pub format: DataFormat,
    /// Words seen fewer times in the training data are replaced by their word-shape signature
    #[arg(long, default_value_t = 2)]
    pub min_count: usize,
    /// Look words up in lower case (signatures keep the case information)
    #[arg(long)]
    pub lowercase: bool,
    /// Dropout probability between stacked layers, in training (PyTorch's dropout; needs
    /// --layers 2 or more). Masks are keyed by --seed, the step and the layer
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f32,
    /// Storage of weights copies and activations: f32, or f16 (needs the adapter's
    /// shader-f16 and an even --hidden; master weights, gradients, optimizer and every sum
    /// stay f32). A resumed run keeps its checkpoint's precision
    #[arg(long, default_value = "f32")]
    pub precision: wgrnn::engine::Precision,
    /// Truncated-BPTT chunk length K: steps 1..K, K+1..2K, ... (default: whole sequences)
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Sequences per batch, or `auto`: the largest batch whose buffers fit the adapter's
    /// limits (at most the number of sequences)
    #[arg(long, default_value = "32", value_parser = parse_batch)]
    pub batch: BatchSize,
    /// Maximum number of epochs [default: 10; with --resume, the checkpoint's]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed for initialisation and shuffling
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Take batches in file order instead of shuffling every epoch
    #[arg(long)]
    pub no_shuffle: bool,
    /// Print the mean loss every N iterations
    #[arg(long, default_value_t = 50)]
    pub log_every: usize,
    /// Early stopping: the smallest improvement that counts
    #[arg(long)]
    pub min_delta: Option<f64>,
    /// Early stopping: epochs without such an improvement before stopping (default 1 with --min-delta)
    #[arg(long)]
    pub patience: Option<usize>,
    /// Multiply the learning rate by this factor (0 < F < 1) after --lr-patience epochs
    /// without an improvement of the monitored value of more than --min-delta (PyTorch's
    /// ReduceLROnPlateau)
    #[arg(long, value_parser = parse_lr_decay)]
    pub lr_decay: Option<f64>,
    /// Epochs without improvement before each --lr-decay cut
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub lr_patience: u64,
    /// What early stopping and --restore-best watch (validation if given): loss | metric
    #[arg(long, default_value = "loss", value_parser = ["loss", "metric"])]
    pub monitor: String,
    /// A non-finite loss or gradient (that step is always skipped): stop | skip | rollback
    /// (to the epoch's start, with half the learning rate)
    #[arg(long, default_value = "rollback", value_parser = parse::<NonFinitePolicy>)]
    pub on_nonfinite: NonFinitePolicy,
    /// At the end, go back to the weights of the best epoch (by --monitor)
    #[arg(long)]
    pub restore_best: bool,
    /// Save a checkpoint (weights, optimizer state, vocabularies, progress) here every epoch
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Continue the training saved in this checkpoint directory, exactly where it stopped
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Append one JSON object per logged iteration and per epoch to this file
    #[arg(long)]
    pub log_json: Option<PathBuf>,
    /// Draw the loss and metric curves into this file at the end (.svg or .png)
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// `--batch N` or `--batch auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchSize {
    Auto,
    Fixed(usize),
}

pub fn parse_batch(s: &str) -> std::result::Result<BatchSize, String> {
    match s {
        "auto" => Ok(BatchSize::Auto),
        n => n
            .parse()
            .map(BatchSize::Fixed)
            .map_err(|_| format!("--batch takes a number or `auto`, not {n:?}")),
    }
}

fn parse_lr_decay(s: &str) -> std::result::Result<f64, String> {
    let f: f64 = s
        .parse()
        .map_err(|_| format!("--lr-decay {s:?} is not a number"))?;
    if f > 0.0 && f < 1.0 {
        Ok(f)
    } else {
        Err(format!("--lr-decay {f} must be above 0 and below 1"))
    }
}
