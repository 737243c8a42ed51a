//! `wgrnn bench`: named training-step workloads and custom shapes, timed on the adapter in
//! use, with the adapter's own ceilings for comparison.

mod ceiling;
mod compare;
mod workload;

pub use ceiling::{measure_ceiling, Ceiling};
pub use compare::{Comparison, EarlierReport};
pub use workload::{
    adam_bytes_per_step, flops_per_step, loss_after, named, run_workload, Workload, WorkloadResult,
    NAMES,
};
