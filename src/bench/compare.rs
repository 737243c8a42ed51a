//! `wgrnn bench --compare FILE`: this run's workloads against the same workloads in an
//! earlier run's JSON report (`--json`), from another commit, adapter or machine.
//!
//! A workload matches an earlier one with the same name, batch, sequence length, precision
//! and model (the model's settings that both reports record; its description may be worded
//! differently); the step's median time, its back-to-back time (where both recorded it) and
//! each GPU phase present in both are compared as ratios of this run's time to the earlier
//! one's (under 1: faster now).

use crate::error::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// An earlier `wgrnn bench --json` report, read before this run's workloads start, so that a
/// wrong file fails at once rather than after the measurements.
#[derive(Debug)]
pub struct EarlierReport {
    pub path: PathBuf,
    /// The commit its binary was built from, its date and its adapter, as recorded ("unknown"
    /// where a field is missing: reports from before they were recorded).
    pub commit: String,
    pub date: String,
    pub adapter: String,
    results: Vec<Value>,
}

/// One workload against its earlier run.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub earlier_median_ms: f64,
    pub median_ms: f64,
    /// (phase, earlier ms, this run's ms) for the phases both runs timed, in this run's order.
    pub phases: Vec<(String, f64, f64)>,
    /// (earlier, this run's) time a step back to back, where both reports have it (reports
    /// from before 2026-11-29 do not).
    pub back_to_back_ms: Option<(f64, f64)>,
}

/// Whether two reports' `workload` entries are the same workload (see the module's comment).
fn same_workload(a: &Value, b: &Value) -> bool {
    let same_fields = ["name", "batch", "steps", "precision"]
        .iter()
        .all(|f| a[f] == b[f] && !a[f].is_null());
    let same_model = match (a["config"].as_object(), b["config"].as_object()) {
        (Some(x), Some(y)) => x.iter().all(|(k, v)| y.get(k).is_none_or(|w| w == v)),
        (None, None) => true,
        _ => false,
    };
    same_fields && same_model
}

fn text_of(v: &Value) -> String {
    v.as_str().unwrap_or("unknown").to_string()
}

impl EarlierReport {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let report: Value = serde_json::from_str(&text)
            .map_err(|e| Error::data(path, format!("not a JSON bench report: {e}")))?;
        let Some(results) = report["results"].as_array() else {
            return Err(Error::data(
                path,
                "no `results` list: not a report of `wgrnn bench --json`",
            ));
        };
        for (i, r) in results.iter().enumerate() {
            if r["workload"].is_null() || r["median_ms"].as_f64().is_none() {
                return Err(Error::data(
                    path,
                    format!("results[{i}] has no `workload` and `median_ms`: not a report of `wgrnn bench --json`"),
                ));
            }
        }
        Ok(EarlierReport {
            path: path.to_path_buf(),
            commit: text_of(&report["commit"]),
            date: text_of(&report["date"]),
            adapter: text_of(&report["adapter"]["name"]),
            results: results.clone(),
        })
    }

    /// This run's result (one entry of its report's `results`) against the earlier run of
    /// the same workload; None where the earlier report has no such workload.
    pub fn compare(&self, now: &Value) -> Option<Comparison> {
        let earlier = self
            .results
            .iter()
            .find(|r| same_workload(&r["workload"], &now["workload"]))?;
        let earlier_median_ms = earlier["median_ms"].as_f64()?;
        let median_ms = now["median_ms"].as_f64()?;
        let phases_of = |r: &Value| -> Vec<(String, f64)> {
            r["phases_ms"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_f64()?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let before = phases_of(earlier);
        let phases = phases_of(now)
            .into_iter()
            .filter_map(|(name, ms)| {
                let (_, then) = before.iter().find(|(n, _)| *n == name)?;
                Some((name, *then, ms))
            })
            .collect();
        let back_to_back_ms = earlier["back_to_back_ms"]
            .as_f64()
            .zip(now["back_to_back_ms"].as_f64());
        Some(Comparison {
            earlier_median_ms,
            median_ms,
            phases,
            back_to_back_ms,
        })
    }
}

impl Comparison {
    /// This run's median over the earlier one's.
    pub fn ratio(&self) -> f64 {
        self.median_ms / self.earlier_median_ms
    }

    /// "0.95x the time of FILE's 26.72 ms (5.3% faster); phases: input projection 1.02x, ...".
    pub fn describe(&self, report: &EarlierReport) -> String {
        let ratio = self.ratio();
        let change = if ratio <= 1.0 {
            format!("{:.1}% faster", 100.0 * (1.0 / ratio - 1.0))
        } else {
            format!("{:.1}% slower", 100.0 * (ratio - 1.0))
        };
        let mut line = format!(
            "{ratio:.2}x the time of {}'s {:.2} ms ({change})",
            report.path.display(),
            self.earlier_median_ms
        );
        if let Some((then, now)) = self.back_to_back_ms {
            line.push_str(&format!(
                "; back to back {:.2}x ({then:.2} ms then)",
                now / then
            ));
        }
        if !self.phases.is_empty() {
            let parts: Vec<String> = self
                .phases
                .iter()
                .map(|(name, then, now)| format!("{name} {:.2}x", now / then))
                .collect();
            line.push_str(&format!("; phases: {}", parts.join(", ")));
        }
        line
    }

    /// The comparison as the report's `compared_with` entry.
    pub fn to_json(&self, report: &EarlierReport) -> Value {
        serde_json::json!({
            "file": report.path.display().to_string(),
            "commit": report.commit,
            "date": report.date,
            "adapter": report.adapter,
            "earlier_median_ms": self.earlier_median_ms,
            "ratio": self.ratio(),
            "back_to_back": self.back_to_back_ms.map(|(then, now)| serde_json::json!({
                "earlier_ms": then, "ratio": now / then,
            })),
            "phases": self.phases,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A directory of this test's own (the tests run in parallel and remove theirs).
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wgrnn-compare-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn matches_the_same_workload_and_compares_medians_and_shared_phases() {
        let dir = scratch("match");
        let earlier = r#"{"commit": "abc", "date": "2026-11-27", "adapter": {"name": "llvmpipe"},
            "results": [
              {"workload": {"name": "W1", "batch": 64, "steps": 32, "precision": "f32",
                 "description": "as worded then", "config": {"hidden": 256, "layers": 1}},
               "median_ms": 20.0, "back_to_back_ms": 25.0,
               "phases_ms": [["head and loss", 4.0], ["optimizer", 2.0]]},
              {"workload": {"name": "W2", "batch": 256, "steps": 50, "precision": "f32"},
               "median_ms": 30.0, "phases_ms": []}
            ]}"#;
        let path = report(&dir, "earlier.json", earlier);
        let r = EarlierReport::read(&path).unwrap();
        assert_eq!((r.commit.as_str(), r.date.as_str()), ("abc", "2026-11-27"));
        assert_eq!(r.adapter, "llvmpipe");
        let now: Value = serde_json::from_str(
            r#"{"workload": {"name": "W1", "batch": 64, "steps": 32, "precision": "f32",
                             "description": "as worded now",
                             "config": {"hidden": 256, "layers": 1, "new_setting": 3}},
                "median_ms": 15.0, "back_to_back_ms": 20.0,
                "phases_ms": [["input projection", 1.0], ["optimizer", 3.0]]}"#,
        )
        .unwrap();
        let c = r.compare(&now).unwrap();
        assert_eq!(c.earlier_median_ms, 20.0);
        assert_eq!(c.ratio(), 0.75);
        // Only the phase both timed; this run's order.
        assert_eq!(c.phases, vec![("optimizer".to_string(), 2.0, 3.0)]);
        let line = c.describe(&r);
        assert!(
            line.starts_with("0.75x the time of")
                && line.contains("20.00 ms (33.3% faster); back to back 0.80x (25.00 ms then)")
                && line.ends_with("phases: optimizer 1.50x"),
            "{line}"
        );
        // Another batch, precision or hidden size is another workload: no match.
        for other in [
            r#"{"name": "W1", "batch": 32, "steps": 32, "precision": "f32"}"#,
            r#"{"name": "W1", "batch": 64, "steps": 32, "precision": "f16"}"#,
            r#"{"name": "W1", "batch": 64, "steps": 32, "precision": "f32", "config": {"hidden": 128}}"#,
        ] {
            let other: Value =
                serde_json::from_str(&format!(r#"{{"workload": {other}, "median_ms": 1.0}}"#))
                    .unwrap();
            assert!(r.compare(&other).is_none(), "{other}");
        }
        // A slower run says so.
        let slower: Value = serde_json::from_str(
            r#"{"workload": {"name": "W2", "batch": 256, "steps": 50, "precision": "f32"},
                "median_ms": 33.0}"#,
        )
        .unwrap();
        let c = r.compare(&slower).unwrap();
        // The earlier W2 has no back-to-back time (an older report): none compared.
        assert_eq!(c.back_to_back_ms, None);
        assert!(
            c.describe(&r).contains("(10.0% slower)"),
            "{}",
            c.describe(&r)
        );
        assert_eq!(c.to_json(&r)["commit"], "abc");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_that_is_no_bench_report_is_named_in_the_error() {
        let dir = scratch("errors");
        let missing = dir.join("missing.json");
        let e = EarlierReport::read(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.json"), "{e}");
        let broken = report(
            &dir,
            "broken.json",
            "{\"results\": [\n  {\"median_ms\": }\n]}",
        );
        let e = EarlierReport::read(&broken).unwrap_err().to_string();
        assert!(e.contains("broken.json") && e.contains("line 2"), "{e}");
        let other = report(&dir, "other.json", r#"{"name": "W1"}"#);
        let e = EarlierReport::read(&other).unwrap_err().to_string();
        assert!(
            e.contains("other.json") && e.contains("no `results` list"),
            "{e}"
        );
        let partial = report(&dir, "partial.json", r#"{"results": [{"median_ms": 3.0}]}"#);
        let e = EarlierReport::read(&partial).unwrap_err().to_string();
        assert!(e.contains("results[0]"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
