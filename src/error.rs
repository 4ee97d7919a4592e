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
    // A renderer reports a bad `--columns` inside an io::Error.
    let bad = |e: &(dyn std::error::Error + 'static)| {
        e.downcast_ref::<BadInput>().is_some()
            || e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.downcast_ref::<BadInput>().is_some())
    };
    if err.chain().any(bad) {
        2
    } else {
        1
    }
}

/// "did you mean 'x'?" for the closest candidate within a small edit distance (the catalog's
/// diagnostics use the same rule).
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    crate::catalog::diagnostic::closest(word, candidates)
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
