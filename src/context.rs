//! `Ctx`: what every command needs, built once from the global options.
//!
//! It owns the effective catalog, the output style, the home directory and the terminal facts.
//! It does no work of its own beyond loading the catalog.

use crate::catalog::{self, Catalog, ProviderEntry};
use crate::cli::{ColorChoice, Global, OutputFormat};
use crate::driver::{Driver, DriverOptions};
use crate::messages;
use crate::render::Style;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Per-invocation context.
pub struct Ctx {
    pub home: PathBuf,
    pub catalog: Catalog,
    pub style: Style,
    pub verbose: u8,
    pub yes: bool,
    /// The credentials account (`--account`, `CAPSULE_ACCOUNT`, else `default`).
    pub account: String,
    /// Whether the account was named (listings then show that account only).
    pub account_named: bool,
    /// stdin and stderr are terminals: prompts and progress bars are allowed.
    pub interactive: bool,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Prices older than this are announced (once) by [`Ctx::note_stale`].
    pub stale_after: Duration,
    stale_noted: std::cell::Cell<bool>,
}

impl Ctx {
    pub fn new(global: &Global) -> anyhow::Result<Ctx> {
        let home = home_dir();
        if let Some(state) = &global.state {
            crate::state::set_state_flag(state);
        }
        let stale_after = global.stale_after;
        let named = global
            .account
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty());
        if let Some(problem) = named.and_then(crate::state::names::account_problem) {
            return Err(crate::error::bad_input(format!(
                "--account: {problem} (or unset CAPSULE_ACCOUNT)"
            )));
        }
        let (catalog, notes) =
            catalog::load_layered(&home, global.catalog.as_deref(), global.embedded_only)?;
        for n in notes {
            messages::info(n);
        }
        let stdout_tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stdout_tty && !no_color,
        };
        colored::control::set_override(color);
        Ok(Ctx {
            home,
            catalog,
            style: Style {
                format: global.output,
                color,
                width: if stdout_tty { terminal_width() } else { None },
                wide: global.wide,
                header: !global.no_header,
                quiet: global.quiet,
                // Leaked once per process: `Style` stays `Copy` for every renderer call.
                columns: global
                    .columns
                    .clone()
                    .map(|c| &*Box::leak(c.into_boxed_slice())),
                status_tone: crate::commands::status_tone,
            },
            verbose: global.verbose,
            yes: global.yes,
            account: named.unwrap_or(crate::state::DEFAULT_ACCOUNT).to_string(),
            account_named: named.is_some(),
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            connect_timeout: secs(global.connect_timeout, 10.0),
            request_timeout: secs(global.request_timeout, 60.0),
            stale_after,
            stale_noted: std::cell::Cell::new(false),
        })
    }

    /// Announce, once per command and on stderr only, the providers among `ids` whose prices are
    /// older than `--stale-after` (retired providers excepted: nothing refreshes them).
    pub fn note_stale<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        // Scripts reading JSON or CSV get the dates in the data; the notice is for a person:
        // a table, or machine output watched on a terminal.
        if self.stale_noted.get()
            || (self.format() != OutputFormat::Table && !std::io::stderr().is_terminal())
        {
            return;
        }
        let now = crate::state::time::now_unix();
        let mut seen = std::collections::BTreeSet::new();
        let mut old = Vec::new();
        for id in ids {
            if !seen.insert(id.to_string()) {
                continue;
            }
            let Some(p) = self.catalog.provider(id) else {
                continue;
            };
            if p.is_retired() {
                continue;
            }
            if let Some(days) = prices_age_days(&self.catalog, p, now) {
                if days as f64 * 86400.0 > self.stale_after.as_secs_f64() {
                    old.push(format!(
                        "{} ({}, {days} days old)",
                        p.id(),
                        p.meta.prices_as_of
                    ));
                }
            }
        }
        if old.is_empty() {
            return;
        }
        self.stale_noted.set(true);
        messages::info(format!("prices of {} are older than {} days — run `capsule openmesh catalog refresh` (or set --stale-after)",
            old.join(", "),
            (self.stale_after.as_secs_f64() / 86400.0).round()));
    }

    pub fn format(&self) -> OutputFormat {
        self.style.format
    }

    /// Driver settings from the global options; with the `dev` feature, the test suite shortens
    /// the pauses through `CAPSULE_BACKOFF_MS` and `CAPSULE_POLL_INTERVAL_MS`.
    pub fn driver_options(&self) -> anyhow::Result<DriverOptions> {
        #[cfg_attr(not(feature = "dev"), allow(unused_mut))]
        let mut opts = DriverOptions {
            connect_timeout: self.connect_timeout,
            timeout: self.request_timeout,
            verbose: self.verbose,
            ..DriverOptions::default()
        };
        #[cfg(feature = "dev")]
        {
            if let Some(d) = env_millis("CAPSULE_BACKOFF_MS")? {
                opts.backoff_base = d;
            }
            if let Some(d) = env_millis("CAPSULE_POLL_INTERVAL_MS")? {
                opts.poll_interval = Some(d);
            }
        }
        Ok(opts)
    }

    /// The provider's catalog entry, or an "unknown provider" error with a suggestion.
    pub fn provider(&self, id: &str) -> anyhow::Result<&ProviderEntry> {
        self.catalog.provider(id).ok_or_else(|| {
            crate::error::unknown(
                "provider",
                id,
                self.catalog.providers.iter().map(|p| p.meta.id.as_str()),
                "providers",
            )
        })
    }

    /// A driver for a provider with the resolved credentials of the command's account.
    pub fn driver(&self, provider_id: &str) -> anyhow::Result<Driver> {
        self.driver_for(provider_id, &self.account)
    }

    /// A driver for a provider with the resolved credentials of `account` (a node's own).
    pub fn driver_for(&self, provider_id: &str, account: &str) -> anyhow::Result<Driver> {
        let provider = self.provider(provider_id)?;
        let resolved =
            crate::credentials::resolve(&self.home, provider, account, &Default::default())?;
        // A named account's gap is said with its name and `--account`.
        if account != crate::state::DEFAULT_ACCOUNT {
            if let Some(e) = resolved.missing_error() {
                return Err(e);
            }
        }
        Driver::new(provider, resolved.credentials(), self.driver_options()?)
    }

    /// Whether `account` of a provider has every required credential field.
    pub fn configured(&self, provider: &ProviderEntry, account: &str) -> anyhow::Result<bool> {
        Ok(crate::credentials::configured(&self.home, provider, account)? != "no")
    }

    /// A tokio runtime for commands that talk to providers.
    pub fn runtime(&self) -> anyhow::Result<tokio::runtime::Runtime> {
        Ok(tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?)
    }
}

/// Whole days since a provider's prices were dated: the refresh time when they come from the
/// refreshed layer, else `prices_as_of` (midnight UTC). `None` when no date is known.
pub fn prices_age_days(catalog: &Catalog, p: &ProviderEntry, now: i64) -> Option<i64> {
    let when = match catalog.refreshed.get(p.id()) {
        Some(t) => crate::state::time::unix(t),
        None => crate::state::time::unix(&format!("{}T00:00:00Z", p.meta.prices_as_of)),
    }?;
    Some(((now - when).max(0)) / 86400)
}

/// The width of the terminal on stdout, if it tells.
fn terminal_width() -> Option<usize> {
    terminal_size::terminal_size_of(std::io::stdout())
        .map(|(w, _)| usize::from(w.0))
        .filter(|w| *w > 0)
}

fn secs(v: f64, default: f64) -> Duration {
    let v = if v.is_finite() && v > 0.0 { v } else { default };
    Duration::try_from_secs_f64(v.min(MAX_TIMEOUT_SECS)).unwrap_or(Duration::from_secs(60))
}

#[cfg(feature = "dev")]
fn env_millis(var: &str) -> anyhow::Result<Option<Duration>> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| {
                crate::error::bad_input(format!(
                    "{var} must be a whole number of milliseconds, e.g. {var}=200"
                ))
            }),
        _ => Ok(None),
    }
}

/// `$CAPSULE_HOME`, else `~/.capsule`.
pub fn home_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CAPSULE_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let base = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    base.join(".capsule")
}

/// The longest `--connect-timeout` / `--request-timeout`: one day.
pub const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// The value parser of money and size options (`--max-price`, `--min-memory`, `--budget`, …):
/// a finite number, more than 0.
pub fn amount_value(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(_) => Err(format!("'{text}' must be a positive number")),
        Err(_) => Err(format!(
            "'{text}' is not a number — write it like 4 or 0.25"
        )),
    }
}

/// The value parser of `--connect-timeout` and `--request-timeout`: seconds, more than 0 and
/// at most [`MAX_TIMEOUT_SECS`].
pub fn timeout_secs_value(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds — write it like 30 or 2.5"))?;
    if !(v.is_finite() && v > 0.0 && v <= MAX_TIMEOUT_SECS) {
        return Err(format!(
            "{text} seconds is out of range — give more than 0 and at most {MAX_TIMEOUT_SECS} (one day)"
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_timeouts_and_amounts_are_refused_not_a_panic() {
        for bad in ["1e20", "1e300", "0", "-3", "NaN", "inf", "86401", "soon"] {
            assert!(timeout_secs_value(bad).is_err(), "{bad}");
        }
        assert_eq!(timeout_secs_value("2.5"), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "lots", ""] {
            assert!(amount_value(bad).is_err(), "{bad}");
        }
        assert_eq!(amount_value(" 0.25 "), Ok(0.25));
    }
}
