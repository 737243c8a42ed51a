//! CSV time series (`--format csv`): choose the target column and the feature columns;
//! windows of `window` steps predict the target `horizon` steps after the window's last
//! step (many-to-one regression). Normalisation statistics come from the training part
//! only and are saved with the model; predictions and metrics are reported in the
//! original units.

use super::{Dataset, Inputs, Targets};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which columns, and how the windows are cut.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesOptions {
    /// Target column (name or 0-based index); default: the last column.
    pub target: Option<String>,
    /// Feature columns (names or indices); default: the target alone.
    pub features: Vec<String>,
    pub window: usize,
    pub horizon: usize,
}

/// The series' layout and its normalisation (from the training part).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesMeta {
    pub target: String,
    pub features: Vec<String>,
    pub window: usize,
    pub horizon: usize,
    /// Mean and standard deviation of each feature, then of the target.
    pub feature_stats: Vec<(f64, f64)>,
    pub target_stats: (f64, f64),
}

/// A parsed CSV: column names and the selected columns' values.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// 1-based file line of each row.
    pub lines: Vec<usize>,
}

pub fn read_table(path: &Path) -> Result<Table> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_table(path, &bytes)
}

/// Parses CSV bytes (header row first); `path` only names the file in errors.
pub fn parse_table(path: &Path, bytes: &[u8]) -> Result<Table> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Error::data(path, format!("line 1: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            Error::data(path, format!("line {line}: {e}"))
        })?;
        lines.push(record.position().map_or(0, |p| p.line() as usize));
        rows.push(record.iter().map(|v| v.trim().to_string()).collect());
    }
    if rows.is_empty() {
        return Err(Error::data(path, "no data rows after the header"));
    }
    Ok(Table {
        header,
        rows,
        lines,
    })
}

fn column(path: &Path, table: &Table, name: &str) -> Result<usize> {
    if let Some(i) = table.header.iter().position(|h| h == name) {
        return Ok(i);
    }
    match name.parse::<usize>() {
        Ok(i) if i < table.header.len() => Ok(i),
        _ => Err(Error::data(
            path,
            format!(
                "no column {name:?}; the columns are: {}",
                table.header.join(", ")
            ),
        )),
    }
}

/// The values of column `c`, every one a finite number.
fn numbers(path: &Path, table: &Table, c: usize) -> Result<Vec<f64>> {
    table
        .rows
        .iter()
        .zip(&table.lines)
        .map(|(row, &line)| {
            let cell = row.get(c).map(String::as_str).unwrap_or("");
            match cell.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(Error::data(
                    path,
                    format!(
                        "line {line}: column {:?} holds {cell:?}, not a finite number",
                        table.header[c]
                    ),
                )),
            }
        })
        .collect()
}

fn stats(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, if var > 0.0 { var.sqrt() } else { 1.0 })
}

/// The raw columns of a series: features `[rows][F]` and target `[rows]`.
pub struct Series {
    pub features: Vec<Vec<f64>>,
    pub target: Vec<f64>,
}

/// Reads the selected columns of `path`.
pub fn read(path: &Path, options: &SeriesOptions) -> Result<(Series, String, Vec<String>)> {
    select(path, read_table(path)?, options)
}

/// Picks and checks the target and feature columns of a parsed table.
pub fn select(
    path: &Path,
    table: Table,
    options: &SeriesOptions,
) -> Result<(Series, String, Vec<String>)> {
    let target_name = options
        .target
        .clone()
        .unwrap_or_else(|| table.header.last().cloned().unwrap_or_default());
    let t = column(path, &table, &target_name)?;
    let feature_names = if options.features.is_empty() {
        vec![table.header[t].clone()]
    } else {
        options.features.clone()
    };
    let cols: Vec<usize> = feature_names
        .iter()
        .map(|f| column(path, &table, f))
        .collect::<Result<_>>()?;
    let target = numbers(path, &table, t)?;
    let per_col: Vec<Vec<f64>> = cols
        .iter()
        .map(|&c| numbers(path, &table, c))
        .collect::<Result<_>>()?;
    let features = (0..target.len())
        .map(|r| per_col.iter().map(|c| c[r]).collect())
        .collect();
    Ok((
        Series { features, target },
        table.header[t].clone(),
        cols.iter().map(|&c| table.header[c].clone()).collect(),
    ))
}

/// The windows whose target row lies in `targets` (a row range), normalised by `meta`.
pub fn windows(series: &Series, meta: &SeriesMeta, targets: std::ops::Range<usize>) -> Dataset {
    let (w, h) = (meta.window, meta.horizon);
    let first = targets.start.max(w - 1 + h);
    let rows: Vec<usize> = (first..targets.end.min(series.target.len())).collect();
    let f = meta.feature_stats.len();
    let mut x = Vec::with_capacity(rows.len() * w * f);
    let mut y = Vec::with_capacity(rows.len());
    for &r in &rows {
        let start = r + 1 - h - w;
        for t in start..start + w {
            for (j, &(m, s)) in meta.feature_stats.iter().enumerate() {
                x.push(((series.features[t][j] - m) / s) as f32);
            }
        }
        y.push(((series.target[r] - meta.target_stats.0) / meta.target_stats.1) as f32);
    }
    Dataset {
        n: rows.len(),
        steps: w,
        lengths: vec![w; rows.len()],
        inputs: Inputs::Dense { values: x, size: f },
        targets: Targets::Values {
            values: y,
            width: 1,
            per_step: false,
        },
    }
}

/// The target rows the windows over `targets` predict (for reports and predictions).
pub fn target_rows(
    meta: &SeriesMeta,
    targets: std::ops::Range<usize>,
    len: usize,
) -> std::ops::Range<usize> {
    targets.start.max(meta.window - 1 + meta.horizon)..targets.end.min(len)
}

/// Splits a series at `train_rows`: statistics from the training part, windows predicting
/// rows before the split (training) and from it on (validation).
pub fn prepare(
    path: &Path,
    options: &SeriesOptions,
    val_fraction: f64,
) -> Result<(Dataset, Option<Dataset>, SeriesMeta, Series)> {
    if options.window == 0 || options.horizon == 0 {
        return Err(Error::Config(
            "--window and --horizon must be at least 1".into(),
        ));
    }
    let (series, target, features) = read(path, options)?;
    let n = series.target.len();
    let held = ((n as f64) * val_fraction).round() as usize;
    let train_rows = n - held.min(n);
    if train_rows < options.window + options.horizon + 1 {
        return Err(Error::data(
            path,
            format!(
                "{train_rows} training rows are too few for --window {} and --horizon {}",
                options.window, options.horizon
            ),
        ));
    }
    let feature_stats = (0..features.len())
        .map(|j| {
            stats(
                &series.features[..train_rows]
                    .iter()
                    .map(|r| r[j])
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let meta = SeriesMeta {
        target,
        features,
        window: options.window,
        horizon: options.horizon,
        feature_stats,
        target_stats: stats(&series.target[..train_rows]),
    };
    let train = windows(&series, &meta, 0..train_rows);
    let val = (held > 0)
        .then(|| windows(&series, &meta, train_rows..n))
        .filter(|d| d.n > 0);
    Ok((train, val, meta, series))
}

/// Mean absolute error of the persistence forecast (the last value of each window) for
/// the target rows in `targets`, in the original units.
pub fn persistence_mae(series: &Series, meta: &SeriesMeta, targets: std::ops::Range<usize>) -> f64 {
    let rows = target_rows(meta, targets, series.target.len());
    let n = rows.len().max(1) as f64;
    rows.map(|r| (series.target[r] - series.target[r - meta.horizon]).abs())
        .sum::<f64>()
        / n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CSV file holding `text`, removed when the value is dropped.
    struct TempCsv(std::path::PathBuf);

    impl std::ops::Deref for TempCsv {
        type Target = std::path::Path;
        fn deref(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for TempCsv {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn tmp(name: &str, text: &str) -> TempCsv {
        let p = std::env::temp_dir().join(format!("wgrnn-series-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        TempCsv(p)
    }

    #[test]
    fn windows_predict_horizon_steps_ahead_with_training_statistics() {
        let text = "\"Date\",\"Temp\"\n".to_string()
            + &(0..10)
                .map(|i| format!("\"d{i}\",{}\n", i as f64))
                .collect::<String>();
        let p = tmp("ok.csv", &text);
        let opts = SeriesOptions {
            target: Some("Temp".into()),
            features: vec![],
            window: 3,
            horizon: 2,
        };
        let (train, val, meta, series) = prepare(&p, &opts, 0.2).unwrap();
        // 8 training rows (0..8): mean 3.5; windows predict rows 4..8 from rows r-4..r-2.
        assert!((meta.target_stats.0 - 3.5).abs() < 1e-12);
        assert_eq!((train.n, train.steps), (4, 3));
        let Inputs::Dense { values, .. } = &train.inputs else {
            panic!()
        };
        let Targets::Values { values: y, .. } = &train.targets else {
            panic!()
        };
        let s = meta.target_stats.1;
        let un = |v: f32| v as f64 * s + 3.5;
        assert_eq!(
            (
                un(values[0]).round(),
                un(values[2]).round(),
                un(y[0]).round()
            ),
            (0.0, 2.0, 4.0)
        );
        assert_eq!(val.unwrap().n, 2);
        // Persistence predicts row r from row r - horizon: always off by 2 here.
        assert!((persistence_mae(&series, &meta, 8..10) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn bad_cells_and_columns_name_the_line() {
        let p = tmp("bad.csv", "a,b\n1,2\n3,x\n");
        let opts = SeriesOptions {
            target: Some("b".into()),
            features: vec![],
            window: 1,
            horizon: 1,
        };
        let e = read(&p, &opts).err().unwrap().to_string();
        assert!(e.contains("line 3") && e.contains("\"x\""), "{e}");
        let opts = SeriesOptions {
            target: Some("zz".into()),
            ..opts
        };
        let e = read(&p, &opts).err().unwrap().to_string();
        assert!(e.contains("no column \"zz\"") && e.contains("a, b"), "{e}");
    }
}
