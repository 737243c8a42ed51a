//! Character text (`--format text`): a character vocabulary from the training text, and
//! the stream cut into B parallel streams whose hidden state is carried across chunks for
//! the whole epoch (stateful truncated BPTT: one batch of B streams per epoch).

use super::vocab::{Vocab, PAD, UNK};
use super::{Dataset, Inputs, Targets};
use crate::error::{Error, Result};
use std::path::Path;

/// Reads a UTF-8 text file; invalid UTF-8 is an error naming the line.
pub fn read(path: &Path) -> Result<String> {
    decode(path, std::fs::read(path).map_err(|e| Error::io(path, e))?)
}

/// Checks and decodes text bytes; `path` only names the file in errors.
pub fn decode(path: &Path, bytes: Vec<u8>) -> Result<String> {
    match String::from_utf8(bytes) {
        Ok(s) if s.chars().count() >= 2 => Ok(s),
        Ok(_) => Err(Error::data(path, "text needs at least two characters")),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(Error::data(
                path,
                format!("line {line}: not valid UTF-8 (byte offset {at})"),
            ))
        }
    }
}

/// `<pad>`, `<unk>`, then every character of `text` in code-point order.
pub fn char_vocab(text: &str) -> Vocab {
    let mut chars: Vec<char> = text.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    let mut items = vec![PAD.to_string(), UNK.to_string()];
    items.extend(chars.into_iter().map(String::from));
    Vocab::from_items(items)
}

/// Character ids (unknown characters map to `<unk>`).
pub fn encode(text: &str, vocab: &Vocab) -> Vec<u32> {
    let mut buf = [0u8; 4];
    text.chars()
        .map(|c| vocab.get(c.encode_utf8(&mut buf)).unwrap_or(1))
        .collect()
}

/// Next-character prediction over `streams` parallel streams: stream s reads
/// ids[s·L .. (s+1)·L] and predicts ids[s·L + 1 .. (s+1)·L + 1], L = (len − 1) / streams.
/// Fewer streams are used when the text is too short for `streams` of at least one step.
pub fn to_streams(ids: &[u32], streams: usize) -> Dataset {
    let usable = ids.len().saturating_sub(1);
    let streams = streams.clamp(1, usable.max(1));
    let steps = (usable / streams).max(1);
    let mut inputs = Vec::with_capacity(streams * steps);
    let mut targets = Vec::with_capacity(streams * steps);
    for s in 0..streams {
        inputs.extend_from_slice(&ids[s * steps..(s + 1) * steps]);
        targets.extend_from_slice(&ids[s * steps + 1..(s + 1) * steps + 1]);
    }
    Dataset {
        n: streams,
        steps,
        lengths: vec![steps; streams],
        inputs: Inputs::Tokens { ids: inputs },
        targets: Targets::Classes {
            ids: targets,
            per_step: true,
        },
    }
}

/// Splits `text` into training and validation parts: the last `fraction` of its characters
/// are held out.
pub fn split(text: &str, fraction: f64) -> (&str, &str) {
    let n = text.chars().count();
    let keep = n - ((n as f64 * fraction).round() as usize).min(n.saturating_sub(2));
    let at = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    text.split_at(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_predict_the_next_character() {
        let vocab = char_vocab("abcdefg");
        let ids = encode("abcdefg", &vocab);
        let d = to_streams(&ids, 2);
        assert_eq!((d.n, d.steps), (2, 3));
        let Inputs::Tokens { ids: x } = &d.inputs else {
            panic!()
        };
        let Targets::Classes { ids: y, .. } = &d.targets else {
            panic!()
        };
        let decode = |v: &[u32]| {
            v.iter()
                .map(|&i| vocab.items[i as usize].clone())
                .collect::<String>()
        };
        assert_eq!(decode(&x[..3]), "abc");
        assert_eq!(decode(&y[..3]), "bcd");
        assert_eq!(decode(&x[3..]), "def");
        assert_eq!(decode(&y[3..]), "efg");
    }

    #[test]
    fn split_holds_out_the_tail_and_unknown_chars_map_to_unk() {
        assert_eq!(split("abcdefghij", 0.2), ("abcdefgh", "ij"));
        let vocab = char_vocab("ab");
        assert_eq!(encode("abz", &vocab), vec![2, 3, 1]);
    }
}
