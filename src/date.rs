//! Calendar dates as people and catalog files write them (`2026-11-26`): a real day, or a
//! sentence that says why not. `build.rs` includes this file too, so the catalog's dates are
//! checked by the same rule at build and at run time.

/// A `YYYY-MM-DD` that names a real day; `2026-02-31` is refused with the month's length.
pub fn calendar_date(date: &str) -> Result<time::Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(date, &format).map_err(|_| {
        no_such_day(date).unwrap_or_else(|| format!("'{date}' is not a date like 2026-11-26"))
    })
}

/// Why a `YYYY-MM-DD` with a real month names no day (`2026-02-31`, `2026-04-00`); `None` when
/// the text is not shaped like such a date or the day exists.
pub fn no_such_day(date: &str) -> Option<String> {
    let (y, rest) = date.split_once('-')?;
    let (m, d) = rest.split_once('-')?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return None;
    }
    let (year, day): (i32, u8) = (y.parse().ok()?, d.parse().ok()?);
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let days = month.length(year);
    (day == 0 || day > days)
        .then(|| format!("'{date}' is not a day of the calendar: {month} {year} has {days} days"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_days_pass() {
        assert!(calendar_date("2024-02-29").is_ok());
        assert_eq!(
            calendar_date("2026-02-31").unwrap_err(),
            "'2026-02-31' is not a day of the calendar: February 2026 has 28 days"
        );
        assert_eq!(
            calendar_date("2026-04-00").unwrap_err(),
            "'2026-04-00' is not a day of the calendar: April 2026 has 30 days"
        );
        for bad in [
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026/01/01",
            "2026-01-01x",
            "",
        ] {
            assert_eq!(
                calendar_date(bad).unwrap_err(),
                format!("'{bad}' is not a date like 2026-11-26"),
                "{bad}"
            );
        }
    }
}
