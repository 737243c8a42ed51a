//! Tier 1: every WGSL file under shaders/ parses and validates with naga, no adapter needed.

use std::path::Path;
use wgrnn::gpu::{typed_source, HalfMask};

#[test]
fn every_wgsl_file_validates_with_naga() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        // Shared parts are validated inside the files that include them.
        .filter(|p| !is_part(p))
        .collect();
    files.sort();
    assert!(
        files.len() >= 7,
        "expected the kernel files in {}, found {files:?}",
        dir.display()
    );
    let mut failures = Vec::new();
    // Each file four times: with every aliased storage binding f32, and with every one f16;
    // with the storage words 64-bit and 32-bit.
    let variants = files.iter().flat_map(|path| {
        let raw = std::fs::read_to_string(path).expect("readable WGSL");
        let all_half = wgrnn::gpu::storage_aliases(&raw)
            .iter()
            .fold(HalfMask::default(), |m, (slot, _)| m.with(*slot));
        [HalfMask::default(), all_half]
            .into_iter()
            .flat_map(|half| [(half, true), (half, false)])
            .map(|(half, int64)| {
                let source = typed_source(&raw, half, int64).expect("aliases cover the mask");
                (path.clone(), source, int64)
            })
            .collect::<Vec<_>>()
    });
    for (path, source, int64) in variants {
        let module = match naga::front::wgsl::parse_str(&source) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: {}", path.display(), e.emit_to_string(&source)));
                continue;
            }
        };
        // Subgroup operations are allowed (the host uses them only where the adapter has them);
        // 64-bit integers only in the variant that asks for them.
        let mut capabilities = naga::valid::Capabilities::SUBGROUP
            | naga::valid::Capabilities::SHADER_FLOAT16
            | naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
        if int64 {
            capabilities |= naga::valid::Capabilities::SHADER_INT64;
        }
        let mut validator =
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities);
        validator
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all());
        if let Err(e) = validator.validate(&module) {
            failures.push(format!("{}: {}", path.display(), e.emit_to_string(&source)));
        }
    }
    assert!(
        failures.is_empty(),
        "WGSL validation failed:\n{}",
        failures.join("\n")
    );
}

fn is_part(path: &Path) -> bool {
    let name = path.file_name().expect("name").to_string_lossy();
    wgrnn::gpu::SHADER_PARTS.iter().any(|(n, _)| *n == name)
}

#[test]
fn every_shared_part_is_included_and_spliced_in_whole() {
    for (name, part) in wgrnn::gpu::SHADER_PARTS {
        let includer = format!("// @include {name}");
        let users: Vec<_> = wgrnn::gpu::SHADER_FILES
            .iter()
            .filter(|(_, src)| src.lines().any(|l| l.trim() == includer))
            .collect();
        assert!(!users.is_empty(), "{name} is included by no kernel file");
        for (file, src) in users {
            let spliced = typed_source(src, HalfMask::default(), false).expect("typed");
            assert!(
                spliced.contains(part.trim_end()) && !spliced.lines().any(|l| l.trim() == includer),
                "{file}: {name} not spliced in"
            );
        }
    }
    // A part that does not exist is an error, not an empty splice.
    let e = typed_source("// @include missing.wgsl\n", HalfMask::default(), false).unwrap_err();
    assert!(e.contains("missing.wgsl"), "{e}");
}

#[test]
fn every_wgsl_file_is_registered_as_a_kernel_source() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for entry in std::fs::read_dir(&dir).expect("shaders/ exists") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            wgrnn::gpu::SHADER_FILES
                .iter()
                .chain(wgrnn::gpu::SHADER_PARTS)
                .any(|(n, src)| *n == name && *src == text),
            "{name} is not in gpu::SHADER_FILES or gpu::SHADER_PARTS"
        );
    }
}
