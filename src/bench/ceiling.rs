//! The adapter's own limits, measured in the same run: peak multiply-add rate
//! (`shaders/ceiling.wgsl`) and buffer-copy bandwidth.

use crate::error::Result;
use crate::gpu::{Gpu, Kernel, Recording, Resource};
use serde::Serialize;
use std::time::Instant;

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Ceiling {
    /// Multiply-adds, counted as 2 FLOPs each.
    pub fma_gflops: f64,
    /// Bytes read plus bytes written per second by a buffer-to-buffer copy.
    pub copy_gbytes_per_second: f64,
}

fn best_of(runs: usize, mut f: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..runs {
        best = best.min(f()?);
    }
    Ok(best)
}

pub fn measure_ceiling(gpu: &Gpu) -> Result<Ceiling> {
    let groups = 256u32;
    let iterations = 4096u32;
    let sink = gpu.storage("ceiling_sink", groups as u64 * 256 * 4)?;
    let params = gpu.uniform_slots("ceiling_params", 1);
    gpu.write(&params, 0, &[iterations, 0, 0, 0]);
    let binding = gpu.bind(
        Kernel::FmaPeak,
        &[Resource::UniformSlot(&params, 0), Resource::Storage(&sink)],
    );
    let mut rec = Recording::new();
    rec.dispatch(&binding, [groups, 1, 1]);
    let time = |rec: &Recording| -> Result<f64> {
        let t0 = Instant::now();
        gpu.submit(rec)?;
        gpu.wait_idle()?;
        Ok(t0.elapsed().as_secs_f64())
    };
    time(&rec)?;
    let fma_seconds = best_of(5, || time(&rec))?;
    let flops = 2.0 * 8.0 * iterations as f64 * groups as f64 * 256.0;
    let bytes: u64 = (gpu.max_binding_bytes() / 2).min(64 << 20);
    let (src, dst) = (
        gpu.storage("copy_src", bytes)?,
        gpu.storage("copy_dst", bytes)?,
    );
    let mut copy = Recording::new();
    copy.copy(&src, 0, &dst, 0, bytes);
    time(&copy)?;
    let copy_seconds = best_of(5, || time(&copy))?;
    Ok(Ceiling {
        fma_gflops: flops / fma_seconds / 1e9,
        copy_gbytes_per_second: 2.0 * bytes as f64 / copy_seconds / 1e9,
    })
}
