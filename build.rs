//! Records which commit the binary is built from, for `wgrnn bench --json`'s reports (runs
//! are compared across commits): `WGRNN_COMMIT`, HEAD's hash when the build ran, or
//! "unknown" where the crate is not the top of a git checkout. Uncommitted changes are not
//! marked: the script reruns when HEAD moves (a commit, a checkout), not on every edit, so
//! that editing a file does not rebuild the crate twice.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Whether the crate is the top of its git checkout (not a copy inside another project's
/// repository, whose HEAD would say nothing about this code).
fn crate_is_checkout() -> bool {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let top = git(&["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    match (manifest, top) {
        (Ok(m), Some(t)) => m.canonicalize().ok() == t.canonicalize().ok(),
        _ => false,
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if !crate_is_checkout() {
        println!("cargo:rustc-env=WGRNN_COMMIT=unknown");
        return;
    }
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // HEAD names the branch (or the commit); the branch's ref, loose or packed, moves with
    // each commit. Worktrees keep HEAD apart from the shared refs.
    let dirs = [
        git(&["rev-parse", "--absolute-git-dir"]),
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
    ];
    for dir in dirs.into_iter().flatten() {
        let dir = PathBuf::from(dir);
        for watched in ["HEAD", "refs/heads", "packed-refs"] {
            let path = dir.join(watched);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    println!("cargo:rustc-env=WGRNN_COMMIT={commit}");
}
