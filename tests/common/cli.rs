//! Helpers for the tests that drive the `wgrnn` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `wgrnn args`: (success, stdout followed by stderr).
pub fn run(args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
        .env("WGRNN_TUNING_CACHE", "off")
        .args(args)
        .output()
        .expect("run wgrnn");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Runs `wgrnn args`, which must succeed; returns its output.
pub fn ok(args: &[&str]) -> String {
    let (success, text) = run(args);
    assert!(success, "wgrnn {args:?} failed:\n{text}");
    text
}

/// A fresh, empty directory for one test, removed with everything in it when the test
/// ends, passing or failing (the value dropped).
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn scratch(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("wgrnn-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A file of the bundled EWT sample.
pub fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/ewt-sample")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}
