//! Where each named tensor lives in the flat parameter buffer. Parameters, gradients
//! and optimizer moments share this layout, in PyTorch's `model.parameters()` order:
//! embedding, then per layer and direction `rnn.weight_ih_lK`, `weight_hh_lK`, `bias_ih_lK`,
//! `bias_hh_lK` (`_reverse` for the backward direction), then the head.

use super::config::{InputKind, ModelConfig};
use std::collections::HashMap;
use std::sync::Mutex;

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

/// One recurrent unit: a layer read in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Unit {
    pub layer: usize,
    pub reverse: bool,
}

/// The four tensors of a unit, by PyTorch name.
#[derive(Clone, Copy, Debug)]
pub struct UnitNames {
    pub weight_ih: &'static str,
    pub weight_hh: &'static str,
    pub bias_ih: &'static str,
    pub bias_hh: &'static str,
}

/// Element offsets of a unit's tensors in the flat buffer.
#[derive(Clone, Copy, Debug)]
pub struct UnitOffsets {
    pub weight_ih: usize,
    pub weight_hh: usize,
    pub bias_ih: usize,
    pub bias_hh: usize,
}

/// Interned names (a model has a handful of tensors and buffers; each name is made once per
/// process).
pub fn intern(name: String) -> &'static str {
    static NAMES: Mutex<Option<HashMap<String, &'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    let map = names.get_or_insert_with(HashMap::new);
    if let Some(&known) = map.get(&name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
    map.insert(name, leaked);
    leaked
}

impl Unit {
    /// Every unit of `config` in PyTorch's parameter order (layer, then direction).
    pub fn all(config: &ModelConfig) -> Vec<Unit> {
        (0..config.layers)
            .flat_map(|layer| {
                (0..config.directions()).map(move |d| Unit {
                    layer,
                    reverse: d == 1,
                })
            })
            .collect()
    }

    /// PyTorch's names of this unit's tensors.
    pub fn names(self) -> UnitNames {
        let suffix = format!(
            "_l{}{}",
            self.layer,
            if self.reverse { "_reverse" } else { "" }
        );
        let name = |kind: &str| intern(format!("rnn.{kind}{suffix}"));
        UnitNames {
            weight_ih: name("weight_ih"),
            weight_hh: name("weight_hh"),
            bias_ih: name("bias_ih"),
            bias_hh: name("bias_hh"),
        }
    }

    /// The unit's position among [`Unit::all`].
    pub fn index(self, config: &ModelConfig) -> usize {
        self.layer * config.directions() + self.reverse as usize
    }
}

impl ParamLayout {
    pub fn new(config: &ModelConfig) -> Self {
        let (h, o) = (config.hidden, config.output_size);
        // Gate blocks stacked row-wise, in PyTorch's order (LSTM i|f|g|o, GRU r|z|n).
        let gh = config.cell.gates() * h;
        let mut shapes: Vec<(&'static str, Vec<usize>)> = Vec::new();
        if let InputKind::Tokens { vocab, embed } = config.input {
            shapes.push((EMBEDDING, vec![vocab, embed]));
        }
        for unit in Unit::all(config) {
            let names = unit.names();
            shapes.push((
                names.weight_ih,
                vec![gh, config.layer_input_width(unit.layer)],
            ));
            shapes.push((names.weight_hh, vec![gh, h]));
            shapes.push((names.bias_ih, vec![gh]));
            shapes.push((names.bias_hh, vec![gh]));
        }
        shapes.push((HEAD_WEIGHT, vec![o, config.output_width()]));
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

    /// Element offsets of a unit's four tensors.
    pub fn unit(&self, unit: Unit) -> UnitOffsets {
        let n = unit.names();
        UnitOffsets {
            weight_ih: self.offset(n.weight_ih),
            weight_hh: self.offset(n.weight_hh),
            bias_ih: self.offset(n.bias_ih),
            bias_hh: self.offset(n.bias_hh),
        }
    }
}
