//! Durations as people write them on the command line (`90s`, `10m`, `1h30m`, `30d`, `1w`) and
//! as capsule writes them back.

use std::time::Duration;

/// The longest duration capsule accepts anywhere (`--timeout`, `--since 7d`, `--stale-after`, …):
/// 1,000 years.
pub const MAX: Duration = Duration::from_secs(365_250 * 86_400);

/// The value parser of every duration option: `90s`, `10m`, `2h`, `30d`, `1w`, `1h30m`. A bare
/// number is refused (`30` could mean anything), `humantime` reads the units, months and years
/// are refused (their length varies), and anything past [`MAX`] is refused rather than
/// overflowing.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let hint = "write it like 90s, 10m, 2h, 30d or 1w";
    let too_long = || format!("'{text}' is too long a duration — at most 365250d (1,000 years)");
    if let Ok(n) = t.parse::<f64>() {
        return Err(if n.is_finite() {
            format!("'{text}' has no unit — write {t}d for days, or {t}h, {t}m, {t}s")
        } else {
            format!("'{text}' is not a duration — {hint}")
        });
    }
    let d = {
        let months_or_years = t
            .split(|c: char| !c.is_ascii_alphabetic())
            .any(|u| matches!(u, "M" | "month" | "months" | "y" | "year" | "years"));
        if months_or_years {
            return Err(format!(
                "'{text}' counts months or years, which vary in length — use s, m, h, d or w"
            ));
        }
        humantime::parse_duration(t).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => too_long(),
            humantime::DurationError::UnknownUnit { unit, .. } => {
                format!("'{text}' has an unknown unit '{unit}' — use s, m, h, d or w")
            }
            _ => format!("'{text}' is not a duration — {hint}"),
        })?
    };
    if d > MAX {
        return Err(too_long());
    }
    Ok(d)
}

/// A duration as `45m`, `1h30m`, `90s` (the way `--timeout` takes it).
pub fn format(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse("30d").unwrap(), Duration::from_secs(30 * 86400));
        assert!(parse("ten").is_err());
        assert!(parse("5y").is_err());
        let bare = parse("30").unwrap_err();
        assert!(bare.contains("30d"), "{bare}");
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn absurd_durations_are_refused_not_a_panic() {
        assert!(parse("90").is_err(), "a bare number has no unit");
        assert_eq!(parse("1w").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        for bad in [
            "99999999999999999999s",
            "99999999999999999999d",
            "99999999999999999999w",
            "1e30",
            "1e300w",
            "365251d",
            "-5",
            "NaN",
            "inf",
            "3 months",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("365250d").is_ok());
    }
}
