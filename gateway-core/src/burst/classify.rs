//! Sensitivity classification of a request: public, internal or sensitive, from every
//! piece of text the request carries (messages, content parts, tool calls and results,
//! system prompts, `prompt`/`input`) by a keyword list and built-in detectors.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How sensitive a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    Public,
    Internal,
    Sensitive,
}

impl Sensitivity {
    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Public => "public",
            Sensitivity::Internal => "internal",
            Sensitivity::Sensitive => "sensitive",
        }
    }
}

/// The kinds of built-in detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    Email,
    Phone,
    PaymentCard,
    Iban,
    UsSsn,
    Secret,
}

impl Detector {
    pub const ALL: [Detector; 6] = [
        Detector::Email,
        Detector::Phone,
        Detector::PaymentCard,
        Detector::Iban,
        Detector::UsSsn,
        Detector::Secret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::Phone => "phone",
            Detector::PaymentCard => "payment_card",
            Detector::Iban => "iban",
            Detector::UsSsn => "us_ssn",
            Detector::Secret => "secret",
        }
    }
}

/// Seed 004's idea of a default list: words that mark regulated or private material.
pub const DEFAULT_KEYWORDS: &[&str] = &[
    "confidential",
    "internal only",
    "proprietary",
    "trade secret",
    "classified",
    "nda",
    "password",
    "ssn",
    "social security",
    "patient",
    "diagnosis",
    "medical record",
    "salary",
    "bank account",
    "credit card",
    "passport",
    "hipaa",
    "gdpr",
    "personal data",
];

/// A compiled classifier (keywords are matched case-insensitively on word boundaries).
#[derive(Debug, Clone)]
pub struct Classifier {
    keywords: Option<AhoCorasick>,
    detectors: Vec<Detector>,
    /// Keyword hits that make a request sensitive (fewer, but at least one: internal).
    pub sensitive_keyword_hits: usize,
}

/// What classification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Sensitivity,
    pub keyword_hits: usize,
    pub detectors: Vec<Detector>,
}

impl Classifier {
    pub fn new(keywords: &[String], detectors: &[Detector], sensitive_keyword_hits: usize) -> Self {
        let words: Vec<String> = keywords
            .iter()
            .map(|k| k.trim().to_lowercase())
            .filter(|k| !k.is_empty())
            .collect();
        let keywords = (!words.is_empty())
            .then(|| {
                AhoCorasickBuilder::new()
                    .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&words)
                    .ok()
            })
            .flatten();
        Classifier {
            keywords,
            detectors: detectors.to_vec(),
            sensitive_keyword_hits: sensitive_keyword_hits.max(1),
        }
    }

    /// Classify a JSON request body (OpenAI chat/completions/embeddings, Anthropic, Responses).
    pub fn classify_body(&self, body: &[u8]) -> Finding {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => {
                let mut text = String::with_capacity(body.len());
                collect_text(&v, &mut text, 0);
                self.classify_text(&text)
            }
            // Unparseable bodies are refused before routing; be safe anyway.
            Err(_) => self.classify_text(&String::from_utf8_lossy(body)),
        }
    }

    /// Classify plain text.
    pub fn classify_text(&self, text: &str) -> Finding {
        let mut detectors = Vec::new();
        // Phone, card and SSN matches consist only of digits and separators and hold at
        // least 9 digits: look for them only inside such runs (most prose has none).
        let mut runs: Option<Vec<&str>> = None;
        for d in &self.detectors {
            let found = match d {
                Detector::Phone | Detector::PaymentCard | Detector::UsSsn => runs
                    .get_or_insert_with(|| numeric_runs(text))
                    .iter()
                    .any(|w| detect(*d, w)),
                Detector::Iban => might_hold_iban(text.as_bytes()) && detect(*d, text),
                _ => detect(*d, text),
            };
            if found {
                detectors.push(*d);
            }
        }
        let keyword_hits = self.keywords.as_ref().map_or(0, |ac| {
            let bytes = text.as_bytes();
            ac.find_iter(text)
                .filter(|m| {
                    let before = m.start().checked_sub(1).map(|i| bytes[i]);
                    let after = bytes.get(m.end()).copied();
                    !before.is_some_and(|b| b.is_ascii_alphanumeric())
                        && !after.is_some_and(|b| b.is_ascii_alphanumeric())
                })
                .count()
        });
        let level = if !detectors.is_empty() || keyword_hits >= self.sensitive_keyword_hits {
            Sensitivity::Sensitive
        } else if keyword_hits > 0 {
            Sensitivity::Internal
        } else {
            Sensitivity::Public
        };
        Finding {
            level,
            keyword_hits,
            detectors,
        }
    }
}

/// Keys whose string values are not user text (identifiers, enums, URLs of images).
const SKIP_KEYS: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "tool_call_id",
    "object",
    "url",
    "media_type",
    "stop",
    "service_tier",
    "user",
];

fn collect_text(v: &Value, out: &mut String, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(a) => a.iter().for_each(|x| collect_text(x, out, depth + 1)),
        Value::Object(m) => {
            for (k, x) in m {
                if SKIP_KEYS.contains(&k.as_str()) && x.is_string() {
                    continue;
                }
                collect_text(x, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Maximal runs of digits, whitespace and `.-+()` holding 9 digits or more, each with
/// two characters of context on either side (what [`isolated`] looks at).
fn numeric_runs(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let part = |c: u8| {
        c.is_ascii_digit()
            || c.is_ascii_whitespace()
            || matches!(c, b'.' | b'-' | b'+' | b'(' | b')')
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !part(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = 0;
        while i < b.len() && part(b[i]) {
            digits += usize::from(b[i].is_ascii_digit());
            i += 1;
        }
        if digits >= 9 {
            let mut s = start.saturating_sub(2);
            while !text.is_char_boundary(s) {
                s -= 1;
            }
            let mut e = (i + 2).min(b.len());
            while !text.is_char_boundary(e) {
                e += 1;
            }
            out.push(&text[s..e]);
        }
    }
    out
}

/// Two capitals then two digits somewhere: the only way an IBAN starts.
fn might_hold_iban(b: &[u8]) -> bool {
    b.windows(4).any(|w| {
        w[0].is_ascii_uppercase()
            && w[1].is_ascii_uppercase()
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit()
    })
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("built-in detector pattern"))
}

fn detect(d: Detector, text: &str) -> bool {
    static EMAIL: OnceLock<Regex> = OnceLock::new();
    static PHONE: OnceLock<Regex> = OnceLock::new();
    static CARD: OnceLock<Regex> = OnceLock::new();
    static IBAN: OnceLock<Regex> = OnceLock::new();
    static SSN: OnceLock<Regex> = OnceLock::new();
    static SECRET: OnceLock<Regex> = OnceLock::new();
    match d {
        Detector::Email => re(&EMAIL, r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}").is_match(text),
        Detector::Phone => re(&PHONE, r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}\b")
            .find_iter(text)
            .any(|m| {
                let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                (10..=15).contains(&digits) && isolated(text, m.start(), m.end())
            }),
        Detector::PaymentCard => re(&CARD, r"\b\d(?:[ -]?\d){12,18}\b").find_iter(text).any(|m| {
            if !isolated(text, m.start(), m.end()) {
                return false;
            }
            let digits: Vec<u8> = m.as_str().bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
            (13..=19).contains(&digits.len()) && luhn(&digits) && !digits.iter().all(|d| *d == digits[0])
        }),
        Detector::Iban => re(&IBAN, r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
            .find_iter(text)
            .any(|m| iban_valid(m.as_str())),
        Detector::UsSsn => re(&SSN, r"\b(\d{3})-(\d{2})-(\d{4})\b").captures_iter(text).any(|c| {
            let area = &c[1];
            area != "000" && area != "666" && !area.starts_with('9') && &c[2] != "00" && &c[3] != "0000"
        }),
        Detector::Secret => re(
            &SECRET,
            r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----|\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{36}\b|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAIza[0-9A-Za-z_-]{35}\b|\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
        )
        .is_match(text),
    }
}

/// Whether a number found at `start..end` stands alone rather than being part of a
/// longer run of digit groups (`"DE89 3704 0044"`, `"4111 1111 1111 1111"` seen from
/// inside): no digit group right before or after it, across one separator.
fn isolated(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    let sep = |c: u8| matches!(c, b' ' | b'-' | b'.');
    let before = start.checked_sub(1).map(|i| b[i]);
    let before2 = start.checked_sub(2).map(|i| b[i]);
    let after = b.get(end).copied();
    let after2 = b.get(end + 1).copied();
    let glued_before = before.is_some_and(|c| c.is_ascii_alphanumeric())
        || (before.is_some_and(sep) && before2.is_some_and(|c| c.is_ascii_digit()));
    let glued_after = after.is_some_and(|c| c.is_ascii_alphanumeric())
        || (after.is_some_and(sep) && after2.is_some_and(|c| c.is_ascii_digit()));
    !glued_before && !glued_after
}

/// The Luhn checksum of a card number's digits.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 13616 check: move the first four characters to the end, letters to numbers, mod 97 = 1.
pub fn iban_valid(candidate: &str) -> bool {
    let s: Vec<u8> = candidate
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !(15..=34).contains(&s.len()) {
        return false;
    }
    let mut rem: u32 = 0;
    for b in s[4..].iter().chain(&s[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c() -> Classifier {
        let kw: Vec<String> = DEFAULT_KEYWORDS.iter().map(|s| s.to_string()).collect();
        Classifier::new(&kw, &Detector::ALL, 2)
    }

    fn found(text: &str) -> Vec<Detector> {
        c().classify_text(text).detectors
    }

    #[test]
    fn emails() {
        assert_eq!(
            found("write to jane.doe+x@example.co.uk today"),
            vec![Detector::Email]
        );
        assert!(found("the @ sign and user@localhost are not addresses").is_empty());
    }

    #[test]
    fn phones() {
        assert_eq!(found("call +1 415-555-0132 now"), vec![Detector::Phone]);
        assert_eq!(found("tel (030) 1234 5678"), vec![Detector::Phone]);
        assert!(found("version 1.2.3 and 2024-01-05").is_empty());
        assert!(found("order 12 345").is_empty());
    }

    #[test]
    fn payment_cards_need_luhn() {
        assert_eq!(
            found("card 4111 1111 1111 1111 exp 12/29"),
            vec![Detector::PaymentCard]
        );
        assert_eq!(found("5500-0000-0000-0004"), vec![Detector::PaymentCard]);
        assert!(found("card 4111 1111 1111 1112").is_empty(), "Luhn failure");
        assert!(
            found("order number 1234567890123").is_empty(),
            "look-alike, not Luhn-valid"
        );
        assert!(found("0000 0000 0000 0000").is_empty());
        assert!(
            found("ids 4111 1111 1111 1111 2222").is_empty(),
            "part of a longer number"
        );
        assert!(found("isbn 978-3-16-148410-0").is_empty());
    }

    #[test]
    fn ibans_need_mod_97() {
        assert_eq!(
            found("pay to DE89 3704 0044 0532 0130 00"),
            vec![Detector::Iban]
        );
        assert_eq!(found("GB29NWBK60161331926819"), vec![Detector::Iban]);
        assert!(
            found("DE89 3704 0044 0532 0130 01").is_empty(),
            "checksum failure"
        );
        assert!(found("AB12CDEFGHIJKLMNOP").is_empty());
    }

    #[test]
    fn us_ssns() {
        assert_eq!(found("SSN 123-45-6789"), vec![Detector::UsSsn]);
        assert!(found("000-12-3456 and 666-12-3456 and 912-12-3456 and 123-00-4567").is_empty());
        assert!(found("phone 555-1234").is_empty());
    }

    #[test]
    fn secrets() {
        for s in [
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE",
            "key sk-proj-abcdefghijklmnopqrstuvwxyz123456",
            "AKIAIOSFODNN7EXAMPLE",
            "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
        ] {
            assert_eq!(found(s), vec![Detector::Secret], "{s}");
        }
        assert!(found("sk-short and the word skate").is_empty());
        assert!(found("-----BEGIN PUBLIC KEY-----").is_empty());
    }

    #[test]
    fn keyword_levels() {
        assert_eq!(c().classify_text("hello there").level, Sensitivity::Public);
        assert_eq!(
            c().classify_text("this is CONFIDENTIAL").level,
            Sensitivity::Internal
        );
        assert_eq!(
            c().classify_text("confidential patient notes").level,
            Sensitivity::Sensitive
        );
        assert_eq!(
            c().classify_text("ndas? the pandas").level,
            Sensitivity::Public,
            "word boundaries"
        );
    }

    #[test]
    fn every_text_part_is_read() {
        let body = br#"{"model":"m","messages":[
            {"role":"system","content":"You are helpful"},
            {"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},
            {"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"q\":\"mail bob@example.org\"}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"ok"}]}"#;
        let f = c().classify_body(body);
        assert_eq!(f.level, Sensitivity::Sensitive);
        assert_eq!(f.detectors, vec![Detector::Email]);
        let tool_result = br#"{"model":"m","messages":[{"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"card 4111111111111111"}]}]}"#;
        assert_eq!(
            c().classify_body(tool_result).detectors,
            vec![Detector::PaymentCard]
        );
        let anthropic = br#"{"model":"m","system":[{"type":"text","text":"internal only","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"confidential"}]}"#;
        assert_eq!(c().classify_body(anthropic).level, Sensitivity::Sensitive);
    }

    #[test]
    fn luhn_and_iban_helpers() {
        assert!(luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
        assert!(iban_valid("FR1420041010050500013M02606"));
    }
}
