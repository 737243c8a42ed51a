//! Reading training and validation data in any supported format, with the vocabularies
//! (and later, normalisation) that go with it.

use super::vocab::{Vocab, WordOptions, WordVocab, UPOS};
use super::{conllu, text};
use super::{load_dataset, Dataset};
use crate::error::{Error, Result};
use crate::model::cli_enum;
use serde::{Deserialize, Serialize};
use std::path::Path;

cli_enum!(
    /// The format of a data file (`auto`: from its extension).
    DataFormat { Auto => "auto", Tensors => "safetensors", Conllu => "conllu", Text => "text" }
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
            _ => Err(Error::data(
                path,
                "cannot tell the format from the extension; pass --format safetensors|conllu|text",
            )),
        }
    }
}

/// How text becomes sequences.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TextOptions {
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
}

impl DataMeta {
    /// Rebuilds vocabulary lookups after deserialising.
    pub fn reindex(&mut self) {
        match self {
            DataMeta::Tensors => {}
            DataMeta::Tagging { words } => words.vocab.reindex(),
            DataMeta::Characters { chars } => chars.reindex(),
        }
    }

    /// The vocabulary size the data implies, if it has one.
    pub fn vocab_size(&self) -> Option<usize> {
        match self {
            DataMeta::Tensors => None,
            DataMeta::Tagging { words } => Some(words.vocab.len()),
            DataMeta::Characters { chars } => Some(chars.len()),
        }
    }
    /// The number of outputs the data implies, if fixed by the format.
    pub fn output_size(&self) -> Option<usize> {
        match self {
            DataMeta::Tensors => None,
            DataMeta::Tagging { .. } => Some(UPOS.len()),
            DataMeta::Characters { chars } => Some(chars.len()),
        }
    }
}

/// Training data, optional validation data, and their metadata.
pub struct Prepared {
    pub train: Dataset,
    pub val: Option<Dataset>,
    pub meta: DataMeta,
}

/// Reads `train` (and `val`) in `format`. Vocabularies come from the training file only,
/// or from `existing` (a checkpoint's) when given.
pub fn prepare(
    train: &Path,
    val: Option<&Path>,
    format: DataFormat,
    options: TextOptions,
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
            })
        }
    }
}

fn mismatch(path: &Path, meta: &DataMeta, format: DataFormat) -> Error {
    let kind = match meta {
        DataMeta::Tensors => "raw tensors",
        DataMeta::Tagging { .. } => "CoNLL-U tagging",
        DataMeta::Characters { .. } => "character text",
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
    options: TextOptions,
) -> Result<Dataset> {
    let format = match (format, meta) {
        (DataFormat::Auto, DataMeta::Tagging { .. }) => DataFormat::Conllu,
        (DataFormat::Auto, DataMeta::Characters { .. }) => DataFormat::Text,
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
        (f, m) => Err(mismatch(path, m, f)),
    }
}
