//! Reliability through the binary: non-finite steps under each --on-nonfinite policy,
//! and checkpoints that survive being killed at any moment.

mod common;

use common::cli::{run, s, scratch};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A smooth series on which a ReLU RNN with SGD at lr 5 blows up within a few steps.
fn series(dir: &Path) -> PathBuf {
    let mut csv = String::from("t,v\n");
    for i in 0..600 {
        csv.push_str(&format!("{i},{:.3}\n", 10.0 + 5.0 * (i as f64 * 0.2).sin()));
    }
    let p = dir.join("s.csv");
    std::fs::write(&p, csv).unwrap();
    p
}

#[test]
fn non_finite_steps_are_skipped_and_handled_by_policy() {
    let dir = scratch("nonfinite");
    let data = series(&dir);
    let base = [
        "train",
        "--data",
        s(&data),
        "--loss",
        "mse",
        "--activation",
        "relu",
        "--optimizer",
        "sgd",
        "--lr",
        "5",
        "--hidden",
        "32",
        "--window",
        "10",
        "--epochs",
        "2",
    ];
    let with = |policy: &str, save: &Path| {
        let mut a = base.to_vec();
        a.extend(["--on-nonfinite", policy, "--save", s(save)]);
        run(&a)
    };
    let saved_is_finite = |p: &Path| {
        let bytes = std::fs::read(p).unwrap();
        let f = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        f.tensors().iter().all(|(_, v)| {
            v.data()
                .chunks_exact(4)
                .all(|c| f32::from_le_bytes(c.try_into().unwrap()).is_finite())
        })
    };
    let (ok, out) = with("rollback", &dir.join("r.safetensors"));
    assert!(
        ok && out.contains("the GPU skipped this update")
            && out.contains("rolled back")
            && out.contains("halved the learning rate"),
        "{out}"
    );
    assert!(
        out.contains("stopped: reached --epochs 2"),
        "rollback should recover:\n{out}"
    );
    assert!(saved_is_finite(&dir.join("r.safetensors")));
    // Rollbacks happen at fixed iterations, not when readbacks happen to arrive.
    let (ok, again) = with("rollback", &dir.join("r2.safetensors"));
    assert!(ok);
    let rolls = |o: &str| {
        o.lines()
            .filter(|l| l.contains("rolled back"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(rolls(&out), rolls(&again));
    assert!(
        std::fs::read(dir.join("r.safetensors")).unwrap()
            == std::fs::read(dir.join("r2.safetensors")).unwrap(),
        "rollback runs differ"
    );
    let (ok, out) = with("stop", &dir.join("s.safetensors"));
    assert!(
        ok && out.contains("stopped: non-finite loss or gradient at iteration"),
        "{out}"
    );
    assert!(
        saved_is_finite(&dir.join("s.safetensors")),
        "stop keeps the last finite weights"
    );
    let (ok, out) = with("skip", &dir.join("k.safetensors"));
    assert!(
        ok && out.contains("the GPU skipped this update") && !out.contains("rolled back"),
        "{out}"
    );
}

const SMALL: [&str; 8] = [
    "--hidden", "24", "--embed", "16", "--batch", "8", "--seed", "5",
];

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn ctrl_c_checkpoints_mid_epoch_and_resuming_gives_the_same_bits() {
    use std::io::BufRead;
    let dir = scratch("interrupt");
    let (full, resumed, ckpt) = (
        dir.join("full.safetensors"),
        dir.join("resumed.safetensors"),
        dir.join("ckpt"),
    );
    let mut args = vec!["train", "--epochs", "4", "--save", s(&full)];
    args.extend(SMALL);
    let (ok, out) = run(&args);
    assert!(ok, "{out}");
    let mut args = vec![
        "train",
        "--epochs",
        "4",
        "--checkpoint",
        s(&ckpt),
        "--log-every",
        "10",
    ];
    args.extend(SMALL);
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
        .env("WGRNN_TUNING_CACHE", "off")
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    // Wait for epoch 1 to end and a few iterations of epoch 2, then interrupt.
    let mut iters_after = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if seen.contains("epoch 1/4") && line.trim_start().starts_with("iter ") {
            iters_after += 1;
            if iters_after == 2 {
                break;
            }
        }
    }
    signal(child.id(), "-INT");
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(
        seen.contains("interrupted in epoch 2 at batch") && seen.contains("saved a checkpoint"),
        "{seen}"
    );
    let (ok, out) = run(&["train", "--resume", s(&ckpt), "--save", s(&resumed)]);
    assert!(ok && out.contains("resumed after epoch 1"), "{out}");
    assert!(
        std::fs::read(&full).unwrap() == std::fs::read(&resumed).unwrap(),
        "interrupted + resumed differs from uninterrupted"
    );
}

#[test]
fn kill_9_at_any_moment_leaves_a_loadable_checkpoint() {
    let dir = scratch("kill9");
    let ckpt = dir.join("ckpt");
    // Tiny epochs, so that checkpoints are written many times a second.
    let fresh = [
        "train",
        "--epochs",
        "1000",
        "--hidden",
        "8",
        "--embed",
        "8",
        "--batch",
        "400",
        "--checkpoint",
        s(&ckpt),
    ];
    // One whole run of the same model first: it compiles the kernels (Mesa keeps them in
    // its shader cache), so that the killed runs below reach their checkpoint writes soon.
    let warm = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
        .env("WGRNN_TUNING_CACHE", "off")
        .args([
            "train", "--epochs", "1", "--hidden", "8", "--embed", "8", "--batch", "400",
        ])
        .output()
        .unwrap();
    assert!(warm.status.success(), "{warm:?}");
    let mut rng = wgrnn::rng::Rng::new(42);
    let mut loaded_epochs = Vec::new();
    for round in 0..10 {
        let args: Vec<&str> = if ckpt.join("checkpoint.json").exists() {
            vec!["train", "--resume", s(&ckpt)]
        } else {
            fresh.to_vec()
        };
        let meta = ckpt.join("checkpoint.json");
        let before = std::fs::read(&meta).ok();
        let mut child = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
            .env("WGRNN_TUNING_CACHE", "off")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Past start-up (adapter, plans, kernel tuning), however long this machine takes:
        // until this run has written a checkpoint of its own; then into its later writes.
        let started = std::time::Instant::now();
        while std::fs::read(&meta).ok() == before {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(120),
                "round {round}: no checkpoint written within 120 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(rng.below(1500) as u64));
        signal(child.id(), "-9");
        child.wait().unwrap();
        let c = wgrnn::checkpoint::load(&ckpt).unwrap_or_else(|e| {
            panic!("round {round}: the checkpoint does not load after kill -9: {e}")
        });
        assert!(c
            .params
            .iter()
            .chain(&c.moment_m)
            .chain(&c.moment_v)
            .all(|v| v.is_finite()));
        loaded_epochs.push(c.meta.progress.epochs_done);
    }
    assert_eq!(loaded_epochs.len(), 10, "{loaded_epochs:?}");
    assert!(
        loaded_epochs.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {loaded_epochs:?}"
    );
}

#[test]
fn oversized_batches_are_refused_before_any_work() {
    let (ok, out) = run(&["train", "--batch", "100000", "--epochs", "1"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("does not fit this adapter")
            && out.contains("MiB")
            && out.contains("max_storage_buffer_binding_size"),
        "{out}"
    );
    assert!(
        !out.contains("epoch 1/"),
        "work started before the refusal:\n{out}"
    );
    let (ok, out) = run(&["train", "--batch", "4000000000", "--epochs", "1"]);
    assert!(
        !ok && out.contains("32-bit") && !out.contains("panicked"),
        "{out}"
    );
}

#[test]
fn output_destinations_are_checked_before_any_work() {
    let dir = scratch("destinations");
    let missing = dir.join("no-such-dir").join("out");
    let missing = s(&missing);
    let a_file = dir.join("a-file");
    std::fs::write(&a_file, "not a directory").unwrap();
    let under_a_file = a_file.join("checkpoints");
    let pdf = dir.join("curves.pdf");
    for args in [
        vec!["train", "--epochs", "1", "--save", missing],
        vec!["train", "--epochs", "1", "--plot", s(&dir)],
        vec!["train", "--epochs", "1", "--plot", s(&pdf)],
        vec!["train", "--epochs", "1", "--checkpoint", s(&under_a_file)],
        vec!["bench", "--workload", "W2", "--json", missing],
    ] {
        let (ok, out) = run(&args);
        assert!(!ok, "{args:?}: {out}");
        let flag = args[args.len() - 2];
        assert!(
            out.contains(flag)
                && (out.contains("does not exist")
                    || out.contains("is a directory")
                    || out.contains("cannot create")
                    || out.contains("SVG or PNG")),
            "{args:?}: {out}"
        );
        assert!(
            !out.contains("epoch 1/") && !out.contains("adapter:"),
            "{args:?}: work started before the refusal:\n{out}"
        );
    }
    assert!(!dir.join("no-such-dir").exists());
}

#[test]
fn log_every_and_log_outputs_do_not_change_the_bits() {
    let dir = scratch("logevery");
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    let mut args = vec![
        "train",
        "--epochs",
        "2",
        "--log-every",
        "1",
        "--save",
        s(&a),
    ];
    args.extend(SMALL);
    assert!(run(&args).0);
    let log = dir.join("log.jsonl");
    let mut args = vec![
        "train",
        "--epochs",
        "2",
        "--log-every",
        "37",
        "--log-json",
        s(&log),
        "--save",
        s(&b),
    ];
    args.extend(SMALL);
    assert!(run(&args).0);
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "--log-every changed the weights"
    );
}

#[test]
fn ctrl_c_inside_a_character_epoch_keeps_the_carried_state() {
    // A text is one batch of parallel streams per epoch: interrupting must not wait for the
    // epoch's end, and resuming must carry the hidden state (an LSTM's h and c) on exactly.
    for cell in ["rnn", "lstm"] {
        interrupt_text_epoch(cell);
    }
}

fn interrupt_text_epoch(cell: &str) {
    use std::io::BufRead;
    let dir = scratch(&format!("interrupt-text-{cell}"));
    let text: String = (0..2000)
        .map(|i| format!("Now is the winter of our discontent {i}.\n"))
        .collect();
    let file = dir.join("play.txt");
    std::fs::write(&file, text).unwrap();
    let (full, resumed, ckpt) = (
        dir.join("full.safetensors"),
        dir.join("resumed.safetensors"),
        dir.join("ckpt"),
    );
    let common = [
        "train",
        "--data",
        s(&file),
        "--batch",
        "4",
        "--seq-len",
        "16",
        "--hidden",
        "24",
        "--embed",
        "8",
        "--epochs",
        "1",
        "--log-every",
        "50",
        "--cell",
        cell,
    ];
    let mut args = common.to_vec();
    args.extend(["--save", s(&full)]);
    let (ok, out) = run(&args);
    assert!(ok, "{out}");
    let mut args = common.to_vec();
    args.extend(["--checkpoint", s(&ckpt)]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
        .env("WGRNN_TUNING_CACHE", "off")
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.trim_start().starts_with("iter ") && seen.matches("  iter ").count() == 3 {
            break;
        }
    }
    signal(child.id(), "-INT");
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    assert_eq!(child.wait().unwrap().code(), Some(130), "{seen}");
    assert!(
        seen.contains("interrupted in epoch 1 at batch 1 of 1 (chunk"),
        "{seen}"
    );
    let (ok, out) = run(&[
        "train",
        "--resume",
        s(&ckpt),
        "--data",
        s(&file),
        "--save",
        s(&resumed),
    ]);
    assert!(ok && out.contains("stopped: reached --epochs 1"), "{out}");
    assert!(
        std::fs::read(&full).unwrap() == std::fs::read(&resumed).unwrap(),
        "interrupted + resumed {cell} text model differs from uninterrupted"
    );
}
