//! Money as integers: nano-dollars (1 USD = 1_000_000_000), never floats.
//!
//! Prices are quoted per 1M tokens, so a price of `$30 / 1M` is stored as
//! `30_000_000_000` and the cost of `n` tokens is `n * price / 1_000_000`.

/// Nano-dollars per dollar.
pub const NANO_PER_USD: i64 = 1_000_000_000;

/// Error returned when a decimal USD amount cannot be represented exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("'{0}' is not a number")]
    NotANumber(String),
    #[error("'{0}' must not be negative")]
    Negative(String),
    #[error("'{0}' has more than 9 decimal places")]
    TooPrecise(String),
    #[error("'{0}' is too large")]
    TooLarge(String),
}

/// Parse a decimal USD amount ("30", "0.15", "1e-3" is refused) into nano-dollars exactly.
pub fn parse_usd(text: &str) -> Result<i64, MoneyError> {
    let s = text.trim();
    let bad = || MoneyError::NotANumber(text.to_string());
    if s.starts_with('-') {
        return Err(MoneyError::Negative(text.to_string()));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let (int_part, frac_part) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() > 9 {
        return Err(MoneyError::TooPrecise(text.to_string()));
    }
    let int: i64 = if int_part.is_empty() {
        0
    } else {
        int_part
            .parse()
            .map_err(|_| MoneyError::TooLarge(text.to_string()))?
    };
    let mut frac: i64 = 0;
    for (i, b) in frac_trimmed.bytes().enumerate() {
        frac += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    int.checked_mul(NANO_PER_USD)
        .and_then(|n| n.checked_add(frac))
        .ok_or_else(|| MoneyError::TooLarge(text.to_string()))
}

/// Convert a JSON number to nano-dollars exactly as it was written (`-1` allowed when `allow_unlimited`).
pub fn usd_from_f64(value: f64) -> Result<i64, MoneyError> {
    if !value.is_finite() {
        return Err(MoneyError::NotANumber(value.to_string()));
    }
    // `{}` prints the shortest text that round-trips, i.e. what the user typed.
    let text = format!("{value}");
    if text.contains('e') {
        let fixed = format!("{value:.9}");
        return parse_usd(&fixed);
    }
    parse_usd(&text)
}

/// Like [`usd_from_f64`], but a leading minus is kept (balance adjustments).
pub fn signed_usd_from_f64(value: f64) -> Result<i64, MoneyError> {
    if value < 0.0 {
        usd_from_f64(-value).map(|n| -n)
    } else {
        usd_from_f64(value)
    }
}

/// Like [`parse_usd`], but a leading minus is kept.
pub fn parse_signed_usd(text: &str) -> Result<i64, MoneyError> {
    match text.trim().strip_prefix('-') {
        Some(rest) => parse_usd(rest).map(|n| -n),
        None => parse_usd(text),
    }
}

/// Format nano-dollars as a decimal USD amount with at least two decimals ("30.00", "0.0000015").
pub fn format_usd(nano: i64) -> String {
    let sign = if nano < 0 { "-" } else { "" };
    let abs = nano.unsigned_abs();
    let int = abs / NANO_PER_USD as u64;
    let frac = format!("{:09}", abs % NANO_PER_USD as u64);
    let mut frac = frac.trim_end_matches('0').to_string();
    while frac.len() < 2 {
        frac.push('0');
    }
    format!("{sign}{int}.{frac}")
}

/// Nano-dollars as an `f64` USD value for JSON output (display only, never summed).
pub fn nano_to_usd(nano: i64) -> f64 {
    // Go through the exact decimal text so 1500 nano prints as 0.0000015, not 1.4999e-6.
    format_usd(nano).parse().unwrap_or(0.0)
}

/// Cost in nano-dollars of `tokens` at `price_per_million` nano-dollars per 1M tokens, rounded half up.
pub fn cost_of(tokens: u64, price_per_million: i64) -> i64 {
    let product = i128::from(tokens) * i128::from(price_per_million.max(0));
    let cost = (product + 500_000) / 1_000_000;
    i64::try_from(cost).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(parse_usd("30").unwrap(), 30 * NANO_PER_USD);
        assert_eq!(parse_usd("30.0").unwrap(), 30 * NANO_PER_USD);
        assert_eq!(parse_usd("0.15").unwrap(), 150_000_000);
        assert_eq!(parse_usd(".5").unwrap(), 500_000_000);
        assert_eq!(parse_usd("0.000000001").unwrap(), 1);
        assert!(matches!(parse_usd("-1"), Err(MoneyError::Negative(_))));
        assert!(matches!(parse_usd("abc"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(parse_usd(""), Err(MoneyError::NotANumber(_))));
        assert!(matches!(
            parse_usd("0.0000000001"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            parse_usd("99999999999999"),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn f64_round_trips_what_was_typed() {
        assert_eq!(usd_from_f64(0.1).unwrap(), 100_000_000);
        assert_eq!(usd_from_f64(60.0).unwrap(), 60 * NANO_PER_USD);
        assert_eq!(usd_from_f64(1e-7).unwrap(), 100);
    }

    #[test]
    fn formats_without_float_noise() {
        assert_eq!(format_usd(30 * NANO_PER_USD), "30.00");
        assert_eq!(format_usd(1_500), "0.0000015");
        assert_eq!(format_usd(15_000_000), "0.015");
        assert_eq!(nano_to_usd(1_500), 0.0000015);
    }

    #[test]
    fn seed_002_worked_example() {
        // 100 prompt + 200 completion tokens of gpt-4 at $30/$60 per 1M = $0.015
        let cost = cost_of(100, parse_usd("30").unwrap()) + cost_of(200, parse_usd("60").unwrap());
        assert_eq!(cost, 15_000_000);
        assert_eq!(format_usd(cost), "0.015");
    }
}
