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

/// Seconds one repetition of `record`'s work takes: the work recorded `reps` times into
/// one submit, `reps` growing 4x until a submit takes 50 ms or more, so that the fixed cost
/// of a submit and wait (tens of microseconds on a GPU, more than a single repetition takes
/// there) is a small share of what is timed. Best of five submits.
fn seconds_per_repetition(gpu: &Gpu, record: impl Fn(&mut Recording)) -> Result<f64> {
    let time = |reps: usize| -> Result<f64> {
        let mut rec = Recording::new();
        for _ in 0..reps {
            record(&mut rec);
        }
        let submit = || -> Result<f64> {
            let t0 = Instant::now();
            gpu.submit(&rec)?;
            gpu.wait_idle()?;
            Ok(t0.elapsed().as_secs_f64())
        };
        submit()?; // warm-up: pipeline creation, first touch of the buffers
        Ok(best_of(5, submit)? / reps as f64)
    };
    let mut reps = 1;
    loop {
        let t = time(reps)?;
        if t * reps as f64 >= 0.05 || reps >= 4096 {
            return Ok(t);
        }
        reps *= 4;
    }
}

pub fn measure_ceiling(gpu: &Gpu) -> Result<Ceiling> {
    // Enough invocations to fill a large GPU (a million on a GPU; 65,536 on a software
    // adapter, whose few threads each run many invocations anyway).
    let groups: u32 = if gpu.adapter().is_software { 256 } else { 4096 };
    let iterations = 1024u32;
    let sink = gpu.storage("ceiling_sink", groups as u64 * 256 * 4)?;
    let params = gpu.uniform_slots("ceiling_params", 1);
    gpu.write(&params, 0, &[iterations, 0, 0, 0]);
    let binding = gpu.bind(
        Kernel::FmaPeak,
        &[Resource::UniformSlot(&params, 0), Resource::Storage(&sink)],
    );
    let fma_seconds = seconds_per_repetition(gpu, |rec| rec.dispatch(&binding, [groups, 1, 1]))?;
    let flops = 2.0 * 32.0 * iterations as f64 * groups as f64 * 256.0;
    let bytes: u64 = (gpu.max_binding_bytes() / 2).min(64 << 20);
    let (src, dst) = (
        gpu.storage("copy_src", bytes)?,
        gpu.storage("copy_dst", bytes)?,
    );
    let copy_seconds = seconds_per_repetition(gpu, |rec| rec.copy(&src, 0, &dst, 0, bytes))?;
    Ok(Ceiling {
        fma_gflops: flops / fma_seconds / 1e9,
        copy_gbytes_per_second: 2.0 * bytes as f64 / copy_seconds / 1e9,
    })
}
