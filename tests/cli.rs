//! End to end through the `wgrnn` binary: commands, parameter counts against PyTorch,
//! training on files, saving/loading, determinism, early stopping and clear errors.

mod common;

use common::cli::{ok, run, scratch};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fails(args: &[&str], needle: &str) {
    let (success, t) = run(args);
    assert!(!success, "wgrnn {args:?} should fail but succeeded:\n{t}");
    assert!(
        t.contains(needle),
        "wgrnn {args:?}: expected the error to mention {needle:?}, got:\n{t}"
    );
    assert!(!t.contains("panicked"), "wgrnn {args:?} panicked:\n{t}");
}

/// Writes a safetensors file of f32 / i64 tensors.
fn write_tensors(
    path: &Path,
    f32s: &[(&str, Vec<usize>, Vec<f32>)],
    i64s: &[(&str, Vec<usize>, Vec<i64>)],
) {
    use safetensors::tensor::TensorView;
    let fb: Vec<Vec<u8>> = f32s
        .iter()
        .map(|t| t.2.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let ib: Vec<Vec<u8>> = i64s
        .iter()
        .map(|t| t.2.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::new();
    for (t, b) in f32s.iter().zip(&fb) {
        views.push((
            t.0.to_string(),
            TensorView::new(safetensors::Dtype::F32, t.1.clone(), b).unwrap(),
        ));
    }
    for (t, b) in i64s.iter().zip(&ib) {
        views.push((
            t.0.to_string(),
            TensorView::new(safetensors::Dtype::I64, t.1.clone(), b).unwrap(),
        ));
    }
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn devices_lists_the_adapter_with_its_features() {
    let out = ok(&["devices"]);
    for needle in [
        "[0]",
        "backend:",
        "max storage binding:",
        "shader-f16:",
        "timestamp queries:",
        "subgroups:",
    ] {
        assert!(
            out.contains(needle),
            "devices output lacks {needle:?}:\n{out}"
        );
    }
}

#[test]
fn params_counts_equal_pytorch() {
    let table = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch/param_counts.tsv"),
    )
    .unwrap();
    let mut checked = 0;
    for line in table.lines().filter(|l| !l.is_empty()) {
        let (flags, count) = line.split_once('\t').unwrap();
        let mut args = vec!["params"];
        args.extend(flags.split_whitespace());
        let out = ok(&args);
        let last = out.lines().last().unwrap();
        assert_eq!(
            last,
            format!("trainable parameters: {count}"),
            "wgrnn params {flags}"
        );
        assert!(
            out.contains("rnn.weight_hh_l0") && out.contains("head.bias"),
            "{out}"
        );
        checked += 1;
    }
    assert!(checked >= 5);
}

#[test]
fn nonsensical_combinations_are_refused_clearly() {
    fails(
        &[
            "params",
            "--vocab",
            "10",
            "--output-size",
            "3",
            "--loss",
            "bce",
            "--output-activation",
            "softmax",
        ],
        "bce",
    );
    fails(
        &[
            "params",
            "--vocab",
            "10",
            "--output-size",
            "3",
            "--loss",
            "cross-entropy",
            "--output-activation",
            "relu",
        ],
        "cross-entropy",
    );
    fails(
        &[
            "params",
            "--input-size",
            "3",
            "--output-size",
            "1",
            "--loss",
            "cross-entropy",
        ],
        "at least 2 classes",
    );
    fails(
        &[
            "params",
            "--input-size",
            "3",
            "--output-size",
            "1",
            "--loss",
            "hinge",
        ],
        "hinge",
    );
    fails(&["params", "--output-size", "2"], "--input-size");
    fails(
        &[
            "train",
            "--optimizer",
            "adam",
            "--momentum",
            "0.9",
            "--epochs",
            "1",
        ],
        "SGD",
    );
    fails(
        &["train", "--optimizer", "sgd", "--nesterov", "--epochs", "1"],
        "--nesterov needs --momentum",
    );
    fails(
        &["train", "--adapter", "no-such-adapter-xyz", "--epochs", "1"],
        "no adapter name contains",
    );
}

#[test]
fn no_adapter_is_a_clear_error_with_install_instructions() {
    let o = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
        .env("WGRNN_TUNING_CACHE", "off")
        .args(["train", "--epochs", "1"])
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .env("WGPU_BACKEND", "vulkan")
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "must fail without an adapter:\n{t}");
    assert!(
        t.contains("mesa-vulkan-drivers"),
        "the error should say how to install one:\n{t}"
    );
}

#[test]
fn default_job_trains_a_tagger_on_the_bundled_sample() {
    let out = ok(&["train", "--epochs", "3", "--log-every", "20"]);
    let epoch_losses: Vec<f64> = out
        .lines()
        .filter(|l| l.starts_with("epoch "))
        .map(|l| {
            l.split("train loss ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(epoch_losses.len(), 3, "{out}");
    assert!(
        epoch_losses[2] < epoch_losses[0] * 0.7,
        "loss did not fall: {epoch_losses:?}\n{out}"
    );
    assert!(
        out.contains("UD English-EWT")
            && out.contains("tokens/s")
            && out.contains("stopped: reached --epochs 3"),
        "{out}"
    );
    let accuracy: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("accuracy on the bundled dev sample: "))
        .and_then(|v| v.trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no final accuracy line:\n{out}"));
    // The most-frequent-tag baseline is far above chance (1/17); three epochs already beat 60%.
    assert!(accuracy > 60.0, "accuracy {accuracy}%\n{out}");
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("iter ")),
        "no periodic loss lines:\n{out}"
    );
}

fn regression_files(dir: &Path) -> (PathBuf, PathBuf) {
    let mut rng = wgrnn::rng::Rng::new(3);
    let (n, t, i) = (20, 6, 3);
    let x: Vec<f32> = (0..n * t * i).map(|_| rng.normal() as f32).collect();
    // Target: the mean of the first feature over the sequence (learnable many-to-one).
    let y: Vec<f32> = (0..n)
        .map(|s| (0..t).map(|k| x[(s * t + k) * i]).sum::<f32>() / t as f32)
        .collect();
    let train = dir.join("train.safetensors");
    write_tensors(
        &train,
        &[("inputs", vec![n, t, i], x), ("targets", vec![n, 1], y)],
        &[],
    );
    let val = dir.join("val.safetensors");
    let xv: Vec<f32> = (0..5 * t * i).map(|_| rng.normal() as f32).collect();
    let yv: Vec<f32> = (0..5)
        .map(|s| (0..t).map(|k| xv[(s * t + k) * i]).sum::<f32>() / t as f32)
        .collect();
    write_tensors(
        &val,
        &[("inputs", vec![5, t, i], xv), ("targets", vec![5, 1], yv)],
        &[],
    );
    (train, val)
}

#[test]
fn same_seed_saves_identical_weights_and_init_round_trips() {
    let dir = scratch("determinism");
    let (train, val) = regression_files(&dir);
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    let common = [
        "train",
        "--data",
        train.to_str().unwrap(),
        "--val",
        val.to_str().unwrap(),
        "--loss",
        "mse",
        "--pool",
        "mean",
        "--hidden",
        "17",
        "--batch",
        "6",
        "--seq-len",
        "4",
        "--seed",
        "11",
    ];
    let mut args = common.to_vec();
    args.extend(["--epochs", "3", "--save", a.to_str().unwrap()]);
    let out = ok(&args);
    assert!(
        out.contains("many-to-one") && out.contains("val loss"),
        "{out}"
    );
    let mut args = common.to_vec();
    args.extend(["--epochs", "3", "--save", b.to_str().unwrap()]);
    ok(&args);
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "two runs with the same seed saved different files"
    );
    // --init from a saved file with zero epochs of change (lr 0) saves the same tensors.
    let c = dir.join("c.safetensors");
    let mut args = common.to_vec();
    args.extend([
        "--init",
        a.to_str().unwrap(),
        "--lr",
        "0",
        "--epochs",
        "1",
        "--save",
        c.to_str().unwrap(),
    ]);
    ok(&args);
    let load = |p: &Path| {
        let bytes = std::fs::read(p).unwrap();
        let f = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        f.tensors()
            .into_iter()
            .map(|(n, v)| (n, v.data().to_vec()))
            .collect::<HashMap<_, _>>()
    };
    assert_eq!(
        load(&a),
        load(&c),
        "weights changed through --init / --save with lr 0"
    );
}

#[test]
fn early_stopping_says_why() {
    let dir = scratch("early");
    let (train, _) = regression_files(&dir);
    let out = ok(&[
        "train",
        "--data",
        train.to_str().unwrap(),
        "--loss",
        "mse",
        "--epochs",
        "20",
        "--min-delta",
        "100",
        "--patience",
        "2",
    ]);
    assert!(out.contains("early stop"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("epoch ")).count(),
        3,
        "first epoch sets the best, two stale epochs stop:\n{out}"
    );
}

#[test]
fn bad_files_are_named_in_the_error() {
    let dir = scratch("bad");
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not a safetensors file").unwrap();
    // `bench --compare` reads its report before measuring anything.
    let report = dir.join("report.json");
    std::fs::write(&report, "{\"results\": [\n  {\"median_ms\": }\n]}").unwrap();
    fails(
        &[
            "bench",
            "--workload",
            "W1",
            "--compare",
            report.to_str().unwrap(),
        ],
        "report.json: not a JSON bench report: expected value at line 2",
    );
    fails(
        &["bench", "--compare", junk.to_str().unwrap()],
        "junk.safetensors",
    );
    fails(
        &["train", "--data", junk.to_str().unwrap()],
        "junk.safetensors",
    );
    fails(
        &[
            "train",
            "--data",
            dir.join("missing.safetensors").to_str().unwrap(),
        ],
        "missing.safetensors",
    );
    let nan = dir.join("nan.safetensors");
    write_tensors(
        &nan,
        &[
            ("inputs", vec![1, 2, 1], vec![0.0, f32::NAN]),
            ("targets", vec![1, 1], vec![0.0]),
        ],
        &[],
    );
    fails(
        &["train", "--data", nan.to_str().unwrap(), "--loss", "mse"],
        "non-finite",
    );
    let ids = dir.join("ids.safetensors");
    write_tensors(
        &ids,
        &[],
        &[
            ("inputs", vec![1, 3], vec![0, 1, 7]),
            ("targets", vec![1, 3], vec![0, 1, 1]),
        ],
    );
    fails(
        &[
            "train",
            "--data",
            ids.to_str().unwrap(),
            "--vocab",
            "5",
            "--output-size",
            "2",
        ],
        "token id 7",
    );
    let wrong_task = dir.join("task.safetensors");
    write_tensors(
        &wrong_task,
        &[],
        &[
            ("inputs", vec![1, 3], vec![0, 1, 2]),
            ("targets", vec![1], vec![1]),
        ],
    );
    fails(
        &[
            "train",
            "--data",
            wrong_task.to_str().unwrap(),
            "--task",
            "many-to-many",
            "--output-size",
            "2",
        ],
        "many-to-one",
    );
    let weights = dir.join("weights.safetensors");
    write_tensors(
        &weights,
        &[("rnn.weight_ih_l0", vec![4, 3], vec![0.0; 12])],
        &[],
    );
    let (train, _) = regression_files(&dir);
    fails(
        &[
            "train",
            "--data",
            train.to_str().unwrap(),
            "--loss",
            "mse",
            "--init",
            weights.to_str().unwrap(),
        ],
        "missing `rnn.weight_hh_l0`",
    );
}

/// `wgrnn bench` of a custom shape small enough to time in a second on lavapipe, then
/// `extra`.
/// `--hidden` and `--batch` lists sweep every pair; with `--workload` they (and `--seq-len`)
/// resize the named workloads, as `benches/peers/torch_rnn.py` does; `auto` takes the largest
/// batch that fits, at most `--max-batch`.
#[test]
fn bench_sweeps_hidden_and_batch_and_resizes_named_workloads() {
    let dir = scratch("sweep");
    let json = dir.join("sweep.json");
    let out = ok(&[
        "bench",
        "--workload",
        "W2",
        "--hidden",
        "8,12",
        "--batch",
        "3,auto",
        "--max-batch",
        "7",
        "--seq-len",
        "4",
        "--steps",
        "3",
        "--max-seconds",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let sizes: Vec<(String, u64, u64, u64)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let w = &r["workload"];
            (
                w["name"].as_str().unwrap().to_string(),
                w["config"]["hidden"].as_u64().unwrap(),
                w["batch"].as_u64().unwrap(),
                w["steps"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64, u64, u64)> = [(8, 3), (8, 7), (12, 3), (12, 7)]
        .into_iter()
        .map(|(h, b)| ("W2".to_string(), h, b, 4))
        .collect();
    assert_eq!(sizes, want, "{out}");
    assert!(
        out.contains("--batch auto: 7 is the largest batch of W2 with hidden 12")
            && out.contains("resized: hidden 8, 4 steps, batch 3"),
        "{out}"
    );
    // A custom shape's model options do not apply to named workloads; sizes are checked
    // before anything runs; a model too large for one sequence says so.
    let (ok_mixed, text) = run(&["bench", "--workload", "W1", "--vocab", "5"]);
    assert!(
        !ok_mixed && text.contains("--vocab (a custom shape's model) cannot change"),
        "{text}"
    );
    let (ok_zero, text) = run(&["bench", "--hidden", "8,0"]);
    assert!(
        !ok_zero && text.contains("--hidden must be at least 1"),
        "{text}"
    );
    let (ok_huge, text) = run(&[
        "bench",
        "--input-size",
        "1",
        "--hidden",
        "8192",
        "--seq-len",
        "100000",
        "--batch",
        "auto",
    ]);
    assert!(
        !ok_huge && text.contains("--batch auto: not even one sequence of 100000 steps"),
        "{text}"
    );
}

fn tiny_bench<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "bench",
        "--vocab",
        "20",
        "--embed",
        "4",
        "--hidden",
        "9",
        "--batch",
        "3",
        "--seq-len",
        "5",
        "--output-size",
        "3",
        "--steps",
        "3",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn bench_reports_a_custom_shape_against_the_ceiling_as_json() {
    let dir = scratch("bench");
    let json = dir.join("bench.json");
    let out = ok(&tiny_bench(&[
        "--ceiling",
        "--kernel-times",
        "--json",
        json.to_str().unwrap(),
    ]));
    assert!(
        out.contains("ceiling:")
            && out.contains("custom")
            && out.contains("tokens/s")
            && out.contains("% of the ceiling"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let r = &v["results"][0];
    assert_eq!(r["steps_timed"], 3);
    // The host's two parts: before the GPU can start, and the next step recorded meanwhile.
    assert!(
        r["host_median_ms"].as_f64().unwrap() > 0.0
            && r["record_ahead_median_ms"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    assert!(
        r["median_ms"].as_f64().unwrap() > 0.0
            && r["p95_ms"].as_f64().unwrap() >= r["median_ms"].as_f64().unwrap()
    );
    // As many steps again back to back (a training loop's pace), reported beside them; then
    // their losses and gradient norms read back, the last loss finite (the steps train).
    assert!(
        r["back_to_back_steps"] == 3
            && r["back_to_back_ms"].as_f64().unwrap() > 0.0
            && out.contains("back to back"),
        "{r}\n{out}"
    );
    // The step's commands: at least its forward, backward and optimizer dispatches.
    assert!(
        r["commands"]["dispatches"].as_u64().unwrap() >= 3
            && out.contains(&format!(
                "{} dispatches and {} copies or clears a step",
                r["commands"]["dispatches"], r["commands"]["copies_and_clears"]
            )),
        "{r}\n{out}"
    );
    assert!(
        r["readback_slots"] == 3
            && r["readback_ms"].as_f64().unwrap() > 0.0
            && r["last_loss"].as_f64().unwrap().is_finite()
            && out.contains("3 steps' losses and gradient norms in"),
        "{r}\n{out}"
    );
    // With timestamp queries (lavapipe and the GPUs have them), the optimizer phase's
    // bandwidth against the copy ceiling, as the step's GFLOP/s against the FMA ceiling.
    assert!(r["percent_of_fma_ceiling"].as_f64().unwrap() > 0.0, "{r}");
    if !r["phases_ms"].as_array().unwrap().is_empty() {
        // --kernel-times: every kernel's time by its entry point, the optimizer's included.
        let kernels = r["kernel_times_ms"].as_array().unwrap();
        assert!(
            kernels.iter().any(|k| k[0] == "adam") && out.contains("GPU time by kernel"),
            "{r}\n{out}"
        );
        assert!(
            r["optimizer_percent_of_copy_ceiling"].as_f64().unwrap() > 0.0
                && out.contains("% of the copy ceiling"),
            "{r}\n{out}"
        );
    }
    assert!(
        v["ceiling"]["fma_gflops"].as_f64().unwrap() > 0.0
            && v["adapter"]["name"].is_string()
            && v["date"].is_string()
            && v["time_utc"].as_str().unwrap().len() == 8
            && !v["commit"].as_str().unwrap().is_empty()
    );
    // The same shape again, compared with that report: its median against the earlier one.
    let again = dir.join("again.json");
    let out = ok(&tiny_bench(&[
        "--compare",
        json.to_str().unwrap(),
        "--json",
        again.to_str().unwrap(),
    ]));
    assert!(
        out.contains("comparing with") && out.contains("against the earlier run: "),
        "{out}"
    );
    let w: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    let compared = &w["results"][0]["compared_with"];
    let ratio = compared["ratio"].as_f64().unwrap();
    let (now, then) = (
        w["results"][0]["median_ms"].as_f64().unwrap(),
        r["median_ms"].as_f64().unwrap(),
    );
    assert!(
        (ratio - now / then).abs() < 1e-9 && compared["earlier_median_ms"] == r["median_ms"],
        "{compared}"
    );
    assert!(out.contains(&format!("{ratio:.2}x the time of")), "{out}");
    // Gated cells bench as custom shapes too (W4/W5 are the named LSTM and GRU workloads);
    // compared with the Elman run's report, they find no workload of theirs in it.
    for cell in ["lstm", "gru"] {
        let out = ok(&tiny_bench(&[
            "--cell",
            cell,
            "--compare",
            json.to_str().unwrap(),
        ]));
        assert!(
            out.contains(&format!("{cell} 9"))
                && out.contains("tokens/s")
                && out.contains("has no custom with this shape and precision"),
            "{out}"
        );
    }
    // The GEMM autotuner times every candidate formulation per product shape (the
    // subgroup kernel on lavapipe's 8-lane subgroups, the tiled one on GPUs) and keeps the
    // choice in the tuning cache: a second run reuses it without measuring.
    let cache = dir.join("tuning.json");
    let tuned_bench = || {
        let out = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
            .args(tiny_bench(&[]))
            .env("WGRNN_TUNING_CACHE", &cache)
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find(|l| l.contains("gemm 15x9x4: "))
            .unwrap_or_else(|| panic!("no tuning line for the input projection:\n{text}"))
            .to_string()
    };
    let first = tuned_bench();
    assert!(
        first.contains(" chosen (")
            && first.matches(" ms ").count() >= 2
            && first.contains("ms Blocked"),
        "{first}"
    );
    let stored = std::fs::read_to_string(&cache).unwrap();
    assert!(stored.contains("gemm m<=16 n9 k4"), "{stored}");
    let second = tuned_bench();
    assert!(second.contains("from the tuning cache"), "{second}");
    let chosen = |line: &str| line.split(" chosen").next().unwrap().to_string();
    assert_eq!(chosen(&first), chosen(&second));
    let (ok_w6, out) = run(&["bench", "--workload", "W6"]);
    assert!(!ok_w6 && out.contains("W5"), "{out}");
    // The knob that turns off recording the next step ahead names itself when misspelt.
    let out = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
        .args(["bench", "--hidden", "9", "--batch", "3", "--seq-len", "5"])
        .env("WGRNN_TUNING_CACHE", "off")
        .env("WGRNN_RECORD_AHEAD", "sometimes")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("WGRNN_RECORD_AHEAD is `sometimes`"),
        "{text}"
    );
}

#[test]
fn plan_and_batch_auto_pick_the_largest_batch_that_fits() {
    let model = [
        "--vocab",
        "96",
        "--embed",
        "64",
        "--hidden",
        "512",
        "--output-size",
        "96",
        "--seq-len",
        "64",
    ];
    let mut args = vec!["plan"];
    args.extend(model);
    let out = ok(&args);
    let auto: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("--batch auto: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        out.contains(&format!("fits: batch {auto} x 64 steps")),
        "{out}"
    );
    // One more sequence no longer fits, with the reason.
    let more = (auto + 1).to_string();
    let mut args = vec!["plan", "--batch", &more];
    args.extend(model);
    let (success, out) = run(&args);
    assert!(
        !success && out.contains("over the limit") && out.contains("does not fit"),
        "{out}"
    );
    // train --batch auto on the bundled sample: every sequence fits in one batch.
    let out = ok(&[
        "train", "--batch", "auto", "--epochs", "1", "--hidden", "16", "--embed", "8",
    ]);
    assert!(
        out.contains("--batch auto: 1200 (every sequence at once") && out.contains("batch 1200,"),
        "{out}"
    );
    let (success, out) = run(&["train", "--batch", "lots"]);
    assert!(!success && out.contains("a number or `auto`"), "{out}");
}
