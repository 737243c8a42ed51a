//! `--precision f16`: weights copies and activations stored as f16, everything summed and
//! updated in f32. Checked against the f64 reference (at f16's tolerance) on random shapes
//! of every cell, stacked and bidirectional, and on W1 over 200 training steps.

mod common;

use common::{check_chunks_against_reference, gpu, random_case_arch, Case};
use wgrnn::engine::{Engine, Precision};
use wgrnn::model::{Activation, Cell};
use wgrnn::ops::{GemmKernel, RecurrenceKernel};
use wgrnn::optim::{OptimizerConfig, OptimizerKind};

/// Relative error allowed against the f64 reference: f16 keeps 11 significant bits
/// (4.9e-4 relative rounding per stored value), and the errors of a few stored layers add up.
const HALF_TOL: f64 = 2e-2;
/// With ReLU a pre-activation that f16 rounds across 0 switches a unit on or off, which
/// moves some gradients by more (measured: up to 2.5e-2 with weights of ±0.6).
const HALF_TOL_RELU: f64 = 5e-2;

/// Random cases with an even hidden size (f16 states are copied in 4-byte words), covering
/// every cell, one and two layers, one and two directions, and both input kinds.
fn half_cases() -> Vec<Case> {
    let archs = [(1, false), (2, false), (1, true), (2, true)];
    let mut out = Vec::new();
    let mut seed = 900u64;
    while out.len() < 30 {
        let cell = [Cell::Rnn, Cell::Lstm, Cell::Gru][out.len() % 3];
        let (layers, bidirectional) = archs[out.len() / 3 % 4];
        let case = random_case_arch(seed, cell, layers, bidirectional);
        seed += 1;
        if case.config.hidden.is_multiple_of(2) {
            out.push(case);
        }
    }
    out
}

/// Every recurrence formulation on this adapter.
fn recurrence_kernels(gpu: &wgrnn::gpu::Gpu) -> Vec<RecurrenceKernel> {
    let mut gemms = vec![GemmKernel::Tiled, GemmKernel::Wide];
    gemms.extend(
        GemmKernel::candidates(gpu)
            .into_iter()
            .filter(|k| !matches!(k, GemmKernel::Tiled | GemmKernel::Wide)),
    );
    let mut out = vec![RecurrenceKernel::PerStep, RecurrenceKernel::Persistent];
    out.extend(gemms.iter().map(|&k| RecurrenceKernel::Gemm(k)));
    // The Elman step finished in the product's store (gated cells run these as `Gemm`).
    out.extend(
        gemms
            .iter()
            .filter(|k| k.step_kernel().is_some())
            .map(|&k| RecurrenceKernel::GemmFused(k)),
    );
    // Split over K (Elman; gated cells run it as `Gemm`), in 3 and 2 slices.
    out.extend([
        RecurrenceKernel::GemmSplit(GemmKernel::Tiled, 3),
        RecurrenceKernel::GemmSplit(GemmKernel::TiledQuads, 2),
    ]);
    out
}

#[test]
fn f16_chunks_match_the_reference_at_half_precision_and_differ_from_f32() {
    let gpu = gpu();
    for (n, case) in half_cases().into_iter().enumerate() {
        // Each case forces one recurrence formulation, in turn, so that every kernel's f16
        // variant meets the reference (30 cases, fewer formulations: each at least once).
        let kernels = recurrence_kernels(&gpu);
        assert!(
            kernels.len() <= 30,
            "{} formulations for 30 cases",
            kernels.len()
        );
        let kernel = kernels[n % kernels.len()];
        let tol = if case.config.activation == Activation::Relu {
            HALF_TOL_RELU
        } else {
            HALF_TOL
        };
        let cfg = case.config;
        let opt = OptimizerConfig::pytorch_defaults(OptimizerKind::Sgd);
        let mut half = Engine::with_precision(
            &gpu,
            cfg,
            opt,
            case.batch,
            case.seq_len,
            &case.params,
            Precision::F16,
        )
        .unwrap();
        assert_eq!(half.precision(), Precision::F16);
        half.force_recurrence(kernel);
        let got = check_chunks_against_reference(
            &mut half,
            &case,
            None,
            &format!("f16, {kernel:?}"),
            tol,
        );
        let mut full = Engine::new(&gpu, cfg, opt, case.batch, case.seq_len, &case.params).unwrap();
        let f32_results = check_chunks_against_reference(&mut full, &case, None, "f32", 1e-4);
        let differs = got != f32_results;
        assert!(
            differs,
            "f16 gave exactly the f32 results for {cfg:?}: the f16 path did not run"
        );
    }
}

#[test]
fn w1_loss_after_200_steps_in_f16_is_within_1_percent_of_f32() {
    let gpu = gpu();
    let mut w = wgrnn::bench::named("W1").unwrap();
    let full = wgrnn::bench::loss_after(&gpu, &w, 200).unwrap();
    w.precision = Precision::F16;
    let half = wgrnn::bench::loss_after(&gpu, &w, 200).unwrap();
    let start = (w.config.output_size as f32).ln();
    // The run must have learned something for the comparison to mean anything.
    assert!(
        full < 0.8 * start,
        "W1 loss after 200 steps {full} is not well below ln 18 = {start}"
    );
    let diff = ((half - full) / full).abs();
    assert!(
        diff <= 0.01,
        "W1 loss after 200 steps: f16 {half}, f32 {full}: {:.2}% apart",
        100.0 * diff
    );
}

#[test]
fn f16_refuses_an_odd_hidden_size_with_a_clear_error() {
    let gpu = gpu();
    let mut case = random_case_arch(5, Cell::Rnn, 1, false);
    case.config.hidden = 7;
    let params = vec![0.0; wgrnn::model::ParamLayout::new(&case.config).total];
    let opt = OptimizerConfig::pytorch_defaults(OptimizerKind::Adam);
    let err = Engine::with_precision(&gpu, case.config, opt, 2, 3, &params, Precision::F16)
        .err()
        .expect("odd hidden refused")
        .to_string();
    assert!(err.contains("even --hidden"), "{err}");
}
