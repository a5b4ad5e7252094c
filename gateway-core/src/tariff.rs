//! What a request costs: a model's tariff (absolute prices per 1M tokens, or New API's
//! model ratio and completion ratio) times the caller's group ratio, in exact integers.
//!
//! Ratios are integer millionths (`1.5` = `1_500_000`). A tariff keeps its per-1M prices
//! scaled by 1e6 so ratio products stay exact; a request's cost is rounded once, half up,
//! to a nano-dollar.
//!
//! Precedence: a model's absolute price (or its alias's) wins over its ratios; the group
//! ratio multiplies either.

use crate::money::NANO_PER_USD;
use crate::vocab::{Rates, Usage};

/// Ratio 1.0 in millionths.
pub const RATIO_ONE: i64 = 1_000_000;

/// Nano-dollars per 1M tokens at model ratio 1 (New API: ratio 1 = $0.002 / 1K tokens).
pub const RATIO_BASE_NANO_PER_M: i64 = 2 * NANO_PER_USD;

/// Largest accepted ratio (keeps every product inside i128).
const RATIO_MAX: i64 = 1_000_000 * RATIO_ONE;

/// Why a ratio was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatioError {
    #[error("ratio '{0}' is not a number")]
    NotANumber(String),
    #[error("ratio '{0}' must not be negative")]
    Negative(String),
    #[error("ratio '{0}' has more than 6 decimal places")]
    TooPrecise(String),
    #[error("ratio '{0}' is too large (at most 1000000)")]
    TooLarge(String),
}

/// Parse a decimal ratio ("15", "0.75") into millionths exactly.
pub fn parse_ratio(text: &str) -> Result<i64, RatioError> {
    let s = text.trim();
    if s.starts_with('-') {
        return Err(RatioError::Negative(text.to_string()));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let (int_part, frac_part) = s.split_once('.').unwrap_or((s, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(RatioError::NotANumber(text.to_string()));
    }
    let frac = frac_part.trim_end_matches('0');
    if frac.len() > 6 {
        return Err(RatioError::TooPrecise(text.to_string()));
    }
    let int: i64 = if int_part.is_empty() {
        0
    } else {
        int_part
            .parse()
            .map_err(|_| RatioError::TooLarge(text.to_string()))?
    };
    let mut micro: i64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        micro += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
    }
    let v = int
        .checked_mul(RATIO_ONE)
        .and_then(|v| v.checked_add(micro))
        .filter(|v| *v <= RATIO_MAX)
        .ok_or_else(|| RatioError::TooLarge(text.to_string()))?;
    Ok(v)
}

/// A JSON number as a ratio, exactly as it was written.
pub fn ratio_from_f64(value: f64) -> Result<i64, RatioError> {
    if !value.is_finite() {
        return Err(RatioError::NotANumber(value.to_string()));
    }
    let text = format!("{value}");
    if text.contains('e') {
        return parse_ratio(&format!("{value:.6}"));
    }
    parse_ratio(&text)
}

/// Millionths as decimal text ("1.5", "15", "0.000001").
pub fn format_ratio(micro: i64) -> String {
    let int = micro / RATIO_ONE;
    let frac = format!("{:06}", (micro % RATIO_ONE).abs());
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// Millionths as an `f64` for JSON output (display only).
pub fn ratio_to_f64(micro: i64) -> f64 {
    format_ratio(micro).parse().unwrap_or(0.0)
}

/// Where a tariff came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TariffSource {
    /// Absolute prices per 1M tokens (the `prices` table, aliases resolved).
    Price,
    /// Model ratio × completion ratio (the `model_ratios` table).
    Ratio,
}

/// A model's prices per 1M tokens in nano-dollars × 1e6 (so ratio products are exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tariff {
    pub source: TariffSource,
    input: i128,
    output: i128,
    cache_read: i128,
    cache_write: i128,
}

const SCALE: i128 = RATIO_ONE as i128;

impl Tariff {
    /// Absolute prices; cache prices default to the input price.
    pub fn from_rates(r: &Rates) -> Tariff {
        let s = |v: i64| i128::from(v.max(0)) * SCALE;
        Tariff {
            source: TariffSource::Price,
            input: s(r.input),
            output: s(r.output),
            cache_read: s(r.cache_read.unwrap_or(r.input)),
            cache_write: s(r.cache_write.unwrap_or(r.input)),
        }
    }

    /// New API ratios: prompt at `model_ratio` × $2/1M, completion `completion_ratio` times
    /// that; cached prompt tokens at the prompt rate.
    pub fn from_ratios(model_ratio: i64, completion_ratio: i64) -> Tariff {
        let input = i128::from(model_ratio.max(0)) * i128::from(RATIO_BASE_NANO_PER_M);
        let output = input * i128::from(completion_ratio.max(0)) / SCALE;
        Tariff {
            source: TariffSource::Ratio,
            input,
            output,
            cache_read: input,
            cache_write: input,
        }
    }

    /// Whether nothing this tariff bills costs money.
    pub fn is_free(&self) -> bool {
        self.input == 0 && self.output == 0 && self.cache_read == 0 && self.cache_write == 0
    }

    /// What 1M prompt (or completion) tokens cost at this tariff, in nano-dollars (how ratio
    /// prices compare with absolute ones).
    pub fn per_million(&self, completion: bool) -> i64 {
        let n = 1_000_000;
        let tokens = if completion {
            Usage {
                completion: n,
                ..Default::default()
            }
        } else {
            Usage {
                prompt: n,
                ..Default::default()
            }
        };
        self.cost(tokens, RATIO_ONE)
    }

    /// Exact cost in nano-dollars of `t` for a caller in a group with `group_ratio`
    /// (millionths), rounded half up once.
    pub fn cost(&self, t: Usage, group_ratio: i64) -> i64 {
        let prompt = t.prompt.max(0);
        let cached = t.cached.clamp(0, prompt);
        let written = t.cache_write.clamp(0, prompt - cached);
        let plain = prompt - cached - written;
        let sum = i128::from(plain) * self.input
            + i128::from(cached) * self.cache_read
            + i128::from(written) * self.cache_write
            + i128::from(t.completion.max(0)) * self.output;
        // sum is nano × 1e6 (scale) × 1e6 (per 1M tokens); the group ratio adds 1e6 more.
        let denom: i128 = SCALE * 1_000_000 * SCALE;
        let scaled = sum * i128::from(group_ratio.max(0));
        let cost = (scaled + denom / 2) / denom;
        i64::try_from(cost).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::parse_usd;

    #[test]
    fn ratios_parse_exactly() {
        assert_eq!(parse_ratio("15").unwrap(), 15_000_000);
        assert_eq!(parse_ratio("0.75").unwrap(), 750_000);
        assert_eq!(parse_ratio(".000001").unwrap(), 1);
        assert_eq!(ratio_from_f64(1.5).unwrap(), 1_500_000);
        assert_eq!(ratio_from_f64(1e-6).unwrap(), 1);
        assert!(matches!(parse_ratio("-1"), Err(RatioError::Negative(_))));
        assert!(matches!(
            parse_ratio("0.0000001"),
            Err(RatioError::TooPrecise(_))
        ));
        assert!(matches!(parse_ratio("x"), Err(RatioError::NotANumber(_))));
        assert!(matches!(
            parse_ratio("1000001"),
            Err(RatioError::TooLarge(_))
        ));
        assert_eq!(format_ratio(1_500_000), "1.5");
        assert_eq!(format_ratio(15_000_000), "15");
        assert_eq!(format_ratio(1), "0.000001");
    }

    fn tokens(prompt: i64, completion: i64) -> Usage {
        Usage {
            prompt,
            completion,
            ..Default::default()
        }
    }

    #[test]
    fn seed_002_example_by_price_and_by_ratio() {
        // 100 prompt + 200 completion tokens of gpt-4 at $30/$60 per 1M = $0.015.
        let by_price = Tariff::from_rates(&Rates {
            input: parse_usd("30").unwrap(),
            output: parse_usd("60").unwrap(),
            ..Default::default()
        });
        assert_eq!(by_price.cost(tokens(100, 200), RATIO_ONE), 15_000_000);
        // New API's gpt-4: model ratio 15, completion ratio 2: (100 + 200×2) × 15 × $2/1M.
        let by_ratio = Tariff::from_ratios(15 * RATIO_ONE, 2 * RATIO_ONE);
        assert_eq!(by_ratio.cost(tokens(100, 200), RATIO_ONE), 15_000_000);
        // A vip group at 0.8: $0.012.
        assert_eq!(by_ratio.cost(tokens(100, 200), 800_000), 12_000_000);
    }

    #[test]
    fn rounding_happens_once() {
        // 1 token at ratio 0.000001: 0.002 nano, below half a nano: 0.
        let t = Tariff::from_ratios(1, RATIO_ONE);
        assert_eq!(t.cost(tokens(1, 0), RATIO_ONE), 0);
        // 250 such tokens: 0.5 nano, rounds up to 1.
        assert_eq!(t.cost(tokens(250, 0), RATIO_ONE), 1);
        // Completion ratio 1.333333 on gpt-3.5-ish ratio 0.75: (1000 + 3000×1.333333) × 0.75 × 2000 nano.
        let t = Tariff::from_ratios(750_000, 1_333_333);
        assert_eq!(t.cost(tokens(1000, 3000), RATIO_ONE), 7_499_999);
    }

    #[test]
    fn cached_tokens_use_cache_prices() {
        let t = Tariff::from_rates(&Rates {
            input: 3 * NANO_PER_USD,
            output: 15 * NANO_PER_USD,
            cache_read: Some(300_000_000),
            cache_write: Some(3_750_000_000),
        });
        let u = Usage {
            prompt: 1000,
            completion: 100,
            cached: 600,
            cache_write: 200,
        };
        // 200 × 3 + 600 × 0.3 + 200 × 3.75 + 100 × 15 = 600 + 180 + 750 + 1500 = 3030 nano×1000
        assert_eq!(t.cost(u, RATIO_ONE), 3_030_000);
        assert!(!t.is_free());
        assert!(Tariff::from_ratios(0, RATIO_ONE).is_free());
    }
}
