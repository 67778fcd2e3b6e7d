//! Start lines and header blocks, read the way servers and browsers read
//! them rather than the way RFC 9112 says they should be written.
//!
//! Lines end in CRLF or LF; in responses a lone CR ends a line too, and a
//! line of white space (CR, space, tab) ends the block. A line starting
//! with white space continues the previous one (obsolete folding), except
//! in a response when it reads as a new `name:` header. Header names lose
//! NUL bytes and surrounding white space, values their surrounding white
//! space and control bytes; repeated headers are joined with `, `.

use super::Message;

/// Which side of the exchange a block comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A request: lines end in LF.
    Request,
    /// A response: lines end in LF or CR.
    Response,
}

/// The next line of `rest` and the bytes it takes with its line end, or
/// `None` when no line end has arrived yet.
fn next_line(rest: &[u8], origin: Origin) -> Option<(&[u8], usize)> {
    let at = rest
        .iter()
        .position(|&b| b == b'\n' || (origin == Origin::Response && b == b'\r'))?;
    if rest[at] == b'\n' {
        let line = &rest[..at];
        return Some((line.strip_suffix(b"\r").unwrap_or(line), at + 1));
    }
    match rest.get(at + 1) {
        Some(b'\n') => Some((&rest[..at], at + 2)),
        Some(_) => Some((&rest[..at], at + 1)),
        None => None,
    }
}

/// What a line of white space at the start of `rest` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blank {
    /// Not a blank line.
    No,
    /// The empty line ending the block, this long.
    End(usize),
    /// White space between header lines (a response's stray CRs, spaces
    /// and tabs before another header or a folded line), this long.
    Skip(usize),
    /// Undecided until more bytes arrive.
    Incomplete,
}

fn empty_line(rest: &[u8]) -> Option<usize> {
    if rest.starts_with(b"\r\n") {
        Some(2)
    } else {
        rest.starts_with(b"\n").then_some(1)
    }
}

/// Classifies the line at the start of `rest`. In a request only an empty
/// line counts. In a response a run of CR, space and tab (with or without
/// a final LF) ends the block when an empty line or something other than a
/// header follows it, and is passed over when a header or a folded line
/// does.
fn blank_line(rest: &[u8], origin: Origin) -> Blank {
    if let Some(len) = empty_line(rest) {
        return Blank::End(len);
    }
    if origin == Origin::Request {
        return Blank::No;
    }
    let run = rest
        .iter()
        .take_while(|&&b| matches!(b, b'\r' | b' ' | b'\t'))
        .count();
    if run == 0 {
        return Blank::No;
    }
    let Some(&next) = rest.get(run) else {
        return Blank::Incomplete;
    };
    if next != b'\n' && !rest[..run].contains(&b'\r') {
        // White space before text: a folded line.
        return Blank::No;
    }
    let len = run + usize::from(next == b'\n');
    let after = &rest[len..];
    if after.is_empty() {
        return Blank::Incomplete;
    }
    if let Some(eol) = empty_line(after) {
        return Blank::End(len + eol);
    }
    let line_end = after
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(after.len());
    if matches!(after[0], b' ' | b'\t') || reads_as_header(&after[..line_end]) {
        Blank::Skip(len)
    } else {
        Blank::End(len)
    }
}

/// Where the start line and header block at the start of `buf` end (just
/// past the empty line closing them), or `None` when incomplete.
pub fn end_of_head(buf: &[u8], origin: Origin) -> Option<usize> {
    let (_, mut at) = next_line(buf, origin)?;
    loop {
        match blank_line(&buf[at..], origin) {
            Blank::End(len) => return Some(at + len),
            Blank::Skip(len) => at += len,
            Blank::Incomplete => return None,
            Blank::No => at += next_line(&buf[at..], origin)?.1,
        }
    }
}

/// The first line of `buf`, when complete.
pub fn first_line(buf: &[u8], origin: Origin) -> Option<&[u8]> {
    next_line(buf, origin).map(|(line, _)| line)
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Strips bytes at or below space (white space and controls) at both ends.
pub fn trim_controls(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b > b' ').unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b > b' ')
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// True for a folded line that reads as a header of its own.
fn reads_as_header(line: &[u8]) -> bool {
    let line = trim_controls(line);
    match line.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => line[..colon].iter().all(|&b| is_token(b)),
        _ => false,
    }
}

/// Parses a start line and header block (its end as [`end_of_head`] found
/// it, or cut short).
pub fn parse(head: &[u8], origin: Origin) -> Message {
    let mut rest = head;
    let mut lines: Vec<&[u8]> = Vec::new();
    while !rest.is_empty() {
        if !lines.is_empty() {
            match blank_line(rest, origin) {
                Blank::End(_) | Blank::Incomplete => break,
                Blank::Skip(len) => {
                    rest = &rest[len..];
                    continue;
                }
                Blank::No => {}
            }
        }
        match next_line(rest, origin) {
            Some((line, len)) => {
                lines.push(line);
                rest = &rest[len..];
            }
            None => {
                lines.push(rest.strip_suffix(b"\r").unwrap_or(rest));
                rest = &[];
            }
        }
    }
    let start_line = lines.first().copied().unwrap_or_default();
    let raw_start = head
        .len()
        .min(next_line(head, origin).map_or(head.len(), |(_, len)| len));
    let mut logical: Vec<Vec<u8>> = Vec::new();
    for line in lines.iter().skip(1) {
        let folded = line.first().is_some_and(|&b| matches!(b, b' ' | b'\t' | 0));
        if folded && !logical.is_empty() {
            let previous_complete = logical.last().is_some_and(|l| l.contains(&b':'));
            if !(origin == Origin::Response && previous_complete && reads_as_header(line)) {
                let previous = logical.last_mut().expect("not empty");
                let text = trim_controls(line);
                if !text.is_empty() {
                    if !previous.is_empty() {
                        previous.push(b' ');
                    }
                    previous.extend_from_slice(text);
                }
                continue;
            }
        }
        logical.push(trim_controls(line).to_vec());
    }
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for line in &logical {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name: Vec<u8> = trim_controls(&line[..colon])
            .iter()
            .copied()
            .filter(|&b| b != 0)
            .collect();
        let value = trim_controls(&line[colon + 1..]);
        if name.is_empty() {
            continue;
        }
        let full = headers.len() >= super::MAX_HEADERS;
        match headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some((_, existing)) => {
                existing.extend_from_slice(b", ");
                existing.extend_from_slice(value);
            }
            None if !full => headers.push((name, value.to_vec())),
            None => {}
        }
    }
    let mut header_block = Vec::new();
    for (name, value) in &headers {
        header_block.extend_from_slice(name);
        header_block.extend_from_slice(b": ");
        header_block.extend_from_slice(value);
        header_block.extend_from_slice(b"\r\n");
    }
    let mut header_names = Vec::new();
    for (name, _) in &headers {
        header_names.extend_from_slice(b"\r\n");
        header_names.extend_from_slice(name);
    }
    if !headers.is_empty() {
        header_names.extend_from_slice(b"\r\n\r\n");
    }
    Message {
        start_line: start_line.to_vec(),
        headers,
        header_block,
        header_names,
        raw_headers: head[raw_start..].to_vec(),
        body: Vec::new(),
    }
}

/// True for a request header every client sends for the protocol's sake
/// (`Host`, `User-Agent`, `Accept*`, `Content-*`, `Cookie`, `Referer` ...):
/// what it carries is the client's software, never data of its own.
pub fn is_standard_request_header(name: &[u8]) -> bool {
    let mut buffer = [0u8; 32];
    let Some(lower) = buffer.get_mut(..name.len()) else {
        return false;
    };
    for (to, from) in lower.iter_mut().zip(name) {
        *to = from.to_ascii_lowercase();
    }
    matches!(
        &*lower,
        b"host"
            | b"user-agent"
            | b"accept"
            | b"accept-encoding"
            | b"accept-language"
            | b"accept-charset"
            | b"connection"
            | b"content-length"
            | b"content-type"
            | b"cookie"
            | b"referer"
            | b"origin"
            | b"cache-control"
            | b"pragma"
            | b"upgrade-insecure-requests"
            | b"dnt"
            | b"te"
            | b"if-modified-since"
            | b"if-none-match"
            | b"x-requested-with"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
        m.header(name.as_bytes())
            .map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn blocks_end_at_an_empty_or_blank_line() {
        let r = Origin::Response;
        assert_eq!(
            end_of_head(b"HTTP/1.1 200 ok\r\nA: b\r\n\r\nbody", r),
            Some(25)
        );
        assert_eq!(end_of_head(b"HTTP/1.1 200 ok\nA: b\n \nbody", r), Some(23));
        assert_eq!(
            end_of_head(b"HTTP/1.1 200 ok\nA: b\n\r\r\nbody", r),
            Some(24)
        );
        assert_eq!(end_of_head(b"HTTP/1.1 200 ok\rA: b\r\n\nbody", r), Some(23));
        assert_eq!(
            end_of_head(b"HTTP/1.1 200 ok\nA: b\r\n \r\n\r\nbody", r),
            Some(27)
        );
        assert_eq!(
            end_of_head(b"HTTP/1.1 200 ok\nA: b\r\n\r\rC: d\r\n\r\n", r),
            Some(32)
        );
        assert_eq!(end_of_head(b"HTTP/1.1 200 ok\r\nA: b\r", r), None);
        assert_eq!(
            end_of_head(b"GET / HTTP/1.1\r\nA: b\r\n\r\n", Origin::Request),
            Some(24)
        );
        assert_eq!(
            end_of_head(b"GET / HTTP/1.1\rA: b\r\r", Origin::Request),
            None
        );
    }

    #[test]
    fn folding_and_headers_hidden_behind_white_space() {
        let m = parse(
            b"HTTP/1.1 200 ok\r\nConnection: close\r\n Transfer-Encoding: chunked\r\nContent-Length: 34\r\n 68\r\nX-Te\r\n \r\n :chunked\r\n\r\rX-Last: 1\r\n\r\n",
            Origin::Response,
        );
        assert_eq!(value(&m, "connection"), Some("close"));
        assert_eq!(value(&m, "transfer-encoding"), Some("chunked"));
        assert_eq!(value(&m, "content-length"), Some("34 68"));
        assert_eq!(value(&m, "x-te"), Some("chunked"));
        assert_eq!(value(&m, "x-last"), Some("1"));
        let request = parse(
            b"GET / HTTP/1.1\r\nA: one\r\n b: two\r\n\r\n",
            Origin::Request,
        );
        assert_eq!(value(&request, "a"), Some("one b: two"));
    }

    #[test]
    fn names_and_values_lose_controls_and_repeats_are_joined() {
        let m = parse(
            b"HTTP/1.1 200 ok\r\nContent\x00-Encoding\x0b: \x00gzip\x0b\r\nContent-Encoding: deflate\r\n\r\n",
            Origin::Response,
        );
        assert_eq!(value(&m, "content-encoding"), Some("gzip, deflate"));
        assert_eq!(m.header_block, b"Content-Encoding: gzip, deflate\r\n");
        assert_eq!(m.start_line, b"HTTP/1.1 200 ok");
    }

    #[test]
    fn standard_request_headers_are_known_whatever_their_case() {
        assert!(is_standard_request_header(b"User-Agent"));
        assert!(is_standard_request_header(b"ACCEPT-LANGUAGE"));
        assert!(!is_standard_request_header(b"X-Session"));
        assert!(!is_standard_request_header(&[b'a'; 40]));
    }
}
