//! [`RelayBody`]: the answer relayed to the client as it arrives, scanned (never
//! buffered) for usage, and settled at its end, on an upstream error, on idle timeout, or
//! — when the client goes away — after reading the rest for the upstream's real usage.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::settle::{Outcome, Settle};
use super::usage::{BodyCollector, SseScanner, Usage};
use crate::wire::Pipeline;

/// How the answer passes: SSE scanned as it is, JSON collected for its usage, or
/// converted between formats.
pub(super) enum Mode {
    Sse {
        scanner: SseScanner,
        filter: bool,
        queue: Vec<Bytes>,
    },
    Json(BodyCollector),
    /// Converted between formats as it passes.
    Convert(Pipeline),
}

pub(super) type Upstream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// The response body: upstream bytes relayed as they arrive, scanned for usage, settled
/// at the end, on an upstream error, on idle timeout, or when the client goes away.
pub(super) struct RelayBody {
    first: Option<Bytes>,
    upstream: Upstream,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    mode: Mode,
    status: u16,
    settle: Option<Settle>,
    finished: bool,
    /// Content-Length of a JSON body: once that much has passed, the request is settled
    /// before the last chunk goes out (hyper stops polling at that point).
    expected_len: Option<u64>,
    received: u64,
    /// The client went away: the rest is read only to bill the upstream's real usage.
    client_gone: bool,
    /// Read the rest of the upstream's answer after the client left (cloud: for usage).
    drain: bool,
    /// The client had been sent the answer's final event when it went away: a complete
    /// answer (Codex closes at `response.completed`), not a disconnect.
    answered: bool,
}

/// How long, and how much, a response is still read after its client went away.
const DRAIN_TIME: Duration = Duration::from_secs(600);
const DRAIN_BYTES: u64 = 64 * 1024 * 1024;

impl Mode {
    /// The mode for an answer: through `pipeline` when there is one, else scanned as SSE
    /// (dropping the usage-only chunk the gateway asked for when `filter`) or as JSON.
    pub(super) fn for_answer(pipeline: Option<Pipeline>, is_sse: bool, filter: bool) -> Mode {
        if let Some(p) = pipeline {
            Mode::Convert(p)
        } else if is_sse {
            Mode::Sse {
                scanner: SseScanner::default(),
                filter,
                queue: Vec::new(),
            }
        } else {
            Mode::Json(BodyCollector::default())
        }
    }

    /// Whether the client has been sent the answer's final event.
    fn ended(&self) -> bool {
        match self {
            Mode::Json(_) => false,
            Mode::Convert(p) => p.ended(),
            Mode::Sse { scanner, queue, .. } => scanner.done && queue.is_empty(),
        }
    }
}

impl RelayBody {
    /// The body of an answer: `first` (already read) then the rest of `upstream`, at most
    /// `idle` apart; `expected_len`: a JSON body's Content-Length.
    pub(super) fn new(
        first: Option<Bytes>,
        upstream: Upstream,
        mode: Mode,
        status: u16,
        settle: Settle,
        idle: Duration,
        expected_len: Option<u64>,
    ) -> Self {
        RelayBody {
            first,
            upstream,
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
            mode,
            status,
            settle: Some(settle),
            finished: false,
            expected_len,
            received: 0,
            client_gone: false,
            answered: false,
            drain: true,
        }
    }

    /// When the client leaves, drop the upstream at once instead of reading the rest for
    /// its usage: a local engine stops generating when its connection closes (a stopped
    /// answer frees the GPU), and nothing bills it.
    pub(super) fn without_drain(mut self) -> Self {
        self.drain = false;
        self
    }

    /// Feed a chunk to the scanner; returns what to send to the client now.
    fn process(&mut self, chunk: Bytes) -> Option<Bytes> {
        match &mut self.mode {
            Mode::Json(c) => {
                c.feed(&chunk);
                Some(chunk)
            }
            Mode::Convert(p) => {
                let out = p.feed(&chunk);
                (!out.is_empty()).then(|| Bytes::from(out))
            }
            Mode::Sse {
                scanner,
                filter,
                queue,
            } => {
                if *filter {
                    // The queue is empty here (poll_next hands it out first): the chunk's
                    // runs go in, reversed to be popped in order.
                    debug_assert!(queue.is_empty());
                    scanner.feed(&chunk, true, queue);
                    queue.reverse();
                    queue.pop()
                } else {
                    scanner.feed(&chunk, false, &mut Vec::new());
                    Some(chunk)
                }
            }
        }
    }

    /// Observed usage; `estimated` when it had to be inferred.
    fn observed(&self) -> (Option<Usage>, bool) {
        if !(200..300).contains(&self.status) {
            return (None, false);
        }
        let prompt_estimate = self.settle.as_ref().map(|s| s.prompt_estimate).unwrap_or(0);
        match &self.mode {
            Mode::Json(c) => match c.usage() {
                Some(u) => (Some(u), false),
                None => (
                    Some(Usage {
                        prompt: prompt_estimate,
                        completion: 0,
                        cached: 0,
                        cache_write: 0,
                    }),
                    true,
                ),
            },
            Mode::Convert(p) => match p.usage() {
                Some(u) => (Some(u), false),
                None => (
                    Some(Usage {
                        prompt: prompt_estimate,
                        completion: p.content_events(),
                        cached: 0,
                        cache_write: 0,
                    }),
                    true,
                ),
            },
            Mode::Sse { scanner, .. } => match scanner.usage {
                Some(u) => (Some(u), false),
                None => (
                    Some(Usage {
                        prompt: prompt_estimate,
                        completion: scanner.content_events,
                        cached: 0,
                        cache_write: 0,
                    }),
                    true,
                ),
            },
        }
    }

    fn settle(&mut self, mut error: Option<String>, mut flag: Option<&'static str>) {
        let (usage, estimated) = self.observed();
        let mut status = self.status;
        if self.client_gone && !self.answered {
            status = 499;
            flag = Some("client_disconnected");
            error = Some(match (&error, estimated) {
                (Some(e), _) => format!("client disconnected; then {e}: usage estimated"),
                (None, true) => "client disconnected; usage estimated from the prompt".into(),
                (None, false) => {
                    "client disconnected; the upstream's usage was read to bill it".into()
                }
            });
        }
        if let Some(mut s) = self.settle.take() {
            s.finish(Outcome {
                status,
                usage,
                estimated,
                error,
                flag,
            });
        }
    }
}

impl Stream for RelayBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Mode::Sse { queue, .. } = &mut this.mode
                && let Some(b) = queue.pop()
            {
                return Poll::Ready(Some(Ok(b)));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            if let Some(first) = this.first.take() {
                if let Some(out) = this.process(first) {
                    return Poll::Ready(Some(Ok(out)));
                }
                continue;
            }
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let deadline = tokio::time::Instant::now() + this.idle;
                    this.sleep.as_mut().reset(deadline);
                    this.received += chunk.len() as u64;
                    let out = this.process(chunk);
                    if this.expected_len.is_some_and(|n| this.received >= n) {
                        this.finished = true;
                        this.settle(None, None);
                    }
                    if let Some(out) = out {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finished = true;
                    this.settle(
                        Some(format!("upstream failed mid-response: {e}")),
                        Some("upstream_cut"),
                    );
                    // A converted stream ends in its format's error event instead of a cut.
                    if let Mode::Convert(p) = &mut this.mode {
                        let out = p.fail("the upstream failed mid-response");
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Bytes::from(out))));
                        }
                    }
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "upstream failed mid-response",
                    ))));
                }
                Poll::Ready(None) => {
                    this.finished = true;
                    let rest = match &mut this.mode {
                        Mode::Sse {
                            scanner,
                            filter: true,
                            ..
                        } => scanner.remainder(),
                        Mode::Convert(p) => {
                            let out = p.finish();
                            (!out.is_empty()).then(|| Bytes::from(out))
                        }
                        _ => None,
                    };
                    this.settle(None, None);
                    if let Some(rest) = rest {
                        return Poll::Ready(Some(Ok(rest)));
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    if this.sleep.as_mut().poll(cx).is_ready() {
                        this.finished = true;
                        this.settle(Some("upstream idle timeout".into()), Some("idle_timeout"));
                        return Poll::Ready(Some(Err(std::io::Error::other(
                            "upstream idle timeout",
                        ))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for RelayBody {
    fn drop(&mut self) {
        if self.settle.is_none() {
            return;
        }
        let answered = self.answered || self.mode.ended();
        // The client left before the end: the upstream is still working (and charging), so
        // read the rest, bounded in time and bytes, for its real usage.
        if self.drain
            && !self.client_gone
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let mut rest = RelayBody {
                first: self.first.take(),
                upstream: std::mem::replace(
                    &mut self.upstream,
                    Box::pin(futures_util::stream::empty()),
                ),
                idle: self.idle,
                sleep: Box::pin(tokio::time::sleep(self.idle)),
                mode: std::mem::replace(&mut self.mode, Mode::Json(BodyCollector::default())),
                status: self.status,
                settle: self.settle.take(),
                finished: self.finished,
                expected_len: self.expected_len,
                received: self.received,
                client_gone: true,
                answered,
                drain: false,
            };
            handle.spawn(async move {
                let _ = tokio::time::timeout(DRAIN_TIME, async {
                    let mut read = 0u64;
                    while let Some(Ok(b)) = rest.next().await {
                        read += b.len() as u64;
                        if read > DRAIN_BYTES {
                            break;
                        }
                    }
                })
                .await;
                // Still unsettled (a bound was hit): the drop below settles on an estimate.
            });
            return;
        }
        self.client_gone = true;
        self.answered = answered;
        self.settle(None, None);
    }
}
