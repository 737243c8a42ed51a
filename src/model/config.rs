//! Model configuration: cell, sizes, task, head and loss, with the checks that reject
//! combinations that make no sense.

use crate::error::{Error, Result};

macro_rules! cli_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }
        impl $name {
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            pub fn name(self) -> &'static str { match self { $(Self::$variant => $text),+ } }
        }
        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s { $($text => Ok(Self::$variant),)+
                    _ => Err(Error::Config(format!("unknown {} {s:?}; expected one of: {}",
                        stringify!($name), Self::NAMES.join(", ")))) }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.name()) }
        }
    };
}
pub(crate) use cli_enum;

cli_enum!(
    /// The recurrent cell: PyTorch's nn.RNN (Elman), nn.LSTM or nn.GRU.
    Cell { Rnn => "rnn", Lstm => "lstm", Gru => "gru" }
);

// cli_enum! declares the variants, so #[default] cannot be put on one.
#[allow(clippy::derivable_impls)]
impl Default for Cell {
    fn default() -> Self {
        Cell::Rnn
    }
}

impl Cell {
    /// Gate blocks stacked in the cell's weight matrices (`weight_ih_l0` is `[G·H, I]`):
    /// 1 for the Elman RNN, 4 for LSTM (i, f, g, o), 3 for GRU (r, z, n).
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
    /// Whether the cell is gated (LSTM or GRU) rather than the Elman RNN.
    pub fn is_gated(self) -> bool {
        self != Cell::Rnn
    }
}

cli_enum!(
    /// The recurrent cell's nonlinearity (PyTorch's `nonlinearity`).
    Activation { Tanh => "tanh", Relu => "relu" }
);
cli_enum!(
    /// What the head's output goes through before the loss.
    OutputActivation { Identity => "identity", Relu => "relu", Sigmoid => "sigmoid", Softmax => "softmax" }
);
cli_enum!(
    /// The training loss, each with PyTorch's default mean reduction.
    Loss { CrossEntropy => "cross-entropy", Bce => "bce", Mse => "mse", Mae => "mae" }
);
cli_enum!(
    /// How a many-to-one model turns the hidden states into one vector per sequence.
    Pool { Last => "last", Mean => "mean", Max => "max" }
);
cli_enum!(
    /// Whether the model emits an output at every step or once per sequence.
    TaskKind { ManyToMany => "many-to-many", ManyToOne => "many-to-one" }
);

/// What the model reads at each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InputKind {
    /// `size` float features per step.
    Dense { size: usize },
    /// Token ids below `vocab`, looked up in an embedding of width `embed`.
    Tokens { vocab: usize, embed: usize },
}

fn one() -> usize {
    1
}

/// The whole architecture: embedding (optional) → `layers` recurrent layers (RNN, LSTM or
/// GRU; each optionally bidirectional) → linear head → loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelConfig {
    /// The recurrent cell (absent in checkpoints from before LSTM and GRU: rnn).
    #[serde(default)]
    pub cell: Cell,
    /// Stacked recurrent layers (PyTorch's num_layers; absent in older checkpoints: 1).
    #[serde(default = "one")]
    pub layers: usize,
    /// Each layer reads the sequence in both directions, outputs concatenated.
    #[serde(default)]
    pub bidirectional: bool,
    pub input: InputKind,
    pub hidden: usize,
    pub output_size: usize,
    pub activation: Activation,
    pub output_activation: OutputActivation,
    pub task: TaskKind,
    pub pool: Pool,
    pub loss: Loss,
}

impl ModelConfig {
    /// The width of the first recurrent layer's input (features, or the embedding width).
    pub fn input_width(&self) -> usize {
        match self.input {
            InputKind::Dense { size } => size,
            InputKind::Tokens { embed, .. } => embed,
        }
    }

    /// 2 for a bidirectional model, else 1.
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// The width of a layer's output: the hidden size times the directions (what the head,
    /// and every layer after the first, reads).
    pub fn output_width(&self) -> usize {
        self.directions() * self.hidden
    }

    /// The input width of layer `layer`.
    pub fn layer_input_width(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input_width()
        } else {
            self.output_width()
        }
    }

    /// Whether the model is the single forward layer whose hidden states feed the head
    /// directly (no per-layer output buffers).
    pub fn is_single_layer(&self) -> bool {
        self.layers == 1 && !self.bidirectional
    }

    /// The output activation that goes with `loss` when none is named.
    pub fn default_output_activation(loss: Loss) -> OutputActivation {
        match loss {
            Loss::CrossEntropy => OutputActivation::Softmax,
            Loss::Bce => OutputActivation::Sigmoid,
            Loss::Mse | Loss::Mae => OutputActivation::Identity,
        }
    }

    /// Rejects sizes of zero and loss/activation pairs that make no sense.
    pub fn validate(&self) -> Result<()> {
        let positive = |what: &str, v: usize| {
            if v == 0 {
                Err(Error::Config(format!("{what} must be at least 1")))
            } else {
                Ok(())
            }
        };
        match self.input {
            InputKind::Dense { size } => positive("--input-size", size)?,
            InputKind::Tokens { vocab, embed } => {
                positive("--vocab", vocab)?;
                positive("--embed", embed)?;
            }
        }
        positive("--hidden", self.hidden)?;
        positive("--layers", self.layers)?;
        positive("--output-size", self.output_size)?;
        if self.cell.is_gated() && self.activation != Activation::Tanh {
            return Err(Error::Config(format!(
                "--activation {} applies to the rnn cell only; {} has its own fixed gate functions",
                self.activation, self.cell
            )));
        }
        // Every tensor (and the whole flat buffer) is indexed with 32 bits in the kernels.
        let (h, o, i) = (
            self.hidden as u128,
            self.output_size as u128,
            self.input_width() as u128,
        );
        let embedding = match self.input {
            InputKind::Tokens { vocab, embed } => vocab as u128 * embed as u128,
            InputKind::Dense { .. } => 0,
        };
        let g = self.cell.gates() as u128;
        let (d, layers) = (self.directions() as u128, self.layers as u128);
        let first = d * g * h * (i + h + 2);
        let later = (layers - 1) * d * g * h * (d * h + h + 2);
        let total = embedding + first + later + o * d * h + o;
        if total > u32::MAX as u128 {
            return Err(Error::Config(format!(
                "the model would have {total} parameters; at most {} fit the kernels' 32-bit indices",
                u32::MAX
            )));
        }
        let act = self.output_activation;
        match (self.loss, act) {
            (Loss::CrossEntropy, OutputActivation::Softmax) => {
                if self.output_size < 2 {
                    return Err(Error::Config(
                        "--loss cross-entropy needs --output-size of at least 2 classes".into(),
                    ));
                }
            }
            (Loss::CrossEntropy, _) => {
                return Err(Error::Config(format!(
                    "--loss cross-entropy is fused with softmax; --output-activation {act} does not go with it \
                     (use softmax, or mse/mae for regression)"
                )))
            }
            (Loss::Bce, OutputActivation::Sigmoid) => {}
            (Loss::Bce, _) => {
                return Err(Error::Config(format!(
                    "--loss bce is fused with sigmoid; --output-activation {act} does not go with it"
                )))
            }
            (Loss::Mse | Loss::Mae, OutputActivation::Softmax) => {
                return Err(Error::Config(format!(
                    "--output-activation softmax goes with --loss cross-entropy, not {}",
                    self.loss
                )))
            }
            (Loss::Mse | Loss::Mae, _) => {}
        }
        Ok(())
    }

    /// True when targets are integer class ids (cross-entropy), false for float targets.
    pub fn class_targets(&self) -> bool {
        self.loss == Loss::CrossEntropy
    }
}
