//! `wgrnn` subcommands.

pub mod args;
pub mod devices;
pub mod hooks;
pub mod params;
pub mod train;
