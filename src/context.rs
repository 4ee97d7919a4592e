//! `Ctx`: what every command needs, built once from the global options.
//!
//! It owns the effective catalog, the output style, the home directory and the terminal facts.
//! It does no work of its own beyond loading the catalog.

use crate::catalog::{self, Catalog, ProviderEntry};
use crate::cli::{ColorChoice, Global, OutputFormat};
use crate::driver::{Driver, DriverOptions};
use crate::render::Style;
use is_terminal::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Per-invocation context.
pub struct Ctx {
    pub home: PathBuf,
    pub catalog: Catalog,
    pub style: Style,
    pub verbose: u8,
    pub yes: bool,
    /// stdin and stderr are terminals: prompts and progress bars are allowed.
    pub interactive: bool,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl Ctx {
    pub fn new(global: &Global) -> anyhow::Result<Ctx> {
        let catalog = catalog::load(global.catalog.as_deref())?;
        let stdout_tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stdout_tty && !no_color,
        };
        colored::control::set_override(color);
        Ok(Ctx {
            home: home_dir(),
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
            },
            verbose: global.verbose,
            yes: global.yes,
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            connect_timeout: secs(global.connect_timeout, 10.0),
            request_timeout: secs(global.request_timeout, 60.0),
        })
    }

    pub fn format(&self) -> OutputFormat {
        self.style.format
    }

    /// Driver settings from the global options; the test suite shortens the pauses through
    /// `CAPSULE_BACKOFF_MS` and `CAPSULE_POLL_INTERVAL_MS`.
    pub fn driver_options(&self) -> anyhow::Result<DriverOptions> {
        let mut opts = DriverOptions {
            connect_timeout: self.connect_timeout,
            timeout: self.request_timeout,
            verbose: self.verbose,
            ..DriverOptions::default()
        };
        if let Some(d) = env_millis("CAPSULE_BACKOFF_MS")? {
            opts.backoff_base = d;
        }
        if let Some(d) = env_millis("CAPSULE_POLL_INTERVAL_MS")? {
            opts.poll_interval = Some(d);
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
                "capsule openmesh providers",
            )
        })
    }

    /// A driver for a provider with its resolved credentials (flag-less: environment, then file).
    pub fn driver(&self, provider_id: &str) -> anyhow::Result<Driver> {
        let provider = self.provider(provider_id)?;
        let creds = crate::credentials::load(&self.home, provider)?;
        Driver::new(provider, creds, self.driver_options()?)
    }

    /// A tokio runtime for commands that talk to providers.
    pub fn runtime(&self) -> anyhow::Result<tokio::runtime::Runtime> {
        Ok(tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?)
    }
}

/// The width of the terminal on stdout, if it tells.
fn terminal_width() -> Option<usize> {
    terminal_size::terminal_size_of(std::io::stdout())
        .map(|(w, _)| usize::from(w.0))
        .filter(|w| *w > 0)
}

fn secs(v: f64, default: f64) -> Duration {
    if v.is_finite() && v > 0.0 {
        Duration::from_secs_f64(v)
    } else {
        Duration::from_secs_f64(default)
    }
}

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

/// Parse `90s`, `10m`, `2h`, `30d`, or bare seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let n: f64 = num.trim().parse().map_err(|_| {
        crate::error::bad_input(format!(
            "'{text}' is not a duration — write it like 90s, 10m, 2h or 30d"
        ))
    })?;
    let mult = match unit {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        "w" => 604800.0,
        _ => {
            return Err(crate::error::bad_input(format!(
                "'{text}' has an unknown unit '{unit}' — use s, m, h, d or w"
            )))
        }
    };
    if !(n.is_finite() && n >= 0.0) {
        return Err(crate::error::bad_input(format!(
            "'{text}' is not a positive duration"
        )));
    }
    Ok(Duration::from_secs_f64(n * mult))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
