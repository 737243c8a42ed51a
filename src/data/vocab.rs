//! Vocabularies: words (with word-shape signatures for rare and unknown words), the UPOS
//! tag set, and characters.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Padding: id 0 in every word and character vocabulary (masked out of every loss).
pub const PAD: &str = "<pad>";
/// The fallback for a word whose signature was never seen in training.
pub const UNK: &str = "<unk>";

/// The 17 Universal POS tags, in the order of the model's outputs.
pub const UPOS: [&str; 17] = [
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
];

/// An ordered list of items and their ids.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vocab {
    pub items: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl Vocab {
    pub fn from_items(items: Vec<String>) -> Self {
        let index = items
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        Self { items, index }
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn get(&self, item: &str) -> Option<u32> {
        if self.index.len() != self.items.len() {
            return self.items.iter().position(|w| w == item).map(|i| i as u32);
        }
        self.index.get(item).copied()
    }
    /// Rebuilds the lookup table (after deserialising).
    pub fn reindex(&mut self) {
        self.index = self
            .items
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
    }
}

const SUFFIXES: [&str; 24] = [
    "ing", "ed", "ly", "ion", "er", "est", "al", "ive", "ous", "able", "ible", "ful", "less",
    "ment", "ness", "ity", "ic", "ize", "ise", "ate", "en", "es", "s", "y",
];

/// A word's shape, standing in for rare and unknown words: capitalisation, digits, dashes,
/// and a common English suffix, e.g. `<unk-Cap>`, `<unk-low-ing>`, `<unk-num>`.
pub fn signature(word: &str) -> String {
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    let digit = word.chars().any(|c| c.is_ascii_digit());
    let mut sig = String::from("<unk");
    if letters == 0 {
        sig.push_str(if digit { "-num" } else { "-sym" });
    } else {
        let first_upper = word.chars().next().is_some_and(|c| c.is_uppercase());
        let all_upper = word
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(|c| c.is_uppercase());
        sig.push_str(if all_upper && letters > 1 {
            "-CAPS"
        } else if first_upper {
            "-Cap"
        } else {
            "-low"
        });
        if digit {
            sig.push_str("-dig");
        }
        if word.contains('-') {
            sig.push_str("-dash");
        }
        let lower = word.to_lowercase();
        if letters >= 4 {
            if let Some(suffix) = SUFFIXES.iter().find(|s| lower.ends_with(*s)) {
                sig.push('-');
                sig.push_str(suffix);
            }
        }
    }
    sig.push('>');
    sig
}

/// Word vocabulary options.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WordOptions {
    /// Words seen fewer times in training are replaced by their signature.
    pub min_count: usize,
    /// Look words up in lower case (signatures still see the original case).
    pub lowercase: bool,
}

/// Words of the training data and their signatures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WordVocab {
    pub vocab: Vocab,
    pub options: WordOptions,
}

impl WordVocab {
    /// Builds the vocabulary: padding, the unknown fallback, every signature of a rare
    /// word, then every word seen at least `min_count` times, in first-seen order.
    pub fn build<'a>(words: impl Iterator<Item = &'a str>, options: WordOptions) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut originals: Vec<(String, String)> = Vec::new();
        for w in words {
            let key = Self::key_of(w, options.lowercase);
            let c = counts.entry(key.clone()).or_insert(0);
            if *c == 0 {
                order.push(key.clone());
            }
            *c += 1;
            originals.push((key, w.to_string()));
        }
        let mut items = vec![PAD.to_string(), UNK.to_string()];
        let mut seen: std::collections::HashSet<String> = items.iter().cloned().collect();
        for (key, original) in &originals {
            if counts[key] < options.min_count {
                let sig = signature(original);
                if seen.insert(sig.clone()) {
                    items.push(sig);
                }
            }
        }
        for key in order {
            if counts[&key] >= options.min_count && seen.insert(key.clone()) {
                items.push(key);
            }
        }
        Self {
            vocab: Vocab::from_items(items),
            options,
        }
    }

    fn key_of(word: &str, lowercase: bool) -> String {
        if lowercase {
            word.to_lowercase()
        } else {
            word.to_string()
        }
    }

    /// The id of `word`: itself if known, else its signature, else `<unk>`. Words rarer than
    /// `min_count` are not in the vocabulary, so in training they map to their signatures,
    /// which is how the signature embeddings learn what unknown words look like.
    pub fn id(&self, word: &str) -> u32 {
        self.vocab
            .get(&Self::key_of(word, self.options.lowercase))
            .or_else(|| self.vocab.get(&signature(word)))
            .unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_describe_shape() {
        assert_eq!(signature("Washington"), "<unk-Cap>");
        assert_eq!(signature("running"), "<unk-low-ing>");
        assert_eq!(signature("1984"), "<unk-num>");
        assert_eq!(signature("NASA"), "<unk-CAPS>");
        assert_eq!(signature("15-year"), "<unk-low-dig-dash>");
        assert_eq!(signature("..."), "<unk-sym>");
    }

    #[test]
    fn rare_words_fall_back_to_their_signature() {
        let words = ["the", "the", "cat", "Jumping", "the", "cat"];
        let v = WordVocab::build(
            words.iter().copied(),
            WordOptions {
                min_count: 2,
                lowercase: false,
            },
        );
        assert_eq!(
            v.vocab.items,
            vec!["<pad>", "<unk>", "<unk-Cap-ing>", "the", "cat"]
        );
        assert_eq!(v.id("the"), 3);
        assert_eq!(v.id("Jumping"), 2);
        assert_eq!(v.id("Swimming"), 2);
        assert_eq!(v.id("zzz"), 1);
    }
}
