//! The server-sent events decoder both streamed formats share: bytes as they arrive become
//! events (`event:` and `data:` fields, several `data:` lines joined with `\n`, `:` comments
//! and other fields ignored), with CRLF, LF or CR line ends and chunk boundaries anywhere,
//! even inside a UTF-8 character or between a CR and its LF. A line or an event's data longer
//! than the cap is refused, so a server cannot grow one without bound.

use super::ProviderError;

/// The longest line, and the most data one event may carry.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// One dispatched event: its type (`message` when the server named none) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Decodes a byte stream into events; feed it with [`SseDecoder::push`].
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// The bytes of the line not yet ended.
    line: Vec<u8>,
    /// The last line ended with CR: an LF that opens the next chunk belongs to it.
    after_cr: bool,
    event: String,
    data: String,
    /// Whether any `data:` field arrived since the last dispatch (an empty one counts).
    has_data: bool,
    /// Comment lines seen (a server's keep-alives).
    comments: u64,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The events completed by `bytes`, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, ProviderError> {
        let mut events = Vec::new();
        let mut rest = bytes;
        if self.after_cr {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(at) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            if self.line.len() + at > MAX_LINE_BYTES {
                return Err(too_long());
            }
            self.line.extend_from_slice(&rest[..at]);
            let line = std::mem::take(&mut self.line);
            if let Some(event) = self.line_ended(&line)? {
                events.push(event);
            }
            let cr = rest[at] == b'\r';
            rest = &rest[at + 1..];
            if cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
        }
        if self.line.len() + rest.len() > MAX_LINE_BYTES {
            return Err(too_long());
        }
        self.line.extend_from_slice(rest);
        Ok(events)
    }

    /// How many comment lines (keep-alives) the stream has carried.
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// Whether bytes of an unfinished line or event are held: the stream was cut mid-event.
    pub fn is_mid_event(&self) -> bool {
        !self.line.is_empty() || self.has_data
    }

    fn line_ended(&mut self, line: &[u8]) -> Result<Option<SseEvent>, ProviderError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        // Lines are whole here, so a character split across chunks has been rejoined.
        let line = std::str::from_utf8(line)
            .map_err(|_| ProviderError::Malformed("a stream line is not UTF-8".to_owned()))?;
        if line.starts_with(':') {
            self.comments += 1;
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > MAX_LINE_BYTES {
                    return Err(too_long());
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // `id` and `retry` steer a browser's reconnection, which a model call never does.
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        let data = std::mem::take(&mut self.data);
        let event = if event.is_empty() {
            "message".to_owned()
        } else {
            event
        };
        Some(SseEvent { event, data })
    }
}

fn too_long() -> ProviderError {
    ProviderError::Malformed("a stream line or event exceeds 256 KiB".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
        }
    }

    /// Everything `bytes` decodes to when fed in pieces cut at every `cuts` offset.
    fn decode_cut(bytes: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            events.extend(decoder.push(&bytes[from..cut]).unwrap());
            from = cut;
        }
        events
    }

    /// The same bytes give the same events however they are cut, one cut at every offset.
    fn decode_every_cut(bytes: &[u8]) -> Vec<SseEvent> {
        let whole = decode_cut(bytes, &[]);
        for cut in 0..=bytes.len() {
            assert_eq!(decode_cut(bytes, &[cut]), whole, "cut at {cut}");
        }
        let single: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(decode_cut(bytes, &single), whole, "byte by byte");
        whole
    }

    #[test]
    fn event_and_data_fields_make_one_event_per_blank_line() {
        let bytes = b"event: message_start\ndata: {\"a\":1}\n\ndata: plain\n\n";
        assert_eq!(
            decode_every_cut(bytes),
            vec![ev("message_start", "{\"a\":1}"), ev("message", "plain")]
        );
    }

    #[test]
    fn several_data_lines_are_joined_with_newlines() {
        let bytes = b"data: one\ndata:two\ndata\ndata:  four\n\n";
        assert_eq!(
            decode_every_cut(bytes),
            vec![ev("message", "one\ntwo\n\n four")]
        );
    }

    #[test]
    fn comments_other_fields_and_events_without_data_are_ignored() {
        let bytes = b": keep-alive\nid: 7\nretry: 10\n\nevent: ping\n\n:x\ndata: kept\n\n";
        assert_eq!(decode_every_cut(bytes), vec![ev("message", "kept")]);
        // Ignored, but counted: a client can tell keep-alives arrived.
        let mut decoder = SseDecoder::new();
        decoder.push(bytes).unwrap();
        assert_eq!(decoder.comments(), 2);
    }

    #[test]
    fn crlf_lf_and_cr_line_ends_are_all_line_ends() {
        let want = vec![ev("a", "1"), ev("b", "2"), ev("c", "3")];
        assert_eq!(
            decode_every_cut(
                b"event: a\r\ndata: 1\r\n\r\nevent: b\ndata: 2\n\nevent: c\rdata: 3\r\r"
            ),
            want
        );
        // A CR at the end of one chunk and its LF at the start of the next make one line end,
        // not a line end and a blank line that would dispatch early.
        assert_eq!(
            decode_cut(b"data: x\r\ndata: y\r\n\r\n", &[8]),
            vec![ev("message", "x\ny")]
        );
    }

    #[test]
    fn a_character_split_across_chunks_is_rejoined() {
        let bytes = "data: héllo – 🦀\n\n".as_bytes();
        assert_eq!(decode_every_cut(bytes), vec![ev("message", "héllo – 🦀")]);
    }

    #[test]
    fn a_line_that_is_not_utf8_is_malformed() {
        let err = SseDecoder::new().push(b"data: \xff\xfe\n\n").unwrap_err();
        assert_eq!(
            err,
            ProviderError::Malformed("a stream line is not UTF-8".into())
        );
    }

    #[test]
    fn a_line_or_event_beyond_256_kib_is_refused_even_when_fed_in_pieces() {
        let mut decoder = SseDecoder::new();
        let piece = vec![b'x'; 64 * 1024];
        decoder.push(b"data: ").unwrap();
        for _ in 0..3 {
            decoder.push(&piece).unwrap();
        }
        assert_eq!(decoder.push(&piece).unwrap_err(), too_long());

        // Many short data lines that add up to more than the cap in one event.
        let mut decoder = SseDecoder::new();
        let line = format!("data: {}\n", "y".repeat(1000));
        let mut refused = None;
        for i in 0..300 {
            if let Err(e) = decoder.push(line.as_bytes()) {
                refused = Some((i, e));
                break;
            }
        }
        let (at, err) = refused.unwrap();
        assert_eq!(err, too_long());
        assert!(at > 250, "{at}");

        // Exactly at the cap is still a line.
        let mut decoder = SseDecoder::new();
        let mut exact = b"data:".to_vec();
        exact.resize(MAX_LINE_BYTES, b'z');
        decoder.push(&exact).unwrap();
        assert!(decoder.is_mid_event());
    }

    #[test]
    fn a_stream_cut_mid_event_is_seen_as_such() {
        let mut decoder = SseDecoder::new();
        assert!(!decoder.is_mid_event());
        decoder.push(b"data: {\"a\"").unwrap();
        assert!(decoder.is_mid_event());
        let mut decoder = SseDecoder::new();
        decoder.push(b"data: x\n").unwrap();
        assert!(decoder.is_mid_event());
        decoder.push(b"\n").unwrap();
        assert!(!decoder.is_mid_event());
    }
}
