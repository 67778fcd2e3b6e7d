//! Which bytes a payload match inspects: the packet or stream payload, or
//! one of the HTTP, DNS and TLS buffers Suricata's sticky buffers name.
//!
//! A buffer is named in a rule by a sticky buffer keyword (`http.uri;`
//! applies to the matches after it, `pkt_data;` returns to the payload), by
//! a legacy content modifier (`content:"x"; http_uri;` applies to that
//! content), by `uricontent`, or by a pcre flag (`/x/U`). Each HTTP buffer
//! belongs to the request, the response, or either ([`HttpBuffer::side`]).

use std::borrow::Cow;
use std::sync::Arc;

/// An HTTP buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HttpBuffer {
    /// `http.method`.
    Method,
    /// `http.uri`: the normalised request target.
    Uri,
    /// `http.uri.raw`: the request target as sent.
    UriRaw,
    /// `http.request_line`.
    RequestLine,
    /// `http.request_body` (`http_client_body`).
    RequestBody,
    /// `http.user_agent`.
    UserAgent,
    /// `http.host`: lower case, without port.
    Host,
    /// `http.host.raw`: the `Host` header as sent.
    HostRaw,
    /// `http.stat_code`.
    StatCode,
    /// `http.stat_msg`.
    StatMsg,
    /// `http.response_line`.
    ResponseLine,
    /// `http.header`: `Name: value\r\n` lines of the message's headers.
    Header,
    /// `http.header.raw`: the header block as sent.
    HeaderRaw,
    /// `http.start`: the start line, `\r\n`, and the header block as sent
    /// (with the empty line ending it).
    Start,
    /// `http.header_names`: `\r\n` before each header name, `\r\n\r\n` at
    /// the end.
    HeaderNames,
    /// `http.cookie`: `Cookie` (requests) or `Set-Cookie` (responses).
    Cookie,
    /// `http.protocol`.
    Protocol,
    /// `file_data` / `http.response_body`: the response body, de-chunked
    /// and decompressed (the request body on `to_server` rules).
    Body,
    /// A single header's value (`http.content_type`, `http.referer` ...).
    Named(&'static str),
}

/// Which message of a transaction a buffer is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The request.
    Request,
    /// The response.
    Response,
    /// Whichever the rule inspects.
    Either,
}

/// Headers with a sticky buffer of their own: (keyword, header, side).
const NAMED: &[(&str, &str, Side)] = &[
    ("http.content_type", "content-type", Side::Either),
    ("http.content_len", "content-length", Side::Either),
    ("http.connection", "connection", Side::Either),
    ("http.referer", "referer", Side::Request),
    ("http.accept", "accept", Side::Request),
    ("http.accept_lang", "accept-language", Side::Request),
    ("http.accept_enc", "accept-encoding", Side::Request),
    ("http.server", "server", Side::Response),
    ("http.location", "location", Side::Response),
];

impl HttpBuffer {
    /// The message the buffer is read from.
    pub fn side(self) -> Side {
        match self {
            Self::Method
            | Self::Uri
            | Self::UriRaw
            | Self::RequestLine
            | Self::RequestBody
            | Self::UserAgent
            | Self::Host
            | Self::HostRaw => Side::Request,
            Self::StatCode | Self::StatMsg | Self::ResponseLine => Side::Response,
            Self::Header
            | Self::HeaderRaw
            | Self::Start
            | Self::HeaderNames
            | Self::Cookie
            | Self::Protocol
            | Self::Body => Side::Either,
            Self::Named(header) => NAMED
                .iter()
                .find(|(_, h, _)| *h == header)
                .map_or(Side::Either, |(_, _, side)| *side),
        }
    }

    /// True for message bodies (read after the headers).
    pub fn is_body(self) -> bool {
        matches!(self, Self::RequestBody | Self::Body)
    }

    /// A short name, for cache files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Method => "http-method",
            Self::Uri => "http-uri",
            Self::UriRaw => "http-uri-raw",
            Self::RequestLine => "http-request-line",
            Self::RequestBody => "http-request-body",
            Self::UserAgent => "http-user-agent",
            Self::Host => "http-host",
            Self::HostRaw => "http-host-raw",
            Self::StatCode => "http-stat-code",
            Self::StatMsg => "http-stat-msg",
            Self::ResponseLine => "http-response-line",
            Self::Header => "http-header",
            Self::HeaderRaw => "http-header-raw",
            Self::Start => "http-start",
            Self::HeaderNames => "http-header-names",
            Self::Cookie => "http-cookie",
            Self::Protocol => "http-protocol",
            Self::Body => "http-body",
            Self::Named(_) => "http-named",
        }
    }
}

/// A DNS buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DnsBuffer {
    /// `dns.query`: a request's question name.
    Query,
}

/// A TLS buffer, from the handshake's hellos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsBuffer {
    /// `tls.sni`: the ClientHello's server name.
    Sni,
    /// `ja3.hash`.
    Ja3Hash,
    /// `ja3.string`.
    Ja3String,
    /// `ja3s.hash`.
    Ja3sHash,
    /// `ja3s.string`.
    Ja3sString,
    /// `tls.cert_subject`.
    CertSubject,
    /// `tls.cert_issuer`.
    CertIssuer,
    /// `tls.cert_serial`.
    CertSerial,
    /// `tls.cert_fingerprint` (SHA-1, colon-separated).
    CertFingerprint,
    /// `tls.certs`: each certificate of the chain (DER), one at a time; a
    /// rule matches when all its matches hold in one of them.
    Certs,
}

impl TlsBuffer {
    /// True for the ServerHello's buffers.
    pub fn from_server(self) -> bool {
        matches!(self, Self::Ja3sHash | Self::Ja3sString)
    }

    /// True for the certificate's buffers.
    pub fn from_certificate(self) -> bool {
        matches!(
            self,
            Self::CertSubject
                | Self::CertIssuer
                | Self::CertSerial
                | Self::CertFingerprint
                | Self::Certs
        )
    }
}

/// What a payload match inspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Buffer {
    /// The packet payload or reassembled stream.
    #[default]
    Payload,
    /// An HTTP buffer.
    Http(HttpBuffer),
    /// A DNS buffer.
    Dns(DnsBuffer),
    /// A TLS buffer.
    Tls(TlsBuffer),
}

impl Buffer {
    /// A short name, for cache files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Payload => "payload",
            Self::Http(http) => http.name(),
            Self::Dns(DnsBuffer::Query) => "dns-query",
            Self::Tls(TlsBuffer::Sni) => "tls-sni",
            Self::Tls(TlsBuffer::Ja3Hash) => "ja3-hash",
            Self::Tls(TlsBuffer::Ja3String) => "ja3-string",
            Self::Tls(TlsBuffer::Ja3sHash) => "ja3s-hash",
            Self::Tls(TlsBuffer::Ja3sString) => "ja3s-string",
            Self::Tls(TlsBuffer::CertSubject) => "tls-cert-subject",
            Self::Tls(TlsBuffer::CertIssuer) => "tls-cert-issuer",
            Self::Tls(TlsBuffer::CertSerial) => "tls-cert-serial",
            Self::Tls(TlsBuffer::CertFingerprint) => "tls-cert-fingerprint",
            Self::Tls(TlsBuffer::Certs) => "tls-certs",
        }
    }
}

/// One transformation of a buffer (a Suricata transform keyword).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transform {
    /// `url_decode`.
    UrlDecode,
    /// `strip_whitespace`.
    StripWhitespace,
    /// `compress_whitespace`.
    CompressWhitespace,
    /// `to_lowercase`.
    ToLowercase,
    /// `to_uppercase`.
    ToUppercase,
    /// `dotprefix`.
    DotPrefix,
    /// `xor:"HEX"`: every byte xored with the key, repeated.
    Xor(Vec<u8>),
    /// `xor:offset O, extract L AT`: the bytes from `O` on, xored with the
    /// `L`-byte key found at `AT` in the buffer.
    XorExtract {
        /// First byte decoded.
        offset: u32,
        /// Key length.
        len: u32,
        /// Where the key is.
        at: u32,
    },
    /// `pcrexform:"RE"`: the buffer becomes RE's first capture (unchanged
    /// when RE does not match).
    PcreXform(PcreXform),
}

/// A compiled `pcrexform` expression, compared by its text.
#[derive(Debug, Clone)]
pub struct PcreXform {
    pattern: String,
    regex: Arc<pcre2::bytes::Regex>,
}

impl PartialEq for PcreXform {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for PcreXform {}

impl std::hash::Hash for PcreXform {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.pattern.hash(state);
    }
}

impl PartialOrd for PcreXform {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PcreXform {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.pattern.cmp(&other.pattern)
    }
}

/// A transform keyword whose value does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTransform {
    /// The keyword.
    pub keyword: String,
    /// Its value.
    pub value: String,
}

impl Transform {
    /// The transform a keyword (with its value) names: `None` when the
    /// keyword is not a transform.
    pub fn parse(keyword: &str, value: Option<&str>) -> Option<Result<Self, BadTransform>> {
        let bad = || BadTransform {
            keyword: keyword.to_owned(),
            value: value.unwrap_or_default().to_owned(),
        };
        Some(Ok(match keyword {
            "url_decode" => Self::UrlDecode,
            "strip_whitespace" => Self::StripWhitespace,
            "compress_whitespace" => Self::CompressWhitespace,
            "to_lowercase" => Self::ToLowercase,
            "to_uppercase" => Self::ToUppercase,
            "dotprefix" => Self::DotPrefix,
            "xor" => return Some(parse_xor(value.unwrap_or_default()).ok_or_else(bad)),
            "pcrexform" => {
                let pattern = value.unwrap_or_default().trim();
                let pattern = pattern
                    .strip_prefix('"')
                    .and_then(|p| p.strip_suffix('"'))
                    .unwrap_or(pattern);
                let regex = pcre2::bytes::RegexBuilder::new()
                    .jit_if_available(true)
                    .build(pattern);
                return Some(match regex {
                    Ok(regex) if regex.captures_len() > 1 => Ok(Self::PcreXform(PcreXform {
                        pattern: pattern.to_owned(),
                        regex: Arc::new(regex),
                    })),
                    _ => Err(bad()),
                });
            }
            _ => return None,
        }))
    }

    fn apply(&self, data: Vec<u8>) -> Vec<u8> {
        let mut data = data;
        match self {
            Self::UrlDecode => data = url_decode(&data),
            Self::StripWhitespace => data.retain(|b| !b.is_ascii_whitespace()),
            Self::CompressWhitespace => {
                let mut out = Vec::with_capacity(data.len());
                for &b in &data {
                    if !(b.is_ascii_whitespace() && out.last().is_some_and(u8::is_ascii_whitespace))
                    {
                        out.push(b);
                    }
                }
                data = out;
            }
            Self::ToLowercase => data.make_ascii_lowercase(),
            Self::ToUppercase => data.make_ascii_uppercase(),
            Self::DotPrefix => data.insert(0, b'.'),
            Self::Xor(key) => {
                for (b, k) in data.iter_mut().zip(key.iter().cycle()) {
                    *b ^= k;
                }
            }
            Self::XorExtract { offset, len, at } => {
                let key_range = *at as usize..(*at as usize).saturating_add(*len as usize);
                let Some(key) = data.get(key_range).map(<[u8]>::to_vec) else {
                    return data;
                };
                let from = (*offset as usize).min(data.len());
                data.drain(..from);
                for (b, k) in data.iter_mut().zip(key.iter().cycle()) {
                    *b ^= k;
                }
            }
            Self::PcreXform(xform) => {
                // A match error (PCRE2's limits) leaves the buffer as it is.
                let capture = xform
                    .regex
                    .captures(&data)
                    .ok()
                    .flatten()
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_bytes().to_vec());
                if let Some(capture) = capture {
                    data = capture;
                }
            }
        }
        data
    }
}

/// `"HEXKEY"` or `offset O, extract L AT` (keys of 1 to 255 bytes).
fn parse_xor(value: &str) -> Option<Transform> {
    let value = value.trim();
    if let Some(hex) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        if hex.is_empty() || hex.len() % 2 != 0 || hex.len() / 2 > 255 {
            return None;
        }
        let key = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        return Some(Transform::Xor(key));
    }
    let (mut offset, mut extract) = (None, None);
    for part in value.split(',').map(str::trim) {
        let (key, arg) = part.split_once(char::is_whitespace)?;
        match key {
            "offset" => offset = Some(arg.trim().parse().ok()?),
            "extract" => {
                let (len, at) = arg.trim().split_once(char::is_whitespace)?;
                let len: u32 = len.trim().parse().ok()?;
                if !(1..=255).contains(&len) {
                    return None;
                }
                extract = Some((len, at.trim().parse().ok()?));
            }
            _ => return None,
        }
    }
    let (len, at) = extract?;
    Some(Transform::XorExtract {
        offset: offset?,
        len,
        at,
    })
}

/// True for a transform keyword.
pub fn is_transform(keyword: &str) -> bool {
    matches!(
        keyword,
        "url_decode"
            | "strip_whitespace"
            | "compress_whitespace"
            | "to_lowercase"
            | "to_uppercase"
            | "dotprefix"
            | "xor"
            | "pcrexform"
    )
}

/// Transformations of a buffer before it is matched (Suricata's transform
/// keywords after a sticky buffer), applied in rule order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Transforms(Vec<Transform>);

impl Transforms {
    /// Adds a transform after the others.
    pub fn push(&mut self, transform: Transform) {
        self.0.push(transform);
    }

    /// True when nothing is transformed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `input` transformed.
    pub fn apply(&self, input: &[u8]) -> Vec<u8> {
        self.0
            .iter()
            .fold(input.to_vec(), |data, transform| transform.apply(data))
    }

    /// `input` transformed, borrowed when there is nothing to transform.
    pub fn applied<'a>(&self, input: &'a [u8]) -> Cow<'a, [u8]> {
        if self.is_empty() {
            Cow::Borrowed(input)
        } else {
            Cow::Owned(self.apply(input))
        }
    }
}

/// `%XX` to its byte and `+` to a space.
pub(crate) fn url_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' if i + 2 < input.len() => match (hex(input[i + 1]), hex(input[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The buffer a sticky buffer keyword selects.
pub fn sticky(keyword: &str) -> Option<Buffer> {
    use HttpBuffer::*;
    let http = match keyword {
        "pkt_data" => return Some(Buffer::Payload),
        "dns.query" | "dns_query" => return Some(Buffer::Dns(DnsBuffer::Query)),
        "tls.sni" | "tls_sni" => return Some(Buffer::Tls(TlsBuffer::Sni)),
        "ja3.hash" | "ja3_hash" => return Some(Buffer::Tls(TlsBuffer::Ja3Hash)),
        "ja3.string" | "ja3_string" => return Some(Buffer::Tls(TlsBuffer::Ja3String)),
        "ja3s.hash" | "ja3s_hash" => return Some(Buffer::Tls(TlsBuffer::Ja3sHash)),
        "ja3s.string" | "ja3s_string" => return Some(Buffer::Tls(TlsBuffer::Ja3sString)),
        "tls.cert_subject" | "tls_cert_subject" => {
            return Some(Buffer::Tls(TlsBuffer::CertSubject))
        }
        "tls.cert_issuer" | "tls_cert_issuer" => return Some(Buffer::Tls(TlsBuffer::CertIssuer)),
        "tls.cert_serial" | "tls_cert_serial" => return Some(Buffer::Tls(TlsBuffer::CertSerial)),
        "tls.cert_fingerprint" | "tls_cert_fingerprint" => {
            return Some(Buffer::Tls(TlsBuffer::CertFingerprint))
        }
        "tls.certs" => return Some(Buffer::Tls(TlsBuffer::Certs)),
        "http.method" => Method,
        "http.uri" => Uri,
        "http.uri.raw" => UriRaw,
        "http.request_line" => RequestLine,
        "http.request_body" | "http.client_body" => RequestBody,
        "http.user_agent" => UserAgent,
        "http.host" => Host,
        "http.host.raw" => HostRaw,
        "http.stat_code" => StatCode,
        "http.header_names" => HeaderNames,
        "http.stat_msg" => StatMsg,
        "http.response_line" => ResponseLine,
        "http.header" => Header,
        "http.header.raw" => HeaderRaw,
        "http.start" => Start,
        "http.cookie" => Cookie,
        "http.protocol" => Protocol,
        "file_data" | "file.data" | "http.response_body" | "http.server_body" => Body,
        other => {
            let (_, header, _) = NAMED.iter().find(|(k, _, _)| *k == other)?;
            Named(header)
        }
    };
    Some(Buffer::Http(http))
}

/// The buffer a legacy content modifier selects.
pub fn modifier(keyword: &str) -> Option<HttpBuffer> {
    use HttpBuffer::*;
    Some(match keyword {
        "http_method" => Method,
        "http_uri" => Uri,
        "http_raw_uri" => UriRaw,
        "http_request_line" => RequestLine,
        "http_client_body" => RequestBody,
        "http_user_agent" => UserAgent,
        "http_host" => Host,
        "http_raw_host" => HostRaw,
        "http_stat_code" => StatCode,
        "http_stat_msg" => StatMsg,
        "http_header" => Header,
        "http_raw_header" => HeaderRaw,
        "http_cookie" => Cookie,
        "http_server_body" => Body,
        _ => return None,
    })
}

/// The buffer a pcre flag selects.
pub fn pcre_flag(flag: char) -> Option<HttpBuffer> {
    use HttpBuffer::*;
    Some(match flag {
        'U' => Uri,
        'I' => UriRaw,
        'P' => RequestBody,
        'Q' => Body,
        'H' => Header,
        'D' => HeaderRaw,
        'M' => Method,
        'C' => Cookie,
        'S' => StatCode,
        'Y' => StatMsg,
        'V' => UserAgent,
        'W' => Host,
        'Z' => HostRaw,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_buffers_and_sides() {
        assert_eq!(sticky("http.uri"), Some(Buffer::Http(HttpBuffer::Uri)));
        assert_eq!(sticky("file_data"), Some(Buffer::Http(HttpBuffer::Body)));
        assert_eq!(sticky("pkt_data"), Some(Buffer::Payload));
        assert_eq!(
            sticky("http.content_type"),
            Some(Buffer::Http(HttpBuffer::Named("content-type")))
        );
        assert_eq!(sticky("dns.query"), Some(Buffer::Dns(DnsBuffer::Query)));
        assert_eq!(sticky("ja3s.hash"), Some(Buffer::Tls(TlsBuffer::Ja3sHash)));
        assert_eq!(sticky("smb.share"), None);
        assert_eq!(modifier("http_raw_uri"), Some(HttpBuffer::UriRaw));
        assert_eq!(pcre_flag('U'), Some(HttpBuffer::Uri));
        assert_eq!(HttpBuffer::StatCode.side(), Side::Response);
        assert_eq!(HttpBuffer::Named("referer").side(), Side::Request);
        assert_eq!(HttpBuffer::Named("server").side(), Side::Response);
        assert_eq!(HttpBuffer::Cookie.side(), Side::Either);
    }

    #[test]
    fn transforms_apply_in_order() {
        let chain = |names: &[(&str, Option<&str>)]| {
            let mut t = Transforms::default();
            for (name, value) in names {
                t.push(Transform::parse(name, *value).unwrap().unwrap());
            }
            t
        };
        let t = chain(&[
            ("url_decode", None),
            ("to_lowercase", None),
            ("dotprefix", None),
        ]);
        assert_eq!(t.apply(b"Evil%2ECom+X%zz"), b".evil.com x%zz");
        assert_eq!(
            chain(&[("strip_whitespace", None)]).apply(b" a b\tc "),
            b"abc"
        );
        assert_eq!(
            chain(&[("compress_whitespace", None)]).apply(b"a  \t b"),
            b"a b"
        );
        assert!(Transforms::default().is_empty() && Transform::parse("base64", None).is_none());
    }

    #[test]
    fn xor_and_pcrexform_transform_as_suricata_does() {
        let apply = |name: &str, value: &str, data: &[u8]| {
            let mut t = Transforms::default();
            t.push(Transform::parse(name, Some(value)).unwrap().unwrap());
            t.apply(data)
        };
        assert_eq!(apply("xor", "\"0102\"", &[0x61, 0x61, 0x61]), b"`c`");
        // A one-byte key at 0, the encoded bytes after it.
        let body: Vec<u8> = std::iter::once(0x42)
            .chain(b"password".iter().map(|b| b ^ 0x42))
            .collect();
        assert_eq!(apply("xor", "offset 1, extract 1 0", &body), b"password");
        assert_eq!(apply("xor", "offset 1, extract 4 9", &body), body);
        assert_eq!(
            apply(
                "pcrexform",
                "\"[A-Z]+\\s+(.*)\\s+HTTP\"",
                b"GET /a.jpg HTTP/1.1"
            ),
            b"/a.jpg"
        );
        assert_eq!(apply("pcrexform", "\"^x(y)\"", b"abc"), b"abc");
        for (name, value) in [
            ("xor", "\"abc\""),
            ("xor", "\"zz\""),
            ("xor", "offset 1"),
            ("pcrexform", "\"no capture\""),
            ("pcrexform", "\"(unclosed\""),
        ] {
            assert!(
                Transform::parse(name, Some(value)).unwrap().is_err(),
                "{name}:{value}"
            );
        }
    }
}
