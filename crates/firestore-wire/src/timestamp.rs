//! `Timestamp`: a point in time with nanosecond precision, written as an RFC 3339 string in JSON.
//!
//! Output is the proto3 JSON canonical form: UTC (`Z`) with 0, 3, 6 or 9 fractional digits,
//! which is what Firestore and its emulator print. Input accepts any RFC 3339 offset.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds and nanoseconds since the Unix epoch, ordered chronologically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    pub seconds: i64,
    /// Always in `0..1_000_000_000`.
    pub nanos: u32,
}

/// Why a string is not an RFC 3339 timestamp Firestore would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {input:?}: {reason}")]
pub struct TimestampError {
    pub input: String,
    pub reason: String,
}

/// Firestore accepts years 0001 through 9999 only.
const MIN_SECONDS: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
const MAX_SECONDS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

impl Timestamp {
    pub fn new(seconds: i64, nanos: u32) -> Self {
        debug_assert!(nanos < 1_000_000_000);
        Timestamp { seconds, nanos }
    }

    pub fn from_unix_millis(millis: i64) -> Self {
        Timestamp {
            seconds: millis.div_euclid(1000),
            nanos: (millis.rem_euclid(1000) as u32) * 1_000_000,
        }
    }

    pub fn from_unix_micros(micros: i64) -> Self {
        Timestamp {
            seconds: micros.div_euclid(1_000_000),
            nanos: (micros.rem_euclid(1_000_000) as u32) * 1000,
        }
    }

    /// Microseconds since the epoch, truncating any finer part.
    pub fn to_unix_micros(self) -> i64 {
        self.seconds * 1_000_000 + i64::from(self.nanos / 1000)
    }

    pub fn to_unix_millis(self) -> i64 {
        self.seconds * 1000 + i64::from(self.nanos / 1_000_000)
    }

    /// Parses an RFC 3339 string such as `2026-11-22T00:07:26.601Z`.
    pub fn parse(input: &str) -> Result<Self, TimestampError> {
        let err = |reason: &str| TimestampError {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = DateTime::parse_from_rfc3339(input).map_err(|e| err(&e.to_string()))?;
        let seconds = parsed.timestamp();
        if !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) {
            return Err(err("outside the years 0001 to 9999"));
        }
        Ok(Timestamp {
            seconds,
            nanos: parsed.timestamp_subsec_nanos(),
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = DateTime::from_timestamp(self.seconds, 0)
            .map(|d| d.naive_utc())
            .unwrap_or(NaiveDateTime::MIN);
        // Written field by field rather than with `date.format(...)`, whose strftime machinery
        // is about 10 KB of the app's wasm; the same text (chrono's `%Y` signs years outside
        // 0000-9999 and pads the digits to 4).
        let year = date.year();
        if year > 9999 {
            write!(f, "+{year}")?;
        } else if year < 0 {
            write!(f, "-{:04}", year.unsigned_abs())?;
        } else {
            write!(f, "{year:04}")?;
        }
        write!(
            f,
            "-{:02}-{:02}T{:02}:{:02}:{:02}",
            date.month(),
            date.day(),
            date.hour(),
            date.minute(),
            date.second()
        )?;
        let nanos = self.nanos;
        if nanos == 0 {
        } else if nanos.is_multiple_of(1_000_000) {
            write!(f, ".{:03}", nanos / 1_000_000)?;
        } else if nanos.is_multiple_of(1000) {
            write!(f, ".{:06}", nanos / 1000)?;
        } else {
            write!(f, ".{nanos:09}")?;
        }
        f.write_str("Z")
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, canonical: &str) {
        let parsed = Timestamp::parse(input).unwrap();
        assert_eq!(parsed.to_string(), canonical, "formatting {input}");
        assert_eq!(Timestamp::parse(canonical).unwrap(), parsed);
    }

    #[test]
    fn canonical_forms_use_0_3_6_or_9_digits() {
        check("2026-11-22T00:07:26Z", "2026-11-22T00:07:26Z");
        check("2026-11-22T00:07:26.601Z", "2026-11-22T00:07:26.601Z");
        check("2026-11-22T00:07:26.713172Z", "2026-11-22T00:07:26.713172Z");
        check(
            "2026-11-22T00:07:26.7131725Z",
            "2026-11-22T00:07:26.713172500Z",
        );
        check("2026-11-22T00:07:26.1Z", "2026-11-22T00:07:26.100Z");
        check("2026-11-22T05:37:26+05:30", "2026-11-22T00:07:26Z");
        check("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500Z");
    }

    #[test]
    fn rejects_garbage_and_out_of_range_years() {
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("2026-13-01T00:00:00Z").is_err());
        assert!(Timestamp::parse("+10000-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn unix_conversions_round_trip_before_and_after_the_epoch() {
        for millis in [-1_500, -1, 0, 1, 1_763_770_046_601] {
            assert_eq!(Timestamp::from_unix_millis(millis).to_unix_millis(), millis);
            let micros = millis * 1000 + 7;
            assert_eq!(Timestamp::from_unix_micros(micros).to_unix_micros(), micros);
        }
        assert!(Timestamp::from_unix_millis(-1) < Timestamp::from_unix_millis(0));
    }

    #[test]
    fn dates_are_written_as_chrono_formats_them() {
        let seconds = [
            MIN_SECONDS,
            MIN_SECONDS - 1,
            -86_401,
            -1,
            0,
            951_782_400, // 2000-02-29
            1_763_770_046,
            MAX_SECONDS,
            MAX_SECONDS + 1,
            -70_000_000_000,
            i64::MIN,
            i64::MAX,
        ];
        for seconds in seconds {
            let date = DateTime::from_timestamp(seconds, 0)
                .map(|d| d.naive_utc())
                .unwrap_or(NaiveDateTime::MIN);
            let chrono = format!("{}Z", date.format("%Y-%m-%dT%H:%M:%S"));
            assert_eq!(Timestamp::new(seconds, 0).to_string(), chrono, "{seconds}");
        }
    }
}
