//! Reading token usage out of upstream responses without holding them back: a body
//! collector for JSON responses and an SSE scanner that frames events as they pass.

use bytes::Bytes;

use crate::wire::sse::find_event_end;

use crate::vocab::{RawUsage, WithUsage};
pub use crate::vocab::{Usage, usage_from_json};

/// Largest JSON body kept for reading usage at its end.
const MAX_COLLECT: usize = 16 * 1024 * 1024;

/// Copies a JSON response as it passes (up to a cap) to read its usage at the end.
#[derive(Debug, Default)]
pub struct BodyCollector {
    buf: Vec<u8>,
    overflow: bool,
}

impl BodyCollector {
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.overflow {
            return;
        }
        if self.buf.len() + chunk.len() > MAX_COLLECT {
            self.overflow = true;
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(chunk);
    }

    pub fn usage(&self) -> Option<Usage> {
        if self.overflow {
            None
        } else {
            usage_from_json(&self.buf)
        }
    }
}

/// Longest unfinished event kept for scanning.
const MAX_EVENT: usize = 8 * 1024 * 1024;

/// Frames an SSE stream into events as bytes arrive, reads usage from the OpenAI usage
/// chunk, counts content chunks (the fallback measure when a stream is cut), and can drop
/// the usage-only chunk that the gateway itself asked for.
#[derive(Debug, Default)]
pub struct SseScanner {
    pending: Vec<u8>,
    /// How much of `pending` holds no event end (searched already).
    scanned: usize,
    pub usage: Option<Usage>,
    /// Data events carrying choices (≈ completion tokens when usage never arrives).
    pub content_events: i64,
    pub done: bool,
}

impl SseScanner {
    /// Feed a chunk. With `filter`, what to forward is pushed to `out`: the chunk's
    /// complete events as runs of the chunk itself (shared, not copied), split only
    /// around the usage-only chunk, which is dropped; an event that straddled chunks is
    /// copied once. Without, the caller forwards `chunk` itself.
    pub fn feed(&mut self, chunk: &Bytes, filter: bool, out: &mut Vec<Bytes>) {
        if self.pending.is_empty() {
            // The usual case, a chunk that starts with an event: scanned where it is, and
            // only an unfinished tail is kept.
            let start = self.frame(chunk, 0, filter, &mut |r| out.push(chunk.slice(r)));
            self.pending.extend_from_slice(&chunk[start..]);
        } else {
            self.pending.extend_from_slice(chunk);
            let pending = std::mem::take(&mut self.pending);
            // An unfinished event is not searched again from its start (a separator may
            // straddle the chunks: back up 3 bytes).
            let from = self.scanned.saturating_sub(3);
            let start = self.frame(&pending, from, filter, &mut |r| {
                out.push(Bytes::copy_from_slice(&pending[r]))
            });
            self.pending = pending;
            self.pending.drain(..start);
        }
        // Scanned only: an event that never ends is not kept without bound (forwarded
        // events, with `filter`, are whole).
        if !filter && self.pending.len() > MAX_EVENT {
            self.pending.clear();
        }
        if self.pending.is_empty() {
            // Nothing held between events (a thousand open streams waiting for their
            // next token kept a thousand scan buffers).
            self.pending = Vec::new();
        }
        self.scanned = self.pending.len();
    }

    /// Inspect the complete events of `buf`, searching for their ends from `from`. With
    /// `forward`, the runs of events to forward (all but the usage-only chunk) go to
    /// `emit`. Returns where the unfinished rest starts.
    fn frame(
        &mut self,
        buf: &[u8],
        mut from: usize,
        forward: bool,
        emit: &mut impl FnMut(std::ops::Range<usize>),
    ) -> usize {
        let mut start = 0;
        let mut run = 0;
        while let Some((end, sep)) = find_event_end(&buf[from..]) {
            let end = from + end;
            let event_end = end + sep;
            if !self.inspect(&buf[start..end]) && forward {
                if run < start {
                    emit(run..start);
                }
                run = event_end;
            }
            start = event_end;
            from = start;
        }
        if forward && run < start {
            emit(run..start);
        }
        start
    }

    /// Whatever is left unterminated at the end of the stream (forwarded as is).
    pub fn remainder(&mut self) -> Option<Bytes> {
        if self.pending.is_empty() {
            None
        } else {
            Some(Bytes::from(std::mem::take(&mut self.pending)))
        }
    }

    /// Look at one event; false when it is the usage-only chunk.
    fn inspect(&mut self, event: &[u8]) -> bool {
        match classify(event) {
            Seen::Other => true,
            Seen::Done => {
                self.done = true;
                true
            }
            Seen::Content => {
                self.content_events += 1;
                true
            }
            Seen::Usage(u, usage_only) => {
                self.usage = Some(u);
                if !usage_only {
                    self.content_events += 1;
                }
                !usage_only
            }
        }
    }
}

/// What an SSE event of an OpenAI stream is, for billing.
enum Seen {
    /// No data, or data that is not JSON.
    Other,
    Done,
    /// A chunk without usage (≈ a token).
    Content,
    /// A chunk with usage; `true` when it is only that (no choices).
    Usage(Usage, bool),
}

/// The `"usage"` key's searcher, built once (`memmem::find` builds one per call).
static USAGE_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage\""));

/// The `data:` lines of an event, joined by line feeds as SSE says; borrowed when there
/// is one (the usual event), so nothing is copied.
fn event_data(event: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut data: std::borrow::Cow<[u8]> = std::borrow::Cow::Borrowed(&[]);
    let mut lines = 0;
    let mut rest = event;
    while !rest.is_empty() {
        // Lines found with memchr, not byte by byte.
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            lines += 1;
            if lines == 1 {
                data = std::borrow::Cow::Borrowed(value);
            } else {
                let joined = data.to_mut();
                joined.push(b'\n');
                joined.extend_from_slice(value);
            }
        }
    }
    data
}

fn classify(event: &[u8]) -> Seen {
    let data = event_data(event);
    if data.is_empty() {
        return Seen::Other;
    }
    if *data == *b"[DONE]" {
        return Seen::Done;
    }
    let Some(at) = USAGE_KEY.find(&data) else {
        return Seen::Content;
    };
    // The usual chunk of a stream with usage on (`stream_options.include_usage`, which
    // the gateway asks for): `"usage":null` as its only usage key. Quoted and followed by a
    // colon it is a key (a JSON string holds no unescaped quote), so there is no usage
    // here and nothing to parse.
    let after = &data[at + 7..];
    if null_value(after) && USAGE_KEY.find(after).is_none() {
        return Seen::Content;
    }
    match serde_json::from_slice::<WithUsage>(&data) {
        Ok(w) => {
            let choices_empty = w.choices.as_ref().is_some_and(|c| c.is_empty());
            match w.usage.and_then(RawUsage::into_usage) {
                Some(u) => Seen::Usage(u, choices_empty),
                None => Seen::Content,
            }
        }
        Err(_) => Seen::Other,
    }
}

/// Whether `rest` (what follows a key) is `: null` and then the end of the value.
fn null_value(rest: &[u8]) -> bool {
    let rest = rest.trim_ascii_start();
    let Some(rest) = rest.strip_prefix(b":") else {
        return false;
    };
    let Some(rest) = rest.trim_ascii_start().strip_prefix(b"null") else {
        return false;
    };
    matches!(rest.trim_ascii_start().first(), Some(b',' | b'}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_usage_is_content_without_a_parse_and_anything_else_is_parsed() {
        let content = |d: &str| matches!(classify(format!("data: {d}").as_bytes()), Seen::Content);
        assert!(content(
            r#"{"choices":[{"delta":{"content":"a"}}],"usage":null}"#
        ));
        assert!(content(
            r#"{"choices":[{"delta":{"content":"a"}}],"usage" : null }"#
        ));
        // Text that mentions usage is escaped inside its string: still content.
        assert!(content(
            r#"{"choices":[{"delta":{"content":"\"usage\":null"}}],"usage":null}"#
        ));
        // A null first and a real usage after it: parsed, the usage is found.
        let d = r#"data: {"x":{"usage":null},"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        assert!(
            matches!(classify(d.as_bytes()), Seen::Usage(u, true) if u.prompt == 3 && u.completion == 4)
        );
        // Not null: parsed.
        assert!(!null_value(b":nullx}"));
        assert!(!null_value(b":{}"));
        assert!(null_value(b": null,"));
    }

    #[test]
    fn event_data_joins_data_lines_and_skips_the_rest() {
        assert_eq!(&*event_data(b"data: {\"a\":1}"), b"{\"a\":1}");
        assert!(matches!(
            event_data(b"data: x"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            &*event_data(b"event: e\r\ndata:a\r\n: comment\ndata: b\n"),
            b"a\nb"
        );
        assert_eq!(&*event_data(b"event: ping"), b"");
        assert_eq!(&*event_data(b"data:"), b"");
    }

    const STREAM: &str = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n\
data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}],\"usage\":null}\n\n\
data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n\
data: [DONE]\n\n";

    #[test]
    fn an_event_that_never_ends_is_not_kept_without_bound() {
        let mut s = SseScanner::default();
        let piece = vec![b'x'; 1024 * 1024];
        for _ in 0..12 {
            s.feed(&Bytes::from(piece.clone()), false, &mut Vec::new());
            assert!(s.pending.len() <= MAX_EVENT);
        }
        // Framing picks up again at the next event.
        s.feed(
            &Bytes::from_static(b"\n\ndata: [DONE]\n\n"),
            false,
            &mut Vec::new(),
        );
        assert!(s.done);
    }

    #[test]
    fn nothing_is_held_between_events() {
        let mut s = SseScanner::default();
        let mut out = Vec::new();
        s.feed(
            &Bytes::from_static(b"data: {\"choices\":[{}]}\n\n"),
            true,
            &mut out,
        );
        assert_eq!(s.pending.capacity(), 0);
        // An unfinished event is kept until its end, then let go.
        s.feed(&Bytes::from_static(b"data: {\"choices\""), true, &mut out);
        assert_eq!(s.pending, b"data: {\"choices\"");
        s.feed(&Bytes::from_static(b":[{}]}\n\n"), true, &mut out);
        assert_eq!(s.pending.capacity(), 0);
        assert_eq!((s.content_events, out.len()), (2, 2));
        assert_eq!(out[1].as_ref(), b"data: {\"choices\":[{}]}\n\n");
    }

    #[test]
    fn a_whole_chunk_is_forwarded_as_runs_of_itself_around_the_usage_chunk() {
        let chunk = Bytes::from_static(STREAM.as_bytes());
        let mut s = SseScanner::default();
        let mut out = Vec::new();
        s.feed(&chunk, true, &mut out);
        // Two runs: the content events, then [DONE]; the usage-only chunk between them
        // is left out, and both point into the chunk (shared, not copied).
        assert_eq!(out.len(), 2);
        let usage_at = STREAM.find("data: {\"id\":\"c\",\"choices\":[],").unwrap();
        assert_eq!(out[0].as_ref(), &STREAM.as_bytes()[..usage_at]);
        assert_eq!(out[1].as_ref(), b"data: [DONE]\n\n");
        let range = chunk.as_ptr_range();
        assert!(out.iter().all(|b| range.contains(&b.as_ptr())));
        // Without the usage chunk, one run: the chunk itself.
        let plain = Bytes::from_static(b"data: {\"choices\":[{}]}\n\ndata: [DONE]\n\n");
        let mut out = Vec::new();
        SseScanner::default().feed(&plain, true, &mut out);
        assert_eq!(out, vec![plain.clone()]);
        assert_eq!(out[0].as_ptr(), plain.as_ptr());
    }

    #[test]
    fn separators_of_both_kinds_split_across_chunks() {
        let stream =
            b"data: {\"choices\":[{}]}\r\n\r\ndata: {\"choices\":[{}]}\n\ndata: [DONE]\r\n\r\n";
        for split in 1..stream.len() {
            let mut s = SseScanner::default();
            for c in stream.chunks(split) {
                s.feed(&Bytes::copy_from_slice(c), false, &mut Vec::new());
            }
            assert_eq!((s.content_events, s.done), (2, true), "split {split}");
        }
    }

    #[test]
    fn reads_usage_across_arbitrary_chunking() {
        for split in [1, 3, 7, 50, STREAM.len()] {
            let mut s = SseScanner::default();
            let mut out = vec![];
            for chunk in STREAM.as_bytes().chunks(split) {
                s.feed(&Bytes::copy_from_slice(chunk), true, &mut out);
            }
            assert_eq!(
                s.usage,
                Some(Usage {
                    prompt: 9,
                    completion: 2,
                    cached: 0,
                    cache_write: 0
                })
            );
            assert!(s.done);
            assert_eq!(s.content_events, 2);
            let forwarded: Vec<u8> = out.concat();
            let text = String::from_utf8(forwarded).unwrap();
            assert!(
                !text.contains("prompt_tokens"),
                "usage chunk dropped when filtering"
            );
            assert!(text.ends_with("data: [DONE]\n\n"));
            assert_eq!(text.matches("data:").count(), 3);
        }
    }

    #[test]
    fn json_usage_with_cache_and_embeddings() {
        let body = br#"{"object":"list","data":[],"usage":{"prompt_tokens":5,"total_tokens":5}}"#;
        assert_eq!(
            usage_from_json(body),
            Some(Usage {
                prompt: 5,
                completion: 0,
                cached: 0,
                cache_write: 0
            })
        );
        let body = br#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}"#;
        assert_eq!(
            usage_from_json(body),
            Some(Usage {
                prompt: 10,
                completion: 3,
                cached: 4,
                cache_write: 0
            })
        );
        assert_eq!(usage_from_json(b"not json"), None);
    }

    #[test]
    fn crlf_events_are_framed() {
        let mut s = SseScanner::default();
        let mut out = vec![];
        s.feed(
            &Bytes::from_static(b"data: {\"choices\":[{}]}\r\n\r\ndata: [DONE]\r\n\r\n"),
            false,
            &mut out,
        );
        assert!(s.done);
        assert_eq!(s.content_events, 1);
        assert!(out.is_empty());
    }
}
