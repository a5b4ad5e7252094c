//! Server-sent events: split a byte stream into events (`event:` name and joined `data:`
//! lines) across arbitrary chunk boundaries, and write events.

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: Option<String>,
    pub data: Vec<u8>,
}

/// Splits a stream of bytes into events.
#[derive(Debug, Default)]
pub struct Splitter {
    pending: Vec<u8>,
    /// How much of `pending` holds no event end (searched already).
    scanned: usize,
}

/// Largest event kept while waiting for its end (a guard against a stream without blank lines).
const MAX_EVENT: usize = 8 * 1024 * 1024;

/// Where the first event ends in `buf`: (offset, separator length).
pub(crate) fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    // One pass over the line feeds (searching for both separators over the whole buffer
    // scanned the rest of a chunk once per event).
    for i in memchr::memchr_iter(b'\n', buf) {
        match buf.get(i + 1) {
            Some(b'\n') => return Some((i, 2)),
            Some(b'\r') if i >= 1 && buf[i - 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') => {
                return Some((i - 1, 4));
            }
            _ => {}
        }
    }
    None
}

fn parse(raw: &[u8]) -> Option<Event> {
    let mut name = None;
    let mut data: Vec<u8> = Vec::new();
    let mut has_data = false;
    for line in raw.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            if has_data {
                data.push(b'\n');
            }
            has_data = true;
            data.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
        } else if let Some(rest) = line.strip_prefix(b"event:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            name = Some(String::from_utf8_lossy(rest).into_owned());
        }
    }
    (has_data || name.is_some()).then_some(Event { name, data })
}

impl Splitter {
    /// Feed bytes; complete events are appended to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) {
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        // Not searched again from an unfinished event's start (back up 3 bytes: a
        // separator may straddle the chunks).
        let mut from = self.scanned.saturating_sub(3);
        while let Some((end, sep)) = find_event_end(&self.pending[from..]) {
            if let Some(e) = parse(&self.pending[start..from + end]) {
                out.push(e);
            }
            start = from + end + sep;
            from = start;
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_EVENT {
            self.pending.clear();
        }
        self.scanned = self.pending.len();
    }

    /// The stream ended: a last event without its blank line still counts.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let rest = std::mem::take(&mut self.pending);
        if let Some(e) = parse(&rest) {
            out.push(e);
        }
    }
}

/// Append `event: name\ndata: json\n\n`.
pub fn write_event(out: &mut Vec<u8>, name: &str, data: &serde_json::Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Serialising a Value cannot fail.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

/// Append `data: json\n\n`.
pub fn write_data(out: &mut Vec<u8>, data: &serde_json::Value) {
    out.extend_from_slice(b"data: ");
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_across_any_chunking() {
        let s = b"event: message_start\ndata: {\"a\":1}\n\n: comment\n\nevent: ping\r\ndata: {}\r\n\r\ndata: x\ndata: y\n\n";
        for n in [1, 2, 5, 17, s.len()] {
            let mut sp = Splitter::default();
            let mut out = vec![];
            for c in s.chunks(n) {
                sp.feed(c, &mut out);
            }
            sp.finish(&mut out);
            assert_eq!(out.len(), 3, "chunk {n}");
            assert_eq!(out[0].name.as_deref(), Some("message_start"));
            assert_eq!(out[0].data, b"{\"a\":1}");
            assert_eq!(out[1].name.as_deref(), Some("ping"));
            assert_eq!(out[2].data, b"x\ny");
        }
    }
}
