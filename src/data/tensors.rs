//! Reading safetensors tensors as f32 or integer vectors, with errors that name the file
//! and the tensor.

use crate::error::{Error, Result};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::path::Path;

/// Parses a safetensors file already read into memory.
pub fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<safetensors::SafeTensors<'a>> {
    safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| Error::data(path, format!("not a valid safetensors file: {e}")))
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

pub fn is_float(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
}

pub fn is_integer(dtype: Dtype) -> bool {
    matches!(
        dtype,
        Dtype::I8
            | Dtype::U8
            | Dtype::I16
            | Dtype::U16
            | Dtype::I32
            | Dtype::U32
            | Dtype::I64
            | Dtype::U64
    )
}

/// The values of a float tensor as f32; every value must be finite.
pub fn floats(path: &Path, name: &str, view: &TensorView<'_>) -> Result<Vec<f32>> {
    let d = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(Error::data(
                path,
                format!(
                "tensor `{name}` has dtype {other:?}; expected a float dtype (F32, F64, F16, BF16)"
            ),
            ))
        }
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(
            path,
            format!(
                "tensor `{name}` holds a non-finite value ({}) at flat index {i}",
                values[i]
            ),
        ));
    }
    Ok(values)
}

/// The values of an integer tensor as i64.
pub fn integers(path: &Path, name: &str, view: &TensorView<'_>) -> Result<Vec<i64>> {
    let d = view.data();
    let values = match view.dtype() {
        Dtype::I8 => d.iter().map(|&b| b as i8 as i64).collect(),
        Dtype::U8 => d.iter().map(|&b| b as i64).collect(),
        Dtype::I16 => d
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
            .collect(),
        Dtype::U16 => d
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
            .collect(),
        Dtype::I32 => d
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64)
            .collect(),
        Dtype::U32 => d
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")) as i64)
            .collect(),
        Dtype::I64 => d
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
        Dtype::U64 => d
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")).min(i64::MAX as u64) as i64)
            .collect(),
        other => {
            return Err(Error::data(
                path,
                format!("tensor `{name}` has dtype {other:?}; expected an integer dtype"),
            ))
        }
    };
    Ok(values)
}
