//! Tier 4: PyTorch golden values. `tests/fixtures/pytorch/make_golden.py` (kept beside the
//! fixtures) trained each case in PyTorch from the same initial weights; `wgrnn train` run
//! from the command line must print the same loss at every iteration and save the same
//! final weights, under the same names.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tensors(path: &Path) -> (Tensors, std::collections::HashMap<String, String>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("header");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut out: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values: Vec<f64> = match view.dtype() {
                safetensors::Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                safetensors::Dtype::F64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                d => panic!("{}: unexpected dtype {d:?} for {name}", path.display()),
            };
            (name, view.shape().to_vec(), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    (out, meta.metadata().clone().unwrap_or_default())
}

fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn wgrnn_train_reproduces_pytorch_losses_and_weights() {
    let dirs = case_dirs();
    assert!(
        dirs.len() >= 5,
        "expected the PyTorch golden cases, found {dirs:?}"
    );
    let scratch = std::env::temp_dir().join(format!("wgrnn-golden-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let (expected, meta) = tensors(&dir.join("expected.safetensors"));
        let args = meta.get("args").expect("args in metadata");
        // Once with every size on the command line, once with the sizes left to be
        // inferred from the --init weights and the data.
        let full: Vec<&str> = args.split_whitespace().collect();
        let size_flags = [
            "--hidden",
            "--vocab",
            "--embed",
            "--input-size",
            "--output-size",
        ];
        let minimal: Vec<&str> = full
            .iter()
            .enumerate()
            .filter(|&(i, a)| {
                !size_flags.contains(a) && (i == 0 || !size_flags.contains(&full[i - 1]))
            })
            .map(|(_, a)| *a)
            .collect();
        assert!(
            minimal.len() < full.len(),
            "{name}: no size flags to leave out"
        );
        for (variant, flags) in [("full", full.clone()), ("inferred sizes", minimal)] {
            check_case(&dir, &name, variant, &flags, &expected, &scratch);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

type Tensors = Vec<(String, Vec<usize>, Vec<f64>)>;

fn check_case(
    dir: &Path,
    name: &str,
    variant: &str,
    flags: &[&str],
    expected: &Tensors,
    scratch: &Path,
) {
    {
        let name = format!("{name} ({variant})");
        let saved = scratch.join(format!("{}.safetensors", name.replace(' ', "_")));
        let out = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
            .env("WGRNN_TUNING_CACHE", "off")
            .arg("train")
            .args(flags)
            .args(["--no-shuffle", "--log-every", "1", "--data"])
            .arg(dir.join("data.safetensors"))
            .arg("--init")
            .arg(dir.join("init.safetensors"))
            .arg("--save")
            .arg(&saved)
            .output()
            .expect("run wgrnn");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: wgrnn train failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let losses: Vec<f64> = stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("iter "))
            .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
            .collect();
        let want_losses = &expected.iter().find(|t| t.0 == "losses").expect("losses").2;
        assert_eq!(
            losses.len(),
            want_losses.len(),
            "{name}: iterations\n{stdout}"
        );
        let scale = want_losses.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (g, w)) in losses.iter().zip(want_losses).enumerate() {
            // Printed with 6 decimals: allow the rounding on top of f32 tolerance.
            assert!(
                (g - w).abs() <= 1e-4 * scale + 1e-6,
                "{name}: loss of iteration {} is {g}, PyTorch {w}",
                i + 1
            );
        }
        let (got, _) = tensors(&saved);
        let want: Vec<_> = expected.iter().filter(|t| t.0 != "losses").collect();
        assert_eq!(
            got.iter().map(|t| (&t.0, &t.1)).collect::<Vec<_>>(),
            want.iter().map(|t| (&t.0, &t.1)).collect::<Vec<_>>(),
            "{name}: saved names/shapes"
        );
        for ((n, _, g), (_, _, w)) in got.iter().zip(want.iter().copied()) {
            let scale = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let (worst, at) = g
                .iter()
                .zip(w)
                .enumerate()
                .map(|(i, (a, b))| ((a - b).abs() / scale, i))
                .fold((0.0, 0), |acc, x| if x.0 > acc.0 { x } else { acc });
            assert!(
                worst <= 1e-4,
                "{name}: {n}[{at}] = {} but PyTorch has {} (relative error {worst:.2e})",
                g[at],
                w[at]
            );
        }
    }
}
