//! A small HTTP/1.1 client for plain-`http://` upstreams: local engines and
//! OpenAI-compatible servers on the machine or the LAN, the gateway's busiest path.
//!
//! Why not reqwest here: hyper's client reads the socket in a connection task of its own
//! and hands the body over one chunked-encoding chunk at a time through a channel, so a
//! streamed answer that arrives in one read crosses two tasks per chunk and leaves the
//! gateway as one write per chunk. This client reads the socket in the task that relays
//! the answer, decodes every chunk already received in one go, and so passes a read's
//! worth of answer on as one piece. TLS upstreams, proxies (`HTTP_PROXY`/`ALL_PROXY`) and
//! Vertex (token fetches) keep using reqwest.
//!
//! What it does: `POST` with a `Content-Length` body; answers framed by
//! `Content-Length`, `Transfer-Encoding: chunked` or the connection's close; keep-alive
//! connections pooled per host (LIFO, checked for a close before reuse, 90 s idle), a
//! reused connection that dies before its answer starts retried once on a new one; no
//! redirects (none are followed anywhere: the key would go along).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest response head read (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size or trailer line.
const MAX_LINE: usize = 4096;
/// How long a pooled connection may sit idle.
const IDLE: Duration = Duration::from_secs(90);
/// Idle connections kept per host.
const MAX_IDLE_PER_HOST: usize = 1024;
/// Read buffer: at least a quarter of this much room before each read (hyper's client
/// starts at 8 KiB too; a thousand open streams hold a thousand of them).
const READ_ROOM: usize = 8 * 1024;
/// Idle connections per host that keep their read buffer for the next answer (a buffer
/// above glibc's per-thread cache size, taken and freed per request, cost a trip through
/// the allocator's slow path each time); the others let it go.
const BUFFERED_IDLE: usize = 64;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("connect: timed out")]
    ConnectTimeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed answer: {0}")]
    Protocol(&'static str),
}

impl Error {
    /// The connection could not be made (nothing was sent).
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect(_) | Error::ConnectTimeout)
    }
}

/// What the relay reads off an answer's head.
#[derive(Debug, Default)]
pub struct Head {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub content_length: Option<HeaderValue>,
    pub location: Option<HeaderValue>,
}

/// An answer: its head, and its body as it arrives.
pub struct Response {
    pub head: Head,
    pub body: BodyStream,
}

/// Pooled plain-HTTP/1.1 connections, shared by every request.
#[derive(Debug, Clone)]
pub struct Client {
    pool: Arc<Pool>,
    connect_timeout: Duration,
}

#[derive(Debug, Default)]
struct Pool {
    idle: Mutex<crate::Map<Box<str>, Vec<Idle>>>,
}

/// A pooled connection, since when it has been idle, and its read buffer (empty; it may
/// still be shared with the last answer's body, and is reused once it no longer is).
type Idle = (TcpStream, Instant, BytesMut);

/// A plain `http://` URL split into what the request line and `Host` need.
#[derive(Debug, PartialEq)]
pub struct Target<'a> {
    /// `host[:port]` as written (the `Host` header).
    pub authority: &'a str,
    /// Where to connect: the authority with the default port made explicit.
    pub addr: String,
    /// Path and query (at least `/`).
    pub path: &'a str,
}

impl<'a> Target<'a> {
    /// `url` if it is a plain `http://` URL this client can call (no credentials in it).
    pub fn parse(url: &'a str) -> Option<Target<'a>> {
        let rest = url
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let path = path.split('#').next().unwrap_or("");
        if authority.is_empty()
            || authority.contains('@')
            || authority.bytes().any(|b| b <= b' ' || b == 0x7f)
            || path.bytes().any(|b| b <= b' ' || b == 0x7f)
        {
            return None;
        }
        let has_port = match authority.rfind(']') {
            Some(close) => authority[close..].contains(':'),
            None => authority.contains(':'),
        };
        let addr = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        // A query with no path (`http://h?x`) would need `/?x`: left to reqwest.
        if path.starts_with('?') {
            return None;
        }
        let path = if path.is_empty() { "/" } else { path };
        Some(Target {
            authority,
            addr,
            path,
        })
    }
}

impl Client {
    pub fn new(connect_timeout: Duration) -> Client {
        Client {
            pool: Arc::default(),
            connect_timeout,
        }
    }

    /// `POST` `body` to `target` with `headers` (`Host`, `Content-Length` and
    /// `Connection` are the client's own); `reuse`: the connection may be pooled and
    /// reused (local engines close theirs after each streamed answer without saying so,
    /// so they get a new one per request, asked to close it).
    pub async fn post(
        &self,
        target: &Target<'_>,
        headers: &HeaderMap,
        body: &[u8],
        reuse: bool,
    ) -> Result<Response, Error> {
        let request = encode_request(target, headers, body, reuse);
        if reuse && let Some((conn, buf)) = self.pool.checkout(&target.addr) {
            // `None`: closed before a byte of answer (the server's idle timeout raced
            // this request): once more, on a new connection.
            if let Some((head, body)) = exchange(conn, buf, &request).await? {
                return Ok(self.respond(head, body, target, true));
            }
        }
        let conn = self.connect(&target.addr).await?;
        match exchange(conn, BytesMut::new(), &request).await? {
            Some((head, body)) => Ok(self.respond(head, body, target, reuse)),
            None => Err(Error::Protocol("connection closed before an answer")),
        }
    }

    fn respond(&self, head: Head, mut body: BodyStream, target: &Target, reuse: bool) -> Response {
        if reuse && body.keep_alive {
            body.pool = Some((self.pool.clone(), target.addr.as_str().into()));
        }
        Response { head, body }
    }

    async fn connect(&self, addr: &str) -> Result<TcpStream, Error> {
        let conn = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::ConnectTimeout)?
            .map_err(Error::Connect)?;
        let _ = conn.set_nodelay(true);
        Ok(conn)
    }
}

impl Pool {
    /// The most recently used live connection to `addr`.
    fn checkout(&self, addr: &str) -> Option<(TcpStream, BytesMut)> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(addr)?;
        while let Some((conn, since, buf)) = list.pop() {
            // Closed by the server (or sent something unasked): not reusable.
            let mut probe = [0u8; 1];
            let open = matches!(conn.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
            if open && since.elapsed() < IDLE {
                return Some((conn, buf));
            }
        }
        None
    }

    fn checkin(&self, addr: Box<str>, conn: TcpStream, buf: BytesMut) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(addr).or_default();
        // The oldest are at the front: drop those past their time.
        let stale = list
            .iter()
            .take_while(|(_, t, _)| t.elapsed() >= IDLE)
            .count();
        list.drain(..stale);
        if list.len() < MAX_IDLE_PER_HOST {
            let buf = if list.len() < BUFFERED_IDLE {
                buf
            } else {
                BytesMut::new()
            };
            list.push((conn, Instant::now(), buf));
        }
    }
}

fn encode_request(target: &Target, headers: &HeaderMap, body: &[u8], reuse: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len() + headers.len() * 48);
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(target.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(target.authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        let n = name.as_str();
        if matches!(
            n,
            "host" | "content-length" | "connection" | "transfer-encoding" | "keep-alive"
        ) {
            continue;
        }
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !reuse {
        out.extend_from_slice(b"connection: close\r\n");
    }
    // Into the buffer's spare room: no string is made for the number.
    use std::io::Write as _;
    let _ = write!(out, "content-length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
    out
}

/// The usual content types as static values (a copy of the upstream's bytes otherwise).
fn static_type(v: &[u8]) -> Option<HeaderValue> {
    const USUAL: [&str; 4] = [
        "application/json",
        "text/event-stream",
        "application/json; charset=utf-8",
        "text/event-stream; charset=utf-8",
    ];
    USUAL
        .into_iter()
        .find(|u| u.as_bytes() == v)
        .map(HeaderValue::from_static)
}

/// What came back on a connection: an answer's head and its body, or `None` when the
/// connection closed (or was reset) before a byte of answer came.
type Exchange = Option<(Head, BodyStream)>;

/// Send `request` on `conn` and read the answer's head into `buf` (empty: the
/// connection's buffer from its last answer, or a new one).
async fn exchange(
    mut conn: TcpStream,
    mut buf: BytesMut,
    request: &[u8],
) -> Result<Exchange, Error> {
    if let Err(e) = conn.write_all(request).await {
        return if is_closed(&e) {
            Ok(None)
        } else {
            Err(e.into())
        };
    }
    debug_assert!(buf.is_empty());
    let mut started = false;
    loop {
        if buf.is_empty() {
            if !read_more(&mut conn, &mut buf).await? {
                return if started {
                    Err(Error::Protocol("connection closed after an interim answer"))
                } else {
                    Ok(None)
                };
            }
            started = true;
        }
        let more = match parse_head(&buf)? {
            HeadParse::Partial => true,
            HeadParse::Interim(len) => {
                buf.advance(len);
                false
            }
            HeadParse::Done {
                head,
                len,
                framing,
                keep_alive,
            } => {
                buf.advance(len);
                let body = BodyStream {
                    conn: Some(conn),
                    buf,
                    framing,
                    keep_alive,
                    pool: None,
                };
                return Ok(Some((head, body)));
            }
        };
        if more && !read_more(&mut conn, &mut buf).await? {
            return Err(Error::Protocol("connection closed inside the head"));
        }
    }
}

/// What the bytes read so far make of an answer's head.
enum HeadParse {
    /// Not all of it yet.
    Partial,
    /// An interim answer (100 Continue) of this many bytes: the real one follows.
    Interim(usize),
    /// The answer's head, `len` bytes long, and how its body is framed.
    Done {
        head: Head,
        len: usize,
        framing: Framing,
        keep_alive: bool,
    },
}

/// Parse an answer's head at the start of `buf`. Not async, so the 64 header slots (2 KB)
/// live on the stack for the parse only, not in every request's relay future (whose
/// size each request's allocation and moves pay).
fn parse_head(buf: &[u8]) -> Result<HeadParse, Error> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(HeadParse::Partial),
        Ok(httparse::Status::Partial) => return Err(Error::Protocol("head too large")),
        Err(_) => return Err(Error::Protocol("bad response head")),
    };
    let code = parsed.code.unwrap_or(0);
    // An interim answer (100 Continue): the real one follows.
    if (100..200).contains(&code) && code != 101 {
        return Ok(HeadParse::Interim(len));
    }
    let status = StatusCode::from_u16(code).map_err(|_| Error::Protocol("bad status"))?;
    let mut head = Head {
        status,
        ..Head::default()
    };
    let mut keep_alive = parsed.version == Some(1);
    let mut chunked = false;
    let mut length = None;
    for h in parsed.headers.iter() {
        let value = || HeaderValue::from_bytes(h.value).ok();
        if h.name.eq_ignore_ascii_case("content-type") {
            head.content_type = static_type(h.value).or_else(value);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or(Error::Protocol("bad content-length"))?;
            if length.is_some_and(|m| m != n) {
                return Err(Error::Protocol("conflicting content-length"));
            }
            length = Some(n);
            head.content_length = value();
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked when it is the last coding (RFC 9112 §6.1).
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            if !chunked {
                keep_alive = false;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
            {
                keep_alive = false;
            }
        } else if h.name.eq_ignore_ascii_case("location") {
            head.location = value();
        }
    }
    let framing = if code == 204 || code == 304 {
        Framing::Length(0)
    } else if chunked {
        // A length beside chunked is ignored, and not relayed.
        head.content_length = None;
        Framing::Chunked(Chunk::Size)
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        keep_alive = false;
        Framing::Close
    };
    Ok(HeadParse::Done {
        head,
        len,
        framing,
        keep_alive,
    })
}

/// Read more of the answer's head: `false` when the connection closed (or was reset)
/// before any of it came.
async fn read_more(conn: &mut TcpStream, buf: &mut BytesMut) -> Result<bool, Error> {
    buf.reserve(READ_ROOM);
    match conn.read_buf(buf).await {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(e) if is_closed(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn is_closed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    )
}

#[derive(Debug)]
enum Framing {
    /// This many body bytes still to come.
    Length(u64),
    Chunked(Chunk),
    /// Until the server closes the connection.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Chunk {
    /// A chunk-size line is next.
    Size,
    /// This much of the current chunk's data is still to come.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines, up to an empty one.
    Trailers,
    Done,
}

/// An answer's body, read from the socket by whoever polls it. When it has been read to
/// its end, a keep-alive connection goes back to the pool; dropped earlier, the connection
/// closes (a local engine stops generating).
pub struct BodyStream {
    conn: Option<TcpStream>,
    buf: BytesMut,
    framing: Framing,
    keep_alive: bool,
    pool: Option<(Arc<Pool>, Box<str>)>,
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyStream")
            .field("framing", &self.framing)
            .finish_non_exhaustive()
    }
}

impl BodyStream {
    /// Everything of the body decodable from what has been read: `Ok(None)` when more must
    /// be read first.
    fn decode(&mut self) -> Result<Option<Bytes>, Error> {
        match &mut self.framing {
            Framing::Length(left) => {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let take = (*left).min(self.buf.len() as u64) as usize;
                *left -= take as u64;
                Ok(Some(self.buf.split_to(take).freeze()))
            }
            Framing::Close => Ok((!self.buf.is_empty()).then(|| self.buf.split().freeze())),
            Framing::Chunked(state) => {
                let mut out = BytesMut::new();
                decode_chunks(&mut self.buf, state, &mut out)?;
                Ok((!out.is_empty()).then(|| out.freeze()))
            }
        }
    }

    fn complete(&self) -> bool {
        matches!(
            self.framing,
            Framing::Length(0) | Framing::Chunked(Chunk::Done)
        )
    }

    /// The body has been read to its end: the connection may serve another request.
    fn release(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), Some((pool, addr))) = (conn, self.pool.take())
            && self.keep_alive
            && self.buf.is_empty()
        {
            pool.checkin(addr, conn, std::mem::take(&mut self.buf));
        }
    }

    /// The next piece of the body (`None` at its end).
    pub async fn next_piece(&mut self) -> Option<Result<Bytes, Error>> {
        loop {
            match self.decode() {
                Err(e) => {
                    self.conn = None;
                    return Some(Err(e));
                }
                Ok(Some(piece)) => {
                    if self.complete() {
                        self.release();
                    }
                    return Some(Ok(piece));
                }
                Ok(None) => {}
            }
            if self.complete() {
                self.release();
                return None;
            }
            let conn = self.conn.as_mut()?;
            if self.buf.capacity() - self.buf.len() < READ_ROOM / 4 {
                self.buf.reserve(READ_ROOM);
            }
            let read = match conn.try_read_buf(&mut self.buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // Nothing to read yet (a stream between two tokens, which may take
                    // seconds): with nothing buffered either, the buffer is let go while
                    // waiting and taken again when the socket has bytes. A thousand open
                    // streams held a thousand idle 8 KiB buffers.
                    if self.buf.is_empty() {
                        self.buf = BytesMut::new();
                    }
                    match conn.readable().await {
                        Ok(()) => continue,
                        Err(e) => Err(e),
                    }
                }
                r => r,
            };
            match read {
                Ok(0) => {
                    self.conn = None;
                    return match self.framing {
                        Framing::Close => None,
                        _ => Some(Err(Error::Protocol("connection closed inside the body"))),
                    };
                }
                Ok(_) => {}
                Err(e) => {
                    self.conn = None;
                    return Some(Err(e.into()));
                }
            }
        }
    }

    /// The body as a stream of pieces.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
        futures_util::stream::unfold(self, |mut body| async move {
            let piece = body.next_piece().await?;
            Some((piece, body))
        })
    }
}

/// Decode every whole or partial chunk in `buf` into `out`, advancing `state`.
fn decode_chunks(buf: &mut BytesMut, state: &mut Chunk, out: &mut BytesMut) -> Result<(), Error> {
    loop {
        match *state {
            Chunk::Size => {
                // A size is at least one hex digit (httparse reads an empty line as 0).
                match buf.first() {
                    None => return Ok(()),
                    Some(b) if !b.is_ascii_hexdigit() => {
                        return Err(Error::Protocol("bad chunk size"));
                    }
                    Some(_) => {}
                }
                let (used, size) = match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete(found)) => found,
                    Ok(httparse::Status::Partial) if buf.len() < MAX_LINE => return Ok(()),
                    _ => return Err(Error::Protocol("bad chunk size")),
                };
                buf.advance(used);
                *state = if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(left) => {
                if buf.is_empty() {
                    return Ok(());
                }
                let take = left.min(buf.len() as u64) as usize;
                if out.is_empty() && take == buf.len() {
                    // The common case of one chunk per read: no copy.
                    *out = buf.split_to(take);
                } else {
                    if out.is_empty() {
                        // Several chunks read at once (a stream's events): room for all
                        // of them at once, not grown by doubling.
                        out.reserve(buf.len());
                    }
                    out.extend_from_slice(&buf[..take]);
                    buf.advance(take);
                }
                *state = if take as u64 == left {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left - take as u64)
                };
            }
            Chunk::DataEnd => match buf.first() {
                None => return Ok(()),
                Some(b'\n') => {
                    buf.advance(1);
                    *state = Chunk::Size;
                }
                Some(b'\r') if buf.len() < 2 => return Ok(()),
                Some(b'\r') if buf[1] == b'\n' => {
                    buf.advance(2);
                    *state = Chunk::Size;
                }
                Some(_) => return Err(Error::Protocol("no CRLF after a chunk")),
            },
            Chunk::Trailers => {
                let Some(nl) = memchr::memchr(b'\n', buf) else {
                    if buf.len() >= MAX_LINE {
                        return Err(Error::Protocol("trailer line too long"));
                    }
                    return Ok(());
                };
                let empty = nl == 0 || (nl == 1 && buf[0] == b'\r');
                buf.advance(nl + 1);
                if empty {
                    *state = Chunk::Done;
                }
            }
            Chunk::Done => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(wire: &[u8], split: usize) -> Result<(Vec<u8>, Chunk, usize), Error> {
        let mut state = Chunk::Size;
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut pieces = 0;
        for part in wire.chunks(split) {
            buf.extend_from_slice(part);
            let mut out = BytesMut::new();
            decode_chunks(&mut buf, &mut state, &mut out)?;
            if !out.is_empty() {
                pieces += 1;
                body.extend_from_slice(&out);
            }
        }
        Ok((body, state, pieces))
    }

    #[test]
    fn chunks_read_at_once_come_out_as_one_piece() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nx-trailer: 1\r\n\r\n";
        let (body, state, pieces) = decode_all(wire, wire.len()).unwrap();
        assert_eq!(body, b"hello world!");
        assert_eq!(state, Chunk::Done);
        assert_eq!(pieces, 1);
    }

    #[test]
    fn chunks_split_anywhere_decode_the_same() {
        let wire = b"a\r\n0123456789\r\n3\r\nabc\r\n0\r\n\r\n";
        for split in 1..wire.len() {
            let (body, state, _) = decode_all(wire, split).unwrap();
            assert_eq!(body, b"0123456789abc", "split {split}");
            assert_eq!(state, Chunk::Done, "split {split}");
        }
    }

    #[test]
    fn malformed_chunks_are_errors() {
        assert!(decode_all(b"zz\r\nabc\r\n", 64).is_err());
        assert!(decode_all(b"3\r\nabcX\r\n", 64).is_err());
        // A chunk longer than its size says: not a silent end.
        assert!(decode_all(b"2\r\nabc\r\n0\r\n\r\n", 64).is_err());
        assert!(decode_all(b"2\r\nab\n\r\n0\r\n\r\n", 64).is_err());
        assert!(decode_all(&[b'1'; MAX_LINE + 10], 64).is_err());
    }

    #[test]
    fn urls_this_client_takes() {
        let t = Target::parse("http://127.0.0.1:8080/v1/chat/completions?x=1").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.addr, "127.0.0.1:8080");
        assert_eq!(t.path, "/v1/chat/completions?x=1");
        let t = Target::parse("HTTP://example.lan/v1#frag").unwrap();
        assert_eq!((t.addr.as_str(), t.path), ("example.lan:80", "/v1"));
        let t = Target::parse("http://[::1]/v1").unwrap();
        assert_eq!(t.addr, "[::1]:80");
        let t = Target::parse("http://[::1]:9/").unwrap();
        assert_eq!(t.addr, "[::1]:9");
        assert_eq!(Target::parse("http://h").unwrap().path, "/");
        assert!(Target::parse("https://api.openai.com/v1").is_none());
        assert!(Target::parse("http://user:pw@h/v1").is_none());
        assert!(Target::parse("http://h/a b").is_none());
        assert!(Target::parse("http:///v1").is_none());
    }

    use tokio::net::TcpListener;

    /// A server that answers each request on a connection with the next of `answers`
    /// (raw bytes, in one write), and reports how many connections it accepted.
    async fn server(
        answers: Vec<&'static [u8]>,
        close_after_each: bool,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut answers = answers.into_iter();
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                loop {
                    let mut req = vec![0u8; 65536];
                    let n = match conn.read(&mut req).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    req.truncate(n);
                    let _ = tx.send(req);
                    let Some(answer) = answers.next() else { return };
                    conn.write_all(answer).await.unwrap();
                    if close_after_each {
                        break;
                    }
                }
            }
        });
        (addr, rx)
    }

    const SSE: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
        f\r\ndata: {\"a\":1}\n\n\r\nf\r\ndata: {\"a\":2}\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";

    async fn collect(body: BodyStream) -> (Vec<u8>, usize) {
        use futures_util::StreamExt;
        let pieces: Vec<_> = body.into_stream().collect().await;
        let n = pieces.len();
        let bytes = pieces
            .into_iter()
            .flat_map(|p| p.unwrap().to_vec())
            .collect();
        (bytes, n)
    }

    #[tokio::test]
    async fn a_stream_read_at_once_is_one_piece_and_its_connection_is_reused() {
        let (addr, mut requests) = server(vec![SSE, SSE], false).await;
        let client = Client::new(Duration::from_secs(2));
        let url = format!("http://{addr}/v1/chat/completions");
        let target = Target::parse(&url).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer k"));
        for _ in 0..2 {
            let r = client.post(&target, &headers, b"{}", true).await.unwrap();
            assert_eq!(r.head.status, StatusCode::OK);
            assert_eq!(r.head.content_type.unwrap(), "text/event-stream");
            let (body, pieces) = collect(r.body).await;
            assert_eq!(
                body,
                b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n"
            );
            assert_eq!(pieces, 1);
        }
        let first = String::from_utf8(requests.recv().await.unwrap()).unwrap();
        assert!(
            first.starts_with("POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:"),
            "{first}"
        );
        assert!(first.contains("authorization: Bearer k\r\n"));
        assert!(first.ends_with("content-length: 2\r\n\r\n{}"), "{first}");
        assert!(!first.contains("connection: close"));
        // Both requests came on the one connection the server accepted (it answers
        // only two in all, so a second connection would have hung).
        assert!(requests.recv().await.is_some());
    }

    #[tokio::test]
    async fn a_pooled_connection_reads_its_next_answer_into_the_same_buffer() {
        let a: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: application/json\r\n\r\n[111]";
        let b: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: application/json\r\n\r\n[222]";
        let (addr, _requests) = server(vec![a, b, a], false).await;
        let client = Client::new(Duration::from_secs(2));
        let url = format!("http://{addr}/x");
        let target = Target::parse(&url).unwrap();
        async fn piece(client: &Client, target: &Target<'_>) -> Bytes {
            let mut r = client
                .post(target, &HeaderMap::new(), b"", true)
                .await
                .unwrap();
            let p = r.body.next_piece().await.unwrap().unwrap();
            assert!(r.body.next_piece().await.is_none());
            p
        }
        // The first answer's body is let go before the next request: the second is read
        // into the same memory (same head length, so its body lands where the first's was).
        let first = piece(&client, &target).await;
        assert_eq!(&first[..], b"[111]");
        let at = first.as_ptr();
        drop(first);
        let second = piece(&client, &target).await;
        assert_eq!(&second[..], b"[222]");
        assert_eq!(second.as_ptr(), at, "the pooled buffer was reused");
        // Still held: the next answer goes to new memory and the held one is untouched.
        let third = piece(&client, &target).await;
        assert_eq!(&third[..], b"[111]");
        assert_eq!(&second[..], b"[222]");
        assert_ne!(third.as_ptr(), second.as_ptr());
    }

    #[tokio::test]
    async fn a_pooled_connection_the_server_closed_is_replaced() {
        let json: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}";
        let (addr, _requests) = server(vec![json, json, json], true).await;
        let client = Client::new(Duration::from_secs(2));
        let url = format!("http://{addr}/x");
        let target = Target::parse(&url).unwrap();
        for _ in 0..3 {
            let r = client
                .post(&target, &HeaderMap::new(), b"", true)
                .await
                .unwrap();
            assert_eq!(r.head.content_length.unwrap(), "2");
            assert_eq!(collect(r.body).await.0, b"{}");
        }
    }

    #[tokio::test]
    async fn an_unpooled_call_asks_to_close_and_reads_to_the_close() {
        let (addr, mut requests) = server(
            vec![b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it"],
            true,
        )
        .await;
        let client = Client::new(Duration::from_secs(2));
        let url = format!("http://{addr}/");
        let r = client
            .post(
                &Target::parse(&url).unwrap(),
                &HeaderMap::new(),
                b"x",
                false,
            )
            .await
            .unwrap();
        assert_eq!(collect(r.body).await.0, b"all of it");
        let req = String::from_utf8(requests.recv().await.unwrap()).unwrap();
        assert!(req.contains("connection: close\r\n"), "{req}");
    }

    #[tokio::test]
    async fn a_cut_body_and_a_refused_connection_are_errors() {
        use futures_util::StreamExt;
        let (addr, _r) = server(
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"],
            true,
        )
        .await;
        let client = Client::new(Duration::from_secs(2));
        let url = format!("http://{addr}/");
        let r = client
            .post(&Target::parse(&url).unwrap(), &HeaderMap::new(), b"", true)
            .await
            .unwrap();
        let pieces: Vec<_> = r.body.into_stream().collect().await;
        assert_eq!(pieces[0].as_ref().unwrap().as_ref(), b"short");
        assert!(pieces[1].is_err());
        // A port nobody listens on.
        let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", free.local_addr().unwrap());
        drop(free);
        let e = client
            .post(&Target::parse(&url).unwrap(), &HeaderMap::new(), b"", true)
            .await
            .err()
            .unwrap();
        assert!(e.is_connect(), "{e}");
    }

    #[tokio::test]
    async fn a_head_that_comes_in_pieces_after_an_interim_answer_is_read_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut req = vec![0u8; 4096];
            let _ = conn.read(&mut req).await.unwrap();
            // Each piece is its own read: the interim answer, then the real head cut
            // inside a header line and before its blank line, then the body.
            for piece in [
                &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
                b"HTTP/1.1 201 Created\r\ncontent-ty",
                b"pe: application/json\r\ncontent-length: 4\r\n",
                b"\r\n[42]",
            ] {
                conn.write_all(piece).await.unwrap();
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        });
        let client = Client::new(Duration::from_secs(2));
        let r = client
            .post(
                &Target::parse(&url).unwrap(),
                &HeaderMap::new(),
                b"{}",
                true,
            )
            .await
            .unwrap();
        assert_eq!(r.head.status, StatusCode::CREATED);
        assert_eq!(r.head.content_type.unwrap(), "application/json");
        assert_eq!(r.head.content_length.unwrap(), "4");
        assert_eq!(collect(r.body).await.0, b"[42]");
    }

    #[tokio::test]
    async fn the_exchange_future_keeps_no_header_slots() {
        // Every request's relay future holds this one while it waits for the answer: the
        // 64 header slots (2 KB) belong on the parse's stack, not in it (2,296 bytes in a
        // debug build when they were; ~200 since).
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let conn = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let exchange = exchange(conn, BytesMut::new(), b"");
        assert!(
            std::mem::size_of_val(&exchange) < 1024,
            "{} bytes",
            std::mem::size_of_val(&exchange)
        );
    }

    #[test]
    fn heads_are_parsed_or_refused_by_what_they_say() {
        let done = |wire: &[u8]| match parse_head(wire) {
            Ok(HeadParse::Done {
                head,
                len,
                framing,
                keep_alive,
            }) => (head, len, framing, keep_alive),
            Ok(HeadParse::Partial) => panic!("partial"),
            Ok(HeadParse::Interim(_)) => panic!("interim"),
            Err(e) => panic!("{e}"),
        };
        let refused = |wire: &[u8]| match parse_head(wire) {
            Err(Error::Protocol(why)) => why,
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted {:?}", String::from_utf8_lossy(wire)),
        };
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-le"),
            Ok(HeadParse::Partial)
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200"),
            Ok(HeadParse::Interim(40))
        ));
        let (head, len, framing, keep_alive) = done(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 9\r\n\r\nrest",
        );
        assert_eq!(len, 72);
        assert!(matches!(framing, Framing::Chunked(Chunk::Size)));
        assert!(head.content_length.is_none() && keep_alive);
        let (_, _, framing, keep_alive) =
            done(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\ncontent-length: 3\r\n\r\n");
        assert!(matches!(framing, Framing::Length(3)) && !keep_alive);
        let (_, _, framing, keep_alive) = done(b"HTTP/1.0 200 OK\r\n\r\n");
        assert!(matches!(framing, Framing::Close) && !keep_alive);
        let (head, _, framing, _) =
            done(b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://elsewhere/\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(head.location.unwrap(), "http://elsewhere/");
        assert!(matches!(framing, Framing::Length(0)));
        assert_eq!(
            refused(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n"),
            "conflicting content-length"
        );
        assert_eq!(
            refused(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n"),
            "bad content-length"
        );
        assert_eq!(refused(b"HTTP/1.1 099 Low\r\n\r\n"), "bad status");
        assert_eq!(refused(b"SMTP ready\r\n\r\n"), "bad response head");
        let mut huge = b"HTTP/1.1 200 OK\r\nx-pad: ".to_vec();
        huge.resize(MAX_HEAD + 10, b'a');
        assert_eq!(refused(&huge), "head too large");
    }

    #[tokio::test]
    async fn dropping_a_body_closes_its_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 4096];
            let _ = conn.read(&mut req).await.unwrap();
            conn.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
                .await
                .unwrap();
            // The client reads "abc", then drops the body: this read sees the close.
            let n = conn.read(&mut req).await.unwrap_or(0);
            let _ = closed_tx.send(n);
        });
        let client = Client::new(Duration::from_secs(2));
        let mut r = client
            .post(&Target::parse(&url).unwrap(), &HeaderMap::new(), b"", true)
            .await
            .unwrap();
        assert_eq!(r.body.next_piece().await.unwrap().unwrap().as_ref(), b"abc");
        drop(r);
        let n = tokio::time::timeout(Duration::from_secs(5), closed_rx)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn a_stream_waiting_for_its_next_token_holds_no_read_buffer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 4096];
            let _ = conn.read(&mut req).await.unwrap();
            conn.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
                .await
                .unwrap();
            let _ = go_rx.await;
            conn.write_all(b"3\r\ndef\r\n0\r\n\r\n").await.unwrap();
        });
        let client = Client::new(Duration::from_secs(2));
        let mut r = client
            .post(&Target::parse(&url).unwrap(), &HeaderMap::new(), b"", true)
            .await
            .unwrap();
        assert_eq!(r.body.next_piece().await.unwrap().unwrap().as_ref(), b"abc");
        // The next piece is not there yet: the body waits for it without a buffer.
        let mut body = r.body;
        let waiting = tokio::time::timeout(Duration::from_millis(100), body.next_piece()).await;
        assert!(waiting.is_err(), "a piece came before the server sent it");
        assert_eq!(
            body.buf.capacity(),
            0,
            "an idle stream keeps its read buffer"
        );
        go_tx.send(()).unwrap();
        assert_eq!(body.next_piece().await.unwrap().unwrap().as_ref(), b"def");
        assert!(body.next_piece().await.is_none());
    }
}
