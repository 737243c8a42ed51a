//! Reading training and validation data in any supported format, with the vocabularies
//! (and later, normalisation) that go with it.

use super::series::{self, SeriesMeta, SeriesOptions};
use super::vocab::{Vocab, WordOptions, WordVocab, UPOS};
use super::{conllu, text};
use super::{load_dataset, Dataset};
use crate::error::{Error, Result};
use crate::model::cli_enum;
use serde::{Deserialize, Serialize};
use std::path::Path;

cli_enum!(
    /// The format of a data file (`auto`: from its extension).
    DataFormat { Auto => "auto", Tensors => "safetensors", Conllu => "conllu", Text => "text", Csv => "csv" }
);

impl DataFormat {
    /// The format `self` names, or the one `path`'s extension implies.
    pub fn resolve(self, path: &Path) -> Result<DataFormat> {
        if self != DataFormat::Auto {
            return Ok(self);
        }
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("safetensors") => Ok(DataFormat::Tensors),
            Some("conllu") | Some("conll") => Ok(DataFormat::Conllu),
            Some("txt") | Some("text") => Ok(DataFormat::Text),
            Some("csv") => Ok(DataFormat::Csv),
            _ => Err(Error::data(
                path,
                "cannot tell the format from the extension; pass --format safetensors|conllu|text|csv",
            )),
        }
    }
}

/// How files become sequences.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadOptions {
    /// Columns and windows (CSV).
    pub series: SeriesOptions,
    /// Words to ids (CoNLL-U).
    pub words: WordOptions,
    /// Parallel streams of a character text (its batch size).
    pub streams: usize,
    /// Without validation data, hold out this final fraction of a text for validation.
    pub val_fraction: f64,
}

/// What the model needs to know about the data beyond the tensors: vocabularies and the
/// sizes they imply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataMeta {
    /// Raw tensors: nothing beyond them.
    Tensors,
    /// POS tagging: the word vocabulary; the outputs are the 17 UPOS tags.
    Tagging { words: WordVocab },
    /// A character language model: the character vocabulary (inputs and outputs).
    Characters { chars: Vocab },
    /// A time series: columns, windows and the training part's normalisation.
    Series(SeriesMeta),
}

impl DataMeta {
    /// Rebuilds vocabulary lookups after deserialising.
    pub fn reindex(&mut self) {
        match self {
            DataMeta::Tensors => {}
            DataMeta::Tagging { words } => words.vocab.reindex(),
            DataMeta::Characters { chars } => chars.reindex(),
            DataMeta::Series(_) => {}
        }
    }

    /// The vocabulary size the data implies, if it has one.
    pub fn vocab_size(&self) -> Option<usize> {
        match self {
            DataMeta::Tensors => None,
            DataMeta::Tagging { words } => Some(words.vocab.len()),
            DataMeta::Characters { chars } => Some(chars.len()),
            DataMeta::Series(_) => None,
        }
    }
    /// The number of outputs the data implies, if fixed by the format.
    pub fn output_size(&self) -> Option<usize> {
        match self {
            DataMeta::Tensors => None,
            DataMeta::Tagging { .. } => Some(UPOS.len()),
            DataMeta::Characters { chars } => Some(chars.len()),
            DataMeta::Series(_) => Some(1),
        }
    }

    /// The target's standard deviation (regression metrics in original units), else 1.
    pub fn target_scale(&self) -> f64 {
        match self {
            DataMeta::Series(m) => m.target_stats.1,
            _ => 1.0,
        }
    }
}

/// Training data, optional validation data, their metadata, and lines worth telling the
/// user (e.g. a baseline).
pub struct Prepared {
    pub train: Dataset,
    pub val: Option<Dataset>,
    pub meta: DataMeta,
    pub notes: Vec<String>,
}

/// Reads `train` (and `val`) in `format`. Vocabularies come from the training file only,
/// or from `existing` (a checkpoint's) when given.
pub fn prepare(
    train: &Path,
    val: Option<&Path>,
    format: DataFormat,
    options: ReadOptions,
    existing: Option<&DataMeta>,
) -> Result<Prepared> {
    let format = format.resolve(train)?;
    if let Some(v) = val {
        let vf = DataFormat::Auto.resolve(v).unwrap_or(format);
        if vf != format {
            return Err(Error::data(
                v,
                format!("validation data is {vf}, training data is {format}"),
            ));
        }
    }
    match format {
        DataFormat::Tensors | DataFormat::Auto => Ok(Prepared {
            train: load_dataset(train)?,
            val: val.map(load_dataset).transpose()?,
            meta: DataMeta::Tensors,
            notes: vec![],
        }),
        DataFormat::Conllu => {
            let sentences = conllu::read(train)?;
            let words = match existing {
                Some(DataMeta::Tagging { words }) => words.clone(),
                Some(other) => return Err(mismatch(train, other, format)),
                None => WordVocab::build(
                    sentences
                        .iter()
                        .flat_map(|s| s.words.iter().map(String::as_str)),
                    options.words,
                ),
            };
            let val = val
                .map(|p| conllu::read(p).map(|s| conllu::to_dataset(&s, &words)))
                .transpose()?;
            Ok(Prepared {
                train: conllu::to_dataset(&sentences, &words),
                val,
                meta: DataMeta::Tagging { words },
                notes: vec![],
            })
        }
        DataFormat::Text => {
            let all = text::read(train)?;
            let held;
            let (train_text, val_text) = match val {
                Some(v) => {
                    held = text::read(v)?;
                    (all.as_str(), held.as_str())
                }
                None => text::split(&all, options.val_fraction),
            };
            let chars = match existing {
                Some(DataMeta::Characters { chars }) => chars.clone(),
                Some(other) => return Err(mismatch(train, other, format)),
                None => text::char_vocab(train_text),
            };
            let train_ids = text::encode(train_text, &chars);
            let val_ids = text::encode(val_text, &chars);
            Ok(Prepared {
                train: text::to_streams(&train_ids, options.streams),
                val: (val_ids.len() >= 2).then(|| text::to_streams(&val_ids, options.streams)),
                meta: DataMeta::Characters { chars },
                notes: vec![],
            })
        }
        DataFormat::Csv => {
            let series_options = match existing {
                Some(DataMeta::Series(m)) => SeriesOptions {
                    target: Some(m.target.clone()),
                    features: m.features.clone(),
                    window: m.window,
                    horizon: m.horizon,
                },
                Some(other) => return Err(mismatch(train, other, format)),
                None => options.series.clone(),
            };
            let fraction = if val.is_some() {
                0.0
            } else {
                options.val_fraction
            };
            let (mut train_set, mut val_set, mut meta, train_series) =
                series::prepare(train, &series_options, fraction)?;
            if let Some(DataMeta::Series(m)) = existing {
                // A checkpoint's statistics, not ones recomputed from this file.
                meta = m.clone();
                let n = train_series.target.len();
                let split = n - val_set.as_ref().map_or(0, |v| v.n);
                train_set = series::windows(&train_series, &meta, 0..split);
                val_set = val_set.map(|_| series::windows(&train_series, &meta, split..n));
            }
            let n = train_series.target.len();
            let held_from = n - val_set.as_ref().map_or(0, |v| v.n);
            let mut notes = Vec::new();
            if let Some(v) = val {
                let (vs, _, _) = series::read(
                    v,
                    &SeriesOptions {
                        target: Some(meta.target.clone()),
                        features: meta.features.clone(),
                        ..options.series.clone()
                    },
                )?;
                let len = vs.target.len();
                val_set = Some(series::windows(&vs, &meta, 0..len));
                notes.push(format!("persistence baseline (predict the last observed value) on the validation data: MAE {:.4}", series::persistence_mae(&vs, &meta, 0..len)));
            } else if val_set.is_some() {
                notes.push(format!(
                    "persistence baseline (predict the last observed value) on the held-back final {} rows: MAE {:.4}",
                    n - held_from,
                    series::persistence_mae(&train_series, &meta, held_from..n)
                ));
            }
            Ok(Prepared {
                train: train_set,
                val: val_set,
                meta: DataMeta::Series(meta),
                notes,
            })
        }
    }
}

fn mismatch(path: &Path, meta: &DataMeta, format: DataFormat) -> Error {
    let kind = match meta {
        DataMeta::Tensors => "raw tensors",
        DataMeta::Tagging { .. } => "CoNLL-U tagging",
        DataMeta::Characters { .. } => "character text",
        DataMeta::Series(_) => "CSV time series",
    };
    Error::data(
        path,
        format!("the model was trained on {kind} data, not {format}"),
    )
}

/// Reads a whole file for evaluation with the vocabularies of `meta` (a text file is one
/// evaluation set, not split).
pub fn load_for_eval(
    path: &Path,
    format: DataFormat,
    meta: &DataMeta,
    options: ReadOptions,
) -> Result<Dataset> {
    let format = match (format, meta) {
        (DataFormat::Auto, DataMeta::Tagging { .. }) => DataFormat::Conllu,
        (DataFormat::Auto, DataMeta::Characters { .. }) => DataFormat::Text,
        (DataFormat::Auto, DataMeta::Series(_)) => DataFormat::Csv,
        (f, _) => f.resolve(path)?,
    };
    match (format, meta) {
        (DataFormat::Tensors | DataFormat::Auto, DataMeta::Tensors) => load_dataset(path),
        (DataFormat::Conllu, DataMeta::Tagging { words }) => {
            Ok(conllu::to_dataset(&conllu::read(path)?, words))
        }
        (DataFormat::Text, DataMeta::Characters { chars }) => Ok(text::to_streams(
            &text::encode(&text::read(path)?, chars),
            options.streams,
        )),
        (DataFormat::Csv, DataMeta::Series(m)) => {
            let opts = SeriesOptions {
                target: Some(m.target.clone()),
                features: m.features.clone(),
                window: m.window,
                horizon: m.horizon,
            };
            let (s, _, _) = series::read(path, &opts)?;
            let n = s.target.len();
            Ok(series::windows(&s, m, 0..n))
        }
        (f, m) => Err(mismatch(path, m, f)),
    }
}
