//! `DriverError`: what went wrong talking to a provider, as one sentence.
//!
//! The message is the provider's own (read through `api.errors` pointers), never a secret: every
//! message passes through [`scrub`] with the account's secret values before it is stored.

pub use crate::catalog::schema::Refusal;
pub use crate::error::Hint;
use std::fmt;

/// What kind of failure a [`DriverError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401/403: the credentials are wrong or lack a permission.
    Auth,
    /// 404 or a not-found error code.
    NotFound,
    /// 429 or a throttle error code (after the retries ran out).
    Throttled,
    /// Any other error answer of the API.
    Api,
    /// No answer: connection refused, reset, DNS.
    Network,
    /// The request or a wait ran out of time.
    Timeout,
    /// The driver refuses the operation (retired provider, invalid request).
    Refused,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Api => "api",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Refused => "refused",
        }
    }
}

/// An error from a provider call: `digitalocean: Unable to authenticate you (HTTP 401) — check …`.
#[derive(Debug, Clone)]
pub struct DriverError {
    pub kind: ErrorKind,
    /// HTTP status of the answer, when there was one.
    pub status: Option<u16>,
    /// The provider's message (or a description of the transport failure).
    pub message: String,
    /// The provider's machine error code, when it sent one.
    pub code: Option<String>,
    /// Provider id.
    pub provider: String,
    /// What to do about it, appended after ` — ` (boxed: it is rare, and keeps results small).
    pub hint: Option<Box<Hint>>,
    /// Create only: the server may have acted (timeout, 5xx, reset after sending).
    pub(crate) in_doubt: bool,
    /// The answer is one of the catalog's documented refusals (`[[api.errors.refusals]]`): no
    /// capacity, no quota, or the plan not offered there.
    pub refusal: Option<Refusal>,
    /// Set when the fault is the catalog's, not the provider's (a template that does not
    /// render): bad input, exit code 2.
    catalog_fault: bool,
}

impl DriverError {
    pub fn new(provider: &str, kind: ErrorKind, message: impl Into<String>) -> DriverError {
        DriverError {
            kind,
            status: None,
            message: message.into(),
            code: None,
            provider: provider.to_string(),
            hint: None,
            in_doubt: false,
            refusal: None,
            catalog_fault: false,
        }
    }

    /// Mark this error as the catalog's fault (a template that does not render): exit code 2.
    pub fn from_catalog(mut self) -> DriverError {
        self.catalog_fault = true;
        self
    }

    /// The exit code: 2 when the catalog is at fault, else 1 (the operation failed).
    pub fn code(&self) -> u8 {
        if self.catalog_fault {
            2
        } else {
            1
        }
    }

    pub fn with_status(mut self, status: u16) -> DriverError {
        self.status = Some(status);
        self
    }

    pub fn with_hint(mut self, hint: impl Into<Hint>) -> DriverError {
        self.hint = Some(Box::new(hint.into()));
        self
    }

    /// Whether a later retry may succeed (throttling, network, timeouts, server errors).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Throttled | ErrorKind::Network | ErrorKind::Timeout
        ) || self.status.is_some_and(|s| s >= 500)
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Provider text reaches the terminal only through `printable`.
        let message = printable(&self.message);
        let msg = message.trim().trim_end_matches('.');
        write!(f, "{}: {}", self.provider, msg)?;
        let code = self.code.as_deref().map(printable);
        match (self.status, &code) {
            (Some(s), Some(c)) if !msg.contains(c.as_str()) => write!(f, " (HTTP {s}, {c})")?,
            (Some(s), _) => write!(f, " (HTTP {s})")?,
            (None, Some(c)) if !msg.contains(c.as_str()) => write!(f, " ({c})")?,
            _ => {}
        }
        if let Some(h) = &self.hint {
            write!(f, " — {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DriverError {}

/// Provider text for a message: secrets scrubbed from the whole text first, then control
/// characters stripped, whitespace folded to one line, and only then cut to `max` characters
/// (cutting first could leave all but the end of a secret that straddles the cut).
pub(crate) fn excerpt(text: &str, secrets: &[String], max: usize) -> String {
    let clean = printable(&scrub(text, secrets));
    let one_line = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max).collect();
    cut.push('…');
    cut
}

pub(crate) use crate::error::printable;

/// Replace every occurrence of a secret value in `text` with `(redacted)`.
pub(crate) fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= 4 && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "(redacted)");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sentence_with_status_and_hint() {
        let e = DriverError::new("acme", ErrorKind::Auth, "Unable to authenticate you.")
            .with_status(401)
            .with_hint(Hint::Verify {
                provider: "acme".into(),
                noun: "token".into(),
            });
        assert_eq!(
            e.to_string(),
            "acme: Unable to authenticate you (HTTP 401) — check the token with `capsule openmesh provider verify acme`"
        );
    }

    #[test]
    fn excerpt_scrubs_before_cutting() {
        let secret = "tok_0123456789abcdefghijklmnopqrstuvwxyz".to_string();
        // The secret straddles the 200-character cut.
        let text = format!("{}{secret} and more", "x".repeat(190));
        let e = excerpt(&text, std::slice::from_ref(&secret), 200);
        assert!(!e.contains("tok_0123"), "{e}");
        assert!(e.contains("(redacted)"), "{e}");
        assert!(e.ends_with('…'));
    }

    #[test]
    fn display_strips_terminal_escapes() {
        let e = DriverError::new(
            "acme",
            ErrorKind::Api,
            "bad \u{1b}[31mred\u{1b}[0m\u{7}\nline",
        )
        .with_status(500);
        assert_eq!(e.to_string(), "acme: bad red line (HTTP 500)");
    }

    #[test]
    fn scrub_removes_secrets() {
        assert_eq!(
            scrub("bad token abcdef123", &["abcdef123".into()]),
            "bad token (redacted)"
        );
    }
}
