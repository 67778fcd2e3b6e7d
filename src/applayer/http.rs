//! HTTP/1.x over reassembled TCP: the first request's and response's
//! summary for the flow record.
//!
//! Each direction collects its stream until the end of the first header
//! block (`\r\n\r\n`), bounded by [`MAX_HEADER_BYTES`], then parses it with
//! `httparse`. A direction that does not start like HTTP is given up at
//! once, so non-HTTP flows cost a few byte comparisons.

/// Bytes of a header block read at most before giving up on it.
pub const MAX_HEADER_BYTES: usize = 16 << 10;

/// Headers parsed at most per message.
const MAX_HEADERS: usize = 64;

/// Request methods a client direction may start with.
const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// What the first request and response said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpSummary {
    /// Request method.
    pub method: Option<String>,
    /// Request target as sent.
    pub uri: Option<String>,
    /// `Host` header.
    pub host: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Response status code.
    pub status: Option<u16>,
}

impl HttpSummary {
    /// True once a request was parsed: the flow speaks HTTP.
    pub fn is_http(&self) -> bool {
        self.method.is_some()
    }
}

#[derive(Debug, Clone, Default)]
enum Side {
    /// Collecting the first header block.
    #[default]
    Reading,
    /// Parsed, or given up: nothing more to do.
    Done,
}

/// Parser state of one flow.
#[derive(Debug, Clone, Default)]
pub struct HttpFlow {
    sides: [Side; 2],
    buffers: [Vec<u8>; 2],
    summary: HttpSummary,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn header<'a>(headers: &'a [httparse::Header<'_>], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

impl HttpFlow {
    /// What was learnt so far.
    pub fn summary(&self) -> &HttpSummary {
        &self.summary
    }

    /// Takes in-order bytes of direction `dir` (0: from the client).
    pub fn data(&mut self, dir: usize, bytes: &[u8]) {
        if !matches!(self.sides[dir], Side::Reading) {
            return;
        }
        let buffer = &mut self.buffers[dir];
        let room = MAX_HEADER_BYTES.saturating_sub(buffer.len());
        buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
        let looks_http = if dir == 0 {
            METHODS
                .iter()
                .any(|m| buffer.starts_with(m) || m.starts_with(buffer))
        } else {
            buffer.starts_with(b"HTTP/") || b"HTTP/".starts_with(buffer.as_slice())
        };
        if !looks_http {
            self.give_up(dir);
            return;
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let parsed = if dir == 0 {
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(buffer) {
                Ok(httparse::Status::Complete(_)) => {
                    self.summary.method = request.method.map(String::from);
                    self.summary.uri = request.path.map(String::from);
                    self.summary.host = header(request.headers, "host").map(text);
                    self.summary.user_agent = header(request.headers, "user-agent").map(text);
                    true
                }
                Ok(httparse::Status::Partial) if buffer.len() < MAX_HEADER_BYTES => return,
                _ => true,
            }
        } else {
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(buffer) {
                // An interim 1xx answer (but 101, which switches protocols)
                // precedes the final one: skip it and read on.
                Ok(httparse::Status::Complete(used))
                    if response
                        .code
                        .is_some_and(|c| (100..200).contains(&c) && c != 101) =>
                {
                    buffer.drain(..used);
                    if buffer.is_empty() {
                        return;
                    }
                    let rest = std::mem::take(buffer);
                    return self.data(dir, &rest);
                }
                Ok(httparse::Status::Complete(_)) => {
                    self.summary.status = response.code;
                    true
                }
                Ok(httparse::Status::Partial) if buffer.len() < MAX_HEADER_BYTES => return,
                _ => true,
            }
        };
        if parsed {
            self.give_up(dir);
        }
    }

    /// Bytes were lost: a header block cannot be completed any more.
    pub fn gap(&mut self, dir: usize) {
        if matches!(self.sides[dir], Side::Reading) {
            self.give_up(dir);
        }
    }

    fn give_up(&mut self, dir: usize) {
        self.sides[dir] = Side::Done;
        self.buffers[dir] = Vec::new();
    }

    /// True when neither direction needs more data.
    pub fn is_done(&self) -> bool {
        self.sides.iter().all(|s| matches!(s, Side::Done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_split_over_chunks() {
        let mut flow = HttpFlow::default();
        flow.data(0, b"GET /a?b=1 HT");
        flow.data(
            0,
            b"TP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\n\r\nbody",
        );
        flow.data(1, b"HTTP/1.1 404 Not Found\r\n\r\n");
        let s = flow.summary();
        assert_eq!(s.method.as_deref(), Some("GET"));
        assert_eq!(s.uri.as_deref(), Some("/a?b=1"));
        assert_eq!(s.host.as_deref(), Some("example.com"));
        assert_eq!(s.user_agent.as_deref(), Some("curl/8"));
        assert_eq!(s.status, Some(404));
        assert!(flow.is_done() && s.is_http());
    }

    #[test]
    fn interim_continue_is_skipped_for_the_final_status() {
        let mut flow = HttpFlow::default();
        flow.data(0, b"POST /ipp/ HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        flow.data(1, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 20");
        flow.data(1, b"0 OK\r\n\r\n");
        assert_eq!(flow.summary().status, Some(200));
        let mut upgrade = HttpFlow::default();
        upgrade.data(1, b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
        assert_eq!(upgrade.summary().status, Some(101));
    }

    #[test]
    fn other_protocols_are_given_up_at_once() {
        let mut flow = HttpFlow::default();
        flow.data(0, b"\x16\x03\x01\x02\x00");
        flow.data(1, b"SSH-2.0-OpenSSH\r\n");
        assert!(flow.is_done());
        assert!(!flow.summary().is_http());
    }

    #[test]
    fn endless_headers_stop_at_the_bound() {
        let mut flow = HttpFlow::default();
        flow.data(0, b"GET / HTTP/1.1\r\n");
        for _ in 0..2_000 {
            flow.data(0, b"X-Pad: aaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(flow.is_done() || flow.buffers[0].len() <= MAX_HEADER_BYTES);
        assert!(flow.buffers[0].len() <= MAX_HEADER_BYTES);
    }
}
