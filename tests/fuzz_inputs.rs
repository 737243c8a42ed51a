//! A mutation fuzzer over every reader of user data: CoNLL-U, CSV series, text,
//! safetensors data, weights and checkpoint metadata. Each target starts from valid seed
//! inputs and applies random byte-level mutations (flips, inserts, deletions, duplications,
//! truncations, splices, tokens such as tabs, "nan" and huge numbers); the reader must
//! return Ok or an error, never panic. WGRNN_FUZZ_ITERS sets the executions per target
//! (default 2000; RELIABILITY.md reports longer runs). Any input that ever crashed a reader
//! is kept in tests/fuzz_regressions/ and replayed here on every run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use wgrnn::rng::Rng;

const TOKENS: &[&[u8]] = &[
    b"\t",
    b"\n",
    b"\r\n",
    b"-",
    b".",
    b"#",
    b",",
    b"\"",
    b"0",
    b"-1",
    b"99999999999999999999",
    b"4294967296",
    b"nan",
    b"inf",
    b"NaN",
    b"1e309",
    b"_",
    b"\xff\xfe",
    b"\xc3",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"null",
    b"true",
    b"\"F32\"",
    b"\"I64\"",
    b"\"shape\"",
    b"\"data_offsets\"",
    b"PUNCT",
    b"1-2",
    b"8.1",
    b"\x00",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let len = data.len();
        let at = if len == 0 { 0 } else { rng.below(len + 1) };
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at.min(len), rng.below(256) as u8),
            2 if len > 0 => {
                let end = (at + 1 + rng.below(16)).min(len);
                data.drain(at.min(len - 1)..end);
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                let piece = data[start..end].to_vec();
                let at = at.min(data.len());
                data.splice(at..at, piece);
            }
            4 => data.truncate(at),
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let piece = other[start..(start + 1 + rng.below(64)).min(other.len())].to_vec();
                    let at = at.min(data.len());
                    data.splice(at..at, piece);
                }
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = at.min(data.len());
                data.splice(at..at, token.iter().copied());
            }
        }
    }
    data
}

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

/// Runs `target` on the kept regression inputs of `name`, then on `iterations` mutations
/// of `seeds`; a panic saves the input and fails with its file name.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, target: impl Fn(&[u8])) {
    let iterations: usize = std::env::var("WGRNN_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(regressions_dir()) {
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().to_string();
            if file.starts_with(&format!("{name}-")) {
                inputs.push((file, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    let seed: u64 = std::env::var("WGRNN_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng::new(seed ^ name.bytes().map(|b| b as u64).sum::<u64>());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failure = None;
    for i in 0..inputs.len() + iterations {
        let data = if i < inputs.len() {
            inputs[i].1.clone()
        } else {
            mutate(&mut rng, &seeds)
        };
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| target(&data))) {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let file = regressions_dir().join(format!(
                "{name}-{:016x}.bin",
                Rng::new(data.iter().map(|&b| b as u64).sum::<u64>() ^ data.len() as u64)
                    .next_u64()
            ));
            let _ = std::fs::create_dir_all(regressions_dir());
            let _ = std::fs::write(&file, &data);
            failure = Some(format!(
                "{name}: the reader panicked ({message}); input saved as {}",
                file.display()
            ));
            break;
        }
    }
    std::panic::set_hook(hook);
    if let Some(f) = failure {
        panic!("{f}");
    }
    println!("{name}: {} executions, no crash", inputs.len() + iterations);
}

fn sample_conllu() -> Vec<u8> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/ewt-sample/dev.conllu"),
    )
    .unwrap();
    text.lines()
        .take(60)
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

#[test]
fn fuzz_conllu_reader() {
    let seeds = vec![sample_conllu(), b"# c\n1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\t_\tAUX\t_\t_\t_\t_\t_\t_\n2\tn't\t_\tPART\t_\t_\t_\t_\t_\t_\n2.1\tx\t_\t_\t_\t_\t_\t_\t_\t_\n\n".to_vec()];
    fuzz("conllu", seeds, |bytes| {
        if let Ok(sentences) = wgrnn::data::conllu::parse(Path::new("fuzz.conllu"), bytes) {
            let words = wgrnn::data::vocab::WordVocab::build(
                sentences
                    .iter()
                    .flat_map(|s| s.words.iter().map(String::as_str)),
                wgrnn::data::vocab::WordOptions {
                    min_count: 2,
                    lowercase: true,
                },
            );
            let d = wgrnn::data::conllu::to_dataset(&sentences, &words);
            assert_eq!(d.lengths.len(), d.n);
        }
    });
}

#[test]
fn fuzz_csv_series_reader() {
    let mut csv = String::from("\"Date\",\"Temp\",\"Rain\"\n");
    for i in 0..40 {
        csv.push_str(&format!(
            "\"1981-01-{i:02}\",{}.{},{}\n",
            10 + i % 7,
            i % 10,
            i % 3
        ));
    }
    let seeds = vec![csv.into_bytes(), b"a,b\n1,2\n3,4\n5,6\n".to_vec()];
    fuzz("csv", seeds, |bytes| {
        let path = Path::new("fuzz.csv");
        if let Ok(table) = wgrnn::data::series::parse_table(path, bytes) {
            let options = wgrnn::data::series::SeriesOptions {
                target: Some("Temp".into()),
                features: vec!["Rain".into(), "Temp".into()],
                window: 3,
                horizon: 2,
            };
            let _ = wgrnn::data::series::select(path, table, &options);
        }
    });
}

#[test]
fn fuzz_text_reader() {
    let seeds = vec![
        "First Citizen:\nBefore we proceed any further, hear me speak.\n"
            .as_bytes()
            .to_vec(),
        "é漢字🙂\n".as_bytes().to_vec(),
    ];
    fuzz("text", seeds, |bytes| {
        if let Ok(text) = wgrnn::data::text::decode(Path::new("fuzz.txt"), bytes.to_vec()) {
            let (train, val) = wgrnn::data::text::split(&text, 0.1);
            let vocab = wgrnn::data::text::char_vocab(train);
            let ids = wgrnn::data::text::encode(val, &vocab);
            if ids.len() >= 2 {
                let d = wgrnn::data::text::to_streams(&ids, 3);
                assert!(d.n >= 1);
            }
        }
    });
}

fn safetensors_bytes(tensors: Vec<(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)>) -> Vec<u8> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.to_string(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn fuzz_safetensors_data_reader() {
    let ids: Vec<u8> = (0..6i64).flat_map(|v| v.to_le_bytes()).collect();
    let feats: Vec<u8> = (0..12)
        .flat_map(|v| (v as f32 * 0.5).to_le_bytes())
        .collect();
    let vals: Vec<u8> = (0..2).flat_map(|v| (v as f32).to_le_bytes()).collect();
    let seeds = vec![
        safetensors_bytes(vec![
            ("inputs", safetensors::Dtype::I64, vec![2, 3], ids.clone()),
            ("targets", safetensors::Dtype::I64, vec![2, 3], ids),
        ]),
        safetensors_bytes(vec![
            ("inputs", safetensors::Dtype::F32, vec![2, 3, 2], feats),
            ("targets", safetensors::Dtype::F32, vec![2, 1], vals),
        ]),
    ];
    fuzz("data", seeds, |bytes| {
        use wgrnn::data::{ChunkData, Inputs, Targets};
        use wgrnn::model::*;
        let Ok(d) = wgrnn::data::parse_dataset(Path::new("fuzz.safetensors"), bytes) else {
            return;
        };
        // Whatever parsed must be checkable against a model and cut into chunks.
        let input = match &d.inputs {
            Inputs::Tokens { .. } => InputKind::Tokens { vocab: 4, embed: 2 },
            Inputs::Dense { size, .. } => InputKind::Dense { size: *size },
        };
        let (loss, output_activation, output_size, task) = match &d.targets {
            Targets::Classes { per_step, .. } => {
                (Loss::CrossEntropy, OutputActivation::Softmax, 6, *per_step)
            }
            Targets::Values {
                width, per_step, ..
            } => (Loss::Mse, OutputActivation::Identity, *width, *per_step),
        };
        let task = if task {
            TaskKind::ManyToMany
        } else {
            TaskKind::ManyToOne
        };
        let config = ModelConfig {
            cell: Default::default(),
            layers: 1,
            bidirectional: false,
            input,
            hidden: 3,
            output_size,
            activation: Activation::Tanh,
            output_activation,
            task,
            pool: Pool::Max,
            loss,
        };
        if config.validate().is_ok() && wgrnn::train::check_dataset(&config, &d, "fuzz").is_ok() {
            let seqs: Vec<usize> = (0..d.n.min(3)).collect();
            let chunk = ChunkData::gather(&d, &seqs, 0..d.steps.min(2), true);
            assert_eq!(chunk.lengths.len(), seqs.len());
        }
    });
}

#[test]
fn fuzz_weights_reader() {
    use wgrnn::model::*;
    let config = ModelConfig {
        cell: Default::default(),
        layers: 1,
        bidirectional: false,
        input: InputKind::Tokens { vocab: 5, embed: 3 },
        hidden: 4,
        output_size: 2,
        activation: Activation::Tanh,
        output_activation: OutputActivation::Softmax,
        task: TaskKind::ManyToMany,
        pool: Pool::Last,
        loss: Loss::CrossEntropy,
    };
    let layout = ParamLayout::new(&config);
    let params = init_params(&config, 1);
    let dir = std::env::temp_dir().join(format!("wgrnn-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("w.safetensors");
    wgrnn::weights::save(&file, &layout, &params, Default::default()).unwrap();
    let seeds = vec![std::fs::read(&file).unwrap()];
    let _ = std::fs::remove_dir_all(&dir);
    fuzz("weights", seeds, |bytes| {
        if let Ok(p) = wgrnn::weights::parse_weights(Path::new("fuzz.safetensors"), bytes, &layout)
        {
            assert_eq!(p.len(), layout.total);
        }
    });
}

#[test]
fn fuzz_checkpoint_metadata_reader() {
    use wgrnn::checkpoint::{CheckpointMeta, RunSettings};
    use wgrnn::model::*;
    let config = ModelConfig {
        cell: Default::default(),
        layers: 1,
        bidirectional: false,
        input: InputKind::Dense { size: 2 },
        hidden: 4,
        output_size: 1,
        activation: Activation::Relu,
        output_activation: OutputActivation::Identity,
        task: TaskKind::ManyToOne,
        pool: Pool::Mean,
        loss: Loss::Mse,
    };
    let run = RunSettings {
        seed: 1,
        batch: 4,
        seq_len: 3,
        shuffle: true,
        epochs: 2,
        log_every: 5,
        early_stopping: Some((0.01, 2)),
        monitor: wgrnn::train::Monitor::Loss,
        restore_best: false,
        on_nonfinite: wgrnn::train::NonFinitePolicy::Rollback,
        dropout: 0.0,
        precision: wgrnn::engine::Precision::F16,
        lr_plateau: Some((0.5, 2)),
    };
    let opt = wgrnn::optim::OptimizerConfig::pytorch_defaults(wgrnn::optim::OptimizerKind::Adam);
    let mut meta = CheckpointMeta::new(
        config,
        opt,
        wgrnn::data::source::DataMeta::Tensors,
        run,
        Default::default(),
        7,
    );
    meta.weights_file = "weights-e0001.safetensors".into();
    meta.optimizer_file = "optimizer-e0001.safetensors".into();
    let seeds = vec![serde_json::to_vec_pretty(&meta).unwrap()];
    fuzz("checkpoint", seeds, |bytes| {
        if let Ok(m) = wgrnn::checkpoint::parse_meta(Path::new("checkpoint.json"), bytes) {
            let layout = ParamLayout::new(&m.model);
            assert!(layout.total <= u32::MAX as usize);
        }
    });
}
