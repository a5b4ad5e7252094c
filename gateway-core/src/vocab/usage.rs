//! Token usage of one request, and reading it from OpenAI-shaped JSON (`usage` objects).

use serde::Deserialize;

/// Token usage of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: i64,
    pub completion: i64,
    /// Prompt tokens served from the provider's cache (billed at `cache_read` when priced).
    pub cached: i64,
    /// Prompt tokens written to the provider's cache (Anthropic's cache_creation_input_tokens).
    pub cache_write: i64,
}

#[derive(Deserialize)]
struct Details {
    #[serde(default)]
    cached_tokens: Option<i64>,
    /// Written by the gateway's own adaptors (Anthropic's cache_creation_input_tokens).
    #[serde(default)]
    cache_creation_tokens: Option<i64>,
}

#[derive(Deserialize)]
pub(crate) struct RawUsage {
    #[serde(default)]
    prompt_tokens: Option<i64>,
    #[serde(default)]
    completion_tokens: Option<i64>,
    #[serde(default)]
    total_tokens: Option<i64>,
    #[serde(default)]
    prompt_tokens_details: Option<Details>,
}

impl RawUsage {
    pub(crate) fn into_usage(self) -> Option<Usage> {
        let prompt = self.prompt_tokens?;
        let completion = self
            .completion_tokens
            .or_else(|| self.total_tokens.map(|t| (t - prompt).max(0)))
            .unwrap_or(0);
        let details = self.prompt_tokens_details;
        Some(Usage {
            prompt,
            completion,
            cached: details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write: details
                .as_ref()
                .and_then(|d| d.cache_creation_tokens)
                .unwrap_or(0),
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct WithUsage {
    #[serde(default)]
    pub(crate) usage: Option<RawUsage>,
    #[serde(default)]
    pub(crate) choices: Option<Vec<serde::de::IgnoredAny>>,
}

/// Usage from a parsed chunk or response (`usage` object in OpenAI's shape).
pub fn usage_from_value(v: &serde_json::Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    serde_json::from_value::<RawUsage>(u.clone())
        .ok()?
        .into_usage()
}

/// Usage from a complete OpenAI JSON body (chat, completions, embeddings). The body is
/// skimmed for its top-level `usage` key (strings are jumped over with `memchr`, nothing
/// is decoded) and only that object is parsed; a body the skim cannot follow (not an
/// object, a key written with escapes, malformed) is parsed whole, as before. Parsing the
/// whole answer to read one object was ~8 % of a relayed request's instructions.
pub fn usage_from_json(body: &[u8]) -> Option<Usage> {
    let skim = match usage_near_the_end(body) {
        Some(at) => Skim::Found(at),
        None => top_level_value(body, b"usage"),
    };
    match skim {
        Skim::Found(at) => {
            let mut de = serde_json::Deserializer::from_slice(&body[at..]);
            Option::<RawUsage>::deserialize(&mut de).ok()??.into_usage()
        }
        Skim::Absent => None,
        Skim::Unsure => parse_whole(body),
    }
}

/// Where the value of a top-level `usage` key starts, found from the end of the body:
/// answers carry it among their last members (OpenAI's order is `…"choices":[…],
/// "usage":{…},"service_tier":…,"system_fingerprint":…}`), so this reads the usage
/// object and the few members after it instead of skimming every choice. The last
/// `"usage"` key is found with `memmem` (inside a JSON string every quote is escaped,
/// so `"usage"` followed by `:` is always a key) and is top-level when what follows its
/// value is only further members and the body's closing brace; anything else (a
/// nested `usage`, a body that is not an object) is left to [`top_level_value`].
fn usage_near_the_end(body: &[u8]) -> Option<usize> {
    static KEY: std::sync::LazyLock<memchr::memmem::FinderRev<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::FinderRev::new(b"\"usage\""));
    if body.get(skip_ws(body, 0)) != Some(&b'{') {
        return None;
    }
    let key = KEY.rfind(body)?;
    let colon = skip_ws(body, key + b"\"usage\"".len());
    if body.get(colon) != Some(&b':') {
        return None;
    }
    let at = skip_ws(body, colon + 1);
    let mut i = skip_ws(body, value_end(body, at)?);
    loop {
        match body.get(i)? {
            b'}' => return (skip_ws(body, i + 1) == body.len()).then_some(at),
            b',' => {
                let name = skip_ws(body, i + 1);
                if body.get(name) != Some(&b'"') {
                    return None;
                }
                let colon = skip_ws(body, string_end(body, name)?);
                if body.get(colon) != Some(&b':') {
                    return None;
                }
                i = skip_ws(body, value_end(body, skip_ws(body, colon + 1))?);
            }
            _ => return None,
        }
    }
}

fn parse_whole(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<WithUsage>(body)
        .ok()?
        .usage?
        .into_usage()
}

/// What a skim of a JSON object found for a key.
#[derive(Debug, PartialEq)]
enum Skim {
    /// The key's value starts at this index.
    Found(usize),
    /// The object ended without the key.
    Absent,
    /// Not followed: parse the body instead.
    Unsure,
}

/// Where the value of the top-level `key` of the JSON object `body` starts.
fn top_level_value(body: &[u8], key: &[u8]) -> Skim {
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return Skim::Unsure;
    }
    i += 1;
    loop {
        i = skip_ws(body, i);
        match body.get(i) {
            Some(b'"') => {}
            Some(b'}') => return Skim::Absent,
            _ => return Skim::Unsure,
        }
        let Some(end) = string_end(body, i) else {
            return Skim::Unsure;
        };
        let name = &body[i + 1..end - 1];
        i = skip_ws(body, end);
        if body.get(i) != Some(&b':') {
            return Skim::Unsure;
        }
        i = skip_ws(body, i + 1);
        if name == key {
            return Skim::Found(i);
        }
        // A name written with escapes may spell `key`.
        if name.contains(&b'\\') {
            return Skim::Unsure;
        }
        let Some(after) = value_end(body, i) else {
            return Skim::Unsure;
        };
        i = skip_ws(body, after);
        match body.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Skim::Absent,
            _ => return Skim::Unsure,
        }
    }
}

fn skip_ws(body: &[u8], mut i: usize) -> usize {
    while body
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// `at` is a string's opening quote: the index after its closing quote.
fn string_end(body: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        let j = i + memchr::memchr2(b'"', b'\\', body.get(i..)?)?;
        if body[j] == b'"' {
            return Some(j + 1);
        }
        i = j + 2; // the escaped byte
    }
}

/// The index after the JSON value that starts at `at` (not validated: a malformed value
/// ends somewhere, and the caller's next expectation fails).
fn value_end(body: &[u8], at: usize) -> Option<usize> {
    match *body.get(at)? {
        b'"' => string_end(body, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            while let Some(&b) = body.get(i) {
                match b {
                    b'"' => {
                        i = string_end(body, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let n = body[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))?;
            (n > 0).then_some(at + n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies the skim must read exactly as a whole parse does.
    const BODIES: &[&str] = &[
        r#"{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#,
        // Braces, brackets, quotes and the key itself inside strings.
        r#"{"choices":[{"message":{"content":"say \"usage\": {\"prompt_tokens\": 999} }] [ {"}}],"usage":{"prompt_tokens":7,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":3}}}"#,
        // A nested `usage` before the top-level one, and one only nested.
        r#"{"choices":[{"usage":{"prompt_tokens":999,"completion_tokens":999}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
        r#"{"choices":[{"usage":{"prompt_tokens":999,"completion_tokens":999}}]}"#,
        // Whitespace everywhere, scalars of every kind before it.
        "{ \"a\" : 1.5e3 , \"b\":true,\"c\":null,\"d\":-2,\n\t\"usage\" :\r\n {\"prompt_tokens\": 4, \"total_tokens\": 9} }",
        r#"{"object":"list","data":[{"embedding":[0.1,-0.2]}],"usage":{"prompt_tokens":5,"total_tokens":5}}"#,
        r#"{"usage":null}"#,
        r#"{"usage":5}"#,
        r#"{"usage":{"completion_tokens":3}}"#,
        // A key spelled with an escape: the whole parse decodes it.
        r#"{"\u0075sage":{"prompt_tokens":8,"completion_tokens":1}}"#,
        r#"{"x\"y":1,"usage":{"prompt_tokens":6,"completion_tokens":1}}"#,
        r#"{}"#,
        r#"[]"#,
        "",
        "not json",
        r#"{"usage""#,
        r#"{"a":"unterminated"#,
        r#"{"a":[1,2"#,
        // OpenAI's own order: members after `usage`.
        r#"{"id":"c","choices":[{"message":{"content":"\"usage\": {}"}}],"usage":{"prompt_tokens":19,"completion_tokens":10,"prompt_tokens_details":{"cached_tokens":4}},"service_tier":"default","system_fingerprint":"fp_1","x":{"y":[1,{"z":null}]}}"#,
        // The last `usage` is nested (in a trailing member, in an array, in the object
        // that follows): the top-level one before it, or none.
        r#"{"usage":{"prompt_tokens":2,"completion_tokens":1},"extra":{"usage":{"prompt_tokens":50,"completion_tokens":50}}}"#,
        r#"{"usage":{"prompt_tokens":3,"completion_tokens":1},"extra":[{"usage":{"prompt_tokens":50,"completion_tokens":50}}]}"#,
        r#"{"extra":{"usage":{"prompt_tokens":50,"completion_tokens":50},"b":1}}"#,
        r#"  {"usage" : {"prompt_tokens":5,"completion_tokens":1} , "a" : "}" }  "#,
        r#"[{"usage":{"prompt_tokens":5,"completion_tokens":1}}]"#,
    ];

    #[test]
    fn the_skim_reads_what_a_whole_parse_reads() {
        for body in BODIES {
            assert_eq!(
                usage_from_json(body.as_bytes()),
                parse_whole(body.as_bytes()),
                "{body}"
            );
        }
        assert_eq!(
            usage_from_json(BODIES[1].as_bytes()),
            Some(Usage {
                prompt: 7,
                completion: 2,
                cached: 3,
                cache_write: 0
            })
        );
        assert_eq!(usage_from_json(BODIES[2].as_bytes()).unwrap().prompt, 1);
        assert_eq!(usage_from_json(BODIES[4].as_bytes()).unwrap().completion, 5);
    }

    #[test]
    fn usage_is_found_from_the_end_only_when_it_is_top_level() {
        let openai = BODIES.iter().find(|b| b.contains("fp_1")).unwrap();
        let at = usage_near_the_end(openai.as_bytes()).expect("found from the end");
        assert!(openai[at..].starts_with(r#"{"prompt_tokens":19"#));
        assert_eq!(
            usage_from_json(openai.as_bytes()),
            Some(Usage {
                prompt: 19,
                completion: 10,
                cached: 4,
                cache_write: 0
            })
        );
        for nested in [
            r#"{"usage":{"prompt_tokens":2},"extra":{"usage":{"prompt_tokens":50}}}"#,
            r#"{"extra":[{"usage":{"prompt_tokens":50}}]}"#,
            r#"{"extra":{"usage":{"prompt_tokens":50},"b":1}}"#,
            r#"{"usage":{"prompt_tokens":5}} trailing"#,
            r#"[{"usage":{"prompt_tokens":5}}]"#,
            r#"{"usage" "prompt_tokens"}"#,
        ] {
            assert_eq!(usage_near_the_end(nested.as_bytes()), None, "{nested}");
        }
        // The top-level one before a nested one is still found (by the skim).
        assert_eq!(
            usage_from_json(
                br#"{"usage":{"prompt_tokens":2,"completion_tokens":1},"extra":{"usage":{"prompt_tokens":50}}}"#
            )
            .unwrap()
            .prompt,
            2
        );
    }

    #[test]
    fn the_skim_finds_the_top_level_key_and_gives_up_on_what_it_cannot_follow() {
        let body = br#"{"choices":[{"usage":1}],"usage":{"prompt_tokens":1}}"#;
        let Skim::Found(at) = top_level_value(body, b"usage") else {
            panic!("found")
        };
        assert!(body[at..].starts_with(b"{\"prompt_tokens\""));
        assert_eq!(
            top_level_value(br#"{"a":{"usage":1}}"#, b"usage"),
            Skim::Absent
        );
        assert_eq!(
            top_level_value(br#"{"\u0075sage":1}"#, b"usage"),
            Skim::Unsure
        );
        assert_eq!(top_level_value(b"[1]", b"usage"), Skim::Unsure);
        assert_eq!(top_level_value(br#"{"a":"#, b"usage"), Skim::Unsure);
    }
}
