//! CoNLL-U (`--format conllu`): one sentence per sequence, words from column 2 and UPOS
//! tags from column 4. Comment lines, multiword-token ranges (`4-5`) and empty nodes
//! (`8.1`) are skipped. Every malformed line is an error naming the file and line.

use super::vocab::{WordVocab, UPOS};
use super::{Dataset, Inputs, Targets};
use crate::error::{Error, Result};
use std::path::Path;

/// One sentence: its words and their UPOS tags (same length), and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Sentence {
    pub words: Vec<String>,
    pub tags: Vec<String>,
    /// 1-based line of the sentence's first word.
    pub line: usize,
}

/// Reads every sentence of a CoNLL-U file.
pub fn read(path: &Path) -> Result<Vec<Sentence>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(path, &bytes)
}

/// Parses CoNLL-U text; `path` only names the source in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Sentence>> {
    let at = |line: usize, message: String| Error::data(path, format!("line {line}: {message}"));
    let mut sentences = Vec::new();
    let mut current = Sentence {
        words: vec![],
        tags: vec![],
        line: 0,
    };
    let mut expected_id = 1usize;
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let line = std::str::from_utf8(raw).map_err(|e| at(n, format!("not valid UTF-8 ({e})")))?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.words.is_empty() {
                sentences.push(std::mem::replace(
                    &mut current,
                    Sentence {
                        words: vec![],
                        tags: vec![],
                        line: 0,
                    },
                ));
            }
            expected_id = 1;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 10 {
            return Err(at(
                n,
                format!("expected 10 tab-separated columns, found {}", cols.len()),
            ));
        }
        let id = cols[0];
        if id.contains('-') || id.contains('.') {
            let parts: Vec<&str> = id.split(['-', '.']).collect();
            if parts.len() != 2 || parts.iter().any(|p| p.parse::<usize>().is_err()) {
                return Err(at(n, format!("malformed ID {id:?}")));
            }
            continue; // a multiword-token range or an empty node: no UPOS of its own
        }
        let id: usize = id
            .parse()
            .map_err(|_| at(n, format!("ID {id:?} is not a number")))?;
        if id != expected_id {
            return Err(at(
                n,
                format!("word ID {id} out of order (expected {expected_id})"),
            ));
        }
        expected_id += 1;
        let (form, upos) = (cols[1], cols[3]);
        if form.is_empty() {
            return Err(at(n, "empty FORM (column 2)".into()));
        }
        if !UPOS.contains(&upos) {
            return Err(at(
                n,
                format!("UPOS {upos:?} (column 4) is not one of the 17 Universal POS tags"),
            ));
        }
        if current.words.is_empty() {
            current.line = n;
        }
        current.words.push(form.to_string());
        current.tags.push(upos.to_string());
    }
    if !current.words.is_empty() {
        sentences.push(current);
    }
    if sentences.is_empty() {
        return Err(Error::data(
            path,
            "no sentences (a CoNLL-U file has word lines of 10 tab-separated columns)",
        ));
    }
    Ok(sentences)
}

/// Sentences as a padded tagging data set: token ids `[N, T]`, UPOS ids `[N, T]`.
pub fn to_dataset(sentences: &[Sentence], words: &WordVocab) -> Dataset {
    let n = sentences.len();
    let steps = sentences.iter().map(|s| s.words.len()).max().unwrap_or(1);
    let mut ids = vec![0u32; n * steps];
    let mut tags = vec![0u32; n * steps];
    for (i, s) in sentences.iter().enumerate() {
        for (t, (w, tag)) in s.words.iter().zip(&s.tags).enumerate() {
            ids[i * steps + t] = words.id(w);
            tags[i * steps + t] = UPOS
                .iter()
                .position(|u| u == tag)
                .expect("parser checked the tag") as u32;
        }
    }
    Dataset {
        n,
        steps,
        lengths: sentences.iter().map(|s| s.words.len()).collect(),
        inputs: Inputs::Tokens { ids },
        targets: Targets::Classes {
            ids: tags,
            per_step: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# sent_id = 1\n# text = I don't know.\n1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_\n2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_\n3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_\n4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_\n4.1\tknew\t_\t_\t_\t_\t_\t_\t_\t_\n5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_\n\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n";

    #[test]
    fn reads_words_and_upos_skipping_ranges_and_empty_nodes() {
        let s = parse(Path::new("sample.conllu"), SAMPLE.as_bytes()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].words, vec!["I", "do", "n't", "know", "."]);
        assert_eq!(s[0].tags, vec!["PRON", "AUX", "PART", "VERB", "PUNCT"]);
        assert_eq!(s[0].line, 3);
        assert_eq!(s[1].words, vec!["Hi"]);
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let cases = [
            (
                "1\tI\tI\tPRON\n",
                "line 1: expected 10 tab-separated columns, found 4",
            ),
            (
                "1\tI\tI\tPRONOUN\t_\t_\t_\t_\t_\t_\n",
                "line 1: UPOS \"PRONOUN\"",
            ),
            (
                "x\tI\tI\tPRON\t_\t_\t_\t_\t_\t_\n",
                "line 1: ID \"x\" is not a number",
            ),
            (
                "1\tI\tI\tPRON\t_\t_\t_\t_\t_\t_\n3\ta\ta\tDET\t_\t_\t_\t_\t_\t_\n",
                "line 2: word ID 3 out of order",
            ),
            ("# only a comment\n", "no sentences"),
        ];
        for (text, want) in cases {
            let e = parse(Path::new("bad.conllu"), text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("bad.conllu") && e.contains(want),
                "{e:?} should contain {want:?}"
            );
        }
        let e = parse(
            Path::new("bad.conllu"),
            b"1\t\xff\tI\tPRON\t_\t_\t_\t_\t_\t_\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 1: not valid UTF-8"), "{e}");
    }
}
