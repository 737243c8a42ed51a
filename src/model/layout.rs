//! Where each named tensor lives in the flat parameter buffer. Parameters, gradients
//! and optimizer moments share this layout, in PyTorch's `model.parameters()` order.

use super::config::{InputKind, ModelConfig};

/// One named tensor: PyTorch name, shape, and element offset in the flat buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamTensor {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub offset: usize,
}

impl ParamTensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// The flat layout of every trainable tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    pub tensors: Vec<ParamTensor>,
    pub total: usize,
}

pub const EMBEDDING: &str = "embedding.weight";
pub const WEIGHT_IH: &str = "rnn.weight_ih_l0";
pub const WEIGHT_HH: &str = "rnn.weight_hh_l0";
pub const BIAS_IH: &str = "rnn.bias_ih_l0";
pub const BIAS_HH: &str = "rnn.bias_hh_l0";
pub const HEAD_WEIGHT: &str = "head.weight";
pub const HEAD_BIAS: &str = "head.bias";

impl ParamLayout {
    pub fn new(config: &ModelConfig) -> Self {
        let (h, o, i) = (config.hidden, config.output_size, config.input_width());
        // Gate blocks stacked row-wise, in PyTorch's order (LSTM i|f|g|o, GRU r|z|n).
        let gh = config.cell.gates() * h;
        let mut shapes: Vec<(&'static str, Vec<usize>)> = Vec::new();
        if let InputKind::Tokens { vocab, embed } = config.input {
            shapes.push((EMBEDDING, vec![vocab, embed]));
        }
        shapes.push((WEIGHT_IH, vec![gh, i]));
        shapes.push((WEIGHT_HH, vec![gh, h]));
        shapes.push((BIAS_IH, vec![gh]));
        shapes.push((BIAS_HH, vec![gh]));
        shapes.push((HEAD_WEIGHT, vec![o, h]));
        shapes.push((HEAD_BIAS, vec![o]));
        let mut offset = 0;
        let tensors = shapes
            .into_iter()
            .map(|(name, shape)| {
                let t = ParamTensor {
                    name,
                    shape,
                    offset,
                };
                offset += t.len();
                t
            })
            .collect();
        Self {
            tensors,
            total: offset,
        }
    }

    /// The tensor named `name`, if this model has it.
    pub fn get(&self, name: &str) -> Option<&ParamTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Element offset of `name`; panics only on a programming error (a name this
    /// architecture always has).
    pub fn offset(&self, name: &str) -> usize {
        self.get(name)
            .unwrap_or_else(|| panic!("layout has no tensor {name}"))
            .offset
    }
}
