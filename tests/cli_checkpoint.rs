//! Checkpoints, resume, the JSON log and the plot, through the binary on the bundled
//! EWT sample.

mod common;

use common::cli::{ok, s, scratch};
use std::path::Path;
use std::process::Command;

const SMALL: [&str; 8] = [
    "--hidden", "24", "--embed", "16", "--batch", "64", "--seed", "5",
];

/// Trains `flags` for `epochs` epochs in one go, and again stopped after `first` epochs
/// (checkpointed) and resumed with no flags but the epochs: asserts the two runs saved the
/// same bytes, and returns (the whole run's output, the resumed run's output).
fn interrupted_run_matches_whole(
    dir: &Path,
    flags: &[&str],
    first: &str,
    epochs: &str,
) -> (String, String) {
    let (full, resumed) = (
        dir.join("full.safetensors"),
        dir.join("resumed.safetensors"),
    );
    let ckpt = dir.join("ckpt");
    let mut args = vec!["train", "--epochs", epochs, "--save", s(&full)];
    args.extend(flags);
    let whole = ok(&args);
    let mut args = vec!["train", "--epochs", first, "--checkpoint", s(&ckpt)];
    args.extend(flags);
    ok(&args);
    let out = ok(&[
        "train",
        "--resume",
        s(&ckpt),
        "--epochs",
        epochs,
        "--save",
        s(&resumed),
    ]);
    assert!(
        std::fs::read(&full).unwrap() == std::fs::read(&resumed).unwrap(),
        "resumed weights differ from the uninterrupted run's"
    );
    (whole, out)
}

#[test]
fn resumed_run_ends_with_the_same_bits_as_an_uninterrupted_one() {
    let dir = scratch("resume");
    let ckpt = dir.join("ckpt");
    // "Interrupted" after epoch 1, then resumed to epoch 3.
    let (_, out) = interrupted_run_matches_whole(&dir, &SMALL, "1", "3");
    assert!(out.contains("resumed after epoch 1"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("epoch ")).count(),
        2,
        "{out}"
    );
    // The checkpoint now holds epoch 3, with only that epoch's tensor files.
    let meta = std::fs::read_to_string(ckpt.join("checkpoint.json")).unwrap();
    assert!(meta.contains("\"epochs_done\": 3"), "{meta}");
    let mut files: Vec<String> = std::fs::read_dir(&ckpt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            "checkpoint.json",
            "optimizer-e0003.safetensors",
            "weights-e0003.safetensors"
        ]
    );
}

#[test]
fn lr_decay_on_a_plateau_and_f16_storage_survive_a_resume_bit_for_bit() {
    let dir = scratch("plateau");
    // A min-delta no epoch can beat: every epoch after the first is on a plateau, so the
    // learning rate (the built-in job's 0.003) halves after epochs 2 and 3 (patience 100
    // keeps early stopping away). Interrupted after epoch 2 (one cut made) and resumed
    // without the flags: the checkpoint carries the cut rate, the count and the precision.
    let mut flags = SMALL.to_vec();
    flags.extend([
        "--lr-decay",
        "0.5",
        "--lr-patience",
        "1",
        "--min-delta",
        "10",
        "--patience",
        "100",
        "--precision",
        "f16",
    ]);
    let (whole, resumed) = interrupted_run_matches_whole(&dir, &flags, "2", "3");
    let cuts: Vec<&str> = whole
        .lines()
        .filter(|l| l.contains("learning rate x 0.5"))
        .collect();
    assert_eq!(cuts.len(), 2, "{whole}");
    assert!(cuts[1].ends_with("-> 0.00075"), "{whole}");
    assert!(whole.contains("f16 storage"), "{whole}");
    assert!(
        resumed.contains("learning rate x 0.5 -> 0.00075"),
        "{resumed}"
    );
    assert!(resumed.contains("f16 storage"), "{resumed}");
}

#[test]
fn json_log_plot_and_restore_best() {
    let dir = scratch("feedback");
    let (log, plot) = (dir.join("log.jsonl"), dir.join("curves.svg"));
    let ckpt = dir.join("ckpt");
    let mut args = vec![
        "train",
        "--epochs",
        "3",
        "--log-every",
        "10",
        "--log-json",
        s(&log),
        "--plot",
        s(&plot),
        "--restore-best",
        "--monitor",
        "metric",
        "--checkpoint",
        s(&ckpt),
    ];
    args.extend(SMALL);
    let out = ok(&args);
    assert!(
        out.contains("restored the weights of epoch") && out.contains("best.safetensors"),
        "{out}"
    );
    let dev = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/ewt-sample/dev.conllu");
    let best = ok(&[
        "eval",
        "--checkpoint",
        s(&ckpt),
        "--data",
        s(&dev),
        "--best",
    ]);
    let best_accuracy: f64 = best
        .lines()
        .find_map(|l| l.strip_prefix("accuracy: "))
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    let best_epoch_accuracy = lines_max_accuracy(&log);
    assert!(
        (best_accuracy - 100.0 * best_epoch_accuracy).abs() < 0.01,
        "--best evaluates to {best_accuracy}%, the best epoch had {}",
        100.0 * best_epoch_accuracy
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let epochs: Vec<&serde_json::Value> = lines.iter().filter(|v| v["event"] == "epoch").collect();
    assert_eq!(epochs.len(), 3);
    assert!(
        epochs[2]["val"]["accuracy"].as_f64().unwrap() > 0.3,
        "{:?}",
        epochs[2]
    );
    assert!(lines.iter().filter(|v| v["event"] == "iteration").count() >= 3);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("polyline") && svg.contains("validation accuracy"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    // The same curves as PNG: two panels, each series drawn in its colour, with labels.
    let png_path = dir.join("curves.png");
    let mut args = vec!["train", "--epochs", "2", "--plot", s(&png_path)];
    args.extend(SMALL);
    ok(&args);
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (760, 600));
    let count = |rgb: [u8; 3]| pixels.chunks(3).filter(|p| *p == rgb).count();
    for (what, rgb) in [
        ("validation loss", [0xd6, 0x27, 0x28]),
        ("train loss", [0x1f, 0x77, 0xb4]),
        ("accuracy", [0x2c, 0xa0, 0x2c]),
        ("text", [0, 0, 0]),
    ] {
        assert!(count(rgb) > 50, "{what}: {} pixels", count(rgb));
    }
}

#[test]
fn a_damaged_checkpoint_is_a_clear_error() {
    let dir = scratch("damaged");
    std::fs::write(dir.join("checkpoint.json"), b"{ not json").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
        .env("WGRNN_TUNING_CACHE", "off")
        .args(["train", "--resume", s(&dir)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && text.contains("checkpoint.json")
            && text.contains("not a wgrnn checkpoint"),
        "{text}"
    );
}

fn lines_max_accuracy(log: &Path) -> f64 {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "epoch")
        .map(|v| v["val"]["accuracy"].as_f64().unwrap())
        .fold(0.0, f64::max)
}
