//! Wall-clock timestamps for logs, in RFC 3339 UTC (`2026-11-24T09:30:05.123Z`).
//!
//! Computed from the Unix time with the civil-from-days algorithm (H. Hinnant,
//! "chrono-Compatible Low-Level Date Algorithms"), valid for every date after 1970:
//! no time-zone database and no date crate for one field of a log line.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` as RFC 3339 UTC with milliseconds (times before 1970 print as the epoch).
pub fn rfc3339_utc(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The current time, as [`rfc3339_utc`].
pub fn now() -> String {
    rfc3339_utc(SystemTime::now())
}

/// (year, month 1–12, day 1–31) of the day `days` after 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so that leap days end a (March-based) year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of the 400-year era
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of the era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // month, March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> String {
        rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z"); // a leap day of a 400-year leap year
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z"); // 2100 is not a leap year
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
        assert_eq!(at(1_798_675_200, 0), "2026-12-31T00:00:00.000Z");
        assert_eq!(at(1_234_567_890, 0), "2009-02-13T23:31:30.000Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH - Duration::from_secs(1)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn every_day_follows_the_last() {
        // Walk 1970..2400 day by day: dates strictly increase and months have their lengths.
        let mut last = civil_from_days(0);
        for d in 1..(430 * 366) {
            let (y, m, day) = civil_from_days(d);
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m as usize - 1];
            assert!((1..=len).contains(&day), "{y}-{m}-{day}");
            assert!((y, m, day) > last, "{y}-{m}-{day} after {last:?}");
            assert!(day == last.2 + 1 || day == 1, "{y}-{m}-{day} after {last:?}");
            last = (y, m, day);
        }
    }
}
