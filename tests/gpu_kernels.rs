//! Tier 3: each GPU kernel against an f64 computation on random shapes that are not
//! multiples of the tiles. Relative error (max-norm) under 1e-4, worst index reported.

mod common;

use common::{assert_close, gpu, to_f64};
use wgrnn::gpu::{Dtype, Gpu, Kernel, Recording};
use wgrnn::model::{Activation, Loss, OutputActivation, Pool};
use wgrnn::ops::{
    self, GemmKernel, GemmSpec, Launch, Operand, PoolShape, RecurrenceShape, SequenceStart,
    Uniforms,
};
use wgrnn::rng::Rng;

fn run(gpu: &Gpu, launches: &[Launch]) {
    let mut rec = Recording::new();
    for l in launches {
        l.record(&mut rec);
    }
    gpu.submit(&rec).expect("submit");
    gpu.wait_idle().expect("wait");
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn randn(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

#[test]
fn gemm_matches_f64_on_random_shapes_and_transposes() {
    let gpu = gpu();
    let mut rng = Rng::new(1);
    for case in 0..24 {
        // The last four cases (every transpose pair) span several 128x128 tiles of the wide
        // kernel, with partial tiles at both edges.
        let span = if case >= 20 { 300 } else { 70 };
        let (m, n, k) = (1 + rng.below(span), 1 + rng.below(span), 1 + rng.below(90));
        let (ta, tb) = (case % 2 == 1, (case / 2) % 2 == 1);
        let (a_off, b_off, c_off) = (rng.below(5), rng.below(5), rng.below(5));
        let a = randn(&mut rng, a_off + m * k);
        let b = randn(&mut rng, b_off + k * n);
        let bias = randn(&mut rng, 2 * n + 3);
        let c0 = randn(&mut rng, c_off + m * n);
        let a_op = if ta {
            Operand::transposed(a_off, m)
        } else {
            Operand::row_major(a_off, k)
        };
        let b_op = if tb {
            Operand::transposed(b_off, k)
        } else {
            Operand::row_major(b_off, n)
        };
        let with_bias = case % 3 != 0;
        let accumulate = case % 5 == 0;
        let spec = GemmSpec {
            m,
            n,
            k,
            a: a_op,
            b: b_op,
            c_offset: c_off,
            bias: with_bias.then_some(1),
            bias2: (case % 4 == 0).then_some(n + 2),
            accumulate,
        };
        let bufs = [
            gpu.storage_from("a", &a).unwrap(),
            gpu.storage_from("b", &b).unwrap(),
            gpu.storage_from("bias", &bias).unwrap(),
            gpu.storage_from("c", &c0).unwrap(),
        ];
        let mut u = Uniforms::new();
        let launch =
            ops::gemm(&gpu, &mut u, &spec, &bufs[0], &bufs[1], &bufs[2], &bufs[3]).unwrap();
        run(&gpu, &[launch]);
        let got = gpu.read_f32(&bufs[3], c_off, m * n).unwrap();
        let mut want = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for kk in 0..k {
                    let av = a[a_op.offset + i * a_op.row_stride + kk * a_op.col_stride] as f64;
                    let bv = b[b_op.offset + kk * b_op.row_stride + j * b_op.col_stride] as f64;
                    s += av * bv;
                }
                if with_bias {
                    s += bias[1 + j] as f64;
                }
                if case % 4 == 0 {
                    s += bias[n + 2 + j] as f64;
                }
                if accumulate {
                    s += c0[c_off + i * n + j] as f64;
                }
                want[i * n + j] = s;
            }
        }
        assert_close(
            &format!("gemm case {case} ({m}x{n}x{k}, ta {ta}, tb {tb})"),
            &got,
            &want,
            1e-4,
        );
        // Every formulation (the tiled ones are checked on every adapter; the subgroup one
        // where subgroups are 8 lanes), in one pass and split over K (slices that need not
        // divide K).
        let mut kernels = vec![GemmKernel::Blocked, GemmKernel::Tiled, GemmKernel::Wide];
        kernels.extend(
            GemmKernel::candidates(&gpu)
                .into_iter()
                .filter(|k| *k == GemmKernel::Subgroup),
        );
        for kernel in kernels {
            for slices in [1, 2 + case % 4] {
                let c = gpu.storage_from("c", &c0).unwrap();
                let scratch = gpu.storage("scratch", (slices * m * n * 4) as u64).unwrap();
                let launches = ops::gemm_split(
                    &gpu, &mut u, &spec, kernel, slices, &bufs[0], &bufs[1], &bufs[2], &c, &scratch,
                )
                .unwrap();
                run(&gpu, &launches);
                assert_close(
                    &format!("gemm case {case} ({m}x{n}x{k}, ta {ta}, tb {tb}) {kernel:?} in {slices} K slices"),
                    &gpu.read_f32(&c, c_off, m * n).unwrap(),
                    &want,
                    1e-4,
                );
            }
        }
    }
}

/// An f16 storage buffer holding `values` (rounded to nearest), and those rounded values.
fn half_buffer(gpu: &Gpu, label: &str, values: &[f32]) -> (wgrnn::gpu::Buffer, Vec<f32>) {
    let buffer = gpu
        .storage_typed(label, (values.len() * 2) as u64, Dtype::F16)
        .unwrap();
    gpu.write_f32(&buffer, 0, values).unwrap();
    let rounded = values
        .iter()
        .map(|&v| half::f16::from_f32(v).to_f32())
        .collect();
    (buffer, rounded)
}

/// On lavapipe, which does not contract multiply-adds, each of `kernels`' `results` equals
/// the `reference_kernel`'s `reference` bit for bit (the same sums in the same order).
fn assert_bits_match(
    gpu: &Gpu,
    case: usize,
    kernels: &[GemmKernel],
    results: &[Vec<f32>],
    reference_kernel: GemmKernel,
    reference: &[f32],
) {
    if !gpu.adapter().is_software {
        return;
    }
    for (kernel, got) in kernels.iter().zip(results) {
        let differ = got
            .iter()
            .zip(reference)
            .position(|(x, y)| x.to_bits() != y.to_bits());
        assert_eq!(
            differ, None,
            "case {case}: {kernel:?} and {reference_kernel:?} differ in bits"
        );
    }
}

/// Whether `gpu` offers all of `kernels` (the lavapipe formulations: 8-lane subgroups, and
/// for the window kernels 64 KiB uniform bindings); lavapipe must.
fn offered(gpu: &Gpu, kernels: &[GemmKernel]) -> bool {
    let candidates = GemmKernel::candidates(gpu);
    let all = kernels.iter().all(|k| candidates.contains(k));
    if gpu.adapter().is_software {
        assert!(
            all,
            "lavapipe must offer {kernels:?} (8-lane subgroups, 64 KiB uniform bindings)"
        );
    }
    all
}

/// Each window kernel took one window in some case and several in another (`seen`: the
/// window counts of each kernel's cases).
fn assert_one_and_several_windows(
    kernels: &[GemmKernel],
    seen: &[std::collections::BTreeSet<usize>],
) {
    for (kernel, seen) in kernels.iter().zip(seen) {
        assert!(
            seen.contains(&1) && seen.iter().any(|&w| w > 1),
            "{kernel:?}: the cases took one window and several: {seen:?}"
        );
    }
}

/// `values` in a storage buffer, as f16 (`half`) or f32, with the values it holds.
fn operand_buffer(
    gpu: &Gpu,
    label: &str,
    values: &[f32],
    half: bool,
) -> (wgrnn::gpu::Buffer, Vec<f32>) {
    if half {
        half_buffer(gpu, label, values)
    } else {
        (gpu.storage_from(label, values).unwrap(), values.to_vec())
    }
}

#[test]
fn gemm_with_f16_operands_matches_f64_of_the_rounded_values() {
    let gpu = gpu();
    assert!(
        gpu.adapter().shader_f16,
        "this adapter has no shader-f16; the f16 kernels cannot be checked"
    );
    let mut rng = Rng::new(11);
    let mut packed_runs = 0;
    for case in 0..24 {
        // The last four cases span several 128x128 tiles (see the f32 test).
        let span = if case >= 20 { 300 } else { 70 };
        let (m, n, mut k) = (1 + rng.below(span), 1 + rng.below(span), 1 + rng.below(90));
        let (ta, tb) = (case % 2 == 1, (case / 2) % 2 == 1);
        // Row stride of A and column stride of B (K, or K + 1 for the cases below).
        let mut stride = k;
        if case % 4 == 2 {
            // x·Wᵀ with even strides, the layout the packed-pairs loads take: an even K, or
            // (from case 12) an odd K inside rows of K + 1, which leaves one k at the end.
            if case < 12 {
                k += k % 2;
            } else if k % 2 == 0 {
                k -= 1;
            }
            stride = k + k % 2;
        }
        // Which of A, B (and its bias) and C are f16: every combination the engine uses.
        let (a_half, b_half, c_half) = [
            (true, true, true),
            (true, true, false),
            (false, true, false),
            (true, false, false),
        ][case / 4 % 4];
        let a = randn(&mut rng, m * stride);
        let b = randn(&mut rng, stride * n);
        let bias = randn(&mut rng, n);
        let c0 = randn(&mut rng, m * n);
        let accumulate = case % 3 == 0;
        let spec = GemmSpec {
            m,
            n,
            k,
            a: if ta {
                Operand::transposed(0, m)
            } else {
                Operand::row_major(0, stride)
            },
            b: if tb {
                Operand::transposed(0, stride)
            } else {
                Operand::row_major(0, n)
            },
            c_offset: 0,
            bias: Some(stride * n),
            bias2: None,
            accumulate,
        };
        let store =
            |label: &str, values: &[f32], half: bool| operand_buffer(&gpu, label, values, half);
        let (a_buf, a_r) = store("a", &a, a_half);
        // The bias sits after B in the same buffer, as in the parameters.
        let (b_buf, b_r) = store("b", &[b.clone(), bias.clone()].concat(), b_half);
        let (_, c0_r) = store("c0", &c0, c_half);
        let mut want = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for kk in 0..k {
                    let av = a_r[spec.a.offset + i * spec.a.row_stride + kk * spec.a.col_stride];
                    let bv = b_r[spec.b.offset + kk * spec.b.row_stride + j * spec.b.col_stride];
                    s += av as f64 * bv as f64;
                }
                s += b_r[stride * n + j] as f64;
                if accumulate {
                    s += c0_r[i * n + j] as f64;
                }
                want[i * n + j] = s;
            }
        }
        // Sums run in f32 either way; an f16 C adds one rounding of the result.
        let tol = if c_half { 1e-3 } else { 1e-4 };
        // Every formulation; the packed-pairs one where 8-lane subgroups and f16 exist (it
        // runs packed where GemmKernel::pairs_apply, else as the plain subgroup kernel).
        let mut kernels = vec![GemmKernel::Blocked, GemmKernel::Tiled, GemmKernel::Wide];
        kernels.extend(
            GemmKernel::candidates(&gpu)
                .into_iter()
                .filter(|k| matches!(k, GemmKernel::Subgroup | GemmKernel::SubgroupPairs)),
        );
        let mut u = Uniforms::new();
        for kernel in kernels {
            for slices in [1, 2 + case % 3] {
                let (c, _) = store("c", &c0, c_half);
                let scratch = gpu.storage("scratch", (slices * m * n * 4) as u64).unwrap();
                let k_slice = if slices > 1 { k.div_ceil(slices) } else { 0 };
                if kernel == GemmKernel::SubgroupPairs
                    && GemmKernel::pairs_apply(&spec, &a_buf, &b_buf, k_slice)
                {
                    packed_runs += 1;
                }
                let launches = ops::gemm_split(
                    &gpu, &mut u, &spec, kernel, slices, &a_buf, &b_buf, &b_buf, &c, &scratch,
                )
                .unwrap();
                run(&gpu, &launches);
                assert_close(
                    &format!(
                        "f16 gemm case {case} ({m}x{n}x{k}, ta {ta}, tb {tb}, f16 a {a_half} b {b_half} c {c_half}) {kernel:?} in {slices} K slices"
                    ),
                    &gpu.read_f32(&c, 0, m * n).unwrap(),
                    &want,
                    tol,
                );
            }
        }
    }
    if GemmKernel::candidates(&gpu).contains(&GemmKernel::SubgroupPairs) {
        assert!(
            packed_runs >= 4,
            "only {packed_runs} runs took the packed-pairs path"
        );
    }
}

/// `spec`'s C in f64: A·B (+ bias) (+ bias2, both from `bias`) (+ `c0` where it accumulates).
fn product_f64(spec: &GemmSpec, a: &[f32], b: &[f32], bias: &[f32], c0: &[f32]) -> Vec<f64> {
    let GemmSpec { m, n, k, .. } = *spec;
    let mut want = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s: f64 = (0..k)
                .map(|q| {
                    let av = a[spec.a.offset + i * spec.a.row_stride + q * spec.a.col_stride];
                    let bv = b[spec.b.offset + q * spec.b.row_stride + j * spec.b.col_stride];
                    av as f64 * bv as f64
                })
                .sum();
            for off in [spec.bias, spec.bias2].into_iter().flatten() {
                s += bias[off + j] as f64;
            }
            if spec.accumulate {
                s += c0[i * n + j] as f64;
            }
            want[i * n + j] = s;
        }
    }
    want
}

#[test]
fn window_gemms_match_f64_and_the_subgroup_kernel_bit_for_bit() {
    // B (SubgroupWindow) or A (SubgroupWindowA) read through 64 KiB uniform windows: one
    // window for any layout where all of the operand fits, several (one dispatch each) for
    // x·Wᵀ's W or a row-major A that does not; operands at odd offsets of buffers larger than
    // a window; sizes off the tiles; bias, bias2, accumulate; f32, and f16 operand pairs
    // (even K with unit stride, or an odd K left at the end).
    let gpu = gpu();
    let window_kernels = [GemmKernel::SubgroupWindow, GemmKernel::SubgroupWindowA];
    if !offered(&gpu, &window_kernels) {
        return;
    }
    let mut rng = Rng::new(21);
    let mut windows_seen = [std::collections::BTreeSet::new(), Default::default()];
    for case in 0..12 {
        let half = case >= 8 && gpu.adapter().shader_f16;
        let (m, k) = (1 + rng.below(250), 1 + rng.below(200));
        // Row stride of A and column stride of Wᵀ: K, or for f16 an even K + K % 2 (pairs of
        // k values are single words; an odd K leaves one k at the end).
        let stride = if half { k + k % 2 } else { k };
        // x·Wᵀ (W [N, K] row-major) in most cases; B row-major [K, N] (f32) when it fits a
        // window.
        let transposed = half || case % 4 != 3;
        let n = if transposed {
            1 + rng.below(200)
        } else {
            1 + rng.below(12_000 / k)
        };
        let (a_off, b_off) = (2 * rng.below(5_000), 2 * rng.below(5_000));
        let b_len = b_off + stride * n + 2 * n;
        let a_all = randn(&mut rng, (a_off + m * stride).max(1 << 15));
        let b_all = randn(&mut rng, b_len.max(1 << 15));
        let c0 = randn(&mut rng, m * n);
        let (a_buf, a_r) = operand_buffer(&gpu, "a", &a_all, half);
        let (b_buf, b_r) = operand_buffer(&gpu, "b", &b_all, half);
        let accumulate = case % 3 == 1;
        let spec = GemmSpec {
            m,
            n,
            k,
            a: Operand::row_major(a_off, stride),
            b: if transposed {
                Operand::transposed(b_off, stride)
            } else {
                Operand::row_major(b_off, n)
            },
            c_offset: 0,
            bias: Some(b_off + stride * n),
            bias2: (case % 2 == 0).then_some(b_off + stride * n + n),
            accumulate,
        };
        let want = product_f64(&spec, &a_r, &b_r, &b_r, &c0);
        let mut u = Uniforms::new();
        let scratch = gpu.storage("scratch", 4).unwrap();
        let mut results = Vec::new();
        for kernel in [window_kernels[0], window_kernels[1], GemmKernel::Subgroup] {
            let chunks = (kernel != GemmKernel::Subgroup).then(|| {
                ops::window_chunks(&gpu, &spec, kernel, &a_buf, &b_buf, ops::MAX_WINDOW_CHUNKS)
                    .unwrap_or_else(|| panic!("case {case}: no {kernel:?} plan for {spec:?}"))
            });
            let c = gpu.storage_from("c", &c0).unwrap();
            let launches = ops::gemm_split(
                &gpu, &mut u, &spec, kernel, 1, &a_buf, &b_buf, &b_buf, &c, &scratch,
            )
            .unwrap();
            if let Some(chunks) = &chunks {
                assert_eq!(
                    launches.len(),
                    chunks.len(),
                    "case {case}: one dispatch a window"
                );
                windows_seen[(kernel == window_kernels[1]) as usize].insert(chunks.len());
            }
            run(&gpu, &launches);
            let got = gpu.read_f32(&c, 0, m * n).unwrap();
            assert_close(
                &format!(
                    "window gemm case {case} ({m}x{n}x{k}, Wᵀ {transposed}, f16 {half}, \
                     windows {:?}) {kernel:?}",
                    chunks.map(|c| c.len())
                ),
                &got,
                &want,
                1e-4,
            );
            results.push(got);
        }
        let subgroup = GemmKernel::Subgroup;
        assert_bits_match(
            &gpu,
            case,
            &window_kernels,
            &results[..2],
            subgroup,
            &results[2],
        );
    }
    assert_one_and_several_windows(&window_kernels, &windows_seen);
}

#[test]
fn window_quads_gemms_match_f64_and_the_subgroup_kernel_bit_for_bit() {
    // Both operands read 4 k values a load (f32s, or two words of f16 pairs), B
    // (WindowQuads) or A (WindowQuadsA, the transposed product) through 64 KiB uniform
    // windows: one window or several; sizes off the 32x32 tiles; line strides K or padded;
    // offsets at whole 4 values of buffers larger than a window; bias, bias2, accumulate;
    // f32 and f16; C stored by quads (N a multiple of 4) or value by value; and products
    // the loads do not serve (K not a multiple of 4, an odd offset), which run as the window
    // kernels.
    let gpu = gpu();
    let quads = [GemmKernel::WindowQuads, GemmKernel::WindowQuadsA];
    if !offered(&gpu, &quads) {
        return;
    }
    let mut rng = Rng::new(23);
    let mut windows_seen = [std::collections::BTreeSet::new(), Default::default()];
    let mut fallbacks = 0;
    for case in 0..12 {
        let half = case >= 7 && gpu.adapter().shader_f16;
        let q = 4;
        // Cases 3 and 9: loads the kernel cannot take (K off the word, an odd offset).
        let unserved = case % 6 == 3;
        let k = q * (1 + rng.below(40)) + usize::from(unserved && case == 3);
        let (m, n) = (1 + rng.below(300), 1 + rng.below(300));
        // Even cases: N a multiple of 4, so that C (f32) is stored by quads; odd ones: N odd,
        // stored value by value.
        let n = if case % 2 == 0 {
            n.next_multiple_of(4)
        } else {
            n | 1
        };
        let stride = k.next_multiple_of(q) + q * (case % 2);
        let a_off = q * rng.below(2_000) + usize::from(unserved && case == 9);
        let b_off = q * rng.below(2_000);
        let a_all = randn(&mut rng, (a_off + m * stride).max(1 << 15));
        let b_all = randn(&mut rng, (b_off + stride * n + 2 * n).max(1 << 15));
        let c0 = randn(&mut rng, m * n);
        let (a_buf, a_r) = operand_buffer(&gpu, "a", &a_all, half);
        let (b_buf, b_r) = operand_buffer(&gpu, "b", &b_all, half);
        let spec = GemmSpec {
            m,
            n,
            k,
            a: Operand::row_major(a_off, stride),
            b: Operand::transposed(b_off, stride),
            c_offset: 0,
            bias: Some(b_off + stride * n),
            // Both store paths with and without the second bias.
            bias2: (case % 4 < 2).then_some(b_off + stride * n + n),
            accumulate: case % 3 == 1,
        };
        assert_eq!(
            GemmKernel::quads_apply(&spec, &a_buf, &b_buf),
            !unserved,
            "case {case}: whether the quads loads apply"
        );
        let want = product_f64(&spec, &a_r, &b_r, &b_r, &c0);
        let mut u = Uniforms::new();
        let scratch = gpu.storage("scratch", 4).unwrap();
        let mut results = Vec::new();
        for kernel in [quads[0], quads[1], GemmKernel::Subgroup] {
            let effective = kernel.effective(&gpu, &spec, &a_buf, &b_buf, 1);
            if kernel != GemmKernel::Subgroup {
                if unserved {
                    assert_ne!(effective, kernel, "case {case}: {kernel:?} cannot run");
                    fallbacks += 1;
                } else {
                    assert_eq!(
                        effective, kernel,
                        "case {case}: {kernel:?} must run for {spec:?}"
                    );
                    let chunks = ops::window_chunks(
                        &gpu,
                        &spec,
                        kernel,
                        &a_buf,
                        &b_buf,
                        ops::MAX_WINDOW_CHUNKS,
                    )
                    .unwrap_or_else(|| panic!("case {case}: no {kernel:?} plan"));
                    windows_seen[(kernel == quads[1]) as usize].insert(chunks.len());
                }
            }
            let c = gpu.storage_from("c", &c0).unwrap();
            let launches = ops::gemm_split(
                &gpu, &mut u, &spec, kernel, 1, &a_buf, &b_buf, &b_buf, &c, &scratch,
            )
            .unwrap();
            run(&gpu, &launches);
            let got = gpu.read_f32(&c, 0, m * n).unwrap();
            assert_close(
                &format!("quads gemm case {case} ({m}x{n}x{k}, f16 {half}) {kernel:?}"),
                &got,
                &want,
                1e-4,
            );
            results.push(got);
        }
        assert_bits_match(
            &gpu,
            case,
            &quads,
            &results[..2],
            GemmKernel::Subgroup,
            &results[2],
        );
    }
    assert_eq!(fallbacks, 4, "both unserved cases ran as other kernels");
    assert_one_and_several_windows(&quads, &windows_seen);
}

#[test]
fn outer_quads_gemm_matches_f64_and_the_subgroup_kernel_bit_for_bit() {
    // dYᵀ·X, the weight gradients' layout: A (m, k) = dY[k, m] and B (k, n) = X[k, n], both
    // [K, ·] row-major, read 4 consecutive m (n) values a load; sizes off the 32x32 tiles;
    // row strides equal to the widths or padded; offsets at whole 4 values; bias, bias2,
    // accumulate; C stored by quads or value by value; f32, f16 and one of each (cases 8 and 9: --precision f16's weight
    // gradients read f32 gradients and f16 activations); cases 12-19 x·W's layout (A and B
    // row-major: the rows variant, A read along k; f32, and in cases 18 and 19 an f16 B, as
    // --precision f16's weights in the recurrences' backward products); and products the
    // loads do not serve (K not a multiple of 4, an odd offset, x·Wᵀ's layout, an odd row
    // stride of A in x·W's), which run as the subgroup kernel.
    let gpu = gpu();
    if !offered(&gpu, &[GemmKernel::OuterQuads]) {
        return;
    }
    // With 8-byte storage words too, where the adapter has 64-bit integers (lavapipe must).
    let longs = GemmKernel::candidates(&gpu).contains(&GemmKernel::OuterLongs);
    assert!(
        longs || !gpu.adapter().is_software,
        "lavapipe offers 64-bit integers, so OuterLongs"
    );
    let outer_kernels: &[GemmKernel] = if longs {
        &[GemmKernel::OuterQuads, GemmKernel::OuterLongs]
    } else {
        &[GemmKernel::OuterQuads]
    };
    let mut longs_served = 0;
    let mut rng = Rng::new(29);
    let mut served = 0;
    for case in 0..20 {
        let rows = case >= 12;
        let half = (8..12).contains(&case) && gpu.adapter().shader_f16;
        let half_b = case >= 18 && gpu.adapter().shader_f16;
        let unserved = case % 4 == 3 && case < 18;
        let (m, n) = (1 + rng.below(150), 1 + rng.below(150));
        // Even cases: C's rows whole quads (stored 4 values a word), odd ones not.
        let n = if case % 2 == 0 {
            n.next_multiple_of(4)
        } else {
            n | 1
        };
        let k = 4 * (1 + rng.below(100)) + usize::from(unserved && case == 3);
        let (lda, ldb) = (
            m.next_multiple_of(4) + 4 * (case % 2),
            n.next_multiple_of(4),
        );
        let a_off = 4 * rng.below(500) + usize::from(unserved && case == 7);
        let b_off = 4 * rng.below(500);
        // x·W's A: [m, k] row-major, its row stride K or padded (case 15: odd).
        let lda_rows = k + 4 * (case % 2) + usize::from(unserved && case == 15);
        let a_all = randn(&mut rng, a_off + if rows { m * lda_rows } else { k * lda });
        let b_all = randn(&mut rng, b_off + k * ldb + 2 * n);
        let c0 = randn(&mut rng, m * n);
        let (a_buf, a_r) = operand_buffer(&gpu, "a", &a_all, half && case != 8);
        let (b_buf, b_r) = operand_buffer(&gpu, "b", &b_all, (half && case != 9) || half_b);
        let layout_unserved = unserved && case == 11;
        let spec = GemmSpec {
            m,
            n,
            k,
            // Case 11: A row-major (x·Wᵀ's A).
            a: if layout_unserved {
                Operand::row_major(a_off, k)
            } else if rows {
                Operand::row_major(a_off, lda_rows)
            } else {
                Operand::transposed(a_off, lda)
            },
            // Case 11: B transposed too (x·Wᵀ's B), which neither variant takes.
            b: if layout_unserved {
                Operand::transposed(b_off, k)
            } else {
                Operand::row_major(b_off, ldb)
            },
            c_offset: 0,
            bias: Some(b_off + k * ldb),
            // Both store paths with and without the second bias.
            bias2: (case % 4 < 2).then_some(b_off + k * ldb + n),
            accumulate: case % 3 == 1,
        };
        let applies =
            GemmKernel::outer_apply(&spec) || GemmKernel::outer_rows_apply(&spec, &a_buf, &b_buf);
        assert!(
            !rows || !GemmKernel::outer_apply(&spec),
            "case {case}: x·W's layout is the rows variant's"
        );
        assert_eq!(
            applies, !unserved,
            "case {case}: whether the outer loads apply"
        );
        served += usize::from(applies);
        let want = product_f64(&spec, &a_r, &b_r, &b_r, &c0);
        let mut u = Uniforms::new();
        let scratch = gpu.storage("scratch", 4).unwrap();
        let mut results = Vec::new();
        let f32_operands = a_buf.dtype() == Dtype::F32 && b_buf.dtype() == Dtype::F32;
        for &kernel in outer_kernels.iter().chain([&GemmKernel::Subgroup]) {
            let effective = kernel.effective(&gpu, &spec, &a_buf, &b_buf, 1);
            if kernel != GemmKernel::Subgroup {
                let expect = match kernel {
                    _ if !applies => GemmKernel::Subgroup,
                    GemmKernel::OuterLongs if !f32_operands => GemmKernel::OuterQuads,
                    _ => kernel,
                };
                assert_eq!(effective, expect, "case {case}: what runs for {kernel:?}");
                longs_served += usize::from(effective == GemmKernel::OuterLongs);
            }
            let c = gpu.storage_from("c", &c0).unwrap();
            let launches = ops::gemm_split(
                &gpu, &mut u, &spec, kernel, 1, &a_buf, &b_buf, &b_buf, &c, &scratch,
            )
            .unwrap();
            run(&gpu, &launches);
            let got = gpu.read_f32(&c, 0, m * n).unwrap();
            assert_close(
                &format!(
                    "outer gemm case {case} ({m}x{n}x{k}, f16 a {:?} b {:?}) {kernel:?}",
                    a_buf.dtype(),
                    b_buf.dtype()
                ),
                &got,
                &want,
                1e-4,
            );
            results.push(got);
        }
        let (outer_results, subgroup) = results.split_at(outer_kernels.len());
        assert_bits_match(
            &gpu,
            case,
            outer_kernels,
            outer_results,
            GemmKernel::Subgroup,
            &subgroup[0],
        );
    }
    assert_eq!(served, 16, "sixteen cases take the outer-product loads");
    if longs {
        // Every served case but the f16 ones (8-11 with shader-f16, 18-19).
        assert!(
            longs_served >= 10,
            "{longs_served} cases took the 8-byte words"
        );
    }
}

/// The outer-product formulations `gpu` offers (`OuterQuads`, and `OuterLongs` where it has
/// 64-bit integers); None where it offers neither (lavapipe must).
fn outer_kernels(gpu: &Gpu) -> Option<Vec<GemmKernel>> {
    if !offered(gpu, &[GemmKernel::OuterQuads]) {
        return None;
    }
    Some(
        [GemmKernel::OuterQuads, GemmKernel::OuterLongs]
            .into_iter()
            .filter(|k| GemmKernel::candidates(gpu).contains(k))
            .collect(),
    )
}

/// `spec` run by each of `kernels` and by the subgroup kernel, each on a fresh C holding
/// `c_all`: every result must be f64's `want` (all of C, its offset included) and, bit for
/// bit, the subgroup kernel's. `check` sees each kernel's launches and C before they run.
#[allow(clippy::too_many_arguments)]
fn outer_products_match(
    gpu: &Gpu,
    what: &str,
    case: usize,
    spec: &GemmSpec,
    kernels: &[GemmKernel],
    (a, b): (&wgrnn::gpu::Buffer, &wgrnn::gpu::Buffer),
    c_all: &[f32],
    want: &[f64],
    mut check: impl FnMut(GemmKernel, &[Launch], &wgrnn::gpu::Buffer),
) {
    let mut u = Uniforms::new();
    let scratch = gpu.storage("scratch", 4).unwrap();
    let mut results = Vec::new();
    for &kernel in kernels.iter().chain([&GemmKernel::Subgroup]) {
        let c = gpu.storage_from("c", c_all).unwrap();
        let launches =
            ops::gemm_split(gpu, &mut u, spec, kernel, 1, a, b, b, &c, &scratch).unwrap();
        check(kernel, &launches, &c);
        run(gpu, &launches);
        let got = gpu.read_f32(&c, 0, c_all.len()).unwrap();
        let GemmSpec { m, n, k, .. } = *spec;
        assert_close(
            &format!("{what} case {case} ({m}x{n}x{k}) {kernel:?}"),
            &got,
            want,
            1e-4,
        );
        results.push(got);
    }
    let (outer, subgroup) = results.split_at(kernels.len());
    assert_bits_match(
        gpu,
        case,
        kernels,
        outer,
        GemmKernel::Subgroup,
        &subgroup[0],
    );
}

#[test]
fn outer_quads_walk_a_long_k_in_blocks_with_the_bits_of_one_pass() {
    // A K whose rows of A and B exceed `ops::OUTER_BLOCKS_FROM_BYTES`: on a software adapter the
    // outer-product kernels take it in blocks of rows, one dispatch each, each continuing
    // the sums in C; the results must be f64's and, bit for bit, the subgroup kernel's one
    // pass. Both layouts (dYᵀ·X; x·W, the rows variant), sizes off the 32x32 tiles, C at an
    // offset, the biases (added once, by the last block); and products that take one pass:
    // one that adds to C (blocks would reorder its additions), one with an f16 B.
    let gpu = gpu();
    let Some(kernels) = outer_kernels(&gpu) else {
        return;
    };
    let mut rng = Rng::new(37);
    let (m, n) = (36, 40);
    // (x·W's layout, adds to C, B f16: --precision f16's weight gradients, f32 gradients
    // times f16 activations, which take one pass: blocks measured slower with f16 operands).
    let cases = [
        (false, false, false),
        (true, false, false),
        (false, true, false),
        (false, false, gpu.adapter().shader_f16),
    ];
    for (case, (rows, accumulate, half_b)) in cases.into_iter().enumerate() {
        let row_bytes = (m + n) * 4;
        let block = ops::OUTER_BLOCK_BYTES / row_bytes / 4 * 4;
        // Past the threshold, and a part of a block at the end.
        let whole = ops::OUTER_BLOCKS_FROM_BYTES / row_bytes / block + 1;
        let k = whole * block + 4 * (1 + rng.below(block / 4 - 1));
        let a_off = 4 * rng.below(50);
        let b_off = 4 * rng.below(50);
        let c_off = 4 * (1 + rng.below(10));
        let a_all = randn(&mut rng, a_off + m * k);
        let b_all = randn(&mut rng, b_off + k * n + 2 * n);
        let c_all = randn(&mut rng, c_off + m * n);
        let spec = GemmSpec {
            m,
            n,
            k,
            a: if rows {
                Operand::row_major(a_off, k)
            } else {
                Operand::transposed(a_off, m)
            },
            b: Operand::row_major(b_off, n),
            c_offset: c_off,
            bias: Some(b_off + k * n),
            bias2: Some(b_off + k * n + n),
            accumulate,
        };
        let a_buf = gpu.storage_from("a", &a_all).unwrap();
        let (b_buf, b_all) = operand_buffer(&gpu, "b", &b_all, half_b);
        let mut want = product_f64(&spec, &a_all, &b_all, &b_all, &c_all[c_off..]);
        want.splice(0..0, c_all[..c_off].iter().map(|&v| f64::from(v)));
        outer_products_match(
            &gpu,
            "long-K outer gemm",
            case,
            &spec,
            &kernels,
            (&a_buf, &b_buf),
            &c_all,
            &want,
            |kernel, launches, c| {
                let blocked = ops::outer_k_block(&gpu, &spec, kernel, &a_buf, &b_buf, c);
                let expect_blocks = kernel != GemmKernel::Subgroup
                    && gpu.adapter().is_software
                    && !accumulate
                    && !half_b;
                assert_eq!(
                    blocked,
                    expect_blocks.then_some(block),
                    "case {case}: {kernel:?}'s block of rows"
                );
                let dispatches = if expect_blocks { whole + 1 } else { 1 };
                assert_eq!(
                    launches.len(),
                    dispatches,
                    "case {case}: {kernel:?}'s dispatches"
                );
            },
        );
    }
}

#[test]
fn outer_gemm_with_few_columns_or_rows_runs_narrow_or_short_with_the_tiles_bits() {
    // dYᵀ·X where C has at most 8 columns (a weight gradient over few input features, W2's
    // dW_ih): the outer-product formulations run `gemm_outer_narrow` (a lane owns 4 rows and
    // every column, one workgroup per 32 rows). Its results must be f64's and, bit for bit,
    // the subgroup kernel's: N 1 to 8 (past 4: B's second quad; 4 and 8 with C's quads stored
    // as words, the others value by value), M off the 32-row groups, C at an offset, the
    // biases, a product adding to C; and K long enough that a software adapter walks it in
    // blocks of rows (each block continuing the sums from C). N 9 and f16 operands keep the
    // 32x32 tiles. Where M is at most 20 (and N more than 8: the head's weight gradient over
    // a POS tagger's tags) they run the tiles with only the first 20 rows' multiply-adds
    // (ROW_QUADS 5): M 1 to 20, with the same checks; M 21 keeps all 32.
    let gpu = gpu();
    let Some(kernels) = outer_kernels(&gpu) else {
        return;
    };
    let mut rng = Rng::new(41);
    // (n, accumulate, long K, f16 B, M where it is not random)
    let cases = [
        (1, false, false, false, None),
        (2, true, false, false, None),
        (3, false, false, false, None),
        (4, false, false, false, None),
        (5, true, false, false, None),
        (6, false, false, false, None),
        (7, false, false, false, None),
        (8, false, false, false, None),
        (8, true, false, false, None),
        (8, false, true, false, None),
        (4, false, true, false, None),
        (9, false, false, false, None),
        (8, false, false, gpu.adapter().shader_f16, None),
        (40, false, false, false, Some(18)),
        (256, true, false, false, Some(20)),
        (9, false, false, false, Some(1)),
        (36, false, true, false, Some(17)),
        (12, false, false, false, Some(21)),
        (40, false, false, gpu.adapter().shader_f16, Some(18)),
    ];
    for (case, &(n, accumulate, long_k, half_b, m)) in cases.iter().enumerate() {
        let m = m.unwrap_or_else(|| 1 + rng.below(150));
        let k = if long_k {
            // Past the rows' threshold (see `outer_quads_walk_a_long_k_in_blocks...`), and a
            // part of a block at the end.
            let row_bytes = (m + n) * 4;
            let block = ops::OUTER_BLOCK_BYTES / row_bytes / 4 * 4;
            (ops::OUTER_BLOCKS_FROM_BYTES / row_bytes / block + 1) * block + 4 * (1 + rng.below(50))
        } else {
            4 * (1 + rng.below(200))
        };
        let (lda, ldb) = (
            m.next_multiple_of(4) + 4 * (case % 2),
            n.next_multiple_of(4),
        );
        let a_off = 4 * rng.below(100);
        let b_off = 4 * rng.below(100);
        // C at a whole quad (stored as words where N is 4 or 8), or one value past it.
        let c_off = 4 * rng.below(10) + usize::from(case == 7);
        let a_all = randn(&mut rng, a_off + k * lda);
        let b_all = randn(&mut rng, b_off + k * ldb + 2 * n);
        let c_all = randn(&mut rng, c_off + m * n);
        let spec = GemmSpec {
            m,
            n,
            k,
            a: Operand::transposed(a_off, lda),
            b: Operand::row_major(b_off, ldb),
            c_offset: c_off,
            bias: (case % 3 != 2).then_some(b_off + k * ldb),
            bias2: (case % 2 == 0).then_some(b_off + k * ldb + n),
            accumulate,
        };
        let a_buf = gpu.storage_from("a", &a_all).unwrap();
        let (b_buf, b_all) = operand_buffer(&gpu, "b", &b_all, half_b);
        let narrow = n <= 8 && !half_b;
        let short = !narrow && m <= 20 && !half_b;
        assert_eq!(
            GemmKernel::outer_narrow_apply(&spec, &a_buf, &b_buf),
            narrow,
            "case {case}: whether the narrow kernel serves N {n}"
        );
        assert_eq!(
            !narrow && GemmKernel::outer_short_apply(&spec, &a_buf, &b_buf),
            short,
            "case {case}: whether the short tiles serve M {m}"
        );
        let mut want = product_f64(&spec, &a_all, &b_all, &b_all, &c_all[c_off..]);
        want.splice(0..0, c_all[..c_off].iter().map(|&v| f64::from(v)));
        outer_products_match(
            &gpu,
            "narrow or short outer gemm",
            case,
            &spec,
            &kernels,
            (&a_buf, &b_buf),
            &c_all,
            &want,
            |kernel, launches, c| {
                if kernel == GemmKernel::Subgroup {
                    return;
                }
                // The narrow kernel, one workgroup per 32 rows; else the 32x32 tiles'.
                let entry = if narrow {
                    "gemm_outer_narrow"
                } else {
                    "gemm_outer_quads"
                };
                let groups = [n.div_ceil(32) as u32, m.div_ceil(32) as u32, 1];
                assert!(
                    launches
                        .iter()
                        .all(|l| l.binding.entry() == entry && l.groups == groups),
                    "case {case}: {kernel:?}'s kernel and workgroups"
                );
                let short_kernel = match kernel {
                    GemmKernel::OuterLongs => Kernel::GemmOuterLongsShort,
                    _ => Kernel::GemmOuterQuadsShort,
                };
                assert_eq!(
                    launches.iter().all(|l| l.binding.kernel() == short_kernel),
                    short,
                    "case {case}: {kernel:?} as the short tiles"
                );
                let blocks = ops::outer_k_block(&gpu, &spec, kernel, &a_buf, &b_buf, c);
                assert_eq!(
                    blocks.is_some(),
                    long_k
                        && gpu.adapter().is_software
                        && c_off.is_multiple_of(4)
                        && n.is_multiple_of(4),
                    "case {case}: {kernel:?} in blocks of rows"
                );
                assert_eq!(launches.len(), blocks.map_or(1, |b| k.div_ceil(b)));
            },
        );
    }
}

#[test]
fn tile_quads_gemms_match_f64_and_the_plain_kernels_bit_for_bit() {
    // The wide and tiled kernels with quad loads, each against f64 and its plain kernel, with
    // f32 operands and with f16 in A, B or both. Every layout (A along k or m, B along k or n), sizes off the 128x128 tiles (several
    // tiles, partial edges), strides equal to the extents or padded, offsets at whole
    // 4 values, bias, bias2, accumulate, one pass and K slices; and products the loads do not
    // serve (an offset, K or a stride not a multiple of 4), which run as the plain kernels.
    let gpu = gpu();
    let mut rng = Rng::new(31);
    let (mut served, mut half_served) = (0, 0);
    for case in 0..16 {
        let (ta, tb) = (case % 2 == 1, (case / 2) % 2 == 1);
        let unserved = case % 4 == 3;
        let quad = |rng: &mut Rng| 4 * (1 + rng.below(75));
        let (m, n, mut k) = (quad(&mut rng), quad(&mut rng), quad(&mut rng));
        let mut a_off = 4 * rng.below(50);
        let pad = 4 * (case % 2);
        // The unserved cases (A along m, B along k): an offset, K, B's or A's stride.
        let (mut lda_pad, mut ldb_pad) = (pad, pad);
        match case {
            3 => a_off += 1,
            7 => k += 1,
            11 => ldb_pad += 2,
            15 => lda_pad += 2,
            _ => {}
        }
        let b_off = 4 * rng.below(50);
        let lda = if ta { m } else { k } + lda_pad;
        let ldb = if tb { k } else { n } + ldb_pad;
        let a_all = randn(&mut rng, a_off + lda * if ta { k } else { m });
        let b_all = randn(&mut rng, b_off + ldb * if tb { n } else { k } + 2 * n);
        let c0 = randn(&mut rng, m * n);
        let spec = GemmSpec {
            m,
            n,
            k,
            a: if ta {
                Operand::transposed(a_off, lda)
            } else {
                Operand::row_major(a_off, lda)
            },
            b: if tb {
                Operand::transposed(b_off, ldb)
            } else {
                Operand::row_major(b_off, ldb)
            },
            c_offset: 0,
            bias: Some(b_all.len() - 2 * n),
            bias2: (case % 3 == 0).then_some(b_all.len() - n),
            accumulate: case % 5 == 1,
        };
        // f32 operands, then f16 in one or both (each operand's quads take its own type).
        let halves = [(true, true), (false, true), (true, false)][case % 3];
        for (a_half, b_half) in [(false, false), halves] {
            let (a_buf, a_used) = if a_half {
                half_buffer(&gpu, "a", &a_all)
            } else {
                (gpu.storage_from("a", &a_all).unwrap(), a_all.clone())
            };
            let (b_buf, b_used) = if b_half {
                half_buffer(&gpu, "b", &b_all)
            } else {
                (gpu.storage_from("b", &b_all).unwrap(), b_all.clone())
            };
            let want = product_f64(&spec, &a_used, &b_used, &b_used, &c0);
            let mut u = Uniforms::new();
            for slices in [1, 2 + case % 3] {
                let k_slice = if slices > 1 { k.div_ceil(slices) } else { 0 };
                let applies = GemmKernel::tile_quads_apply(&spec, k_slice);
                if slices == 1 {
                    assert_eq!(applies, !unserved, "case {case}: whether the quads apply");
                }
                served += usize::from(applies);
                half_served += usize::from(applies && (a_half || b_half));
                let scratch = gpu.storage("scratch", (slices * m * n * 4) as u64).unwrap();
                // f16 through the tiled pair only: the quad loads are the functions both
                // kernels share, and lavapipe takes tens of seconds to compile each f16
                // variant of the wide ones.
                let pairs = [
                    (GemmKernel::WideQuads, GemmKernel::Wide),
                    (GemmKernel::TallQuads, GemmKernel::Tiled),
                    (GemmKernel::TiledQuads, GemmKernel::Tiled),
                ];
                let pairs = if a_half || b_half {
                    &pairs[2..]
                } else {
                    &pairs[..]
                };
                for &(quads, plain) in pairs {
                    let effective = quads.effective(&gpu, &spec, &a_buf, &b_buf, slices);
                    let expect = if applies { quads } else { plain };
                    assert_eq!(effective, expect, "case {case}, {slices} slices: what runs");
                    let mut results = Vec::new();
                    for kernel in [quads, plain] {
                        let c = gpu.storage_from("c", &c0).unwrap();
                        let launches = ops::gemm_split(
                            &gpu, &mut u, &spec, kernel, slices, &a_buf, &b_buf, &b_buf, &c,
                            &scratch,
                        )
                        .unwrap();
                        run(&gpu, &launches);
                        let got = gpu.read_f32(&c, 0, m * n).unwrap();
                        assert_close(
                            &format!(
                                "tile quads case {case} ({m}x{n}x{k}, ta {ta}, tb {tb}, f16 A {a_half} B {b_half}) {kernel:?} in {slices} K slices"
                            ),
                            &got,
                            &want,
                            1e-4,
                        );
                        results.push(got);
                    }
                    assert_bits_match(&gpu, case, &[quads], &results[..1], plain, &results[1]);
                }
            }
        }
    }
    assert!(served >= 32, "{served} runs took the quad loads");
    assert!(
        half_served >= 12,
        "{half_served} runs took the quad loads with f16 operands"
    );
}

#[test]
fn rnn_steps_match_f64_forward_and_backward() {
    let gpu = gpu();
    let mut rng = Rng::new(2);
    for case in 0..23 {
        // Case 20's h[t] ([64, 256] f32) fills one 64 KiB window exactly, so the window GEMMs
        // run their own kernels (elsewhere they run as the subgroup one); case 21's W_hh
        // ([128, 128] f32) does, so a sweep reads it through the window (B 40: a part tile;
        // case 20's sweep reads it from storage). Case 22: more sequences than a 128-row
        // tile holds and K over two 16-deep slabs, whole quads (every row of the tiled
        // kernels' A slabs, read through C by the fused steps, in use).
        let (t_len, batch, h) = match case {
            20 => (3, 64, 256),
            21 => (4, 40, 128),
            22 => (2, 130, 36),
            _ => (1 + rng.below(6), 1 + rng.below(45), 1 + rng.below(45)),
        };
        let activation = if case % 2 == 0 {
            Activation::Tanh
        } else {
            Activation::Relu
        };
        // Case 20: W_hh at a whole 16-byte word, so that the quads GEMMs apply.
        // Case 21: W_hh at 0, so that it fills one window.
        let whh_off = match case {
            20 | 22 => 4,
            21 => 0,
            _ => rng.below(7),
        };
        let bh = batch * h;
        let params: Vec<f32> = (0..whh_off + h * h)
            .map(|_| rng.uniform(-0.5, 0.5) as f32)
            .collect();
        let pre = randn(&mut rng, t_len * bh);
        let mut hs0 = vec![0f32; (t_len + 1) * bh];
        for v in &mut hs0[..bh] {
            *v = rng.uniform(-1.0, 1.0) as f32;
        }
        let dh_out = randn(&mut rng, t_len * bh);
        let pb = gpu.storage_from("params", &params).unwrap();
        let preb = gpu.storage_from("pre", &pre).unwrap();
        let hsb = gpu.storage_from("hs", &hs0).unwrap();
        let dhb = gpu.storage_from("dh_out", &dh_out).unwrap();
        let dab = gpu.storage("da", (t_len * bh * 4) as u64).unwrap();
        let shape = RecurrenceShape {
            steps: t_len,
            batch,
            hidden: h,
            activation,
            whh_off,
        };
        // f64 forward and backward.
        let w = |j: usize, k: usize| params[whh_off + j * h + k] as f64;
        let mut hs = to_f64(&hs0);
        for t in 0..t_len {
            for b in 0..batch {
                for j in 0..h {
                    let mut s = pre[t * bh + b * h + j] as f64;
                    for k in 0..h {
                        s += hs[t * bh + b * h + k] * w(j, k);
                    }
                    hs[(t + 1) * bh + b * h + j] = if activation == Activation::Tanh {
                        s.tanh()
                    } else {
                        s.max(0.0)
                    };
                }
            }
        }
        let mut da = vec![0.0; t_len * bh];
        for t in (0..t_len).rev() {
            for b in 0..batch {
                for j in 0..h {
                    let mut g = dh_out[t * bh + b * h + j] as f64;
                    if t + 1 < t_len {
                        for k in 0..h {
                            g += da[(t + 1) * bh + b * h + k] * w(k, j);
                        }
                    }
                    let hv = hs[(t + 1) * bh + b * h + j];
                    let d = if activation == Activation::Tanh {
                        1.0 - hv * hv
                    } else {
                        (hv > 0.0) as u8 as f64
                    };
                    da[t * bh + b * h + j] = g * d;
                }
            }
        }
        // Every way of dispatching the sweep: one fused dispatch per step, chunk-persistent,
        // and a GEMM per step (each formulation) plus the finishing kernel or finishing the
        // step in its own store.
        // Room for up to 8 slices' partial products.
        let step_sum = gpu.storage("step_sum", (8 * bh * 4) as u64).unwrap();
        let wide = [
            GemmKernel::Tiled,
            GemmKernel::Wide,
            GemmKernel::WideQuads,
            GemmKernel::TiledQuads,
            GemmKernel::TallQuads,
        ];
        let mut gemms = wide.to_vec();
        gemms.extend(
            GemmKernel::candidates(&gpu)
                .into_iter()
                .filter(|k| !wide.contains(k)),
        );
        let mut kernels = vec![
            ops::RecurrenceKernel::PerStep,
            ops::RecurrenceKernel::Persistent,
        ];
        kernels.extend(gemms.iter().map(|&k| ops::RecurrenceKernel::Gemm(k)));
        kernels.extend(
            gemms
                .iter()
                .filter(|k| k.step_kernel().is_some())
                .map(|&k| ops::RecurrenceKernel::GemmFused(k)),
        );
        // The window quads steps of a whole sweep in one dispatch (where W_hh fills one
        // window; elsewhere step by step), after the step-by-step ones it must match bit for
        // bit.
        if gemms.contains(&GemmKernel::WindowQuads) {
            kernels.push(ops::RecurrenceKernel::GemmSweep(GemmKernel::WindowQuads));
            // ... and with 8-byte storage words (lavapipe has 64-bit integers).
            assert!(gpu.adapter().shader_int64 || !gpu.adapter().is_software);
            if gpu.adapter().shader_int64 {
                kernels.push(ops::RecurrenceKernel::GemmSweepLongs(
                    GemmKernel::WindowQuads,
                ));
            }
        }
        let mut fused_quads: Option<(Vec<f32>, Vec<f32>)> = None;
        // Split over K (the slices' sums in another order, so f64 tolerances, not bits).
        kernels.extend([
            ops::RecurrenceKernel::GemmSplit(GemmKernel::Tiled, 2 + case % 3),
            ops::RecurrenceKernel::GemmSplit(GemmKernel::TiledQuads, 3),
            ops::RecurrenceKernel::GemmSplit(GemmKernel::TallQuads, 2),
            ops::RecurrenceKernel::GemmSplit(GemmKernel::Wide, 8),
        ]);
        if case == 20 && gemms.contains(&GemmKernel::SubgroupWindowA) {
            // A step's product reads h[t] (da[t + 1] backward) through one window.
            let product = GemmSpec {
                m: batch,
                n: h,
                k: h,
                a: Operand::row_major(bh, h),
                b: Operand::transposed(whh_off, h),
                c_offset: 0,
                bias: None,
                bias2: None,
                accumulate: false,
            };
            let plan =
                ops::window_chunks(&gpu, &product, GemmKernel::SubgroupWindowA, &hsb, &pb, 1);
            assert!(plan.is_some(), "h[1] must fit one window");
        }
        // Room for W_hhᵀ, which the quads GEMMs' backward products read (stale values first:
        // the sweep must write it).
        let whh_t = gpu.storage_from("whh_t", &vec![7.0f32; h * h]).unwrap();
        // The two state copies a fused sweep with A's windows alternates between (stale
        // values first; at least a window each).
        let copy_len = bh.max(16 << 10);
        let copies = [
            gpu.storage_from("copy_0", &vec![5.0f32; copy_len]).unwrap(),
            gpu.storage_from("copy_1", &vec![6.0f32; copy_len]).unwrap(),
        ];
        for kernel in kernels {
            gpu.write(&hsb, 0, &hs0);
            // Stale gradients, so that a step a sweep leaves out cannot pass on the previous
            // formulation's results.
            gpu.write(&dab, 0, &vec![9.0f32; t_len * bh]);
            let mut u = Uniforms::new();
            let mut launches = ops::rnn_forward(
                &gpu,
                &mut u,
                &shape,
                kernel,
                &pb,
                &preb,
                &hsb,
                &step_sum,
                Some([&copies[0], &copies[1]]),
            )
            .unwrap();
            let backward = ops::rnn_backward(
                &gpu,
                &mut u,
                &shape,
                kernel,
                &pb,
                Some(&whh_t),
                &hsb,
                &dhb,
                &dab,
                &step_sum,
                Some([&copies[0], &copies[1]]),
            )
            .unwrap();
            if let (20, ops::RecurrenceKernel::Gemm(gemm)) = (case, kernel) {
                if matches!(gemm, GemmKernel::WindowQuads | GemmKernel::WindowQuadsA) {
                    // The transpose, then T - 1 products reading the copy as quads (one
                    // dispatch a window), and T finishing kernels.
                    let product = GemmSpec {
                        m: batch,
                        n: h,
                        k: h,
                        a: Operand::row_major(bh, h),
                        b: Operand::transposed(0, h),
                        c_offset: 0,
                        bias: None,
                        bias2: None,
                        accumulate: false,
                    };
                    assert!(GemmKernel::quads_apply(&product, &dab, &whh_t));
                    let windows = ops::window_chunks(
                        &gpu,
                        &product,
                        gemm,
                        &dab,
                        &whh_t,
                        ops::MAX_WINDOW_CHUNKS,
                    )
                    .expect("a window plan")
                    .len();
                    assert_eq!(
                        backward.len(),
                        1 + (t_len - 1) * windows + t_len,
                        "case 20: {gemm:?} backward launches"
                    );
                }
            }
            if (case, kernel)
                == (
                    20,
                    ops::RecurrenceKernel::GemmFused(GemmKernel::WindowQuads),
                )
            {
                // One dispatch a window of W_hh (forward) or of its transposed copy (backward)
                // a step, each finishing its columns; the backward's transpose first and its
                // last step's finishing kernel (no product there).
                let windows = |b: Operand, weights: &wgrnn::gpu::Buffer| {
                    let product = GemmSpec {
                        m: batch,
                        n: h,
                        k: h,
                        a: Operand::row_major(bh, h),
                        b,
                        c_offset: 0,
                        bias: None,
                        bias2: None,
                        accumulate: false,
                    };
                    ops::window_chunks(
                        &gpu,
                        &product,
                        GemmKernel::WindowQuads,
                        &hsb,
                        weights,
                        ops::MAX_WINDOW_CHUNKS,
                    )
                    .expect("a window plan")
                    .len()
                };
                let forward_windows = windows(Operand::transposed(whh_off, h), &pb);
                assert!(forward_windows > 1, "W_hh [256, 256] spans several windows");
                assert_eq!(
                    launches.len(),
                    t_len * forward_windows,
                    "fused forward launches"
                );
                assert_eq!(
                    backward.len(),
                    1 + (t_len - 1) * windows(Operand::transposed(0, h), &whh_t) + 1,
                    "fused backward launches"
                );
            }
            if (case, kernel)
                == (
                    20,
                    ops::RecurrenceKernel::GemmFused(GemmKernel::WindowQuadsA),
                )
            {
                // h[0] copied, then one dispatch a step (h[t] fills one window of a copy);
                // backward: the transpose, T - 1 fused steps, the last step's finishing
                // kernel and the copy of its da.
                assert_eq!(
                    launches.len(),
                    1 + t_len,
                    "fused forward launches, A's windows"
                );
                assert_eq!(
                    backward.len(),
                    1 + (t_len - 1) + 1 + 1,
                    "fused backward launches, A's windows"
                );
            }
            if matches!(case, 20 | 21)
                && matches!(
                    kernel,
                    ops::RecurrenceKernel::GemmSweep(GemmKernel::WindowQuads)
                        | ops::RecurrenceKernel::GemmSweepLongs(GemmKernel::WindowQuads)
                )
            {
                // One dispatch forward (W_hh through its window in case 21, from storage in
                // case 20); backward the transpose, the last step's finishing kernel (no
                // product there) and one dispatch for the other steps.
                assert_eq!(launches.len(), 1, "sweep forward launches");
                assert_eq!(backward.len(), 3, "sweep backward launches");
            }
            launches.extend(backward);
            run(&gpu, &launches);
            let what =
                format!("case {case} ({kernel:?}, T {t_len}, B {batch}, H {h}, {activation})");
            let states = gpu.read_all_f32(&hsb).unwrap()[..(t_len + 1) * bh].to_vec();
            let grads = gpu.read_f32(&dab, 0, t_len * bh).unwrap();
            match kernel {
                ops::RecurrenceKernel::GemmFused(GemmKernel::WindowQuads) => {
                    fused_quads = Some((states.clone(), grads.clone()));
                }
                ops::RecurrenceKernel::GemmSweep(GemmKernel::WindowQuads)
                | ops::RecurrenceKernel::GemmSweepLongs(GemmKernel::WindowQuads) => {
                    let (fused_states, fused_grads) =
                        fused_quads.as_ref().expect("the fused steps ran first");
                    let same = |x: &[f32], y: &[f32]| {
                        x.iter().zip(y).all(|(a, b)| a.to_bits() == b.to_bits())
                    };
                    assert!(
                        same(&states, fused_states),
                        "{what}: states differ from GemmFused's"
                    );
                    assert!(
                        same(&grads, fused_grads),
                        "{what}: da differs from GemmFused's"
                    );
                }
                _ => {}
            }
            assert_close(&format!("{what} hidden states"), &states, &hs, 1e-4);
            assert_close(&format!("{what} da"), &grads, &da, 1e-4);
        }
    }
}

#[test]
fn pooling_matches_f64_with_carry_and_ragged_lengths() {
    let gpu = gpu();
    let mut rng = Rng::new(3);
    for case in 0..24 {
        let pool = [Pool::Last, Pool::Mean, Pool::Max][case % 3];
        let start = if (case / 3) % 2 == 0 {
            SequenceStart::Fresh
        } else {
            SequenceStart::Continued
        };
        let (t_len, batch, h) = (1 + rng.below(6), 1 + rng.below(5), 1 + rng.below(30));
        // The later mean cases have widths of whole 4 values (the vec4 backward kernel).
        let h = if pool == Pool::Mean && case >= 12 {
            h.next_multiple_of(4)
        } else {
            h
        };
        let first_step = if start == SequenceStart::Fresh {
            0
        } else {
            1 + rng.below(4)
        };
        // Some sequences end inside the chunk, some before it (continued chunks), some after.
        let lengths: Vec<u32> = (0..batch)
            .map(|_| {
                let lo = if start == SequenceStart::Fresh {
                    1
                } else {
                    first_step.saturating_sub(1).max(1)
                };
                (lo + rng.below(first_step + t_len + 3 - lo)) as u32
            })
            .collect();
        let bh = batch * h;
        let hs = randn(&mut rng, (t_len + 1) * bh);
        let acc0 = randn(&mut rng, bh);
        let dz = randn(&mut rng, bh);
        let hsb = gpu.storage_from("hs", &hs).unwrap();
        let accb = gpu.storage_from("acc", &acc0).unwrap();
        let zb = gpu.storage("z", (bh * 4) as u64).unwrap();
        let argb = gpu.storage("arg", (bh * 4) as u64).unwrap();
        let dzb = gpu.storage_from("dz", &dz).unwrap();
        // Stale values: the backward pass must write every element of dh_out.
        let dhb = gpu.storage_from("dh", &vec![7.0f32; t_len * bh]).unwrap();
        let lenb = gpu.storage_from("lengths", &lengths).unwrap();
        let infob = gpu
            .storage_from("chunk_info", &[0u32, first_step as u32])
            .unwrap();
        let info = ops::ChunkInfo {
            lengths: &lenb,
            chunk_info: &infob,
        };
        // Odd cases as a bidirectional model's output: its reverse half (columns from
        // reverse_from on) pools, for `last`, the state at the chunk's first step.
        let reverse_from = if case % 2 == 1 { h / 2 } else { h };
        let shape = PoolShape {
            steps: t_len,
            batch,
            hidden: h,
            pool,
            start,
            reverse_from,
        };
        let mut u = Uniforms::new();
        let f = ops::pool_forward(&gpu, &mut u, &shape, &hsb, &accb, &zb, &argb, info).unwrap();
        let mut rec = Recording::new();
        f.record(&mut rec);
        ops::pool_backward(&gpu, &mut u, &shape, &dzb, &argb, &dhb, info, &mut rec).unwrap();
        gpu.submit(&rec).unwrap();
        gpu.wait_idle().unwrap();
        let mut z = vec![0.0; bh];
        let mut dh = vec![0.0; t_len * bh];
        for e in 0..bh {
            let length = lengths[e / h] as usize;
            let valid = length.saturating_sub(first_step).min(t_len);
            let at = |t: usize| hs[(t + 1) * bh + e] as f64;
            let carried = start == SequenceStart::Continued;
            let prev = if carried { acc0[e] as f64 } else { 0.0 };
            match pool {
                Pool::Mean => {
                    z[e] = (prev + (0..valid).map(at).sum::<f64>()) / length as f64;
                    for t in 0..valid {
                        dh[t * bh + e] = dz[e] as f64 / length as f64;
                    }
                }
                Pool::Last if e % h >= reverse_from => {
                    let (m, a) = if valid > 0 {
                        (at(0), Some(0))
                    } else {
                        (prev, None)
                    };
                    z[e] = m;
                    if let Some(t) = a {
                        dh[t * bh + e] = dz[e] as f64;
                    }
                }
                Pool::Last | Pool::Max => {
                    let (mut m, mut a) = (prev, None);
                    for t in 0..valid {
                        if pool == Pool::Last || (a.is_none() && !carried) || at(t) > m {
                            m = at(t);
                            a = Some(t);
                        }
                    }
                    z[e] = m;
                    if let Some(t) = a {
                        dh[t * bh + e] = dz[e] as f64;
                    }
                }
            }
        }
        let what = format!("case {case} ({pool}, {start:?}, first step {first_step}, lengths {lengths:?}, T {t_len}, H {h}, reverse from {reverse_from})");
        assert_close(
            &format!("{what} z"),
            &gpu.read_all_f32(&zb).unwrap()[..bh],
            &z,
            1e-6,
        );
        assert_close(
            &format!("{what} dh_out"),
            &gpu.read_f32(&dhb, 0, t_len * bh).unwrap(),
            &dh,
            1e-6,
        );
    }
}

#[test]
fn loss_kernel_matches_reference_for_every_loss_and_activation() {
    use wgrnn::engine::StepTargets;
    let gpu = gpu();
    let mut rng = Rng::new(4);
    let combos = [
        (Loss::CrossEntropy, OutputActivation::Softmax),
        (Loss::Bce, OutputActivation::Sigmoid),
        (Loss::Mse, OutputActivation::Identity),
        (Loss::Mse, OutputActivation::Relu),
        (Loss::Mse, OutputActivation::Sigmoid),
        (Loss::Mae, OutputActivation::Identity),
        (Loss::Mae, OutputActivation::Relu),
        (Loss::Mae, OutputActivation::Sigmoid),
    ];
    for case in 0..24 {
        let (loss, act) = combos[case % combos.len()];
        let rows = 1 + rng.below(300);
        let o = if loss == Loss::CrossEntropy {
            2 + rng.below(20)
        } else {
            1 + rng.below(6)
        };
        let y: Vec<f32> = (0..rows * o).map(|_| (3.0 * rng.normal()) as f32).collect();
        let classes: Vec<u32> = (0..rows).map(|_| rng.below(o) as u32).collect();
        let values: Vec<f32> = (0..rows * o)
            .map(|_| {
                if loss == Loss::Bce {
                    rng.next_f64() as f32
                } else {
                    rng.normal() as f32
                }
            })
            .collect();
        let targets = if loss == Loss::CrossEntropy {
            StepTargets::Classes(&classes)
        } else {
            StepTargets::Values(&values)
        };
        let yb = gpu.storage_from("y", &y).unwrap();
        let tb = match targets {
            StepTargets::Classes(c) => gpu.storage_from("t", c).unwrap(),
            StepTargets::Values(v) => gpu.storage_from("t", v).unwrap(),
        };
        // Half the cases write dy in rows padded to a multiple of 4 (the head's gradient
        // on software adapters), over stale values: the pads must come out 0.
        let stride = if case % 4 < 2 {
            o.next_multiple_of(4)
        } else {
            o
        };
        let dyb = gpu
            .storage_from("dy", &vec![7.0f32; rows * stride])
            .unwrap();
        let rlb = gpu.storage("row_loss", (rows * 4) as u64).unwrap();
        let logb = gpu.storage("loss_log", 16).unwrap();
        // Every other case masks a random third of the rows out (padding).
        let mask: Vec<f32> = (0..rows)
            .map(|r| {
                if case % 2 == 1 && r > 0 && rng.below(3) == 0 {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        let valid = mask.iter().filter(|&&m| m != 0.0).count();
        let inv = (1.0 / ops::loss_count(loss, valid, o) as f64) as f32;
        let maskb = gpu.storage_from("mask", &mask).unwrap();
        let infob = gpu.storage_from("chunk_info", &[inv.to_bits(), 0]).unwrap();
        let mut u = Uniforms::new();
        let rmb = gpu.storage("row_metric", (rows * 4) as u64).unwrap();
        let metric_log = gpu.storage("metric_log", 16).unwrap();
        let l = ops::loss_rows(
            &gpu, &mut u, loss, act, rows, o, stride, &yb, &tb, &dyb, &rlb, &maskb, &infob, &rmb,
        )
        .unwrap();
        let (s, p) = ops::loss_sum(&gpu, &mut u, rows, &rlb, &logb, &infob).unwrap();
        ops::set_loss_slot(&gpu, &s, &p, 2);
        let (ms, mp) = ops::loss_sum(&gpu, &mut u, rows, &rmb, &metric_log, &infob).unwrap();
        ops::set_loss_slot(&gpu, &ms, &mp, 1);
        run(&gpu, &[l, s, ms]);
        let want_metric =
            wgrnn::reference::metric(loss, act, &to_f64(&y), rows, o, &targets, Some(&mask));
        let y64 = to_f64(&y);
        let (want_loss, want_dy) =
            wgrnn::reference::loss_and_grad(loss, act, &y64, rows, o, &targets, Some(&mask));
        let what =
            format!("case {case} ({loss}, {act}, {rows} rows x {o}, dy rows {stride} apart)");
        assert_close(
            &format!("{what} loss"),
            &gpu.read_f32(&logb, 2, 1).unwrap(),
            &[want_loss],
            1e-4,
        );
        assert_close(
            &format!("{what} metric"),
            &gpu.read_f32(&metric_log, 1, 1).unwrap(),
            &[want_metric],
            1e-4,
        );
        let dy_rows = gpu.read_all_f32(&dyb).unwrap();
        let dy: Vec<f32> = dy_rows
            .chunks(stride)
            .flat_map(|row| row[..o].to_vec())
            .collect();
        assert_close(&format!("{what} dy"), &dy, &want_dy, 1e-4);
        assert!(
            dy_rows
                .chunks(stride)
                .all(|row| row[o..].iter().all(|&v| v.to_bits() == 0)),
            "{what}: dy's pad columns are not all +0"
        );
    }
}

#[test]
fn transposes_copy_every_value_by_blocks_and_one_by_one() {
    // The [rows, cols] block of a buffer at an offset into [cols, rows]: value by value
    // (`transpose_elements`: any shape, an f16 destination too) and, where rows, columns and
    // offset are multiples of 4, by 4x4 blocks in every kind of storage word; each must copy
    // every value exactly, leave what follows the destination alone, and the engine's choice
    // (`ops::transpose`) must take the blocks on a software adapter wherever they apply.
    let gpu = gpu();
    let mut rng = Rng::new(43);
    for case in 0..12 {
        let whole = case % 3 != 2;
        let dim = |rng: &mut Rng| {
            let v = 1 + rng.below(70);
            if whole {
                4 * v
            } else {
                v
            }
        };
        let (rows, cols) = (dim(&mut rng), dim(&mut rng));
        let offset = 4 * rng.below(20) + usize::from(!whole && case % 2 == 0);
        let src_values = randn(&mut rng, offset + rows * cols);
        let src = gpu.storage_from("src", &src_values).unwrap();
        let want: Vec<f32> = (0..cols * rows)
            .map(|i| src_values[offset + (i % rows) * cols + i / rows])
            .collect();
        // (Shapes drawn off the blocks may still fall on them.)
        let fits = rows.is_multiple_of(4) && cols.is_multiple_of(4) && offset.is_multiple_of(4);
        let blocks = ops::transpose_words(&gpu, offset, rows, cols, &src, &src);
        assert_eq!(
            blocks.is_some(),
            gpu.adapter().is_software && fits,
            "case {case}: {rows}x{cols} at {offset} by blocks"
        );
        let mut kinds = vec![None];
        if fits {
            kinds.extend(ops::StorageWords::available(&gpu).into_iter().map(Some));
        } else {
            // Blocks asked for where they do not fit: an error, not a wrong copy.
            let mut u = Uniforms::new();
            let words = Some(ops::StorageWords::Quads);
            assert!(
                ops::transpose_in(&gpu, &mut u, words, offset, rows, cols, &src, &src).is_err(),
                "case {case}: {rows}x{cols} at {offset} by blocks"
            );
        }
        for words in kinds {
            // Past the destination: values the copy must not touch.
            let guard = vec![7.5f32; rows * cols + 8];
            let dst = gpu.storage_from("dst", &guard).unwrap();
            let mut u = Uniforms::new();
            let launch =
                ops::transpose_in(&gpu, &mut u, words, offset, rows, cols, &src, &dst).unwrap();
            run(&gpu, &[launch]);
            let got = gpu.read_f32(&dst, 0, rows * cols + 8).unwrap();
            assert_eq!(
                bits(&got[..rows * cols]),
                bits(&want),
                "case {case}: {rows}x{cols} at {offset} by {words:?}"
            );
            assert_eq!(got[rows * cols..], [7.5; 8], "case {case}: past the copy");
        }
        if gpu.adapter().shader_f16 {
            let (dst, _) = half_buffer(&gpu, "dst16", &vec![0.0; rows * cols]);
            assert_eq!(
                ops::transpose_words(&gpu, offset, rows, cols, &src, &dst),
                None
            );
            let mut u = Uniforms::new();
            let launch = ops::transpose(&gpu, &mut u, offset, rows, cols, &src, &dst).unwrap();
            run(&gpu, &[launch]);
            let rounded: Vec<f32> = want
                .iter()
                .map(|&v| half::f16::from_f32(v).to_f32())
                .collect();
            assert_eq!(
                bits(&gpu.read_f32(&dst, 0, rows * cols).unwrap()),
                bits(&rounded),
                "case {case}: into f16"
            );
        }
    }
}

#[test]
fn embedding_gather_and_gradient_match_f64() {
    let gpu = gpu();
    let mut rng = Rng::new(5);
    for case in 0..20 {
        let (rows, vocab, mut dim) = (1 + rng.below(200), 1 + rng.below(40), 1 + rng.below(20));
        if case % 4 == 2 {
            // Rows wider than 32 values: several subgroups' quads a row.
            dim += 32 + rng.below(40);
        }
        let mut emb_off = rng.below(9);
        if case % 2 == 0 {
            // D and the offset multiples of 4: the gradient takes 4 columns an invocation.
            dim = dim.next_multiple_of(4);
            emb_off -= emb_off % 4;
        }
        let table = randn(&mut rng, emb_off + vocab * dim);
        let ids: Vec<u32> = (0..rows).map(|_| rng.below(vocab) as u32).collect();
        let dx = randn(&mut rng, rows * dim);
        let index = wgrnn::engine::token_index(&ids, vocab);
        let pb = gpu.storage_from("params", &table).unwrap();
        let idb = gpu.storage_from("tokens", &ids).unwrap();
        let xb = gpu.storage("x", (rows * dim * 4) as u64).unwrap();
        let dxb = gpu.storage_from("dx", &dx).unwrap();
        let presentb = gpu.storage_from("present", &index.present).unwrap();
        let ob = gpu.storage_from("offsets", &index.offsets).unwrap();
        let posb = gpu.storage_from("positions", &index.positions).unwrap();
        // Stale values everywhere: the kernel writes the rows of the tokens present, and the
        // rows of the absent ones keep their stale values (the engine zeroes the table first).
        let stale = 7.0f32;
        let gb = gpu
            .storage_from("grads", &vec![stale; emb_off + vocab * dim])
            .unwrap();
        let mut u = Uniforms::new();
        let words = ops::StorageWords::for_gpu(&gpu);
        let g = ops::embed_gather(&gpu, &mut u, words, rows, dim, emb_off, &pb, &idb, &xb).unwrap();
        let buffers = ops::TokenIndexBuffers {
            present: &presentb,
            offsets: &ob,
            positions: &posb,
        };
        let slots = vocab.min(rows);
        let d = ops::embed_grad(
            &gpu, &mut u, words, slots, vocab, dim, emb_off, &dxb, &buffers, &gb,
        )
        .unwrap();
        run(&gpu, &[g, d]);
        let want_x: Vec<f64> = ids
            .iter()
            .flat_map(|&id| (0..dim).map(move |j| (id as usize, j)))
            .map(|(id, j)| table[emb_off + id * dim + j] as f64)
            .collect();
        // Absent tokens' rows keep the stale value; present ones sum their rows from 0.
        let mut want_g = vec![stale as f64; vocab * dim];
        for &id in &ids {
            want_g[id as usize * dim..(id as usize + 1) * dim].fill(0.0);
        }
        for (r, &id) in ids.iter().enumerate() {
            for j in 0..dim {
                want_g[id as usize * dim + j] += dx[r * dim + j] as f64;
            }
        }
        let what = format!("case {case} ({rows} rows, vocab {vocab}, dim {dim})");
        assert_close(
            &format!("{what} gather"),
            &gpu.read_all_f32(&xb).unwrap()[..rows * dim],
            &want_x,
            0.0,
        );
        assert_close(
            &format!("{what} grad"),
            &gpu.read_f32(&gb, emb_off, vocab * dim).unwrap(),
            &want_g,
            1e-4,
        );
        // Every kind of storage word gives the same bits: the gather's copies of the table's
        // rows, the gradient's reads of dx.
        let first = gpu.read_all_f32(&gb).unwrap();
        for words in ops::StorageWords::available(&gpu) {
            let xb2 = gpu.storage("x2", (rows * dim * 4) as u64).unwrap();
            let g = ops::embed_gather(&gpu, &mut u, words, rows, dim, emb_off, &pb, &idb, &xb2)
                .unwrap();
            run(&gpu, &[g]);
            assert_eq!(
                bits(&gpu.read_all_f32(&xb2).unwrap()[..rows * dim]),
                bits(&gpu.read_all_f32(&xb).unwrap()[..rows * dim]),
                "{what}: the gather in {words:?} words"
            );
            let gb2 = gpu
                .storage_from("grads2", &vec![stale; emb_off + vocab * dim])
                .unwrap();
            let d = ops::embed_grad(
                &gpu, &mut u, words, slots, vocab, dim, emb_off, &dxb, &buffers, &gb2,
            )
            .unwrap();
            run(&gpu, &[d]);
            assert_eq!(
                bits(&gpu.read_all_f32(&gb2).unwrap()),
                bits(&first),
                "{what}: the gradient read in {words:?} words"
            );
        }
    }
}

/// A recording counts its dispatches apart from its copies and clears, and phase marks as
/// neither (`wgrnn bench` reports a step's counts).
#[test]
fn recordings_count_their_commands() {
    let gpu = gpu();
    let table = gpu.storage_from("params", &[1.0f32; 8]).unwrap();
    let tokens = gpu.storage_from("tokens", &[0u32, 1]).unwrap();
    let x = gpu.storage("x", 16).unwrap();
    let mut u = Uniforms::new();
    let words = ops::StorageWords::for_gpu(&gpu);
    let gather = ops::embed_gather(&gpu, &mut u, words, 2, 2, 0, &table, &tokens, &x).unwrap();
    let mut rec = Recording::new();
    rec.phase("first");
    gather.record(&mut rec);
    rec.copy(&table, 0, &x, 0, 16);
    rec.phase("second");
    gather.record(&mut rec);
    rec.clear(&x);
    rec.clear_range(&x, 0, 0); // nothing to clear: not recorded
    let counts = rec.command_counts();
    assert_eq!((counts.dispatches, counts.copies_and_clears), (2, 2));
}

#[test]
fn column_sum_and_gradient_norm_match_f64() {
    let gpu = gpu();
    let mut rng = Rng::new(6);
    for case in 0..20 {
        let (rows, mut cols) = (1 + rng.below(300), 1 + rng.below(300));
        if case % 2 == 0 {
            // Half the cases with whole quads of columns, which software adapters sum 4
            // columns an invocation (`column_sum_quads`).
            cols = cols.next_multiple_of(4);
        }
        let src = randn(&mut rng, rows * cols);
        let dst = rng.below(10);
        let count = 1 + rng.below(40_000);
        // Values past `count` too (the norm reads whole vec4s and must leave them out).
        let grads = randn(&mut rng, (count + 3).max(dst + 2 * cols + 20));
        let sb = gpu.storage_from("src", &src).unwrap();
        let gb = gpu.storage_from("grads", &grads).unwrap();
        let partials = gpu
            .storage("partials", (ops::NORM_PARTIALS * 4) as u64)
            .unwrap();
        let norm = gpu.storage("norm", 8).unwrap();
        let norm_log = gpu.storage("norm_log", 16).unwrap();
        let loss_log = gpu.storage_from("loss_log", &[0.5f32; 4]).unwrap();
        let mut u = Uniforms::new();
        // The norm reads grads before column_sum writes into them.
        let words = ops::StorageWords::for_gpu(&gpu);
        let ([n1, n2], np) = ops::grad_norm(
            &gpu, &mut u, words, count, &gb, &partials, &norm, &norm_log, &loss_log,
        )
        .unwrap();
        ops::set_loss_slot(&gpu, &n2, &np, 3);
        let cs = ops::column_sum(
            &gpu,
            &mut u,
            ops::column_words(&gpu, cols, cols),
            rows,
            cols,
            cols,
            dst,
            Some(dst + cols + 7),
            &sb,
            &gb,
        )
        .unwrap();
        run(&gpu, &[n1, n2, cs]);
        let want_norm = grads[..count]
            .iter()
            .map(|&g| g as f64 * g as f64)
            .sum::<f64>()
            .sqrt();
        let sums: Vec<f64> = (0..cols)
            .map(|c| (0..rows).map(|r| src[r * cols + c] as f64).sum())
            .collect();
        assert_close(
            &format!("case {case} grad norm of {count}"),
            &gpu.read_f32(&norm, 0, 1).unwrap(),
            &[want_norm],
            1e-5,
        );
        let flag_and_log = (
            gpu.read_f32(&norm, 1, 1).unwrap()[0],
            gpu.read_f32(&norm_log, 3, 1).unwrap()[0],
        );
        assert_eq!(flag_and_log.0, 0.0, "finite norm flagged as non-finite");
        assert_close(
            &format!("case {case} norm log"),
            &[flag_and_log.1],
            &[want_norm],
            1e-5,
        );
        // Both destinations hold the sums; the values between them are untouched.
        let check_sums = |grads_buffer: &wgrnn::gpu::Buffer, how: &str| {
            for (what, at) in [("", dst), (", 2nd destination", dst + cols + 7)] {
                assert_close(
                    &format!("case {case} column sums {rows}x{cols}{how}{what}"),
                    &gpu.read_f32(grads_buffer, at, cols).unwrap(),
                    &sums,
                    1e-4,
                );
            }
            assert_eq!(
                gpu.read_f32(grads_buffer, dst + cols, 7).unwrap(),
                grads[dst + cols..dst + cols + 7],
                "case {case}{how}: values between the two destinations were overwritten"
            );
        };
        check_sums(&gb, "");
        // The same sums in row slices (the GPU path for long R): partial sums per slice,
        // then their sum in order; slice counts that need not divide the rows.
        let slices = 2 + case % 7;
        let gb2 = gpu.storage_from("grads2", &grads).unwrap();
        let scratch = gpu.storage("scratch", (slices * cols * 4) as u64).unwrap();
        let launches = ops::column_sum_split(
            &gpu,
            &mut u,
            ops::column_words(&gpu, cols, cols),
            rows,
            cols,
            cols,
            dst,
            Some(dst + cols + 7),
            &sb,
            &gb2,
            &scratch,
            slices,
        )
        .unwrap();
        run(&gpu, &launches);
        check_sums(&gb2, &format!(" in {slices} row slices"));
        // Every column kernel the adapter can run, in one pass and in slices, on rows stored
        // `columns` apart and further apart (the padded head gradient; the values between
        // them must not count), gives the bits of the one-invocation-a-column kernels (the
        // same additions in the same order), as does the norm in every kind of storage word.
        let scalar = gpu.read_f32(&gb, dst, cols).unwrap();
        let wide = (cols + 3).next_multiple_of(4);
        let spread: Vec<f32> = src
            .chunks(cols)
            .flat_map(|row| {
                row.iter()
                    .copied()
                    .chain(std::iter::repeat_n(1e6, wide - cols))
            })
            .collect();
        let sb_wide = gpu.storage_from("src_wide", &spread).unwrap();
        for (stride, source) in [(cols, &sb), (wide, &sb_wide)] {
            let mut kinds = vec![None];
            if cols % 4 == 0 && stride % 4 == 0 {
                kinds.extend(ops::StorageWords::available(&gpu).into_iter().map(Some));
            }
            for words in kinds {
                for slices in [1, slices] {
                    let gb3 = gpu.storage_from("grads3", &grads).unwrap();
                    let launches = ops::column_sum_split(
                        &gpu,
                        &mut u,
                        words,
                        rows,
                        cols,
                        stride,
                        dst,
                        Some(dst + cols + 7),
                        source,
                        &gb3,
                        &scratch,
                        slices,
                    )
                    .unwrap();
                    run(&gpu, &launches);
                    let how = format!(" by {words:?} in {slices} slices, rows {stride} apart");
                    check_sums(&gb3, &how);
                    if slices == 1 {
                        assert_eq!(
                            bits(&gpu.read_f32(&gb3, dst, cols).unwrap()),
                            bits(&scalar),
                            "case {case}{how}: not the bits of one invocation a column"
                        );
                    }
                }
            }
        }
        // (On the gradients as they were: column_sum has written into gb since.)
        let norm_bits = gpu.read_f32(&norm, 0, 1).unwrap();
        let fresh = gpu.storage_from("grads4", &grads).unwrap();
        for words in ops::StorageWords::available(&gpu) {
            let ([n1, n2], np) = ops::grad_norm(
                &gpu, &mut u, words, count, &fresh, &partials, &norm, &norm_log, &loss_log,
            )
            .unwrap();
            ops::set_loss_slot(&gpu, &n2, &np, 3);
            run(&gpu, &[n1, n2]);
            assert_eq!(
                bits(&gpu.read_f32(&norm, 0, 1).unwrap()),
                bits(&norm_bits),
                "case {case}: the norm in {words:?} words"
            );
        }
    }
}

#[test]
fn optimizers_match_reference_over_several_steps() {
    use wgrnn::optim::{Momentum, OptimizerConfig, OptimizerKind};
    use wgrnn::reference::RefOptimizer;
    let gpu = gpu();
    let words = ops::StorageWords::for_gpu(&gpu);
    let mut rng = Rng::new(7);
    for case in 0..24 {
        let kind = [
            OptimizerKind::Sgd,
            OptimizerKind::Adam,
            OptimizerKind::AdamW,
        ][case % 3];
        let mut c = OptimizerConfig::pytorch_defaults(kind);
        c.lr = [0.1, 0.01, 0.003][case / 3 % 3];
        if kind == OptimizerKind::Sgd {
            c.momentum = [0.0, 0.9, 0.5][case / 9 % 3];
            if c.momentum > 0.0 && case % 2 == 0 {
                c.momentum_kind = Momentum::Nesterov;
            }
        }
        if case % 4 == 1 {
            c.weight_decay = 0.05;
        }
        if case % 5 < 2 {
            c.clip_norm = Some(0.5);
        }
        let n = 1 + rng.below(3000);
        let params = randn(&mut rng, n);
        // The optimizer's buffers hold n rounded up to 4 values (it updates 4 at a time).
        let n4 = n.next_multiple_of(4);
        let gb = gpu.storage("grads", (n4 * 4) as u64).unwrap();
        let partials = gpu
            .storage("partials", (ops::NORM_PARTIALS * 4) as u64)
            .unwrap();
        let norm = gpu.storage("norm", 8).unwrap();
        let mut u = Uniforms::new();
        let rule = if kind == OptimizerKind::Sgd {
            ops::UpdateRule::Sgd
        } else {
            ops::UpdateRule::Adam
        };
        // One run per kind of storage word the adapter has, side by side on the same
        // gradients: parameters, moments and the update's launch.
        let runs: Vec<_> = ops::StorageWords::available(&gpu)
            .into_iter()
            .map(|words| {
                let pb = gpu.storage("params", (n4 * 4) as u64).unwrap();
                gpu.write(&pb, 0, &params);
                let (mb, vb) = (
                    gpu.storage("m", (n4 * 4) as u64).unwrap(),
                    gpu.storage("v", (n4 * 4) as u64).unwrap(),
                );
                let step =
                    ops::optimizer_step(&gpu, &mut u, words, rule, n, &pb, &gb, &norm, &mb, &vb)
                        .unwrap();
                (words, pb, mb, vb, step)
            })
            .collect();
        let norm_log = gpu.storage("norm_log", 16).unwrap();
        let loss_log = gpu.storage_from("loss_log", &[0.5f32; 4]).unwrap();
        let (norms, _) = ops::grad_norm(
            &gpu, &mut u, words, n, &gb, &partials, &norm, &norm_log, &loss_log,
        )
        .unwrap();
        let mut reference = RefOptimizer::new(c, n);
        let mut want = to_f64(&params);
        for s in 1..=4u64 {
            let grads = randn(&mut rng, n);
            gpu.write(&gb, 0, &grads);
            let p = ops::OptimParams::for_step(&c, n, s);
            let mut launches = vec![norms[0].clone(), norms[1].clone()];
            for (_, _, _, _, step) in &runs {
                step.uniform.write(&gpu, &p);
                launches.push(step.clone());
            }
            run(&gpu, &launches);
            reference.step(&mut want, &to_f64(&grads));
        }
        let (_, first, ..) = &runs[0];
        let first = gpu.read_all_f32(first).unwrap();
        for (words, pb, ..) in &runs {
            let got = gpu.read_all_f32(pb).unwrap();
            assert_close(
                &format!("case {case} {kind} {c:?} in {words:?} words after 4 steps of {n} params"),
                &got[..n],
                &want,
                1e-4,
            );
            assert_eq!(
                bits(&got),
                bits(&first),
                "case {case} {kind}: {words:?} words give other bits than {:?}",
                runs[0].0
            );
        }
    }
}

#[test]
fn a_non_finite_gradient_or_loss_skips_the_whole_step() {
    let gpu = gpu();
    let words = ops::StorageWords::for_gpu(&gpu);
    for (case, (bad_grad, bad_loss)) in [
        (f32::NAN, 0.5f32),
        (f32::INFINITY, 0.5),
        (1.0, f32::NAN),
        (1.0, f32::INFINITY),
    ]
    .into_iter()
    .enumerate()
    {
        let n = 1000;
        let params: Vec<f32> = (0..n).map(|i| i as f32 * 0.001).collect();
        let mut grads = vec![0.1f32; n];
        grads[617] = bad_grad;
        let pb = gpu.storage_from("params", &params).unwrap();
        let gb = gpu.storage_from("grads", &grads).unwrap();
        let (mb, vb) = (
            gpu.storage("m", (n * 4) as u64).unwrap(),
            gpu.storage("v", (n * 4) as u64).unwrap(),
        );
        let partials = gpu
            .storage("partials", (ops::NORM_PARTIALS * 4) as u64)
            .unwrap();
        let norm = gpu.storage("norm", 8).unwrap();
        let norm_log = gpu.storage("norm_log", 16).unwrap();
        let loss_log = gpu.storage_from("loss_log", &[bad_loss; 4]).unwrap();
        let mut u = Uniforms::new();
        let (norms, _) = ops::grad_norm(
            &gpu, &mut u, words, n, &gb, &partials, &norm, &norm_log, &loss_log,
        )
        .unwrap();
        let step = ops::optimizer_step(
            &gpu,
            &mut u,
            words,
            ops::UpdateRule::Adam,
            n,
            &pb,
            &gb,
            &norm,
            &mb,
            &vb,
        )
        .unwrap();
        let p = ops::OptimParams {
            count: n as u32,
            flags: ops::OPTIM_FIRST_STEP,
            lr: 0.1,
            momentum: 0.0,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step_size: 1.0,
            bc2_sqrt: 0.03,
            max_norm: 0.0,
            _pad: 0,
        };
        step.uniform.write(&gpu, &p);
        run(&gpu, &[norms[0].clone(), norms[1].clone(), step]);
        assert_eq!(
            gpu.read_f32(&norm, 1, 1).unwrap()[0],
            1.0,
            "case {case}: not flagged"
        );
        assert_eq!(
            gpu.read_all_f32(&pb).unwrap()[..n],
            params[..],
            "case {case}: parameters changed"
        );
        assert!(
            gpu.read_all_f32(&mb).unwrap()[..n]
                .iter()
                .all(|&m| m == 0.0),
            "case {case}: moments changed"
        );
    }
}

#[test]
fn elman_sweep_runs_only_where_its_epilogue_can_read_words() {
    // The sweep's epilogue reads the step inputs (and backward h[t + 1]) as 16-byte words, so
    // `ops::gemm_sweep` must decline (None: the caller runs the steps one by one) where their
    // offsets are not multiples of 4, and take the same product where they are.
    let gpu = gpu();
    if !offered(&gpu, &[GemmKernel::WindowQuads]) {
        return;
    }
    let (batch, hidden, steps) = (32, 128, 3);
    let bh = batch * hidden;
    let mut rng = Rng::new(11);
    let mut random =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-0.5, 0.5) as f32).collect() };
    let whh = gpu.storage_from("whh", &random(hidden * hidden)).unwrap();
    let hs = gpu.storage_from("hs", &random((steps + 1) * bh)).unwrap();
    let inputs = gpu.storage_from("inputs", &random(steps * bh + 8)).unwrap();
    let aux = gpu
        .storage_from("aux", &random((steps + 1) * bh + 8))
        .unwrap();
    let first = GemmSpec {
        m: batch,
        n: hidden,
        k: hidden,
        a: Operand::row_major(0, hidden),
        b: Operand::transposed(0, hidden),
        c_offset: bh,
        bias: None,
        bias2: None,
        accumulate: false,
    };
    let mut u = Uniforms::new();
    let mut sweep = |epilogue: ops::StepEpilogue| {
        ops::gemm_sweep(
            &gpu,
            &mut u,
            true,
            &first,
            steps,
            bh as isize,
            epilogue,
            &whh,
            &hs,
            &inputs,
            &aux,
        )
        .unwrap()
        .is_some()
    };
    let forward = |pre_offset| ops::StepEpilogue::Forward {
        relu: false,
        pre_offset,
    };
    let backward = |dh_offset, h_offset| ops::StepEpilogue::Backward {
        relu: false,
        dh_offset,
        h_offset,
    };
    for (epilogue, runs) in [
        (forward(0), true),
        (forward(4), true),
        (forward(2), false),
        (backward(0, 4), true),
        (backward(1, 4), false),
        (backward(0, 6), false),
    ] {
        assert_eq!(sweep(epilogue), runs, "{epilogue:?}");
    }
}
