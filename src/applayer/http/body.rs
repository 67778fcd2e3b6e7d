//! Message bodies: chunked transfer coding and content codings.
//!
//! [`Chunked`] undoes `Transfer-Encoding: chunked` incrementally, leniently
//! as servers and browsers do (white space around the size, extensions,
//! bare LF line ends); a body whose first size line is not one is not
//! chunked after all, and is read as it is. [`decode`] undoes
//! `Content-Encoding` layers (`gzip`, `deflate` whatever the header calls
//! them, and `lzma`), bounded in layers and output; a gzip or deflate layer
//! recognises gzip, zlib or raw deflate data by itself, a layer that fails
//! part way keeps what it produced, and one that produces nothing leaves the
//! body as it was.

use flate2::{Decompress, FlushDecompress, Status};

/// Longest chunk-size line read before the body is given up as not chunked.
const MAX_SIZE_LINE: usize = 1 << 10;

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkState {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// Bytes left of the current chunk.
    Data(u64),
    /// The line end after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk, until an empty one.
    Trailers,
    /// The last chunk and its trailers were read.
    Done,
    /// A size line did not parse: the rest is not chunked.
    Broken,
}

/// Incremental decoder of a chunked body.
#[derive(Debug, Clone, Default)]
pub struct Chunked {
    state: ChunkState,
    line: Vec<u8>,
    /// A size line has been read.
    started: bool,
}

/// What [`Chunked::feed`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkProgress {
    /// More body to come.
    More,
    /// The body ended; this many input bytes were used.
    Done(usize),
    /// The framing broke; the body ends here.
    Broken,
    /// The first size line was not one: the body is not chunked. Its bytes
    /// are `held` (from earlier input) followed by all of this input.
    NotChunked {
        /// Bytes of earlier input held as a partial line.
        held: Vec<u8>,
    },
}

impl Chunked {
    /// Takes wire bytes, handing decoded body bytes to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut impl FnMut(&[u8])) -> ChunkProgress {
        let total = input.len();
        while !input.is_empty() {
            match self.state {
                ChunkState::Size | ChunkState::Trailers | ChunkState::DataEnd => {
                    let Some(end) = memchr_newline(input) else {
                        self.line.extend_from_slice(input);
                        let hopeless = self.state == ChunkState::Size && !could_be_size(&self.line);
                        if !self.started && (hopeless || self.line.len() > MAX_SIZE_LINE) {
                            let mut held = std::mem::take(&mut self.line);
                            held.truncate(held.len() - input.len());
                            return ChunkProgress::NotChunked { held };
                        }
                        if self.line.len() > MAX_SIZE_LINE {
                            self.state = ChunkState::Broken;
                            return ChunkProgress::Broken;
                        }
                        return ChunkProgress::More;
                    };
                    let held = self.line.len();
                    self.line.extend_from_slice(&input[..end]);
                    input = &input[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    if self.state == ChunkState::Size
                        && !self.started
                        && !trim(&line).is_empty()
                        && chunk_size(trim(&line)).is_none()
                    {
                        return ChunkProgress::NotChunked {
                            held: line[..held].to_vec(),
                        };
                    }
                    let line = trim(&line);
                    self.state = match self.state {
                        ChunkState::Size if line.is_empty() => ChunkState::Size,
                        ChunkState::Size => match chunk_size(line) {
                            Some(0) => ChunkState::Trailers,
                            Some(size) => {
                                self.started = true;
                                ChunkState::Data(size)
                            }
                            None => {
                                self.state = ChunkState::Broken;
                                return ChunkProgress::Broken;
                            }
                        },
                        ChunkState::DataEnd if line.is_empty() => ChunkState::Size,
                        // Data ran on past its size: read the line as a size.
                        ChunkState::DataEnd => match chunk_size(line) {
                            Some(0) => ChunkState::Trailers,
                            Some(size) => ChunkState::Data(size),
                            None => ChunkState::Size,
                        },
                        ChunkState::Trailers if line.is_empty() => {
                            self.state = ChunkState::Done;
                            return ChunkProgress::Done(total - input.len());
                        }
                        state => state,
                    };
                }
                ChunkState::Data(left) => {
                    let take = left.min(input.len() as u64) as usize;
                    out(&input[..take]);
                    input = &input[take..];
                    self.state = match left - take as u64 {
                        0 => ChunkState::DataEnd,
                        rest => ChunkState::Data(rest),
                    };
                }
                ChunkState::Done => return ChunkProgress::Done(total - input.len()),
                ChunkState::Broken => return ChunkProgress::Broken,
            }
        }
        ChunkProgress::More
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// White space, vertical tab and NUL included.
fn is_space(b: &u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, 0x0b | 0)
}

/// Strips white space at both ends.
pub fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// True while a partial line may still become a chunk-size line: white
/// space, then a hex digit (what follows the digits is not checked, as
/// [`chunk_size`] does not).
fn could_be_size(line: &[u8]) -> bool {
    line.iter()
        .find(|b| !is_space(b))
        .is_none_or(u8::is_ascii_hexdigit)
}

/// The size of a chunk-size line: hex digits, then extensions or junk.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return None;
    }
    let text = std::str::from_utf8(&line[..digits]).ok()?;
    u64::from_str_radix(text, 16).ok()
}

/// A content coding, as `Content-Encoding` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// A name with `gzip` in it.
    Gzip,
    /// A name with `deflate` in it.
    Deflate,
    /// `lzma` (the LZMA "alone" format).
    Lzma,
    /// Anything else (`identity`, `br` ...): left as it is.
    Other,
}

/// The codings a `Content-Encoding` value lists (names separated by commas
/// or spaces, NULs ignored), in the order they were applied.
pub fn codings(value: &[u8]) -> Vec<Coding> {
    let value: Vec<u8> = value.iter().copied().filter(|&b| b != 0).collect();
    let has = |name: &[u8], word: &[u8]| {
        name.windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word))
    };
    value
        .split(|&b| b == b',' || b == b' ')
        .filter(|name| !name.is_empty())
        .map(|name| {
            if has(name, b"gzip") {
                Coding::Gzip
            } else if has(name, b"deflate") {
                Coding::Deflate
            } else if name.eq_ignore_ascii_case(b"lzma") {
                Coding::Lzma
            } else {
                Coding::Other
            }
        })
        .collect()
}

/// Undoes `codings` (the last applied first) over `body`, at most
/// `max_layers` of them, with output bounded by `limit` bytes; also says
/// whether a layer's output reached the limit (where decoding stopped: a
/// decompression bomb, among others).
pub fn decode(
    body: Vec<u8>,
    codings: &[Coding],
    max_layers: usize,
    limit: usize,
) -> (Vec<u8>, bool) {
    let mut data = body;
    let mut cut = false;
    for coding in codings.iter().rev().take(max_layers) {
        let out = match coding {
            Coding::Other => continue,
            Coding::Lzma => unlzma(&data, limit),
            Coding::Gzip | Coding::Deflate => inflate(&data, limit),
        };
        if let Some(out) = out {
            cut |= out.len() >= limit;
            data = out;
        }
    }
    (data, cut)
}

/// Collects output up to a limit, then refuses more (which stops the
/// decoder with what it produced).
struct Bounded {
    out: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.limit - self.out.len();
        if room == 0 {
            return Err(std::io::Error::other("body limit reached"));
        }
        let n = buf.len().min(room);
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An LZMA layer, bounded in memory (the dictionary) and output; `None`
/// when nothing could be decoded.
fn unlzma(data: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut out = Bounded {
        out: Vec::new(),
        limit,
    };
    let options = lzma_rs::decompress::Options {
        memlimit: Some(16 << 20),
        ..Default::default()
    };
    let _ = lzma_rs::lzma_decompress_with_options(&mut &data[..], &mut out, &options);
    (!out.out.is_empty()).then_some(out.out)
}

/// One layer, whatever its label says: gzip when it starts like gzip, else
/// zlib when it starts like zlib, else raw deflate. `None` when nothing
/// could be decoded.
fn inflate(data: &[u8], limit: usize) -> Option<Vec<u8>> {
    if data.starts_with(&[0x1f, 0x8b]) {
        if let Some(out) = gzip_payload(data).and_then(|raw| run_inflate(raw, false, limit)) {
            return Some(out);
        }
    }
    if is_zlib_header(data) {
        if let Some(out) = run_inflate(data, true, limit) {
            return Some(out);
        }
    }
    run_inflate(data, false, limit)
}

fn run_inflate(input: &[u8], zlib: bool, limit: usize) -> Option<Vec<u8>> {
    let mut state = Decompress::new(zlib);
    let mut out = Vec::with_capacity(input.len().saturating_mul(4).clamp(64, limit.max(64)));
    while out.len() < limit {
        if out.len() == out.capacity() {
            out.reserve(out.len().clamp(64, limit - out.len()));
        }
        let (read, written) = (state.total_in() as usize, out.len());
        match state.decompress_vec(&input[read..], &mut out, FlushDecompress::None) {
            Ok(Status::StreamEnd) | Err(_) => break,
            Ok(_) if state.total_in() as usize == read && out.len() == written => break,
            Ok(_) => {}
        }
    }
    out.truncate(limit);
    (!out.is_empty()).then_some(out)
}

fn is_zlib_header(data: &[u8]) -> bool {
    data.len() >= 2
        && data[0] & 0x0f == 8
        && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0
}

/// The deflate data inside a gzip member, its header skipped leniently
/// (flags honoured, magic and method not insisted on).
fn gzip_payload(data: &[u8]) -> Option<&[u8]> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    if data.len() < 10 {
        return None;
    }
    let flags = data[3];
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = usize::from(u16::from_le_bytes([*data.get(at)?, *data.get(at + 1)?]));
        at += 2 + len;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            at += data.get(at..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    data.get(at..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use std::io::Write;

    /// The bytes [`decode`] gives.
    fn decoded(body: Vec<u8>, codings: &[Coding], layers: usize, limit: usize) -> Vec<u8> {
        decode(body, codings, layers, limit).0
    }

    fn dechunk(pieces: &[&[u8]]) -> (Vec<u8>, ChunkProgress) {
        let mut chunked = Chunked::default();
        let mut body = Vec::new();
        let mut progress = ChunkProgress::More;
        for piece in pieces {
            progress = chunked.feed(piece, &mut |b| body.extend_from_slice(b));
        }
        (body, progress)
    }

    #[test]
    fn chunked_body_split_anywhere() {
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let end = wire.len() - 4;
        for cut in 0..wire.len() {
            let mut chunked = Chunked::default();
            let mut body = Vec::new();
            let first = chunked.feed(&wire[..cut], &mut |b| body.extend_from_slice(b));
            if cut >= end {
                assert_eq!(first, ChunkProgress::Done(end), "cut at {cut}");
            } else {
                let second = chunked.feed(&wire[cut..], &mut |b| body.extend_from_slice(b));
                assert_eq!(second, ChunkProgress::Done(end - cut), "cut at {cut}");
            }
            assert_eq!(body, b"hello world", "cut at {cut}");
        }
    }

    #[test]
    fn lenient_sizes_and_bare_line_feeds() {
        let (body, progress) = dechunk(&[b" 3 \nabc\n0\n\n"]);
        assert_eq!(body, b"abc");
        assert_eq!(progress, ChunkProgress::Done(11));
        assert_eq!(
            dechunk(&[b"\x0bf\r\n0123456789abcde\r\n0\r\n\r\n"]).0,
            b"0123456789abcde"
        );
        assert_eq!(
            dechunk(&[b"X5O!"]).1,
            ChunkProgress::NotChunked { held: Vec::new() }
        );
        assert_eq!(
            dechunk(&[b" ", b"Q5O!\r\n"]).1,
            ChunkProgress::NotChunked {
                held: b" ".to_vec()
            }
        );
        assert_eq!(dechunk(&[b"5\r\nhello\r\nzz\r\n"]).1, ChunkProgress::Broken);
    }

    #[test]
    fn gzip_deflate_and_layers() {
        let text = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE".repeat(3);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decoded(gz.clone(), &[Coding::Gzip], 3, 1 << 20), text);
        assert_eq!(
            decoded(gz.clone(), &[Coding::Deflate], 3, 1 << 20),
            text,
            "mislabelled"
        );
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&gz).unwrap();
        let layered = z.finish().unwrap();
        let both = codings(b"x-gzip, deflate");
        assert_eq!(both, [Coding::Gzip, Coding::Deflate]);
        assert_eq!(
            codings(b"identity gzip;, def\0late\xa0"),
            [Coding::Other, Coding::Gzip, Coding::Deflate]
        );
        assert_eq!(decoded(layered.clone(), &both, 3, 1 << 20), text);
        assert_eq!(decoded(layered, &both, 1, 1 << 20), gz, "one layer only");
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(&text).unwrap();
        assert_eq!(
            decoded(raw.finish().unwrap(), &[Coding::Deflate], 3, 1 << 20),
            text
        );
    }

    #[test]
    fn lzma_is_undone_within_the_limit() {
        let text = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE".repeat(20);
        let mut packed = Vec::new();
        lzma_rs::lzma_compress(&mut &text[..], &mut packed).unwrap();
        assert_eq!(codings(b"lzma"), [Coding::Lzma]);
        assert_eq!(decoded(packed.clone(), &[Coding::Lzma], 2, 1 << 20), text);
        assert_eq!(decoded(packed, &[Coding::Lzma], 2, 100).len(), 100);
        assert_eq!(decoded(b"junk".to_vec(), &[Coding::Lzma], 2, 100), b"junk");
    }

    #[test]
    fn output_is_bounded_and_garbage_is_kept_as_is() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        let (out, cut) = decode(bomb, &[Coding::Gzip], 3, 4096);
        assert_eq!((out.len(), cut), (4096, true));
        // Garbage is not decoded, so nothing was cut, however long it is.
        let garbage = vec![b'x'; 8192];
        assert_eq!(
            decode(garbage.clone(), &[Coding::Gzip], 3, 4096),
            (garbage, false)
        );
    }

    #[test]
    fn truncated_stream_keeps_its_start() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::none());
        gz.write_all(b"0123456789abcdefghij").unwrap();
        let mut gz = gz.finish().unwrap();
        gz.truncate(gz.len() - 12);
        let out = decoded(gz, &[Coding::Gzip], 3, 4096);
        assert!(out.starts_with(b"0123456789") && out.len() < 20, "{out:?}");
    }
}
