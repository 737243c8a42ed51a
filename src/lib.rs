//! wgrnn: train recurrent neural networks with WGSL compute shaders on any wgpu adapter.
//!
//! Layers, from the bottom: [`gpu`] (the only wgpu user), [`ops`] (one launcher per kernel),
//! [`engine`] (device buffers and per-chunk plans), [`train`] (epochs, batches, chunks,
//! logging, stopping). [`reference`] is the same math in f64 on the CPU, the oracle for tests.

pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod dropout;
pub mod engine;
pub mod error;
pub mod gpu;
pub mod infer;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod optim;
pub mod plot;
pub mod reference;
pub mod rng;
pub mod train;
pub mod weights;

pub use error::{Error, Result};
