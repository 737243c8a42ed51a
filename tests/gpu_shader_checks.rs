//! wgrnn compiles its kernels without wgpu's runtime checks (`ShaderChecks::Trusted`: no
//! index clamps, loop counters or division guards, workgroup memory not zeroed). A kernel
//! that read outside an array or a workgroup slot it had not written would read a clamped
//! element or zeros with the checks and something else without them: every GEMM formulation
//! (f16 operands too where its loads differ for f16) and every recurrence kernel, trained end
//! to end (one run in six in f16), gives the same bits both ways on random shapes off the tiles (on GPUs, whose compilers may contract the two
//! modules' multiply-adds differently, within 1e-6 of the weights' scale).

mod common;

use common::{gpu_with_checks, random_case_arch, random_case_with, Case};
use wgrnn::engine::{Engine, Precision, RecurrenceKernels};
use wgrnn::gpu::{Dtype, Gpu, Recording, ShaderChecks};
use wgrnn::model::Cell;
use wgrnn::ops::{self, GemmKernel, GemmSpec, Operand, RecurrenceKernel, Uniforms};
use wgrnn::optim::{OptimizerConfig, OptimizerKind};
use wgrnn::rng::Rng;

/// Every formulation that can run on `gpu`: the tiled kernels everywhere, the subgroup and
/// window kernels where the adapter offers them.
fn kernels(gpu: &Gpu) -> Vec<GemmKernel> {
    let mut all = vec![
        GemmKernel::Blocked,
        GemmKernel::Tiled,
        GemmKernel::Wide,
        GemmKernel::WideQuads,
        GemmKernel::TiledQuads,
        GemmKernel::TallQuads,
    ];
    for k in GemmKernel::candidates(gpu) {
        if !all.contains(&k) {
            all.push(k);
        }
    }
    all
}

fn assert_same(gpu: &Gpu, what: &str, checked: &[u32], trusted: &[u32]) {
    assert_eq!(checked.len(), trusted.len(), "{what}: lengths");
    if gpu.adapter().is_software {
        if let Some(i) = (0..checked.len()).find(|&i| checked[i] != trusted[i]) {
            panic!(
                "{what}: element {i} is {} with wgpu's shader checks and {} without",
                f32::from_bits(checked[i]),
                f32::from_bits(trusted[i])
            );
        }
        return;
    }
    let value = |b: u32| f32::from_bits(b) as f64;
    let scale = checked.iter().fold(1e-30f64, |m, &b| m.max(value(b).abs()));
    for (i, (&c, &t)) in checked.iter().zip(trusted).enumerate() {
        let err = (value(c) - value(t)).abs() / scale;
        assert!(
            err <= 1e-6,
            "{what}: element {i} is {} with wgpu's shader checks and {} without",
            value(c),
            value(t)
        );
    }
}

/// C of one random product with `kernel` in `slices` K slices, operands of `dtype`.
fn product_bits(
    gpu: &Gpu,
    spec: &GemmSpec,
    values: &[Vec<f32>; 3],
    dtype: Dtype,
    kernel: GemmKernel,
    slices: usize,
) -> Vec<u32> {
    let operand = |label: &str, v: &[f32]| {
        let buffer = gpu
            .storage_typed(label, (v.len() * dtype.bytes()) as u64, dtype)
            .unwrap();
        gpu.write_f32(&buffer, 0, v).unwrap();
        buffer
    };
    let (a, b) = (operand("a", &values[0]), operand("b", &values[1]));
    let bias = gpu.storage_from("bias", &values[2]).unwrap();
    let c = gpu.storage("c", (spec.m * spec.n * 4) as u64).unwrap();
    let scratch = gpu
        .storage("scratch", (slices * spec.m * spec.n * 4) as u64)
        .unwrap();
    let mut u = Uniforms::new();
    let launches = ops::gemm_split(
        gpu, &mut u, spec, kernel, slices, &a, &b, &bias, &c, &scratch,
    )
    .unwrap();
    let mut rec = Recording::new();
    for l in &launches {
        l.record(&mut rec);
    }
    gpu.submit(&rec).unwrap();
    gpu.read_f32(&c, 0, spec.m * spec.n)
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

#[test]
fn every_gemm_gives_the_same_bits_with_and_without_shader_checks() {
    let checked = gpu_with_checks(ShaderChecks::Checked);
    let trusted = gpu_with_checks(ShaderChecks::Trusted);
    let mut rng = Rng::new(77);
    let mut dtypes = vec![Dtype::F32];
    if trusted.adapter().shader_f16 {
        dtypes.push(Dtype::F16);
    }
    for case in 0..9usize {
        // Every layout; even cases in whole quads (the 16-byte and window loads serve them),
        // odd ones off every tile; sizes past one 128x128 tile. Case 8: dYᵀ·X with 8 columns
        // (the outer-product formulations' narrow kernel).
        let (ta, tb) = (case % 2 == 1 || case == 8, (case / 2) % 2 == 1);
        let size = |rng: &mut Rng| {
            let v = 1 + rng.below(150);
            if case % 4 < 2 {
                4 * v.div_ceil(4)
            } else {
                v
            }
        };
        let (m, n, k) = (size(&mut rng), size(&mut rng), size(&mut rng));
        let n = if case == 8 { 8 } else { n };
        let a_off = if case % 4 < 2 {
            4 * rng.below(8)
        } else {
            rng.below(9)
        };
        let spec = GemmSpec {
            m,
            n,
            k,
            a: if ta {
                Operand::transposed(a_off, m)
            } else {
                Operand::row_major(a_off, k)
            },
            b: if tb {
                Operand::transposed(0, k)
            } else {
                Operand::row_major(0, n)
            },
            c_offset: 0,
            bias: (case % 3 == 0).then_some(0),
            bias2: None,
            accumulate: false,
        };
        let mut random =
            |len: usize| -> Vec<f32> { (0..len).map(|_| rng.uniform(-1.0, 1.0) as f32).collect() };
        let values = [random(a_off + m * k), random(n * k), random(n)];
        for &dtype in &dtypes {
            // f16 operands in the kernels whose loads differ for them: the quads (shared by
            // the tiled and wide kernels) and the packed pairs (the others index f16 as they
            // index f32: the same source, other types). lavapipe compiles each kernel once
            // per type and mode, up to half a minute for the largest, so the test compiles
            // no more than it checks.
            let kernels = kernels(&trusted).into_iter().filter(|k| {
                dtype == Dtype::F32
                    || matches!(
                        k,
                        GemmKernel::TiledQuads
                            | GemmKernel::SubgroupPairs
                            | GemmKernel::WindowQuads
                            | GemmKernel::OuterQuads
                    )
            });
            for kernel in kernels {
                for slices in [1, 3] {
                    let what = format!(
                        "case {case} ({m}x{n}x{k}, ta {ta}, tb {tb}, {dtype:?}) {kernel:?} in {slices} K slices"
                    );
                    assert_same(
                        &trusted,
                        &what,
                        &product_bits(&checked, &spec, &values, dtype, kernel, slices),
                        &product_bits(&trusted, &spec, &values, dtype, kernel, slices),
                    );
                }
            }
        }
    }
}

/// The weights after two epochs with `recurrence` and every product run by `product`.
fn trained(
    gpu: &Gpu,
    case: &Case,
    precision: Precision,
    recurrence: RecurrenceKernel,
    product: GemmKernel,
) -> Vec<u32> {
    let opt = OptimizerConfig::pytorch_defaults(OptimizerKind::Adam);
    let mut engine = Engine::with_precision(
        gpu,
        case.config,
        opt,
        case.batch,
        case.seq_len,
        &case.params,
        precision,
    )
    .unwrap();
    engine.force_recurrences(RecurrenceKernels::both(recurrence));
    engine.force_gemm(product);
    case.train_bits(engine)
}

#[test]
fn every_recurrence_trains_to_the_same_bits_with_and_without_shader_checks() {
    let checked = gpu_with_checks(ShaderChecks::Checked);
    let trusted = gpu_with_checks(ShaderChecks::Trusted);
    let products = kernels(&trusted);
    let mut precisions = vec![Precision::F32];
    if trusted.adapter().shader_f16 {
        precisions.push(Precision::F16);
    }
    let (mut runs, mut half_runs) = (0, 0);
    // Hidden sizes 32, 6 and 30 (f16 states need an even one), and 19 stacked and
    // bidirectional.
    for (seed, cell, stacked) in [
        (500u64, Cell::Rnn, false),
        (501, Cell::Lstm, false),
        (513, Cell::Gru, false),
        (502, Cell::Rnn, true),
    ] {
        let case = if stacked {
            random_case_arch(seed, cell, 2, true)
        } else {
            random_case_with(seed, cell)
        };
        let mut recurrences = vec![RecurrenceKernel::PerStep, RecurrenceKernel::Persistent];
        recurrences.extend(products.iter().map(|&k| RecurrenceKernel::Gemm(k)));
        recurrences.extend([
            RecurrenceKernel::GemmSplit(GemmKernel::Tiled, 3),
            RecurrenceKernel::GemmSplit(GemmKernel::WideQuads, 2),
        ]);
        if cell == Cell::Rnn {
            recurrences.extend(
                products
                    .iter()
                    .filter(|k| k.step_kernel().is_some())
                    .map(|&k| RecurrenceKernel::GemmFused(k)),
            );
            if products.contains(&GemmKernel::WindowQuads) {
                recurrences.push(RecurrenceKernel::GemmSweep(GemmKernel::WindowQuads));
                if trusted.adapter().shader_int64 {
                    recurrences.push(RecurrenceKernel::GemmSweepLongs(GemmKernel::WindowQuads));
                }
            }
        }
        for (i, &recurrence) in recurrences.iter().enumerate() {
            // The products rotate through every formulation as the recurrences do.
            let product = products[i % products.len()];
            // Every sixth run in f16 (each f16 run compiles its kernels' f16 variants twice
            // over); f16 states are copied in 4-byte words: an even hidden size only.
            let precision = match precisions[(i % 6 == 1) as usize % precisions.len()] {
                Precision::F16 if case.config.hidden % 2 == 1 => Precision::F32,
                p => p,
            };
            half_runs += usize::from(precision == Precision::F16);
            assert_same(
                &trusted,
                &format!(
                    "seed {seed}, {cell}, {precision:?}, {recurrence:?}, products {product:?}"
                ),
                &trained(&checked, &case, precision, recurrence, product),
                &trained(&trusted, &case, precision, recurrence, product),
            );
            runs += 1;
        }
    }
    assert!(runs >= 40, "only {runs} trainings compared");
    if trusted.adapter().shader_f16 {
        assert!(half_runs >= 6, "only {half_runs} f16 trainings compared");
    }
}
