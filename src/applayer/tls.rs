//! TLS handshakes: the ClientHello's server name and JA3 fingerprint, the
//! ServerHello's JA3S, and (TLS 1.2 and older, where it is in the clear)
//! the server's certificate: subject, issuer, serial and SHA-256 of the
//! leaf, parsed with `tls-parser` and `x509-parser` from the handshake
//! records of each direction.
//!
//! JA3 is the MD5 of `version,ciphers,extensions,groups,point formats`
//! (decimal values joined by `-`, GREASE values left out); JA3S of
//! `version,cipher,extensions`.

use md5::{Digest, Md5};
use sha2::Sha256;
use tls_parser::{
    parse_tls_extensions, parse_tls_plaintext, TlsExtension, TlsExtensionType, TlsMessage,
    TlsMessageHandshake,
};

/// Bytes of a direction read at most while waiting for its handshake
/// (hello, certificate chain).
const MAX_HELLO_BYTES: usize = 64 << 10;

/// First byte of a TLS handshake record.
pub const HANDSHAKE: u8 = 0x16;

/// What the hellos said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSummary {
    /// Server name indication of the ClientHello.
    pub sni: Option<String>,
    /// JA3 hash of the ClientHello.
    pub ja3: Option<String>,
    /// JA3S hash of the ServerHello.
    pub ja3s: Option<String>,
    /// The server certificate (the chain's first), when sent in the clear.
    pub certificate: Option<TlsCertificate>,
}

/// What rules and records see of a server certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsCertificate {
    /// Subject, as `C=US, O=..., CN=...`.
    pub subject: String,
    /// Issuer, in the same form.
    pub issuer: String,
    /// Serial number, colon-separated upper-case hex.
    pub serial: String,
    /// SHA-256 of the DER encoding, lower-case hex.
    pub sha256: String,
    /// SHA-1 of the DER encoding, colon-separated lower-case hex (Suricata's
    /// `tls.cert_fingerprint`).
    pub sha1: String,
}

impl TlsSummary {
    /// True once a hello was read.
    pub fn is_tls(&self) -> bool {
        self.ja3.is_some() || self.ja3s.is_some()
    }
}

/// `bytes` in hex, two digits each, `separator` between them (one string
/// built in place: handshakes are hashed on every TLS connection).
fn hex(bytes: &[u8], separator: &str, upper: bool) -> String {
    let digits = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut text = String::with_capacity(bytes.len() * (2 + separator.len()));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            text.push_str(separator);
        }
        text.push(char::from(digits[usize::from(b >> 4)]));
        text.push(char::from(digits[usize::from(b & 15)]));
    }
    text
}

/// Reads a DER certificate.
fn certificate(der: &[u8]) -> Option<TlsCertificate> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(TlsCertificate {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: hex(cert.raw_serial(), ":", true),
        sha256: hex(&<Sha256 as sha2::Digest>::digest(der), "", false),
        sha1: hex(&<sha1::Sha1 as sha1::Digest>::digest(der), ":", false),
    })
}

/// What the handshake showed, for rules.
#[derive(Debug, Clone, Copy)]
pub enum TlsEvent<'a> {
    /// A ClientHello or ServerHello.
    Hello(&'a TlsHello),
    /// The server certificate (the leaf, parsed) and every certificate of
    /// the chain as sent (DER), leaf first.
    Certificate(&'a TlsCertificate, &'a [&'a [u8]]),
}

/// A hello as rules see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsHello {
    /// True for a ClientHello, false for a ServerHello.
    pub from_client: bool,
    /// Server name indication (ClientHello).
    pub sni: Option<Vec<u8>>,
    /// JA3 (ClientHello) or JA3S (ServerHello) text.
    pub fingerprint: String,
    /// Its MD5, hex.
    pub fingerprint_hash: String,
    /// ServerHello: the JA3 hash of the flow's ClientHello, when it was
    /// read (the pair names client and server software together).
    pub client_hash: Option<String>,
}

/// GREASE values (RFC 8701) are left out of fingerprints.
fn grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

fn joined(values: impl Iterator<Item = u16>) -> String {
    values
        .filter(|v| !grease(*v))
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("-")
}

fn md5_hex(text: &str) -> String {
    hex(&Md5::digest(text.as_bytes()), "", false)
}

/// A hello's extensions, none when absent or malformed.
fn extensions_of(raw: Option<&[u8]>) -> Vec<TlsExtension<'_>> {
    raw.and_then(|e| parse_tls_extensions(e).ok())
        .map(|(_, e)| e)
        .unwrap_or_default()
}

/// Parser state of one TLS flow.
#[derive(Debug, Clone, Default)]
pub struct TlsFlow {
    buffers: [Vec<u8>; 2],
    done: [bool; 2],
}

impl TlsFlow {
    /// Takes in-order bytes of direction `dir`; each hello and certificate
    /// read goes to `on` as well as into `summary`.
    pub fn data(
        &mut self,
        dir: usize,
        bytes: &[u8],
        summary: &mut TlsSummary,
        on: &mut impl FnMut(TlsEvent<'_>),
    ) {
        if self.done[dir] {
            return;
        }
        let buffer = &mut self.buffers[dir];
        let room = MAX_HELLO_BYTES.saturating_sub(buffer.len());
        buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
        let mut at = 0;
        loop {
            match parse_tls_plaintext(&buffer[at..]) {
                Ok((rest, record)) => {
                    let used = buffer.len() - at - rest.len();
                    at += used;
                    let mut done = record.hdr.record_type != tls_parser::TlsRecordType::Handshake;
                    for message in &record.msg {
                        done |= Self::message(message, summary, on);
                    }
                    if done {
                        self.finish(dir);
                        return;
                    }
                }
                Err(tls_parser::Err::Incomplete(_)) if buffer.len() < MAX_HELLO_BYTES => {
                    buffer.drain(..at);
                    return;
                }
                Err(_) => {
                    self.finish(dir);
                    return;
                }
            }
        }
    }

    /// Reads one handshake message; true when the direction has nothing
    /// more to give (the client's hello read, or the server's certificate,
    /// or a message that ends the clear-text part).
    fn message(
        message: &TlsMessage<'_>,
        summary: &mut TlsSummary,
        on: &mut impl FnMut(TlsEvent<'_>),
    ) -> bool {
        match message {
            TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello)) => {
                let extensions = extensions_of(hello.ext);
                let mut groups = String::new();
                let mut formats = String::new();
                let mut sni = None;
                for ext in &extensions {
                    match ext {
                        TlsExtension::SNI(names) => {
                            sni = names.first().map(|(_, name)| name.to_vec());
                        }
                        TlsExtension::EllipticCurves(list) => {
                            groups = joined(list.iter().map(|g| g.0));
                        }
                        TlsExtension::EcPointFormats(list) => {
                            formats = joined(list.iter().map(|&f| u16::from(f)));
                        }
                        _ => {}
                    }
                }
                let types = joined(extensions.iter().map(|e| TlsExtensionType::from(e).0));
                let text = format!(
                    "{},{},{},{},{}",
                    hello.version.0,
                    joined(hello.ciphers.iter().map(|c| c.0)),
                    types,
                    groups,
                    formats
                );
                let hash = md5_hex(&text);
                summary.sni = sni
                    .as_deref()
                    .map(|name| String::from_utf8_lossy(name).into_owned());
                summary.ja3 = Some(hash.clone());
                on(TlsEvent::Hello(&TlsHello {
                    from_client: true,
                    sni,
                    fingerprint: text,
                    fingerprint_hash: hash,
                    client_hash: None,
                }));
                true
            }
            TlsMessage::Handshake(TlsMessageHandshake::ServerHello(hello)) => {
                let extensions = extensions_of(hello.ext);
                let types = joined(extensions.iter().map(|e| TlsExtensionType::from(e).0));
                let text = format!("{},{},{}", hello.version.0, hello.cipher.0, types);
                let hash = md5_hex(&text);
                summary.ja3s = Some(hash.clone());
                on(TlsEvent::Hello(&TlsHello {
                    from_client: false,
                    sni: None,
                    fingerprint: text,
                    fingerprint_hash: hash,
                    client_hash: summary.ja3.clone(),
                }));
                false
            }
            TlsMessage::Handshake(TlsMessageHandshake::Certificate(contents)) => {
                if let Some(cert) = contents
                    .cert_chain
                    .first()
                    .and_then(|c| certificate(c.data))
                {
                    let chain: Vec<&[u8]> = contents.cert_chain.iter().map(|c| c.data).collect();
                    on(TlsEvent::Certificate(&cert, &chain));
                    summary.certificate = Some(cert);
                }
                true
            }
            TlsMessage::Handshake(TlsMessageHandshake::ServerDone(_))
            | TlsMessage::ChangeCipherSpec
            | TlsMessage::ApplicationData(_)
            | TlsMessage::Alert(_) => true,
            _ => false,
        }
    }

    fn finish(&mut self, dir: usize) {
        self.done[dir] = true;
        self.buffers[dir] = Vec::new();
    }

    /// True when neither direction needs more data.
    pub fn is_done(&self) -> bool {
        self.done.iter().all(|d| *d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_values_are_recognised() {
        assert!(grease(0x0a0a) && grease(0xfafa) && grease(0x1a1a));
        assert!(!grease(0x0a1a) && !grease(0x1301) && !grease(0x000a));
        assert_eq!(joined([0x0a0a, 4865, 23].into_iter()), "4865-23");
    }

    #[test]
    fn hex_digits_and_separators() {
        assert_eq!(hex(&[0x0a, 0xff, 0x10], ":", true), "0A:FF:10");
        assert_eq!(hex(&[0x0a, 0xff], "", false), "0aff");
        assert_eq!(hex(&[], ":", false), "");
    }

    #[test]
    fn ja3_of_the_known_empty_hello_text() {
        // The MD5 of a hello with nothing in it (Python's hashlib agrees).
        assert_eq!(md5_hex("769,,,,"), "f5d1076d0d11b5cd81c4c4e8e8ee881a");
    }

    /// A handshake record holding one message of `kind`.
    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut message = vec![kind, 0, (body.len() >> 8) as u8, body.len() as u8];
        message.extend_from_slice(body);
        let mut record = vec![
            HANDSHAKE,
            3,
            3,
            (message.len() >> 8) as u8,
            message.len() as u8,
        ];
        record.extend(message);
        record
    }

    /// Version 1.2, a zero random, no session id, then `rest`.
    fn hello(rest: &[u8]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([0; 32]);
        body.push(0);
        body.extend_from_slice(rest);
        body
    }

    #[test]
    fn the_server_hello_carries_the_client_hello_fingerprint() {
        // Ciphers 49200 and GREASE, null compression; extensions
        // supported_groups (29), ec_point_formats (0) and GREASE.
        let client = record(
            1,
            &hello(&[
                0, 4, 0xc0, 0x30, 0x0a, 0x0a, 1, 0, 0, 18, 0, 10, 0, 4, 0, 2, 0, 29, 0, 11, 0, 2,
                1, 0, 0x1a, 0x1a, 0, 0,
            ]),
        );
        // Cipher 49200, null compression, renegotiation_info then
        // extended_master_secret.
        let server = record(
            2,
            &hello(&[0xc0, 0x30, 0, 0, 9, 0xff, 0x01, 0, 1, 0, 0, 23, 0, 0]),
        );
        let (mut flow, mut summary) = (TlsFlow::default(), TlsSummary::default());
        let mut hellos = Vec::new();
        let mut on = |event: TlsEvent<'_>| {
            if let TlsEvent::Hello(hello) = event {
                hellos.push(hello.clone());
            }
        };
        flow.data(0, &client, &mut summary, &mut on);
        flow.data(1, &server, &mut summary, &mut on);
        assert_eq!(hellos.len(), 2);
        assert_eq!(hellos[0].fingerprint, "771,49200,10-11,29,0");
        assert_eq!(hellos[0].client_hash, None);
        assert_eq!(hellos[1].fingerprint, "771,49200,65281-23");
        assert_eq!(
            hellos[1].fingerprint_hash,
            "fd4bc6cea4877646ccd62f0792ec0b62"
        );
        assert_eq!(
            hellos[1].client_hash.as_deref(),
            Some(hellos[0].fingerprint_hash.as_str())
        );
        assert_eq!(
            summary.ja3.as_deref(),
            Some(hellos[0].fingerprint_hash.as_str())
        );
    }
}
