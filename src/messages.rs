//! Messages for people on stderr: the one place that writes notes, warnings, progress lines and
//! the final error.
//!
//! Data goes to stdout through `render`; everything said *about* a run comes through here, with
//! one prefix per kind of message. Every line passes through [`printable`], so text from a
//! provider or a file cannot drive the terminal (a message may span lines on purpose: each line
//! is cleaned on its own).

use crate::error::printable;
use std::fmt::Display;
use std::io::Write;

/// What a message is; it picks the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Progress and outcomes: `capsule: …`.
    Info,
    /// Context for the output (currencies, skipped providers, summaries): `note: …`.
    Note,
    /// Something the user should act on: `capsule: warning: …`.
    Warning,
    /// A risk to the user's machines (an open management API): `capsule: WARNING: …`.
    Danger,
    /// The error that ends the run (written once, by `main`): `capsule: …`.
    Error,
}

impl Level {
    fn prefix(self) -> &'static str {
        match self {
            Level::Info | Level::Error => "capsule: ",
            Level::Note => "note: ",
            Level::Warning => "capsule: warning: ",
            Level::Danger => "capsule: WARNING: ",
        }
    }
}

/// The message as it is written: the prefix, then each line made printable.
pub fn format(level: Level, text: &str) -> String {
    let body = text
        .split('\n')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\n");
    format!("{}{body}", level.prefix())
}

/// Write one message on stderr (a closed stderr is ignored: there is nowhere left to say it).
pub fn say(level: Level, text: impl Display) {
    let line = format(level, &text.to_string());
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `capsule: …`: progress and outcomes.
pub fn info(text: impl Display) {
    say(Level::Info, text);
}

/// `note: …`: context for the output.
pub fn note(text: impl Display) {
    say(Level::Note, text);
}

/// `capsule: warning: …`: something to act on.
pub fn warn(text: impl Display) {
    say(Level::Warning, text);
}

/// `capsule: WARNING: …`: a risk to the user's machines.
pub fn danger(text: impl Display) {
    say(Level::Danger, text);
}

/// `capsule: …`: the error that ends the run.
pub fn error(text: impl Display) {
    say(Level::Error, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_prefix_per_level_and_every_line_printable() {
        assert_eq!(format(Level::Info, "done"), "capsule: done");
        assert_eq!(format(Level::Note, "in USD"), "note: in USD");
        assert_eq!(format(Level::Warning, "disk"), "capsule: warning: disk");
        assert_eq!(format(Level::Danger, "open"), "capsule: WARNING: open");
        assert_eq!(
            format(Level::Error, "a\u{1b}[31mb\nc\u{7}d"),
            "capsule: ab\ncd"
        );
    }
}
