//! Reliability through the binary: non-finite steps under each --on-nonfinite policy,
//! and checkpoints that survive being killed at any moment.

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgrnn-rel-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

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

fn run(args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
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
    let _ = std::fs::remove_dir_all(&dir);
}
