//! Each task end to end through the binary, on small fixtures: tagging (train, eval,
//! predict), a character model (train, generate) and a time series (train, eval, predict).

mod common;

use common::cli::{ok, s, sample, scratch};
use std::process::Command;

#[test]
fn tagger_train_eval_and_predict_agree() {
    let dir = scratch("tagger");
    let ckpt = dir.join("ckpt");
    let (train, dev) = (sample("train.conllu"), sample("dev.conllu"));
    ok(&[
        "train",
        "--data",
        &train,
        "--val",
        &dev,
        "--epochs",
        "2",
        "--hidden",
        "32",
        "--embed",
        "16",
        "--lr",
        "0.005",
        "--checkpoint",
        s(&ckpt),
    ]);
    let eval = ok(&["eval", "--checkpoint", s(&ckpt), "--data", &dev]);
    let accuracy: f64 = eval
        .lines()
        .find_map(|l| l.strip_prefix("accuracy: "))
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    let out = dir.join("pred.conllu");
    ok(&[
        "predict",
        "--checkpoint",
        s(&ckpt),
        "--data",
        &dev,
        "--output",
        s(&out),
    ]);
    let (gold, pred) = (
        std::fs::read_to_string(&dev).unwrap(),
        std::fs::read_to_string(&out).unwrap(),
    );
    let (gl, pl): (Vec<&str>, Vec<&str>) = (gold.lines().collect(), pred.lines().collect());
    assert_eq!(gl.len(), pl.len());
    let (mut words, mut right) = (0, 0);
    for (g, p) in gl.iter().zip(&pl) {
        let (gc, pc): (Vec<&str>, Vec<&str>) = (g.split('\t').collect(), p.split('\t').collect());
        assert_eq!(gc.len(), pc.len());
        for c in (0..gc.len()).filter(|&c| c != 3) {
            assert_eq!(gc[c], pc[c], "only column 4 may change:\n{g}\n{p}");
        }
        if gc.len() == 10 && gc[0].parse::<usize>().is_ok() {
            words += 1;
            right += (gc[3] == pc[3]) as usize;
            assert!(wgrnn::data::vocab::UPOS.contains(&pc[3]), "{p}");
        }
    }
    let predicted = 100.0 * right as f64 / words as f64;
    assert!(
        (predicted - accuracy).abs() < 0.01,
        "predict's accuracy {predicted} vs eval's {accuracy}"
    );
    assert!(accuracy > 40.0, "{eval}");
    // A failing predict (a malformed line in its data) leaves an earlier --output as it was.
    let bad = dir.join("bad.conllu");
    std::fs::write(&bad, gold.replacen("\tNOUN\t", "\tNOT-A-TAG\t", 1)).unwrap();
    let (good, text) = common::cli::run(&[
        "predict",
        "--checkpoint",
        s(&ckpt),
        "--data",
        s(&bad),
        "--output",
        s(&out),
    ]);
    assert!(!good && text.contains("bad.conllu"), "{text}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), pred);
}

#[test]
fn stacked_bidirectional_lstm_tagger_trains_evaluates_and_predicts() {
    let dir = scratch("bilstm");
    let ckpt = dir.join("ckpt");
    let (train, dev) = (sample("train.conllu"), sample("dev.conllu"));
    let out = ok(&[
        "train",
        "--data",
        &train,
        "--val",
        &dev,
        "--epochs",
        "2",
        "--cell",
        "lstm",
        "--layers",
        "2",
        "--bidirectional",
        "--dropout",
        "0.2",
        "--hidden",
        "12",
        "--embed",
        "8",
        "--lr",
        "0.01",
        "--checkpoint",
        s(&ckpt),
    ]);
    assert!(out.contains("bidirectional lstm 2 x 12 hidden"), "{out}");
    let eval = ok(&["eval", "--checkpoint", s(&ckpt), "--data", &dev]);
    assert!(eval.contains("accuracy: "), "{eval}");
    let pred = dir.join("pred.conllu");
    ok(&[
        "predict",
        "--checkpoint",
        s(&ckpt),
        "--data",
        &dev,
        "--output",
        s(&pred),
    ]);
    assert_eq!(
        std::fs::read_to_string(&pred).unwrap().lines().count(),
        std::fs::read_to_string(&dev).unwrap().lines().count()
    );
    // Cutting sentences into chunks is refused for a bidirectional model, with the reason.
    let (good, text) = common::cli::run(&[
        "train",
        "--data",
        &train,
        "--epochs",
        "1",
        "--cell",
        "gru",
        "--bidirectional",
        "--seq-len",
        "4",
    ]);
    assert!(
        !good && text.contains("whole sequences") && text.contains("--seq-len"),
        "{text}"
    );
    // Dropout needs layers to sit between.
    let (good, text) = common::cli::run(&[
        "train",
        "--data",
        &train,
        "--epochs",
        "1",
        "--dropout",
        "0.3",
    ]);
    assert!(!good && text.contains("--layers 2"), "{text}");
}

#[test]
fn character_model_trains_and_generates() {
    let dir = scratch("chars");
    let text: String = (0..300)
        .map(|i| format!("To be, or not to be, that is the question {i}.\n"))
        .collect();
    let file = dir.join("play.txt");
    std::fs::write(&file, text).unwrap();
    let ckpt = dir.join("ckpt");
    let out = ok(&[
        "train",
        "--data",
        s(&file),
        "--batch",
        "8",
        "--seq-len",
        "32",
        "--epochs",
        "3",
        "--hidden",
        "48",
        "--embed",
        "16",
        "--lr",
        "0.01",
        "--checkpoint",
        s(&ckpt),
    ]);
    assert!(
        out.contains("bits per char") && out.contains("perplexity"),
        "{out}"
    );
    let gen = |seed: &str| {
        ok(&[
            "generate",
            "--checkpoint",
            s(&ckpt),
            "--prime",
            "To be",
            "--length",
            "80",
            "--seed",
            seed,
        ])
    };
    let (a, b) = (gen("1"), gen("1"));
    assert_eq!(a, b, "same seed, same text");
    let body = a.trim_end_matches('\n');
    assert!(
        body.starts_with("To be") && body.chars().count() == 85,
        "{a:?}"
    );
    let e = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
        .env("WGRNN_TUNING_CACHE", "off")
        .args(["generate", "--checkpoint", s(&ckpt), "--prime", "Zq"])
        .output()
        .unwrap();
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("never saw"));
}

#[test]
fn time_series_trains_evaluates_and_predicts_in_original_units() {
    let dir = scratch("series");
    let mut csv = String::from("\"Day\",\"Temp\"\n");
    for i in 0..400 {
        let v = 20.0 + 8.0 * (i as f64 * 0.3).sin() + 0.5 * ((i * 7919 % 13) as f64 / 13.0 - 0.5);
        csv.push_str(&format!("\"d{i}\",{v:.3}\n"));
    }
    let file = dir.join("temps.csv");
    std::fs::write(&file, csv).unwrap();
    let ckpt = dir.join("ckpt");
    let out = ok(&[
        "train",
        "--data",
        s(&file),
        "--loss",
        "mse",
        "--window",
        "12",
        "--hidden",
        "16",
        "--epochs",
        "8",
        "--lr",
        "0.01",
        "--checkpoint",
        s(&ckpt),
    ]);
    let baseline: f64 = out
        .lines()
        .find_map(|l| l.split("MAE ").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no baseline line:\n{out}"));
    let last = out.lines().rfind(|l| l.starts_with("epoch ")).unwrap();
    let mae: f64 = last
        .split("mae ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // A sine is far easier to extrapolate than to persist.
    assert!(
        mae < baseline,
        "model MAE {mae} vs persistence {baseline}\n{out}"
    );
    let pred = ok(&["predict", "--checkpoint", s(&ckpt), "--data", s(&file)]);
    let lines: Vec<&str> = pred.lines().collect();
    assert_eq!(lines[0], "Day,prediction,actual");
    assert_eq!(lines.len(), 1 + 400 - 12, "one prediction per window");
    let cols: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(cols[0], "d12");
    let (p, a): (f64, f64) = (cols[1].parse().unwrap(), cols[2].parse().unwrap());
    assert!(
        (p - a).abs() < 5.0,
        "prediction {p} for actual {a}: not in original units?"
    );
    let eval = ok(&["eval", "--checkpoint", s(&ckpt), "--data", s(&file)]);
    assert!(eval.contains("mae: ") && eval.contains("mse: "), "{eval}");
}
