//! Who causes an event: the machine and the user every history entry records, so a team that
//! shares one store sees which laptop or CI runner, and which person, did what.
//!
//! The machine is `CAPSULE_MACHINE` when set (a CI runner whose hostname changes every run can
//! give itself a stable name), else the hostname; the user is `$USER`, else `$LOGNAME`, else the
//! name the operating system gives the process's user. Both are plain text, never a secret:
//! control characters are dropped and each is capped at [`MAX_LEN`] characters.

use std::sync::OnceLock;

/// The longest machine or user name recorded (a hostname's limit).
pub const MAX_LEN: usize = 255;

/// The machine and the user this process records its events under. An empty field means
/// unknown (recorded as NULL, as events from before v6 are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub machine: String,
    pub user: String,
}

static CURRENT: OnceLock<Actor> = OnceLock::new();

/// This process's actor, looked up once.
pub fn current() -> &'static Actor {
    CURRENT.get_or_init(|| Actor {
        machine: clean(
            env("CAPSULE_MACHINE")
                .or_else(|| whoami::hostname().ok())
                .unwrap_or_default(),
        ),
        user: clean(
            env("USER")
                .or_else(|| env("LOGNAME"))
                .or_else(|| whoami::username().ok())
                .unwrap_or_default(),
        ),
    })
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The text as it is stored: trimmed, without control characters, at most [`MAX_LEN`]
/// characters.
pub fn clean(text: String) -> String {
    text.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_LEN)
        .collect()
}

/// `None` for an unknown (empty) field, as the store keeps it.
pub fn known(text: &str) -> Option<&str> {
    Some(text).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_capped() {
        assert_eq!(clean("  ci-runner-7\n".into()), "ci-runner-7");
        assert_eq!(clean("a\u{1b}[31mb".into()), "a[31mb");
        assert_eq!(clean("x".repeat(300)).len(), MAX_LEN);
        assert_eq!(known(""), None);
        assert_eq!(known("ann"), Some("ann"));
    }
}
