//! Timestamps as the store keeps them: RFC 3339, UTC, whole seconds (`2024-05-01T12:00:00Z`).
//!
//! The fixed width makes them sort as text; [`unix`] reads them back fast (cost reports read
//! hundreds of thousands), and calendar-month arithmetic for the monthly cap lives here too.

use crate::error::bad_input;
use time::format_description::well_known::Rfc3339;
use time::{Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Now, in the store's format.
pub fn now() -> String {
    format(now_unix())
}

/// Now, as Unix seconds.
pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix seconds in the store's format.
pub fn format(unix: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (y, m, d) = (t.year(), u8::from(t.month()), t.day());
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Unix seconds of a stored timestamp (or any RFC 3339 text); `None` when it is not one.
pub fn unix(text: &str) -> Option<i64> {
    fast_unix(text).or_else(|| {
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp())
    })
}

/// Any RFC 3339 timestamp normalised to the store's format; `None` when it is not one.
pub fn normalize(text: &str) -> Option<String> {
    unix(text.trim()).map(format)
}

/// `YYYY-MM-DDTHH:MM:SSZ` without the general parser.
fn fast_unix(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    if d > i64::from(Month::try_from(mo as u8).ok()?.length(y as i32)) {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The calendar month (UTC) holding `unix`: `(start, end)` in Unix seconds, end exclusive.
pub fn month_bounds(unix: i64) -> (i64, i64) {
    let t = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (y, m) = (i64::from(t.year()), i64::from(u8::from(t.month())));
    let start = days_from_civil(y, m, 1) * 86400;
    let end = if m == 12 {
        days_from_civil(y + 1, 1, 1)
    } else {
        days_from_civil(y, m + 1, 1)
    } * 86400;
    (start, end)
}

/// A point in time from the command line: `YYYY-MM-DD` (midnight UTC), RFC 3339, or a duration
/// ago (`7d`, `12h`). `flag` names the option in the error.
pub fn parse_when(text: &str, flag: &str, now: i64) -> anyhow::Result<i64> {
    let t = text.trim();
    if let Some(u) = unix(t) {
        return Ok(u);
    }
    if let Ok(d) = crate::date::calendar_date(t) {
        return Ok(PrimitiveDateTime::new(d, Time::MIDNIGHT)
            .assume_offset(UtcOffset::UTC)
            .unix_timestamp());
    }
    if let Some(why) = crate::date::no_such_day(t) {
        return Err(bad_input(format!("{flag} {why}")));
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) && t.ends_with(|c: char| c.is_ascii_alphabetic())
    {
        // A duration ago; a bad or absurd one says why (it is not a date either).
        return match crate::duration::parse(t) {
            Ok(ago) => Ok(now.saturating_sub(i64::try_from(ago.as_secs()).unwrap_or(i64::MAX))),
            Err(e) => Err(bad_input(format!("{flag} {e}"))),
        };
    }
    Err(bad_input(format!(
        "{flag} '{text}' is not a date — write it like 2024-05-01, 2024-05-01T12:00:00Z or 7d (7 days ago)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_reads_back() {
        assert_eq!(format(0), "1970-01-01T00:00:00Z");
        assert_eq!(format(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(unix("2024-05-01T12:00:00Z"), Some(1_714_564_800));
        assert_eq!(unix("2024-05-01T14:00:00+02:00"), Some(1_714_564_800));
        assert_eq!(
            normalize("2024-05-01T14:00:00.75+02:00").as_deref(),
            Some("2024-05-01T12:00:00Z")
        );
        assert_eq!(unix("2024-02-30T00:00:00Z"), None);
        assert_eq!(unix("yesterday"), None);
    }

    #[test]
    fn fast_path_agrees_with_the_parser() {
        for t in [
            0i64,
            951_782_400,
            1_709_164_800,
            1_735_689_599,
            4_102_444_800,
        ] {
            let s = format(t);
            assert_eq!(fast_unix(&s), Some(t), "{s}");
            assert_eq!(
                OffsetDateTime::parse(&s, &Rfc3339)
                    .unwrap()
                    .unix_timestamp(),
                t
            );
        }
    }

    #[test]
    fn months() {
        let feb_2024 = unix("2024-02-10T00:00:00Z").unwrap();
        let (s, e) = month_bounds(feb_2024);
        assert_eq!(format(s), "2024-02-01T00:00:00Z");
        assert_eq!(format(e), "2024-03-01T00:00:00Z");
        let (s, e) = month_bounds(unix("2023-12-31T23:59:59Z").unwrap());
        assert_eq!(
            (format(s).as_str(), format(e).as_str()),
            ("2023-12-01T00:00:00Z", "2024-01-01T00:00:00Z")
        );
    }

    #[test]
    fn when() {
        let now = unix("2024-05-10T00:00:00Z").unwrap();
        assert_eq!(
            parse_when("2024-05-01", "--since", now).unwrap(),
            unix("2024-05-01T00:00:00Z").unwrap()
        );
        assert_eq!(
            parse_when("7d", "--since", now).unwrap(),
            unix("2024-05-03T00:00:00Z").unwrap()
        );
        let e = parse_when("2026-02-31", "--until", now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--until '2026-02-31' is not a day of the calendar: February 2026 has 28 days"
        );
        assert_eq!(crate::error::exit_code(&e), 2);
        let e = parse_when("soon", "--since", now).unwrap_err().to_string();
        assert_eq!(e, "--since 'soon' is not a date — write it like 2024-05-01, 2024-05-01T12:00:00Z or 7d (7 days ago)");
    }
}
