//! The model: configuration, flat parameter layout with PyTorch names, initialisation.

mod config;
mod init;
mod layout;

pub(crate) use config::cli_enum;
pub use config::{
    Activation, Cell, InputKind, Loss, ModelConfig, OutputActivation, Pool, TaskKind,
};
pub use init::{init_params, set_forget_bias};
pub use layout::{
    intern, ParamLayout, ParamTensor, Unit, UnitNames, UnitOffsets, BIAS_HH, BIAS_IH, EMBEDDING,
    HEAD_BIAS, HEAD_WEIGHT, WEIGHT_HH, WEIGHT_IH,
};
