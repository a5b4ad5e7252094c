//! Golden tests for the protocol adaptors: the providers' documented examples (see
//! `tests/golden/README.md`) converted by the gateway's stages, compared with reviewed
//! expected output. Streams are also fed in 1- and 7-byte pieces and must convert the same.
//! `UPDATE_GOLDEN=1` rewrites the expected files.

use std::path::{Path, PathBuf};

use gateway_core::testing::{
    FromAnthropic, FromGemini, Pipeline, Stage, ToAnthropic, bedrock_body, chat_to_messages,
    messages_to_chat, messages_to_chat_with, responses_to_chat_with,
};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `"created": <n>` is the conversion time: normalised so the output is comparable.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("\"created\":") {
        out.push_str(&rest[..i + 10]);
        rest = &rest[i + 10..];
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        out.push('0');
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

fn compare(expected_name: &str, actual: &str) {
    let path = dir().join(expected_name);
    let actual = normalise(actual);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{expected_name}: {e} (run with UPDATE_GOLDEN=1 to create)"));
    assert_eq!(actual, expected, "{expected_name} differs");
}

fn run(make: &dyn Fn() -> Vec<Box<dyn Stage>>, input: &[u8], piece: usize) -> String {
    let mut p = Pipeline::new(make());
    let mut out = Vec::new();
    for chunk in input.chunks(piece.max(1)) {
        out.extend(p.feed(chunk));
    }
    out.extend(p.finish());
    String::from_utf8(out).unwrap()
}

/// Convert `input` whole and piecewise; all must agree; compare with the golden file.
fn golden(make: &dyn Fn() -> Vec<Box<dyn Stage>>, input: &str, expected: &str) -> String {
    let bytes = read(input);
    let whole = run(make, &bytes, bytes.len());
    for piece in [1, 7] {
        assert_eq!(
            normalise(&run(make, &bytes, piece)),
            normalise(&whole),
            "{input} in {piece}-byte pieces"
        );
    }
    compare(expected, &whole);
    whole
}

fn data_lines(sse: &str) -> Vec<Value> {
    sse.split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn anthropic_text_stream_to_openai_chunks() {
    let out = golden(
        &|| vec![Box::new(FromAnthropic::new(true, 200, true))],
        "anthropic/stream_text.sse",
        "anthropic/stream_text.expected.openai.sse",
    );
    assert!(out.ends_with("data: [DONE]\n\n"));
    let chunks = data_lines(&out);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello!");
    assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], 25);
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 15);
}

#[test]
fn anthropic_tool_use_stream_to_openai_chunks() {
    let make = || -> Vec<Box<dyn Stage>> { vec![Box::new(FromAnthropic::new(true, 200, false))] };
    let out = golden(
        &make,
        "anthropic/stream_tool_use.sse",
        "anthropic/stream_tool_use.expected.openai.sse",
    );
    let chunks = data_lines(&out);
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        serde_json::json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
    );
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    let mut p = Pipeline::new(make());
    p.feed(&read("anthropic/stream_tool_use.sse"));
    p.finish();
    assert_eq!(p.usage().unwrap().prompt, 472);
    assert_eq!(p.usage().unwrap().completion, 89);
}

#[test]
fn anthropic_messages_to_openai_completions() {
    golden(
        &|| vec![Box::new(FromAnthropic::new(false, 200, false))],
        "anthropic/message_tool_use.json",
        "anthropic/message_tool_use.expected.openai.json",
    );
    let out = golden(
        &|| vec![Box::new(FromAnthropic::new(false, 200, false))],
        "anthropic/message_cached.json",
        "anthropic/message_cached.expected.openai.json",
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["usage"]["prompt_tokens"], 21 + 188_086);
    assert_eq!(
        v["usage"]["prompt_tokens_details"]["cache_creation_tokens"],
        188_086
    );
    golden(
        &|| vec![Box::new(FromAnthropic::new(false, 529, false))],
        "anthropic/error_overloaded.json",
        "anthropic/error_overloaded.expected.openai.json",
    );
}

#[test]
fn openai_streams_to_anthropic_events() {
    let out = golden(
        &|| vec![Box::new(ToAnthropic::new(true, 200, "gpt-4o-mini"))],
        "openai/chat_stream.sse",
        "openai/chat_stream.expected.anthropic.sse",
    );
    assert!(out.starts_with("event: message_start\n"));
    assert!(out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    let out = golden(
        &|| vec![Box::new(ToAnthropic::new(true, 200, "gpt-4o"))],
        "openai/chat_stream_tools.sse",
        "openai/chat_stream_tools.expected.anthropic.sse",
    );
    // Parallel calls become two tool_use blocks.
    assert_eq!(out.matches("\"type\":\"tool_use\"").count(), 2);
    golden(
        &|| vec![Box::new(ToAnthropic::new(false, 200, "gpt-4o"))],
        "openai/chat_completion.json",
        "openai/chat_completion.expected.anthropic.json",
    );
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

#[test]
fn requests_convert_both_ways() {
    let claude_code: Value =
        serde_json::from_slice(&read("anthropic/request_claude_code.json")).unwrap();
    let chat = messages_to_chat(&claude_code).unwrap();
    compare(
        "anthropic/request_claude_code.expected.openai.json",
        &pretty(&chat),
    );
    let openai: Value = serde_json::from_slice(&read("openai/request_vision_tools.json")).unwrap();
    let messages = chat_to_messages(&openai, "claude-sonnet-4-5").unwrap();
    compare(
        "openai/request_vision_tools.expected.anthropic.json",
        &pretty(&messages),
    );
    // The parallel tool results are one user turn, as Anthropic requires.
    assert_eq!(messages["messages"].as_array().unwrap().len(), 3);
    assert_eq!(
        messages["messages"][2]["content"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn gemini_answers_to_openai() {
    let out = golden(
        &|| {
            vec![Box::new(FromGemini::new(
                true,
                200,
                "gemini-2.0-flash",
                true,
            ))]
        },
        "gemini/stream_text.sse",
        "gemini/stream_text.expected.openai.sse",
    );
    let chunks = data_lines(&out);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "The quick brown fox jumps over the lazy dog.\n");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 11);
    let out = golden(
        &|| {
            vec![Box::new(FromGemini::new(
                false,
                200,
                "gemini-2.0-flash",
                false,
            ))]
        },
        "gemini/function_call.json",
        "gemini/function_call.expected.openai.json",
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"brightness\":25,\"color_temp\":\"warm\"}"
    );
    let out = golden(
        &|| {
            vec![Box::new(FromGemini::new(
                false,
                400,
                "gemini-2.0-flash",
                false,
            ))]
        },
        "gemini/error_invalid_key.json",
        "gemini/error_invalid_key.expected.openai.json",
    );
    assert!(out.contains("API key not valid"));
}

/// What today's clients send (captured, see the README) converts: Claude Code's system
/// message inside `messages`, adaptive thinking and context management; Codex's developer
/// messages, namespace tool (flattened) and hosted web search (dropped).
#[test]
fn captured_client_requests_convert() {
    let claude: Value =
        serde_json::from_slice(&read("anthropic/request_claude_code_2.1.332.json")).unwrap();
    let (chat, conv) = messages_to_chat_with(&claude).unwrap();
    compare(
        "anthropic/request_claude_code_2.1.332.expected.openai.json",
        &pretty(&chat),
    );
    let msgs = chat["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system");
    assert!(msgs[1..].iter().all(|m| m["role"] != "system"));
    // The environment block (a system message in `messages`) joined the system prompt.
    assert!(
        msgs[0]["content"]
            .as_str()
            .unwrap()
            .contains("# Environment")
    );
    assert_eq!(chat["tools"].as_array().unwrap().len(), 12);
    // Adaptive thinking leaves the upstream's default.
    assert!(chat.get("reasoning_effort").is_none());
    assert!(conv.dropped_tools.is_empty());
    // Passed natively to Bedrock, only the fields Bedrock takes remain.
    let b = bedrock_body(claude.clone());
    let keys: Vec<&String> = b.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "anthropic_version",
            "max_tokens",
            "messages",
            "system",
            "thinking",
            "tools"
        ]
    );

    let codex: Value =
        serde_json::from_slice(&read("responses/request_codex_0.169.0.json")).unwrap();
    let (chat, conv) = responses_to_chat_with(&codex).unwrap();
    compare(
        "responses/request_codex_0.169.0.expected.openai.json",
        &pretty(&chat),
    );
    let names: Vec<&str> = chat["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"exec_command"));
    assert!(names.contains(&"multi_agent_v1__close_agent"));
    assert_eq!(conv.dropped_tools, vec!["web_search".to_string()]);
    assert_eq!(
        conv.unflatten("multi_agent_v1__close_agent"),
        Some(("multi_agent_v1", "close_agent"))
    );
    let msgs = chat["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system");
    assert!(msgs[1..].iter().all(|m| m["role"] != "system"));
}
