//! The autotuners' decisions, kept on disk per adapter so that a later run on the same
//! adapter makes the same choices without measuring again. On a GPU the GEMM formulation can
//! change the last bits of a result, so reusing the earlier choice also keeps runs
//! reproducible across processes.
//!
//! File: `WGRNN_TUNING_CACHE` (a path, or `off`), else `$XDG_CACHE_HOME/wgrnn/tuning.json`,
//! else `$HOME/.cache/wgrnn/tuning.json`. A JSON object from key to choice; keys name the
//! wgrnn version and a hash of its kernels' WGSL (a build with other kernels must measure
//! again: two builds of one version once shared decisions, and the older build ran the
//! newer one's choice of a kernel that was slow in its own source), the adapter (name,
//! driver) and the tuned shape. Unreadable or damaged files are ignored (the tuners measure
//! again) and replaced atomically. The file stays small: each write drops the decisions of
//! other builds (which this build would never read) and, past [`MAX_ENTRIES`], the
//! oldest-sorting ones (a dropped decision is measured again).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

fn path() -> Option<PathBuf> {
    match std::env::var("WGRNN_TUNING_CACHE") {
        Ok(v) if v == "off" => return None,
        Ok(v) if !v.is_empty() => return Some(PathBuf::from(v)),
        _ => {}
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wgrnn").join("tuning.json"))
}

static CACHE: Mutex<Option<BTreeMap<String, String>>> = Mutex::new(None);

fn with_cache<T>(f: impl FnOnce(&mut BTreeMap<String, String>) -> T) -> T {
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let map = guard.get_or_insert_with(|| {
        path()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    });
    f(map)
}

/// This build's tag in every key: the version and a 64-bit FNV-1a hash of every kernel
/// source and shared part, e.g. `0.1.0+3f2a...`.
fn build_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for (name, source) in crate::gpu::SHADER_FILES
            .iter()
            .chain(crate::gpu::SHADER_PARTS)
        {
            for byte in name.bytes().chain(source.bytes()) {
                hash = (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        format!("{}+{hash:016x}", env!("CARGO_PKG_VERSION"))
    })
}

/// The key of a decision: version and kernels, adapter (and whether its kernels carry
/// wgpu's runtime checks, which change their speed), and what was tuned.
pub fn key(adapter: &crate::gpu::AdapterSummary, what: &str) -> String {
    format!(
        "wgrnn {} | {} | {}{} | {what}",
        build_tag(),
        adapter.name,
        adapter.driver,
        if adapter.shader_checks {
            " | shader checks"
        } else {
            ""
        }
    )
}

/// The choice stored under `key`, if any.
pub fn get(key: &str) -> Option<String> {
    path()?;
    with_cache(|map| map.get(key).cloned())
}

/// The most decisions the file keeps.
pub const MAX_ENTRIES: usize = 2048;

/// Drops the decisions of other wgrnn builds, then the first-sorting ones past
/// `max` (never `keep`, the one just made).
fn prune(map: &mut BTreeMap<String, String>, keep: &str, max: usize) {
    let current = format!("wgrnn {} |", build_tag());
    map.retain(|k, _| k.starts_with(&current));
    while map.len() > max.max(1) {
        let first = map
            .keys()
            .find(|k| k.as_str() != keep)
            .cloned()
            .expect("more than one entry");
        map.remove(&first);
    }
}

/// Stores a choice and rewrites the file (best effort: a cache that cannot be written only
/// costs a measurement next time).
pub fn put(key: String, choice: String) {
    let Some(file) = path() else { return };
    let bytes = with_cache(|map| {
        prune(map, &key, MAX_ENTRIES - 1);
        map.insert(key, choice);
        serde_json::to_vec_pretty(map).ok()
    });
    if let Some(bytes) = bytes {
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = crate::weights::write_atomic(&file, &bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_drops_other_builds_then_the_first_keys_past_the_cap() {
        let now = |k: &str| format!("wgrnn {} | a | d | {k}", build_tag());
        let mut map: BTreeMap<String, String> = ["x", "y", "z", "w"]
            .iter()
            .map(|k| (now(k), "Blocked".to_string()))
            .collect();
        map.insert("wgrnn 0.0.0-old | a | d | x".into(), "Tiled".into());
        // The same version built from other kernel sources.
        let other_kernels = format!(
            "wgrnn {}+0000000000000000 | a | d | x",
            env!("CARGO_PKG_VERSION")
        );
        map.insert(other_kernels, "Wide".into());
        prune(&mut map, &now("w"), 10);
        assert_eq!(
            map.len(),
            4,
            "the other builds' entries are dropped: {map:?}"
        );
        prune(&mut map, &now("w"), 2);
        let keys: Vec<&String> = map.keys().collect();
        assert_eq!(keys, vec![&now("w"), &now("z")], "{map:?}");
    }
}
