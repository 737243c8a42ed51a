//! Kernel-level benchmarks: the GEMM at the RNN shapes, one recurrence step forward and
//! backward (fused per-step kernels, and a GEMM per step finishing the step in its store or
//! in a kernel of its own), the many-to-one head's pooling backward, the embedding lookup and its gradient, the bias gradients' column sums, the optimizer phase (gradient norm, Adam), and whole training chunks, on the adapter WGRNN_ADAPTER names (default auto).
//! Each case: warm-up, then the median of timed repetitions (submit + wait).
//!
//!     cargo bench --bench kernels            # all cases
//!     cargo bench --bench kernels -- gemm    # cases whose name contains "gemm"
//!
//! Environment filters: `WGRNN_BENCH_GEMM_KERNELS`, `_SHAPES`, `_TYPES` and `_EXTRA` for the
//! GEMM cases (see `listed` and `extra_shapes`), `WGRNN_BENCH_RNN_SHAPES=64x256,256x128`
//! (B x H, in place of W1's, W2's and W3's) and
//! `WGRNN_BENCH_RNN_KERNELS=GemmSweepLongs(WindowQuads)` for the recurrences.

use std::time::{Duration, Instant};
use wgrnn::gpu::{AdapterChoice, Dtype, Gpu, Recording, UNIFORM_WINDOW};
use wgrnn::model::{Activation, Pool};
use wgrnn::ops::{
    self, ChunkInfo, GemmKernel, GemmSpec, Operand, PoolShape, RecurrenceShape, SequenceStart,
    Uniforms,
};
use wgrnn::rng::Rng;

thread_local! {
    /// The multiply-add ceiling measured at the start of the GEMM cases (0 before).
    static CEILING_GFLOPS: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

fn median_time(mut run: impl FnMut()) -> Duration {
    for _ in 0..3 {
        run();
    }
    let mut times = Vec::new();
    let budget = Instant::now();
    while times.len() < 5 || (times.len() < 50 && budget.elapsed() < Duration::from_secs(2)) {
        let t = Instant::now();
        run();
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

/// Whether `name` is in the comma-separated list the environment variable `var` holds
/// (every name when it is unset): `WGRNN_BENCH_GEMM_KERNELS=WindowQuads,OuterQuads`,
/// `WGRNN_BENCH_GEMM_SHAPES=2048x256x128` and `WGRNN_BENCH_GEMM_TYPES=f32` narrow the GEMM
/// cases.
fn listed(var: &str, name: &str) -> bool {
    std::env::var(var).map_or(true, |list| list.split(',').any(|item| item.trim() == name))
}

/// The recurrences' (B, H): W1's, W2's and W3's, or those WGRNN_BENCH_RNN_SHAPES lists as
/// `BxH` comma-separated (a malformed item stops the run with its text).
fn rnn_shapes() -> Vec<(usize, usize)> {
    let Ok(list) = std::env::var("WGRNN_BENCH_RNN_SHAPES") else {
        return vec![(64, 256), (256, 128), (512, 512)];
    };
    list.split(',')
        .map(|item| {
            let parsed = item
                .trim()
                .split_once('x')
                .and_then(|(b, h)| Some((b.parse().ok()?, h.parse().ok()?)));
            parsed.unwrap_or_else(|| panic!("WGRNN_BENCH_RNN_SHAPES: {item:?} is not BxH"))
        })
        .collect()
}

/// The products WGRNN_BENCH_GEMM_EXTRA lists, `MxNxK:LAYOUT` comma-separated (LAYOUT one
/// of xwt, xw, dw); a malformed item stops the run with its text.
fn extra_shapes() -> Vec<(usize, usize, usize, Layout)> {
    let Ok(list) = std::env::var("WGRNN_BENCH_GEMM_EXTRA") else {
        return Vec::new();
    };
    let parse = |item: &str| -> Option<(usize, usize, usize, Layout)> {
        let (dims, layout) = item.trim().split_once(':')?;
        let layout = match layout {
            "xwt" => Layout::XWt,
            "xw" => Layout::XW,
            "dw" => Layout::WeightGradient,
            _ => return None,
        };
        let mut d = dims.split('x').map(|v| v.parse::<usize>().ok());
        let (m, n, k) = (d.next()??, d.next()??, d.next()??);
        (d.next().is_none() && m * n * k > 0).then_some((m, n, k, layout))
    };
    list.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            parse(item).unwrap_or_else(|| {
                panic!("WGRNN_BENCH_GEMM_EXTRA: {item:?} is not MxNxK:xwt|xw|dw")
            })
        })
        .collect()
}

fn random(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect()
}

/// How a benchmarked product reads its operands.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// x·Wᵀ, the input projection: A [M, K] and B = W [N, K], both along k.
    XWt,
    /// x·W: A [M, K] along k and B [K, N] along n (the gated cells' dX = dGates·W_ih, the
    /// recurrences' backward products da·W_hh).
    XW,
    /// dYᵀ·X, a weight gradient: A [K, M] and B [K, N] (K = the rows), split over K as the
    /// engine would on this adapter.
    WeightGradient,
}

/// One product of `layout` with each formulation.
fn bench_gemm(gpu: &Gpu, m: usize, n: usize, k: usize, layout: Layout) {
    if !listed("WGRNN_BENCH_GEMM_SHAPES", &format!("{m}x{n}x{k}")) {
        return;
    }
    let mut rng = Rng::new(1);
    // Operands padded to a uniform window at least (in f16 too), as the engine's parameter
    // and activation buffers are: the window kernels plan no windows of a smaller buffer
    // (they would run as the subgroup kernel).
    let padded = |len: usize| len.max((UNIFORM_WINDOW / 2) as usize);
    let (a_values, b_values) = (
        random(&mut rng, padded(m * k)),
        random(&mut rng, padded(n * k)),
    );
    let a = gpu.storage_from("a", &a_values).unwrap();
    let b = gpu.storage_from("b", &b_values).unwrap();
    // The same operands stored as f16 (--precision f16's activations and weight copy).
    let half = |label: &str, values: &[f32]| {
        let buffer = gpu
            .storage_typed(label, (values.len() * 2) as u64, Dtype::F16)
            .unwrap();
        gpu.write_f32(&buffer, 0, values).unwrap();
        buffer
    };
    let halves = gpu
        .adapter()
        .shader_f16
        .then(|| (half("a16", &a_values), half("b16", &b_values)));
    let c = gpu.storage("c", (m * n * 4) as u64).unwrap();
    let mut u = Uniforms::new();
    let (a_op, b_op, slices) = match layout {
        Layout::WeightGradient => {
            let slices = ops::split_slices(gpu.adapter().is_software, m, n, k);
            (Operand::transposed(0, m), Operand::row_major(0, n), slices)
        }
        Layout::XW => (Operand::row_major(0, k), Operand::row_major(0, n), 1),
        Layout::XWt => (Operand::row_major(0, k), Operand::transposed(0, k), 1),
    };
    let scratch = gpu
        .storage("scratch", (slices.max(2) * m * n * 4) as u64)
        .unwrap();
    let spec = GemmSpec {
        m,
        n,
        k,
        a: a_op,
        b: b_op,
        c_offset: 0,
        bias: None,
        bias2: None,
        accumulate: false,
    };
    let mut kernels = vec![
        GemmKernel::Blocked,
        GemmKernel::Tiled,
        GemmKernel::Wide,
        GemmKernel::WideQuads,
        GemmKernel::TiledQuads,
        GemmKernel::TallQuads,
    ];
    for k in [
        GemmKernel::Subgroup,
        GemmKernel::SubgroupPairs,
        GemmKernel::SubgroupWindow,
        GemmKernel::SubgroupWindowA,
        GemmKernel::WindowQuads,
        GemmKernel::WindowQuadsA,
        GemmKernel::OuterQuads,
        GemmKernel::OuterLongs,
    ] {
        if GemmKernel::candidates(gpu).contains(&k) {
            kernels.push(k);
        }
    }
    let mut operands = vec![("f32", &a, &b)];
    if let Some((a16, b16)) = &halves {
        operands.push(("f16", a16, b16));
    }
    for (kernel, (types, a, b)) in kernels
        .iter()
        .flat_map(|&k| operands.iter().map(move |o| (k, *o)))
        // The packed-pairs kernel differs only for f16 operands; the wide and tiled quads
        // kernels and the 8-byte words read f32 operands only (with f16 they run as others).
        .filter(|(k, (types, _, _))| *k != GemmKernel::SubgroupPairs || *types == "f16")
        .filter(|(k, (types, _, _))| {
            !matches!(
                k,
                GemmKernel::WideQuads
                    | GemmKernel::TiledQuads
                    | GemmKernel::TallQuads
                    | GemmKernel::OuterLongs
            ) || *types == "f32"
        })
    {
        if !listed("WGRNN_BENCH_GEMM_KERNELS", &format!("{kernel:?}"))
            || !listed("WGRNN_BENCH_GEMM_TYPES", types)
        {
            continue;
        }
        let launches =
            ops::gemm_split(gpu, &mut u, &spec, kernel, slices, a, b, b, &c, &scratch).unwrap();
        // Alone (one submit and wait per product), and as inside a training step: 10
        // products recorded into one submit, timed together.
        let time_of = |copies: usize| {
            let mut rec = Recording::new();
            for _ in 0..copies {
                for launch in &launches {
                    launch.record(&mut rec);
                }
            }
            median_time(|| {
                gpu.submit(&rec).unwrap();
                gpu.wait_idle().unwrap();
            })
            .as_secs_f64()
                / copies as f64
        };
        let (alone, batched) = (time_of(1), time_of(10));
        let rate = |t: f64| 2.0 * (m * n * k) as f64 / t / 1e9;
        let share = |t: f64| match CEILING_GFLOPS.with(|c| c.get()) {
            c if c > 0.0 => format!(" ({:.0}%)", 100.0 * rate(t) / c),
            _ => String::new(),
        };
        let layout = match layout {
            Layout::WeightGradient => format!("dYT.X, {slices} K slices"),
            Layout::XW => "X.W".into(),
            Layout::XWt => "X.WT".into(),
        };
        println!(
            "gemm {m}x{n}x{k} ({layout}) {kernel:?} {types}: {:>9.3} ms {:>9.2} GFLOP/s{} alone; {:>9.3} ms {:>9.2} GFLOP/s{} each of 10 in one submit",
            alone * 1e3,
            rate(alone),
            share(alone),
            batched * 1e3,
            rate(batched),
            share(batched)
        );
    }
}

/// The many-to-one backward's pooling pass (dz [B, H] onto dh_out [T, B, H]) for each pooling,
/// 10 in one submit (W2's shape: T 50, B 256, H 128).
fn bench_pool(gpu: &Gpu, steps: usize, batch: usize, hidden: usize) {
    let bh = batch * hidden;
    let dz = gpu.storage_from("dz", &vec![1.0f32; bh]).unwrap();
    // Every element pooled from the chunk's last step.
    let arg: Vec<u32> = vec![steps as u32 - 1; bh];
    let arg = gpu.storage_from("arg", &arg).unwrap();
    let dh = gpu.storage("dh", (steps * bh * 4) as u64).unwrap();
    let lengths = gpu
        .storage_from("lengths", &vec![steps as u32; batch])
        .unwrap();
    let chunk_info = gpu.storage_from("chunk_info", &[0u32, 0]).unwrap();
    let info = ChunkInfo {
        lengths: &lengths,
        chunk_info: &chunk_info,
    };
    let mut u = Uniforms::new();
    for pool in [Pool::Last, Pool::Mean, Pool::Max] {
        let shape = PoolShape {
            steps,
            batch,
            hidden,
            pool,
            start: SequenceStart::Fresh,
            reverse_from: hidden,
        };
        let mut rec = Recording::new();
        for _ in 0..10 {
            ops::pool_backward(gpu, &mut u, &shape, &dz, &arg, &dh, info, &mut rec).unwrap();
        }
        let t = median_time(|| {
            gpu.submit(&rec).unwrap();
            gpu.wait_idle().unwrap();
        });
        println!(
            "pool backward {pool} T {steps} B {batch} H {hidden}: {:>9.3} ms each of 10 in one submit",
            t.as_secs_f64() * 1e3 / 10.0
        );
    }
}

/// The embedding lookup and its gradient over `rows` tokens drawn from `vocab`, `dim` wide
/// (W1: 2048 rows, vocab 10000, D 128; W3: 32768, 96, 64), each 10 in one submit.
fn bench_embed(gpu: &Gpu, rows: usize, vocab: usize, dim: usize) {
    let mut rng = Rng::new(4);
    let table = gpu
        .storage_from("table", &vec![0.5f32; vocab * dim])
        .unwrap();
    let ids: Vec<u32> = (0..rows).map(|_| rng.below(vocab) as u32).collect();
    let index = wgrnn::engine::token_index(&ids, vocab);
    let tokens = gpu.storage_from("tokens", &ids).unwrap();
    let x = gpu.storage("x", (rows * dim * 4) as u64).unwrap();
    let dx = gpu.storage_from("dx", &vec![0.25f32; rows * dim]).unwrap();
    let present = gpu.storage_from("present", &index.present).unwrap();
    let offsets = gpu.storage_from("offsets", &index.offsets).unwrap();
    let positions = gpu.storage_from("positions", &index.positions).unwrap();
    let grads = gpu.storage("grads", (vocab * dim * 4) as u64).unwrap();
    let buffers = ops::TokenIndexBuffers {
        present: &present,
        offsets: &offsets,
        positions: &positions,
    };
    let words = ops::StorageWords::for_gpu(gpu);
    let mut u = Uniforms::new();
    let (mut gather, mut grad) = (Recording::new(), Recording::new());
    for _ in 0..10 {
        ops::embed_gather(gpu, &mut u, words, rows, dim, 0, &table, &tokens, &x)
            .unwrap()
            .record(&mut gather);
        ops::embed_grad(
            gpu,
            &mut u,
            words,
            vocab.min(rows),
            vocab,
            dim,
            0,
            &dx,
            &buffers,
            &grads,
        )
        .unwrap()
        .record(&mut grad);
    }
    for (name, rec) in [("gather", &gather), ("grad", &grad)] {
        let t = median_time(|| {
            gpu.submit(rec).unwrap();
            gpu.wait_idle().unwrap();
        });
        println!(
            "embed {name:<6} rows {rows} vocab {vocab} D {dim}: {:>9.3} ms each of 10 in one submit",
            t.as_secs_f64() * 1e3 / 10.0
        );
    }
}

/// The bias gradients' column sums of a [rows, columns] block as the engine records them
/// (`ops::column_sum_split` in `ops::column_slices` row slices), 10 in one submit, with the
/// bytes read per second (4 a value).
fn bench_column_sum(gpu: &Gpu, rows: usize, columns: usize) {
    let mut rng = Rng::new(5);
    let src = gpu
        .storage_from("src", &random(&mut rng, rows * columns))
        .unwrap();
    let grads = gpu.storage("grads", (columns * 4) as u64).unwrap();
    let slices = ops::column_slices(gpu.adapter().is_software, rows, columns);
    let scratch = gpu
        .storage("scratch", (slices.max(1) * columns * 4) as u64)
        .unwrap();
    let words = ops::column_words(gpu, columns, columns);
    let mut u = Uniforms::new();
    let mut rec = Recording::new();
    for _ in 0..10 {
        let launches = ops::column_sum_split(
            gpu, &mut u, words, rows, columns, columns, 0, None, &src, &grads, &scratch, slices,
        )
        .unwrap();
        for launch in launches {
            launch.record(&mut rec);
        }
    }
    let t = median_time(|| {
        gpu.submit(&rec).unwrap();
        gpu.wait_idle().unwrap();
    });
    let each = t.as_secs_f64() / 10.0;
    println!(
        "column sum {rows}x{columns} ({slices} slices): {:>9.3} ms each of 10 in one submit, {:.1} GB/s read",
        each * 1e3,
        (rows * columns * 4) as f64 / each / 1e9
    );
}

/// The optimizer phase over `count` parameters: the gradient norm's two passes, then one
/// Adam update, each 10 in one submit, with the bytes each moves (read plus written) per
/// second: the norm reads the gradients (4 bytes a parameter), Adam reads 4 and writes 3
/// arrays (28).
fn bench_optimizer(gpu: &Gpu, count: usize) {
    let mut rng = Rng::new(3);
    let n4 = count.next_multiple_of(4);
    let buffer = |label: &str, rng: &mut Rng| gpu.storage_from(label, &random(rng, n4)).unwrap();
    let (params, grads) = (buffer("params", &mut rng), buffer("grads", &mut rng));
    let (m, v) = (buffer("m", &mut rng), buffer("v", &mut rng));
    let partials = gpu
        .storage("partials", (ops::NORM_PARTIALS * 4) as u64)
        .unwrap();
    let norm = gpu.storage("norm", 8).unwrap();
    let norm_log = gpu.storage("norm_log", 16).unwrap();
    let loss_log = gpu.storage("loss_log", 16).unwrap();
    let mut u = Uniforms::new();
    let words = ops::StorageWords::for_gpu(gpu);
    let (norm_launches, _) = ops::grad_norm(
        gpu, &mut u, words, count, &grads, &partials, &norm, &norm_log, &loss_log,
    )
    .unwrap();
    let adam = ops::optimizer_step(
        gpu,
        &mut u,
        words,
        ops::UpdateRule::Adam,
        count,
        &params,
        &grads,
        &norm,
        &m,
        &v,
    )
    .unwrap();
    let config = wgrnn::optim::OptimizerConfig::pytorch_defaults(wgrnn::optim::OptimizerKind::Adam);
    adam.uniform
        .write(gpu, &ops::OptimParams::for_step(&config, count, 1));
    for (name, bytes_per_parameter, launches) in [
        ("gradient norm", 4.0, norm_launches.to_vec()),
        ("adam update", 28.0, vec![adam]),
    ] {
        let mut rec = Recording::new();
        for _ in 0..10 {
            for launch in &launches {
                launch.record(&mut rec);
            }
        }
        let t = median_time(|| {
            gpu.submit(&rec).unwrap();
            gpu.wait_idle().unwrap();
        })
        .as_secs_f64()
            / 10.0;
        println!(
            "optimizer {name} over {count} parameters: {:>9.3} ms  {:>7.1} GB/s, each of 10 in one submit",
            t * 1e3,
            bytes_per_parameter * n4 as f64 / t / 1e9
        );
    }
}

fn bench_recurrence(gpu: &Gpu, batch: usize, hidden: usize, steps: usize) {
    let mut rng = Rng::new(2);
    let bh = batch * hidden;
    let params = gpu
        .storage_from("params", &random(&mut rng, hidden * hidden))
        .unwrap();
    let pre = gpu
        .storage_from("pre", &random(&mut rng, steps * bh))
        .unwrap();
    let hs = gpu.storage("hs", ((steps + 1) * bh * 4) as u64).unwrap();
    let dh = gpu
        .storage_from("dh", &random(&mut rng, steps * bh))
        .unwrap();
    let da = gpu.storage("da", (steps * bh * 4) as u64).unwrap();
    // W_hhᵀ, which the quads GEMMs' backward products read.
    let whh_t = gpu.storage("whh_t", (hidden * hidden * 4) as u64).unwrap();
    // The state copies a fused sweep with A's windows alternates between.
    let copy_bytes = (bh * 4).max(64 << 10) as u64;
    let copies = [
        gpu.storage("copy_0", copy_bytes).unwrap(),
        gpu.storage("copy_1", copy_bytes).unwrap(),
    ];
    let shape = RecurrenceShape {
        steps,
        batch,
        hidden,
        activation: Activation::Tanh,
        whh_off: 0,
    };
    let mut u = Uniforms::new();
    // One fused dispatch per step, and a GEMM per step (the formulation the tuner would try
    // last on this adapter) with a separate finishing kernel or finishing the step in the
    // product's store.
    let gemm_kernel = *GemmKernel::candidates(gpu)
        .iter()
        .rfind(|k| {
            !matches!(
                k,
                GemmKernel::SubgroupPairs
                    | GemmKernel::SubgroupWindow
                    | GemmKernel::SubgroupWindowA
                    | GemmKernel::WindowQuads
                    | GemmKernel::WindowQuadsA
                    | GemmKernel::OuterQuads
                    | GemmKernel::OuterLongs
            )
        })
        .expect("the blocked kernel is always a candidate");
    let step_sum = gpu.storage("step_sum", (bh * 4) as u64).unwrap();
    let mut ways = vec![
        ops::RecurrenceKernel::PerStep,
        ops::RecurrenceKernel::Gemm(gemm_kernel),
    ];
    if gemm_kernel.step_kernel().is_some() {
        ways.push(ops::RecurrenceKernel::GemmFused(gemm_kernel));
    }
    // The quads GEMMs with B's windows (W_hh) and A's (h[t]), finishing each step in a
    // kernel of its own or in their store, where this adapter has them.
    for quads in [GemmKernel::WindowQuads, GemmKernel::WindowQuadsA] {
        if GemmKernel::candidates(gpu).contains(&quads) {
            ways.push(ops::RecurrenceKernel::Gemm(quads));
            ways.push(ops::RecurrenceKernel::GemmFused(quads));
        }
    }
    // The window quads steps of a whole sweep in one dispatch (W_hh through a window where it
    // fits one, else from storage).
    if GemmKernel::candidates(gpu).contains(&GemmKernel::WindowQuads) {
        ways.push(ops::RecurrenceKernel::GemmSweep(GemmKernel::WindowQuads));
        if gpu.adapter().shader_int64 {
            ways.push(ops::RecurrenceKernel::GemmSweepLongs(
                GemmKernel::WindowQuads,
            ));
        }
    }
    // WGRNN_BENCH_RNN_KERNELS=GemmSweepLongs(WindowQuads),PerStep narrows the ways.
    ways.retain(|kernel| listed("WGRNN_BENCH_RNN_KERNELS", &format!("{kernel:?}")));
    for kernel in ways {
        let mut forward = Recording::new();
        let mut backward = Recording::new();
        for l in ops::rnn_forward(
            gpu,
            &mut u,
            &shape,
            kernel,
            &params,
            &pre,
            &hs,
            &step_sum,
            Some([&copies[0], &copies[1]]),
        )
        .unwrap()
        {
            l.record(&mut forward);
        }
        for l in ops::rnn_backward(
            gpu,
            &mut u,
            &shape,
            kernel,
            &params,
            Some(&whh_t),
            &hs,
            &dh,
            &da,
            &step_sum,
            Some([&copies[0], &copies[1]]),
        )
        .unwrap()
        {
            l.record(&mut backward);
        }
        for (name, rec) in [("forward", &forward), ("backward", &backward)] {
            let t = median_time(|| {
                gpu.submit(rec).unwrap();
                gpu.wait_idle().unwrap();
            });
            let gflops = 2.0 * (steps * batch * hidden * hidden) as f64 / t.as_secs_f64() / 1e9;
            println!(
                "rnn {name:<8} {kernel:?}, B {batch} H {hidden} T {steps}: {:>9.3} ms  {gflops:>7.2} GFLOP/s  ({:.1} us/step)",
                t.as_secs_f64() * 1e3,
                t.as_secs_f64() * 1e6 / steps as f64
            );
        }
    }
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_ref().is_none_or(|f| name.contains(f.as_str()));
    let choice: AdapterChoice = std::env::var("WGRNN_ADAPTER")
        .unwrap_or_else(|_| "auto".into())
        .parse()
        .unwrap();
    let gpu = Gpu::new(&choice).expect("an adapter (see `wgrnn devices`)");
    println!(
        "adapter: {} ({}, {})",
        gpu.adapter().name,
        gpu.adapter().backend,
        gpu.adapter().driver
    );
    if wanted("gemm") {
        // The adapter's multiply-add ceiling, in the same run, for the percentages.
        let ceiling = wgrnn::bench::measure_ceiling(&gpu).expect("ceiling");
        println!(
            "ceiling: {:.1} GFLOP/s multiply-add (GEMM lines: % of it in brackets)",
            ceiling.fma_gflops
        );
        CEILING_GFLOPS.with(|c| c.set(ceiling.fma_gflops));
        for (m, n, k) in [
            (2048, 256, 128),
            (64, 256, 256),
            (512, 512, 512),
            (1000, 257, 131),
            // W1's head (18 tags): C's rows are not whole 16-byte words, so the quads
            // kernels store value by value.
            (2048, 18, 256),
            // W2's input projection (T·B = 12800 rows, 8 features): its store, not its
            // multiply-adds, is the work.
            (12800, 128, 8),
        ] {
            bench_gemm(&gpu, m, n, k, Layout::XWt);
        }
        // The three shapes again in x·W's layout, which the outer-product kernel
        // reads (A_ROWS).
        for (m, n, k) in [(2048, 256, 128), (64, 256, 256), (512, 512, 512)] {
            bench_gemm(&gpu, m, n, k, Layout::XW);
        }
        // Weight gradients: W1's dW_ih, W2's dW_hh and dW_ih (K = T·B = 12800).
        for (m, n, k) in [(256, 128, 2048), (128, 128, 12800), (128, 8, 12800)] {
            bench_gemm(&gpu, m, n, k, Layout::WeightGradient);
        }
        // Shapes of the user's own: WGRNN_BENCH_GEMM_EXTRA=64x256x16:xw,64x256x256:xwt
        // (layouts xwt, xw, dw; WGRNN_BENCH_GEMM_SHAPES, where set, must list them too).
        for (m, n, k, layout) in extra_shapes() {
            bench_gemm(&gpu, m, n, k, layout);
        }
        if !gpu.adapter().is_software {
            // W3-sized products: the input projection and head over T·B = 32768 rows, and
            // the weight gradient dW_hh (K = 32768).
            bench_gemm(&gpu, 32768, 512, 512, Layout::XWt);
            bench_gemm(&gpu, 32768, 96, 512, Layout::XWt);
            bench_gemm(&gpu, 512, 512, 32768, Layout::WeightGradient);
            // The large-batch sweep's H 1024, B 4096: a recurrence step's product and dW_hh
            // over 16384 rows.
            bench_gemm(&gpu, 4096, 1024, 1024, Layout::XWt);
            bench_gemm(&gpu, 1024, 1024, 16384, Layout::WeightGradient);
        }
    }
    if wanted("embed") {
        bench_embed(&gpu, 2048, 10_000, 128);
        bench_embed(&gpu, 32_768, 96, 64);
    }
    if wanted("column") {
        // The bias gradients: W1's gates (T·B 2048 x H 256), W5's (x 3H) and W4's (x 4H),
        // W3's (32768 x 512) and W1's head (2048 x 20 padded tags).
        for (rows, columns) in [
            (2048, 256),
            (2048, 768),
            (2048, 1024),
            (32_768, 512),
            (2048, 20),
        ] {
            bench_column_sum(&gpu, rows, columns);
        }
    }
    if wanted("pool") {
        bench_pool(&gpu, 50, 256, 128);
    }
    if wanted("optimizer") {
        // W1's parameters (W4 and W5 have 1.4-2.1M too), and W2's.
        for count in [1_383_442, 17_793] {
            bench_optimizer(&gpu, count);
        }
    }
    if wanted("rnn") {
        // WGRNN_BENCH_RNN_SHAPES=64x256,256x128 (B x H) replaces the shapes.
        for (b, h) in rnn_shapes() {
            bench_recurrence(&gpu, b, h, 16);
        }
    }
    if wanted("train") {
        // Whole training steps: the same workloads and timing as `wgrnn bench`.
        for name in wgrnn::bench::NAMES.iter().take(2) {
            let w = wgrnn::bench::named(name).unwrap();
            let r =
                wgrnn::bench::run_workload(&gpu, &w, 10, Duration::from_secs(10), false).unwrap();
            println!(
                "train step {name} (B {} T {}): {:>9.3} ms  {:>9.0} tokens/s",
                w.batch, w.steps, r.median_ms, r.tokens_per_second
            );
        }
    }
}
