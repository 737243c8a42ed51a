//! `wgrnn` subcommands.

pub mod args;
pub mod bench;
pub mod destinations;
pub mod devices;
pub mod hooks;
pub mod infer;
pub mod params;
pub mod plan;
pub mod train;
