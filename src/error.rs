//! Errors that choose the exit code.
//!
//! Everything is an `anyhow::Error`; an error whose chain holds a [`BadInput`] exits 2 (usage,
//! unknown id, invalid catalog or file), any other exits 1 (the operation failed).

use std::fmt;

/// Bad input from the user: one sentence naming the thing and the fix. Exit code 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Shorthand: `return Err(bad_input(format!(…)))`.
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(message.into()))
}

/// Exit code for an error: 2 for bad input anywhere in the chain, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.downcast_ref::<BadInput>().is_some()) {
        2
    } else {
        1
    }
}

/// "did you mean 'x'?" for the closest candidate within a small edit distance.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_l = word.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(&word_l, &c.to_lowercase());
        let limit = (word.chars().count().max(3)) / 3 + 1;
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `unknown template 'x' — did you mean 'y'?` or with a listing hint when nothing is close.
pub fn unknown<'a>(
    what: &str,
    word: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
    list_cmd: &str,
) -> anyhow::Error {
    match suggest(word, candidates) {
        Some(s) => bad_input(format!("unknown {what} '{word}' — did you mean '{s}'?")),
        None => bad_input(format!(
            "unknown {what} '{word}' — run `{list_cmd}` to see them all"
        )),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(
            suggest("hive-larg", ["hive-large", "hive-small"]),
            Some("hive-large")
        );
        assert_eq!(suggest("zzzzzz", ["hive-large"]), None);
    }

    #[test]
    fn bad_input_exits_2() {
        assert_eq!(exit_code(&bad_input("x")), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("x")), 1);
        assert_eq!(exit_code(&bad_input("x").context("while y")), 2);
    }
}
