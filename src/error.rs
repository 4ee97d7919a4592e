//! Errors that choose the exit code, and the hints that say what to do about them.
//!
//! Everything travels as an `anyhow::Error`; [`exit_code`] reads the chain: an [`Error`] whose
//! kind is bad input (usage, catalog) or a provider error caused by the catalog exits 2, any
//! other error exits 1 (the operation failed). A [`Hint`] is data, built where the error is and
//! rendered here, so no deep layer writes a capsule command line.

use std::fmt;

/// An error that knows its exit code.
#[derive(Debug)]
pub enum Error {
    /// Bad input from the user (a flag, an unknown id, a file): one sentence naming the thing,
    /// and what to do. Exit code 2.
    Usage { message: String, hint: Option<Hint> },
    /// The catalog is invalid, or one of its templates does not render at run time: the fix is
    /// in the catalog files. Exit code 2.
    Catalog { message: String },
    /// A provider call failed. Exit code 1 (2 when the catalog made the request unusable).
    Driver(crate::driver::DriverError),
    /// The state store could not be read or written. Exit code 1.
    State { message: String },
    /// A file or stream could not be read or written. Exit code 1.
    Io { message: String },
}

impl Error {
    /// The process exit code this error asks for.
    pub fn code(&self) -> u8 {
        match self {
            Error::Usage { .. } | Error::Catalog { .. } => 2,
            Error::Driver(e) => e.code(),
            Error::State { .. } | Error::Io { .. } => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage { message, hint } => {
                f.write_str(message)?;
                if let Some(h) = hint {
                    write!(f, " — {h}")?;
                }
                Ok(())
            }
            Error::Driver(e) => e.fmt(f),
            Error::Catalog { message } | Error::State { message } | Error::Io { message } => {
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::driver::DriverError> for Error {
    fn from(e: crate::driver::DriverError) -> Error {
        Error::Driver(e)
    }
}

/// What to do about an error. Built as data wherever the error arises; [`fmt::Display`] below is
/// the one place these sentences (and the command lines in them) are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// `did you mean 'x'?`
    DidYouMean(String),
    /// `run `capsule openmesh LISTING` to see them all` (`templates`, `inventory --all`).
    SeeAll(&'static str),
    /// The credentials were refused: check them with `provider verify`.
    Verify { provider: String, noun: String },
    /// A credential is missing: `provider configure` it (or set its environment variable).
    Configure {
        provider: String,
        flag: String,
        env: Option<String>,
    },
    /// A create may have happened: settle it by its tag, never by creating again.
    SettleByTag { why: String },
    /// The refreshed catalog layer is unusable: refresh it again.
    RefreshCatalog,
    /// An unknown column in an inventory file.
    UnknownColumn,
    /// A required column missing from an inventory file.
    MissingColumn,
    /// Advice in words (a provider's own suggestion, `try another region`).
    Advice(String),
}

impl Hint {
    /// `did you mean` the closest candidate within a small edit distance, else where to see them
    /// all.
    pub fn nearest<'a>(
        word: &str,
        candidates: impl IntoIterator<Item = &'a str>,
        listing: &'static str,
    ) -> Hint {
        match suggest(word, candidates) {
            Some(s) => Hint::DidYouMean(s.to_string()),
            None => Hint::SeeAll(listing),
        }
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CLI: &str = "capsule openmesh";
        match self {
            Hint::DidYouMean(s) => write!(f, "did you mean '{s}'?"),
            Hint::SeeAll(listing) => write!(f, "run `{CLI} {listing}` to see them all"),
            Hint::Verify { provider, noun } => {
                write!(f, "check the {noun} with `{CLI} provider verify {provider}`")
            }
            Hint::Configure {
                provider,
                flag,
                env,
            } => {
                write!(f, "run `{CLI} provider configure {provider} {flag} …`")?;
                match env {
                    Some(e) => write!(f, " or set {e}"),
                    None => Ok(()),
                }
            }
            Hint::SettleByTag { why } => write!(
                f,
                "the server may have created it and {why}; `{CLI} sync` or `deploy --resume` settle it by that tag, never by creating it again"
            ),
            Hint::RefreshCatalog => write!(f, "run `{CLI} catalog refresh`"),
            Hint::UnknownColumn => {
                write!(f, "remove it; `{CLI} inventory export` shows the columns")
            }
            Hint::MissingColumn => write!(
                f,
                "add it to the header; `{CLI} inventory export` writes every column"
            ),
            Hint::Advice(text) => f.write_str(text),
        }
    }
}

impl From<String> for Hint {
    fn from(text: String) -> Hint {
        Hint::Advice(text)
    }
}

impl From<&str> for Hint {
    fn from(text: &str) -> Hint {
        Hint::Advice(text.to_string())
    }
}

/// Shorthand: `return Err(bad_input(format!(…)))`.
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Error::Usage {
        message: message.into(),
        hint: None,
    })
}

/// Bad input and what to do about it: `message — hint`.
pub fn bad_input_hint(message: impl Into<String>, hint: Hint) -> anyhow::Error {
    anyhow::Error::new(Error::Usage {
        message: message.into(),
        hint: Some(hint),
    })
}

/// An invalid catalog (exit 2).
pub fn catalog_error(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Error::Catalog {
        message: message.into(),
    })
}

/// The state store failed (exit 1).
pub fn state_error(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Error::State {
        message: message.into(),
    })
}

/// A file or stream could not be read or written (exit 1).
pub fn io_error(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Error::Io {
        message: message.into(),
    })
}

/// The exit code one error of a chain asks for, if it knows one. A renderer reports a bad
/// `--columns` inside an `io::Error`, so the error inside one is read too.
fn code_of(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if let Some(err) = e.downcast_ref::<Error>() {
        return Some(err.code());
    }
    if let Some(d) = e.downcast_ref::<crate::driver::DriverError>() {
        return Some(d.code());
    }
    e.downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|inner| inner.downcast_ref::<Error>())
        .map(Error::code)
}

/// Exit code for an error: 2 when any error in the chain is bad input, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain().filter_map(code_of).max().unwrap_or(1)
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

/// `unknown template 'x' — did you mean 'y'?`, or where to see them all when nothing is close
/// (`listing` is the command after `capsule openmesh`: `templates`).
pub fn unknown<'a>(
    what: &str,
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    listing: &'static str,
) -> anyhow::Error {
    bad_input_hint(
        format!("unknown {what} '{word}'"),
        Hint::nearest(word, candidates, listing),
    )
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

    #[test]
    fn each_kind_carries_its_exit_code() {
        assert_eq!(exit_code(&catalog_error("bad key")), 2);
        assert_eq!(exit_code(&state_error("locked")), 1);
        assert_eq!(exit_code(&io_error("cannot write")), 1);
        let driver = crate::driver::DriverError::new(
            "acme",
            crate::driver::ErrorKind::Refused,
            "does not render",
        );
        assert_eq!(exit_code(&anyhow::Error::new(driver.clone())), 1);
        assert_eq!(
            exit_code(&anyhow::Error::new(Error::Driver(driver.from_catalog()))),
            2
        );
        // Bad input anywhere in the chain wins.
        assert_eq!(
            exit_code(&bad_input("x").context(Error::State {
                message: "y".into()
            })),
            2
        );
    }

    #[test]
    fn hints_render_in_one_place() {
        let e = bad_input_hint(
            "acme has no token",
            Hint::Configure {
                provider: "acme".into(),
                flag: "--api-key".into(),
                env: Some("ACME_TOKEN".into()),
            },
        );
        assert_eq!(
            e.to_string(),
            "acme has no token — run `capsule openmesh provider configure acme --api-key …` or set ACME_TOKEN"
        );
        assert_eq!(
            unknown("template", "hive-larg", ["hive-large"], "templates").to_string(),
            "unknown template 'hive-larg' — did you mean 'hive-large'?"
        );
        assert_eq!(
            unknown("template", "zzzzzz", ["hive-large"], "templates").to_string(),
            "unknown template 'zzzzzz' — run `capsule openmesh templates` to see them all"
        );
    }
}
