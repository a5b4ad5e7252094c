//! Today's cloud spend against the daily budget: the billed cost of requests served by
//! cloud channels, counted in memory on the hot path and rebuilt from the logs on start
//! (so it survives restarts). The day ends at midnight in the configured time zone.

use std::sync::Mutex;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Resolve a time zone setting: an IANA name, or empty for the system's zone.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    if name.trim().is_empty() {
        return Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC));
    }
    TimeZone::get(name.trim())
        .map_err(|_| format!("unknown time zone '{name}' (use an IANA name like Europe/Berlin)"))
}

/// Start and end (unix ms) of the day holding `now_ms` in `tz`.
pub fn day_bounds(now_ms: i64, tz: &TimeZone) -> (i64, i64) {
    let fallback = (now_ms - now_ms.rem_euclid(86_400_000), 0);
    let Ok(ts) = Timestamp::from_millisecond(now_ms) else {
        return (fallback.0, fallback.0 + 86_400_000);
    };
    let zoned = ts.to_zoned(tz.clone());
    let start = zoned
        .start_of_day()
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(fallback.0);
    let end = zoned
        .tomorrow()
        .and_then(|t| t.start_of_day())
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(start + 86_400_000);
    (start, end)
}

#[derive(Debug)]
struct Day {
    start_ms: i64,
    end_ms: i64,
    nano: i64,
}

/// The running total for the current day.
#[derive(Debug)]
pub struct CloudSpend {
    tz: Mutex<TimeZone>,
    day: Mutex<Day>,
}

impl CloudSpend {
    /// Start counting from `spent_today` (what the logs say was spent since `start_ms`).
    pub fn new(tz: TimeZone, now_ms: i64, spent_today: i64) -> Self {
        let (start_ms, end_ms) = day_bounds(now_ms, &tz);
        CloudSpend {
            tz: Mutex::new(tz),
            day: Mutex::new(Day {
                start_ms,
                end_ms,
                nano: spent_today,
            }),
        }
    }

    /// Where today started, for rebuilding the total from the logs.
    pub fn today_start(&self, now_ms: i64) -> i64 {
        day_bounds(now_ms, &self.tz.lock().expect("tz lock")).0
    }

    fn roll(&self, day: &mut Day, now_ms: i64) {
        if now_ms >= day.end_ms || now_ms < day.start_ms {
            let (s, e) = day_bounds(now_ms, &self.tz.lock().expect("tz lock"));
            *day = Day {
                start_ms: s,
                end_ms: e,
                nano: 0,
            };
        }
    }

    /// Add a cloud request's billed cost.
    pub fn add(&self, now_ms: i64, nano: i64) {
        let mut day = self.day.lock().expect("spend lock");
        self.roll(&mut day, now_ms);
        day.nano += nano.max(0);
    }

    /// Spent today.
    pub fn today(&self, now_ms: i64) -> i64 {
        let mut day = self.day.lock().expect("spend lock");
        self.roll(&mut day, now_ms);
        day.nano
    }

    /// Switch time zone and restart the day's count at `spent_today`.
    pub fn reset(&self, tz: TimeZone, now_ms: i64, spent_today: i64) {
        let (start_ms, end_ms) = day_bounds(now_ms, &tz);
        *self.tz.lock().expect("tz lock") = tz;
        *self.day.lock().expect("spend lock") = Day {
            start_ms,
            end_ms,
            nano: spent_today,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-03-10T12:00:00Z
    const NOON_UTC: i64 = 1_773_144_000_000;

    #[test]
    fn days_end_at_local_midnight() {
        let (s, e) = day_bounds(NOON_UTC, &TimeZone::UTC);
        assert_eq!(s, NOON_UTC - 12 * 3_600_000);
        assert_eq!(e - s, 86_400_000);
        let tokyo = zone("Asia/Tokyo").unwrap();
        // 12:00Z is 21:00 in Tokyo: the day began at 15:00Z the previous day.
        let (s, e) = day_bounds(NOON_UTC, &tokyo);
        assert_eq!(s, NOON_UTC - 21 * 3_600_000);
        assert_eq!(e, NOON_UTC + 3 * 3_600_000);
        assert!(zone("Mars/Olympus").is_err());
    }

    #[test]
    fn the_total_resets_at_midnight() {
        let spend = CloudSpend::new(TimeZone::UTC, NOON_UTC, 700);
        spend.add(NOON_UTC + 1, 300);
        assert_eq!(spend.today(NOON_UTC + 2), 1000);
        let next_day = NOON_UTC + 12 * 3_600_000;
        assert_eq!(spend.today(next_day), 0);
        spend.add(next_day + 5, 42);
        assert_eq!(spend.today(next_day + 6), 42);
    }
}
