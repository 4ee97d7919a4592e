//! `Secret`: a credential value that cannot be printed by accident.
//!
//! `Debug` and `Display` print `(redacted)`; the only way to the text is `expose()`, which the
//! driver calls at the moment it signs or authorises a request. `hint()` gives the short form
//! users see in `provider show`: at most the first four characters, then `…(redacted)`.

use std::fmt;

/// A secret string (API token, secret access key).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself. Call only where it goes on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `abcd…(redacted)` for keys long enough that four characters reveal little; shorter keys
    /// show nothing.
    pub fn hint(&self) -> String {
        let n = self.0.chars().count();
        if n >= 16 {
            let head: String = self.0.chars().take(4).collect();
            format!("{head}…(redacted)")
        } else {
            "(redacted)".to_string()
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("dop_v1_supersecretvalue");
        assert_eq!(format!("{s}"), "(redacted)");
        assert_eq!(format!("{s:?}"), "(redacted)");
        assert_eq!(s.hint(), "dop_…(redacted)");
        assert_eq!(Secret::new("short").hint(), "(redacted)");
    }
}
