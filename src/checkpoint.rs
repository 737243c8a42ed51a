//! Checkpoints: everything needed to use a model or to resume its training exactly.
//!
//! A checkpoint is a directory:
//! - `checkpoint.json`: model config, optimizer config, data metadata (vocabularies,
//!   normalisation), run settings (seed, batch, ...), training progress (epoch, step,
//!   history, early-stopping state), and the names of the two tensor files below;
//! - `weights-eNNNN.safetensors`: the weights under PyTorch's names;
//! - `optimizer-eNNNN.safetensors`: the optimizer's moments.
//!
//! Writes are atomic at every step: the tensor files of a new epoch are written under new
//! names (temporary file, fsync, rename), then `checkpoint.json` is replaced the same way,
//! and only then are the previous epoch's files removed. A crash at any moment leaves a
//! `checkpoint.json` whose files are all complete.

use crate::data::source::DataMeta;
use crate::data::tensors::{floats, parse, read_file};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, ParamLayout};
use crate::optim::OptimizerConfig;
use crate::train::TrainProgress;
use crate::weights::{self, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const META_FILE: &str = "checkpoint.json";
const FORMAT_VERSION: u32 = 1;

/// The settings of a training run that a resume must repeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    pub seed: u64,
    pub batch: usize,
    pub seq_len: usize,
    pub shuffle: bool,
    pub epochs: usize,
    pub log_every: usize,
    pub early_stopping: Option<(f64, usize)>,
    pub monitor: crate::train::Monitor,
    pub restore_best: bool,
    #[serde(default = "default_policy")]
    pub on_nonfinite: crate::train::NonFinitePolicy,
    /// Dropout between layers (absent in older checkpoints: none).
    #[serde(default)]
    pub dropout: f32,
    /// Storage of weights copies and activations (absent in older checkpoints: f32).
    #[serde(default)]
    pub precision: crate::engine::Precision,
    /// Learning-rate cuts on a plateau: (factor, patience) (absent in older checkpoints).
    #[serde(default)]
    pub lr_plateau: Option<(f64, usize)>,
}

fn default_policy() -> crate::train::NonFinitePolicy {
    crate::train::NonFinitePolicy::Rollback
}

/// The contents of `checkpoint.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format_version: u32,
    pub wgrnn_version: String,
    pub model: ModelConfig,
    pub optimizer: OptimizerConfig,
    pub data: DataMeta,
    pub run: RunSettings,
    pub progress: TrainProgress,
    /// Optimizer steps taken (Adam's bias correction and SGD's first momentum step).
    pub steps_taken: u64,
    pub weights_file: String,
    pub optimizer_file: String,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    pub meta: CheckpointMeta,
    pub params: Vec<f32>,
    pub moment_m: Vec<f32>,
    pub moment_v: Vec<f32>,
}

impl CheckpointMeta {
    pub fn new(
        model: ModelConfig,
        optimizer: OptimizerConfig,
        data: DataMeta,
        run: RunSettings,
        progress: TrainProgress,
        steps_taken: u64,
    ) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            wgrnn_version: env!("CARGO_PKG_VERSION").to_string(),
            model,
            optimizer,
            data,
            run,
            progress,
            steps_taken,
            weights_file: String::new(),
            optimizer_file: String::new(),
        }
    }
}

/// Writes a checkpoint of epoch `meta.progress.epochs_done` into `dir`.
pub fn save(
    dir: &Path,
    mut meta: CheckpointMeta,
    params: &[f32],
    m: &[f32],
    v: &[f32],
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let layout = ParamLayout::new(&meta.model);
    let epoch = meta.progress.epochs_done;
    let previous = read_meta(dir).ok();
    meta.weights_file = format!("weights-e{epoch:04}.safetensors");
    meta.optimizer_file = format!("optimizer-e{epoch:04}.safetensors");
    let mut tag = HashMap::new();
    tag.insert("wgrnn.checkpoint_epoch".to_string(), epoch.to_string());
    weights::save(&dir.join(&meta.weights_file), &layout, params, tag.clone())?;
    save_moments(&dir.join(&meta.optimizer_file), m, v, tag)?;
    let json = serde_json::to_vec_pretty(&meta)
        .map_err(|e| Error::data(dir, format!("cannot encode checkpoint metadata: {e}")))?;
    write_atomic(&dir.join(META_FILE), &json)?;
    if let Some(old) = previous {
        for f in [old.weights_file, old.optimizer_file] {
            if f != meta.weights_file && f != meta.optimizer_file {
                let _ = std::fs::remove_file(dir.join(f));
            }
        }
    }
    Ok(())
}

fn save_moments(
    path: &Path,
    m: &[f32],
    v: &[f32],
    metadata: HashMap<String, String>,
) -> Result<()> {
    use safetensors::tensor::TensorView;
    if let Some(i) = m.iter().chain(v).position(|x| !x.is_finite()) {
        return Err(Error::data(
            path,
            format!("refusing to save: optimizer state holds a non-finite value at {i}"),
        ));
    }
    let (mb, vb): (&[u8], &[u8]) = (bytemuck::cast_slice(m), bytemuck::cast_slice(v));
    let views = vec![
        (
            "moment_m".to_string(),
            TensorView::new(safetensors::Dtype::F32, vec![m.len()], mb).expect("sized"),
        ),
        (
            "moment_v".to_string(),
            TensorView::new(safetensors::Dtype::F32, vec![v.len()], vb).expect("sized"),
        ),
    ];
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::data(path, format!("cannot encode optimizer state: {e}")))?;
    write_atomic(path, &bytes)
}

/// Reads `checkpoint.json` of `dir`.
pub fn read_meta(dir: &Path) -> Result<CheckpointMeta> {
    let path = dir.join(META_FILE);
    parse_meta(&path, &read_file(&path)?)
}

/// Parses and checks `checkpoint.json` bytes; `path` only names the file in errors.
pub fn parse_meta(path: &Path, bytes: &[u8]) -> Result<CheckpointMeta> {
    let path = path.to_path_buf();
    let mut meta: CheckpointMeta = serde_json::from_slice(bytes)
        .map_err(|e| Error::data(&path, format!("not a wgrnn checkpoint ({e})")))?;
    if meta.format_version != FORMAT_VERSION {
        return Err(Error::data(
            &path,
            format!(
                "checkpoint format {} is not the supported {FORMAT_VERSION}",
                meta.format_version
            ),
        ));
    }
    meta.model
        .validate()
        .map_err(|e| Error::data(&path, e.to_string()))?;
    for f in [&meta.weights_file, &meta.optimizer_file] {
        // Plain names inside the checkpoint directory only.
        if f.is_empty() || f.contains(['/', '\\']) || f.starts_with('.') {
            return Err(Error::data(
                &path,
                format!("tensor file name {f:?} is not a plain file name"),
            ));
        }
    }
    if let crate::data::source::DataMeta::Series(m) = &meta.data {
        if m.window == 0 || m.horizon == 0 || m.feature_stats.len() != meta.model.input_width() {
            return Err(Error::data(
                &path,
                "series metadata does not match the model (window, horizon or features)",
            ));
        }
    }
    meta.data.reindex();
    Ok(meta)
}

/// Loads the checkpoint in `dir`: metadata, weights and optimizer state, all checked.
pub fn load(dir: &Path) -> Result<Checkpoint> {
    let meta = read_meta(dir)?;
    let layout = ParamLayout::new(&meta.model);
    let params = weights::load(&dir.join(&meta.weights_file), &layout)?;
    let path: PathBuf = dir.join(&meta.optimizer_file);
    let bytes = read_file(&path)?;
    let file = parse(&path, &bytes)?;
    let get = |name: &str| -> Result<Vec<f32>> {
        let view = file
            .tensor(name)
            .map_err(|_| Error::data(&path, format!("missing tensor `{name}`")))?;
        let values = floats(&path, name, &view)?;
        if values.len() != layout.total {
            return Err(Error::data(
                &path,
                format!(
                    "`{name}` has {} values; the model has {} parameters",
                    values.len(),
                    layout.total
                ),
            ));
        }
        Ok(values)
    };
    let (moment_m, moment_v) = (get("moment_m")?, get("moment_v")?);
    Ok(Checkpoint {
        meta,
        params,
        moment_m,
        moment_v,
    })
}
