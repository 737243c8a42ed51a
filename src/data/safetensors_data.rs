//! `--data FILE.safetensors`: `inputs` (f32 [N, T, I] or integer ids [N, T]) and `targets`
//! (integer [N, T] / f32 [N, T, O] per step; integer [N] / f32 [N, O] per sequence).

use super::tensors::{floats, integers, is_float, is_integer, parse, read_file};
use super::{Dataset, Inputs, Targets};
use crate::error::{Error, Result};
use std::path::Path;

fn ids_u32(path: &Path, name: &str, values: Vec<i64>) -> Result<Vec<u32>> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            u32::try_from(v).map_err(|_| {
                Error::data(
                    path,
                    format!(
                        "tensor `{name}` holds id {v} at flat index {i}; ids must be in 0..2^32"
                    ),
                )
            })
        })
        .collect()
}

pub fn load_dataset(path: &Path) -> Result<Dataset> {
    parse_dataset(path, &read_file(path)?)
}

/// Parses the bytes of a data file; `path` only names it in errors.
pub fn parse_dataset(path: &Path, bytes: &[u8]) -> Result<Dataset> {
    let file = parse(path, bytes)?;
    let get = |name: &str| {
        file.tensor(name).map_err(|_| {
            let found: Vec<&str> = file.names();
            Error::data(
                path,
                format!(
                    "no tensor `{name}`; the file has: {}",
                    if found.is_empty() {
                        "nothing".into()
                    } else {
                        found.join(", ")
                    }
                ),
            )
        })
    };
    let inputs = get("inputs")?;
    let targets = get("targets")?;
    let shape = inputs.shape().to_vec();
    let (n, steps, inputs) = if is_integer(inputs.dtype()) {
        if shape.len() != 2 {
            return Err(Error::data(
                path,
                format!("integer `inputs` must be token ids [N, T], got shape {shape:?}"),
            ));
        }
        (
            shape[0],
            shape[1],
            Inputs::Tokens {
                ids: ids_u32(path, "inputs", integers(path, "inputs", &inputs)?)?,
            },
        )
    } else if is_float(inputs.dtype()) {
        if shape.len() != 3 {
            return Err(Error::data(
                path,
                format!("float `inputs` must be features [N, T, I], got shape {shape:?}"),
            ));
        }
        (
            shape[0],
            shape[1],
            Inputs::Dense {
                values: floats(path, "inputs", &inputs)?,
                size: shape[2],
            },
        )
    } else {
        return Err(Error::data(
            path,
            format!(
                "`inputs` has dtype {:?}; expected integer ids or float features",
                inputs.dtype()
            ),
        ));
    };
    if n == 0 || steps == 0 {
        return Err(Error::data(
            path,
            format!("`inputs` is empty (shape {shape:?}): need at least one sequence of one step"),
        ));
    }
    let tshape = targets.shape().to_vec();
    let targets = if is_integer(targets.dtype()) {
        let ids = ids_u32(path, "targets", integers(path, "targets", &targets)?)?;
        match tshape.as_slice() {
            [tn, tt] if *tn == n && *tt == steps => Targets::Classes { ids, per_step: true },
            [tn] if *tn == n => Targets::Classes { ids, per_step: false },
            _ => {
                return Err(Error::data(
                    path,
                    format!("integer `targets` must be [N, T] = [{n}, {steps}] (many-to-many) or [N] = [{n}] (many-to-one), got {tshape:?}"),
                ))
            }
        }
    } else if is_float(targets.dtype()) {
        let values = floats(path, "targets", &targets)?;
        match tshape.as_slice() {
            [tn, tt, o] if *tn == n && *tt == steps && *o > 0 => Targets::Values { values, width: *o, per_step: true },
            [tn, o] if *tn == n && *o > 0 => Targets::Values { values, width: *o, per_step: false },
            _ => {
                return Err(Error::data(
                    path,
                    format!("float `targets` must be [N, T, O] = [{n}, {steps}, O] (many-to-many) or [N, O] = [{n}, O] (many-to-one), got {tshape:?}"),
                ))
            }
        }
    } else {
        return Err(Error::data(
            path,
            format!(
                "`targets` has dtype {:?}; expected integer classes or float values",
                targets.dtype()
            ),
        ));
    };
    Ok(Dataset {
        n,
        steps,
        lengths: vec![steps; n],
        inputs,
        targets,
    })
}
