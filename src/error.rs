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

/// Text from outside (a provider's answer, a file) made safe for a terminal: ANSI escape
/// sequences (CSI, OSC and two-byte ones, 7-bit and 8-bit) are removed, line breaks and tabs
/// become spaces, other control characters and bidirectional overrides are dropped. The one
/// sanitizer: errors, tables and driver messages all pass through it.
pub fn printable(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '\u{1b}' | '\u{9b}' | '\u{9d}' => {
                let kind = if c == '\u{1b}' {
                    chars.next()
                } else if c == '\u{9b}' {
                    Some('[')
                } else {
                    Some(']')
                };
                match kind {
                    // CSI: parameter and intermediate bytes, then one final byte.
                    Some('[') => {
                        for n in chars.by_ref() {
                            if ('\u{40}'..='\u{7e}').contains(&n) {
                                break;
                            }
                        }
                    }
                    // OSC (and DCS, PM, APC, SOS): up to BEL or the string terminator.
                    Some(']' | 'P' | '^' | '_' | 'X') => {
                        while let Some(n) = chars.next() {
                            if n == '\u{7}' || n == '\u{9c}' {
                                break;
                            }
                            if n == '\u{1b}' {
                                if chars.peek() == Some(&'\\') {
                                    chars.next();
                                }
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
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
    fn printable_strips_escapes_and_controls() {
        assert_eq!(printable("plain text"), "plain text");
        assert_eq!(printable("a\u{1b}[2J\u{1b}[31mred\u{1b}[0m"), "ared");
        assert_eq!(
            printable("x\u{1b}]0;title\u{7}y\u{1b}]8;;http://e\u{1b}\\z"),
            "xyz"
        );
        assert_eq!(printable("a\u{9b}1mb\u{0}c\u{7f}d"), "abcd");
        assert_eq!(printable("one\ntwo\tthree\r"), "one two three ");
        assert_eq!(printable("abc\u{202e}def"), "abcdef");
        assert_eq!(printable("café ✓"), "café ✓");
        assert_eq!(printable("trailing\u{1b}"), "trailing");
    }

    #[test]
    fn bad_input_exits_2() {
        assert_eq!(exit_code(&bad_input("x")), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("x")), 1);
        assert_eq!(exit_code(&bad_input("x").context("while y")), 2);
    }
}
