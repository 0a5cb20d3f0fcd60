//! Conversions between WIT timestamps (microseconds since the Unix epoch) and
//! [`SystemTime`], and the ISO-8601 text form used in deterministic GUIDs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, UTC, as in the WIT `timestamp` type.
pub(crate) type Micros = i64;

pub(crate) fn to_system_time(micros: Micros) -> SystemTime {
    let offset = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    }
}

/// Saturates at the ends of the `i64` range, some 292,000 years away.
pub(crate) fn from_system_time(time: SystemTime) -> Micros {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// Saturates like [`from_system_time`].
pub(crate) fn duration_micros(duration: Duration) -> Micros {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// `yyyy-MM-ddTHH:mm:ss.fffffffZ`, the .NET round-trip ("o") format that Durable Functions
/// uses when it derives GUIDs from the orchestration time.
pub(crate) fn to_iso8601(micros: Micros) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let in_day = micros.rem_euclid(86_400_000_000);
    let (year, month, day) = civil_from_days(days);
    let seconds = in_day / 1_000_000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}0Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        in_day % 1_000_000,
    )
}

/// Howard Hinnant's `civil_from_days`: proleptic Gregorian date of a day count from
/// 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_the_dotnet_round_trip_format() {
        assert_eq!(to_iso8601(0), "1970-01-01T00:00:00.0000000Z");
        // 2024-02-29T13:45:30.123456Z
        assert_eq!(to_iso8601(1_709_214_330_123_456), "2024-02-29T13:45:30.1234560Z");
        assert_eq!(to_iso8601(-1), "1969-12-31T23:59:59.9999990Z");
    }

    #[test]
    fn system_time_round_trips_through_micros() {
        for micros in [0, 1, -1, 1_709_214_330_123_456, -86_400_000_001] {
            assert_eq!(from_system_time(to_system_time(micros)), micros);
        }
    }
}
