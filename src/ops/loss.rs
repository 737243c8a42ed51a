//! Launcher of `shaders/loss.wgsl`: per-row losses, metrics and the head's output gradient.

// Launchers bind many buffers by design: one argument per binding slot reads clearer than a
// struct per kernel.
#![allow(clippy::too_many_arguments)]

use super::{groups_for, need, u32_of, Launch, Uniforms};
use crate::error::{Error, Result};
use crate::gpu::{Buffer, Gpu, Kernel, Resource};
use crate::model::{Loss, OutputActivation};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct LossParams {
    rows: u32,
    outputs: u32,
    kind: u32,
    activation: u32,
    dy_stride: u32,
    _pad: [u32; 3],
}

/// The number of values the mean loss divides by: rows for cross-entropy, rows × outputs else.
pub fn loss_count(loss: Loss, rows: usize, outputs: usize) -> usize {
    match loss {
        Loss::CrossEntropy => rows,
        _ => rows * outputs,
    }
}

/// Per-row losses, metrics (see `shaders/loss.wgsl`) and `dy` = d(mean loss)/dy.   y: [R, O];
/// dy: [R, dy_stride] (dy_stride >= O; columns past O are written 0); targets: [R] or [R, O]
pub fn loss_rows(
    gpu: &Gpu,
    u: &mut Uniforms,
    loss: Loss,
    activation: OutputActivation,
    rows: usize,
    outputs: usize,
    dy_stride: usize,
    y: &Buffer,
    targets: &Buffer,
    dy: &Buffer,
    row_loss: &Buffer,
    mask: &Buffer,
    chunk_info: &Buffer,
    row_metric: &Buffer,
) -> Result<Launch> {
    need(row_metric, rows, "loss row_metric")?;
    need(mask, rows, "loss mask")?;
    need(y, rows * outputs, "loss y")?;
    if dy_stride < outputs {
        return Err(Error::Config(format!(
            "loss dy: row stride {dy_stride} is shorter than the {outputs} outputs"
        )));
    }
    need(dy, rows * dy_stride, "loss dy")?;
    need(row_loss, rows, "loss row_loss")?;
    need(
        targets,
        if loss == Loss::CrossEntropy {
            rows
        } else {
            rows * outputs
        },
        "loss targets",
    )?;
    let p = LossParams {
        rows: u32_of(rows, "rows")?,
        outputs: u32_of(outputs, "outputs")?,
        kind: match loss {
            Loss::CrossEntropy => 0,
            Loss::Bce => 1,
            Loss::Mse => 2,
            Loss::Mae => 3,
        },
        activation: match activation {
            OutputActivation::Relu => 1,
            OutputActivation::Sigmoid => 2,
            _ => 0,
        },
        dy_stride: u32_of(dy_stride, "dy stride")?,
        _pad: [0; 3],
    };
    let uniform = u.push(gpu, &p);
    let binding = gpu.bind(
        Kernel::LossRows,
        &[
            uniform.resource(),
            Resource::Storage(y),
            Resource::Storage(targets),
            Resource::Storage(dy),
            Resource::Storage(row_loss),
            Resource::Storage(mask),
            Resource::Storage(chunk_info),
            Resource::Storage(row_metric),
        ],
    );
    Ok(Launch {
        binding,
        groups: groups_for(rows),
        uniform,
    })
}
