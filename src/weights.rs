//! Weights in safetensors under PyTorch's state_dict names (`rnn.weight_ih_l0`, …).
//! Saving is atomic: a temporary file in the same folder, synced, then renamed over the
//! target, so a crash leaves either the old file or the new one, never half of one.

use crate::data::tensors::{floats, parse, read_file};
use crate::error::{Error, Result};
use crate::model::ParamLayout;
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// Writes `params` (flat, in `layout`) to `path` as f32 tensors.
pub fn save(
    path: &Path,
    layout: &ParamLayout,
    params: &[f32],
    metadata: HashMap<String, String>,
) -> Result<()> {
    if let Some(i) = params.iter().position(|v| !v.is_finite()) {
        let t = layout
            .tensors
            .iter()
            .find(|t| t.range().contains(&i))
            .map_or("?", |t| t.name);
        return Err(Error::data(
            path,
            format!("refusing to save: tensor `{t}` holds a non-finite value"),
        ));
    }
    let bytes: &[u8] = bytemuck::cast_slice(params);
    let views: Vec<(String, TensorView<'_>)> = layout
        .tensors
        .iter()
        .map(|t| {
            let v = TensorView::new(
                Dtype::F32,
                t.shape.clone(),
                &bytes[t.offset * 4..(t.offset + t.len()) * 4],
            )
            .expect("shape matches data");
            (t.name.to_string(), v)
        })
        .collect();
    let encoded = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::data(path, format!("could not encode weights: {e}")))?;
    write_atomic(path, &encoded)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::data(path, "not a file path"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// The name and shape of every tensor in a weights file (to infer the architecture).
pub fn shapes(path: &Path) -> Result<HashMap<String, Vec<usize>>> {
    let bytes = read_file(path)?;
    let file = parse(path, &bytes)?;
    Ok(file
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect())
}

/// Reads weights for `layout` from `path`: every expected tensor present with its exact
/// shape, no unexpected ones, every value finite. F64, F16 and BF16 are converted to f32.
pub fn load(path: &Path, layout: &ParamLayout) -> Result<Vec<f32>> {
    parse_weights(path, &read_file(path)?, layout)
}

/// Parses the bytes of a weights file for `layout`; `path` only names it in errors.
pub fn parse_weights(path: &Path, bytes: &[u8], layout: &ParamLayout) -> Result<Vec<f32>> {
    let file = parse(path, bytes)?;
    let mut problems = Vec::new();
    let found: HashMap<String, Vec<usize>> = file
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect();
    for t in &layout.tensors {
        match found.get(t.name) {
            None => problems.push(format!(
                "missing `{}` (expected shape {:?})",
                t.name, t.shape
            )),
            Some(shape) if *shape != t.shape => problems.push(format!(
                "`{}` has shape {:?}, expected {:?}",
                t.name, shape, t.shape
            )),
            _ => {}
        }
    }
    let mut unexpected: Vec<&String> = found.keys().filter(|n| layout.get(n).is_none()).collect();
    unexpected.sort();
    for n in unexpected {
        problems.push(format!("unexpected tensor `{n}` (shape {:?})", found[n]));
    }
    if !problems.is_empty() {
        let expected: Vec<String> = layout
            .tensors
            .iter()
            .map(|t| format!("{} {:?}", t.name, t.shape))
            .collect();
        return Err(Error::data(
            path,
            format!(
                "weights do not match the model: {}. The model expects: {}",
                problems.join("; "),
                expected.join(", ")
            ),
        ));
    }
    let mut params = vec![0f32; layout.total];
    for t in &layout.tensors {
        let view = file
            .tensor(t.name)
            .map_err(|e| Error::data(path, format!("tensor `{}`: {e}", t.name)))?;
        params[t.range()].copy_from_slice(&floats(path, t.name, &view)?);
    }
    Ok(params)
}
