//! Output files written at the end of a run (`train --save`, `train --plot`, `bench
//! --json`, `predict --output`) or during it (a `train --checkpoint` directory's files),
//! checked before any work starts: a typo in a directory should cost an error message, not
//! the training or the measurements that came before the write.

use anyhow::{bail, Result};
use std::fs::OpenOptions;
use std::path::Path;

/// Fails, naming `flag` and `path`, unless a file can later be written at `path`: it is
/// not a directory, its directory exists, and a new file can be created there (checked by
/// creating and removing a probe file beside it; the destination itself is not touched).
pub fn check_writable(flag: &str, path: &Path) -> Result<()> {
    let shown = path.display();
    if path.is_dir() {
        bail!("{flag} {shown}: is a directory; give a file path");
    }
    let Some(name) = path.file_name() else {
        bail!("{flag} {shown}: not a file path");
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        bail!(
            "{flag} {shown}: directory {} does not exist (create it first)",
            dir.display()
        );
    }
    let probe = dir.join(format!(
        ".{}.probe-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(file) => {
            drop(file);
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => bail!(
            "{flag} {shown}: cannot create a file in {}: {e}",
            dir.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::check_writable;
    use std::path::Path;

    #[test]
    fn refuses_missing_directories_and_directories_and_leaves_nothing_behind() {
        let dir = std::env::temp_dir().join(format!("wgrnn-destinations-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();

        let file = dir.join("w.safetensors");
        check_writable("--save", &file).unwrap();
        assert!(!file.exists(), "the check must not create the destination");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "probe left behind: {left:?}");

        let missing = dir.join("no-such-dir").join("w.safetensors");
        let e = check_writable("--save", &missing).unwrap_err().to_string();
        assert!(
            e.contains("--save") && e.contains("no-such-dir") && e.contains("does not exist"),
            "{e}"
        );

        let e = check_writable("--json", &dir).unwrap_err().to_string();
        assert!(e.contains("--json") && e.contains("is a directory"), "{e}");

        // A bare file name is written in the working directory, which exists.
        check_writable("--plot", Path::new("wgrnn-destinations-probe.svg")).unwrap();
        assert!(!Path::new("wgrnn-destinations-probe.svg").exists());

        std::fs::remove_dir_all(&dir).unwrap();
    }
}
