//! Checkpoints, resume, the JSON log and the plot, through the binary on the bundled
//! EWT sample.

mod common;

use common::cli::{ok, s, scratch};
use std::path::Path;
use std::process::Command;

const SMALL: [&str; 8] = [
    "--hidden", "24", "--embed", "16", "--batch", "64", "--seed", "5",
];

#[test]
fn resumed_run_ends_with_the_same_bits_as_an_uninterrupted_one() {
    let dir = scratch("resume");
    let (full, resumed) = (
        dir.join("full.safetensors"),
        dir.join("resumed.safetensors"),
    );
    let ckpt = dir.join("ckpt");
    let mut args = vec!["train", "--epochs", "3", "--save", s(&full)];
    args.extend(SMALL);
    ok(&args);
    // "Interrupted" after epoch 1, then resumed to epoch 3.
    let mut args = vec!["train", "--epochs", "1", "--checkpoint", s(&ckpt)];
    args.extend(SMALL);
    ok(&args);
    let meta = std::fs::read_to_string(ckpt.join("checkpoint.json")).unwrap();
    assert!(
        meta.contains("\"epochs_done\": 1") && meta.contains("Tagging"),
        "{meta}"
    );
    let out = ok(&[
        "train",
        "--resume",
        s(&ckpt),
        "--epochs",
        "3",
        "--save",
        s(&resumed),
    ]);
    assert!(out.contains("resumed after epoch 1"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("epoch ")).count(),
        2,
        "{out}"
    );
    assert!(
        std::fs::read(&full).unwrap() == std::fs::read(&resumed).unwrap(),
        "resumed weights differ from the uninterrupted run's"
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
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lr_decay_on_a_plateau_and_f16_storage_survive_a_resume_bit_for_bit() {
    let dir = scratch("plateau");
    let (full, resumed) = (
        dir.join("full.safetensors"),
        dir.join("resumed.safetensors"),
    );
    let ckpt = dir.join("ckpt");
    // A min-delta no epoch can beat: every epoch after the first is on a plateau, so the
    // learning rate halves after epochs 2 and 3 (patience 100 keeps early stopping away).
    let plateau = [
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
    ];
    let mut args = vec!["train", "--epochs", "3", "--save", s(&full)];
    args.extend(SMALL);
    args.extend(plateau);
    let out = ok(&args);
    let cuts: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("learning rate x 0.5"))
        .collect();
    assert_eq!(cuts.len(), 2, "{out}");
    assert!(cuts[1].ends_with("-> 0.00075"), "{out}"); // the built-in job: lr 0.003
    assert!(out.contains("f16 storage"), "{out}");
    // Interrupted after epoch 2 (one cut made), resumed to epoch 3 without the flags: the
    // checkpoint carries the cut rate, the plateau count and the precision.
    let mut args = vec!["train", "--epochs", "2", "--checkpoint", s(&ckpt)];
    args.extend(SMALL);
    args.extend(plateau);
    ok(&args);
    let meta = std::fs::read_to_string(ckpt.join("checkpoint.json")).unwrap();
    assert!(
        meta.contains("\"lr\": 0.0015") && meta.contains("\"precision\": \"f16\""),
        "{meta}"
    );
    let out = ok(&[
        "train",
        "--resume",
        s(&ckpt),
        "--epochs",
        "3",
        "--save",
        s(&resumed),
    ]);
    assert!(out.contains("learning rate x 0.5 -> 0.00075"), "{out}");
    assert!(
        std::fs::read(&full).unwrap() == std::fs::read(&resumed).unwrap(),
        "resumed weights differ from the uninterrupted run's"
    );
    let _ = std::fs::remove_dir_all(&dir);
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
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_checkpoint_is_a_clear_error() {
    let dir = scratch("damaged");
    std::fs::write(dir.join("checkpoint.json"), b"{ not json").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
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
    let _ = std::fs::remove_dir_all(&dir);
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
