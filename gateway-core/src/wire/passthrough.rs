//! Relaying an answer unchanged to a client of the upstream's own protocol while reading
//! its usage on the way: [`Observer`] does the relaying, streamed or whole, and a
//! [`Dialect`] says where each protocol keeps usage and how it reports a failure mid-stream.

use std::marker::PhantomData;

use serde_json::Value;

use super::{Stage, sse};
use crate::vocab::Usage;

/// The bodies larger than this (not streamed) are relayed but not read for usage.
const MAX_READ_BODY: usize = 16 * 1024 * 1024;

/// What a streamed answer has told so far.
#[derive(Debug, Default)]
pub struct Tally {
    pub usage: Option<Usage>,
    /// Content events (the estimate of completion tokens when usage never arrives).
    pub content_events: i64,
    /// The stream's own end (or error) event was seen: nothing more may be appended.
    pub ended: bool,
}

/// One protocol's answer, as far as relaying it unchanged needs.
pub trait Dialect {
    /// Read one streamed event (its JSON `data`).
    fn event(v: &Value, tally: &mut Tally);
    /// The usage of a whole JSON answer.
    fn body_usage(v: &Value) -> Option<Usage>;
    /// Append the stream's error event for a failure mid-answer.
    fn error_event(message: &str, out: &mut Vec<u8>);
}

/// Relays bytes as they come; reads usage from the stream's events or the whole body.
pub struct Observer<D> {
    stream: bool,
    splitter: sse::Splitter,
    buf: Vec<u8>,
    tally: Tally,
    dialect: PhantomData<fn() -> D>,
}

impl<D: Dialect> Observer<D> {
    pub fn new(stream: bool) -> Self {
        Observer {
            stream,
            splitter: sse::Splitter::default(),
            buf: Vec::new(),
            tally: Tally::default(),
            dialect: PhantomData,
        }
    }
}

impl<D: Dialect> Stage for Observer<D> {
    fn content_type(&self) -> &'static str {
        if self.stream {
            "text/event-stream"
        } else {
            "application/json"
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.tally.usage
    }

    fn content_events(&self) -> i64 {
        self.tally.content_events
    }

    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(input);
        if !self.stream {
            if self.buf.len() + input.len() <= MAX_READ_BODY {
                self.buf.extend_from_slice(input);
            }
            return;
        }
        let mut events = Vec::new();
        self.splitter.feed(input, &mut events);
        for e in events {
            if let Ok(v) = serde_json::from_slice::<Value>(&e.data) {
                D::event(&v, &mut self.tally);
            }
        }
    }

    fn finish(&mut self, _out: &mut Vec<u8>) {
        if !self.stream {
            self.tally.usage = serde_json::from_slice::<Value>(&self.buf)
                .ok()
                .and_then(|v| D::body_usage(&v));
        }
    }

    fn ended(&self) -> bool {
        self.tally.ended
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.stream && !self.tally.ended {
            self.tally.ended = true;
            D::error_event(message, out);
        }
    }
}
