//! Logins in binary protocols, for [`credentials`](super::credentials):
//! PostgreSQL's clear-text password message, LDAP's simple bind (BER) and
//! SNMP v1/v2c communities.
//!
//! PostgreSQL and LDAP messages are framed by their own lengths and may
//! span segments: each direction's bytes are gathered until a message is
//! whole ([`Framed`], at most [`MAX_MESSAGE`] bytes). An SNMP message is one
//! datagram.

use super::credentials::Login;

/// Longest message gathered; a longer one ends the reading.
pub const MAX_MESSAGE: usize = 4 << 10;

/// A TLV of BER: its tag, its value and what follows it.
fn tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, &b| a << 8 | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The whole length of the BER element at the start of `bytes`, once its
/// header is there.
fn ber_len(bytes: &[u8]) -> Option<usize> {
    let first = *bytes.get(1)?;
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len = bytes
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |a, &b| a << 8 | usize::from(b));
    Some(2 + n + len)
}

/// A BER INTEGER's value.
fn integer(value: &[u8]) -> Option<i64> {
    if value.is_empty() || value.len() > 8 {
        return None;
    }
    let sign = if value[0] & 0x80 != 0 { -1i64 } else { 0 };
    Some(value.iter().fold(sign, |a, &b| a << 8 | i64::from(b)))
}

/// Each direction's bytes, gathered into whole messages.
#[derive(Debug, Default)]
pub struct Framed {
    partial: [Vec<u8>; 2],
}

impl Framed {
    /// Adds `bytes` of direction `dir` and hands each whole message (as
    /// `frame` measures it) to `on`. False once a message is longer than
    /// [`MAX_MESSAGE`] or cannot be measured.
    fn feed(
        &mut self,
        dir: usize,
        bytes: &[u8],
        frame: fn(&[u8]) -> Option<usize>,
        mut on: impl FnMut(&[u8]),
    ) -> bool {
        let buf = &mut self.partial[dir];
        buf.extend_from_slice(bytes);
        let mut at = 0;
        while at < buf.len() {
            match frame(&buf[at..]) {
                Some(len) if len > MAX_MESSAGE || len == 0 => return false,
                Some(len) if at + len <= buf.len() => {
                    on(&buf[at..at + len]);
                    at += len;
                }
                _ => break,
            }
        }
        buf.drain(..at);
        buf.len() <= MAX_MESSAGE
    }
}

use crate::applayer::service::wire::{u32_be, PG_SSL_REQUEST, PG_STARTUP};
/// Authentication request codes: clear-text password asked; accepted.
const PG_CLEARTEXT: u32 = 3;
const PG_OK: u32 = 0;

/// A PostgreSQL connection: the user of its start-up message, whether the
/// server asked for a clear-text password, the password sent.
#[derive(Debug, Default)]
pub struct Postgres {
    framed: Framed,
    client_dir: usize,
    started: bool,
    user: Vec<u8>,
    asked: bool,
    /// The login awaiting the server's verdict.
    pub pending: Option<Login>,
    /// Logins seen.
    pub logins: u32,
}

impl Postgres {
    /// A connection whose client (direction `dir`) opened with `first`: a
    /// start-up message or an SSL request.
    pub fn new(dir: usize, first: &[u8]) -> Option<Self> {
        let len = usize::try_from(u32_be(first, 0)?).ok()?;
        let code = u32_be(first, 4)?;
        let fits = (8..=MAX_MESSAGE).contains(&len);
        (fits && (code == PG_STARTUP || code == PG_SSL_REQUEST && len == 8)).then(|| Self {
            client_dir: dir,
            ..Self::default()
        })
    }

    /// Reads bytes of direction `dir`; answered logins go to `found`. False
    /// once there is nothing more to read (TLS began, or the framing broke).
    pub fn read(
        &mut self,
        dir: usize,
        bytes: &[u8],
        found: &mut Vec<(Login, &'static str)>,
    ) -> bool {
        let from_client = dir == self.client_dir;
        if !from_client && !self.started && matches!(bytes, [b'S'] | [b'N']) {
            // The answer to an SSL request: `S`, TLS follows.
            return bytes == b"N";
        }
        let Self {
            framed,
            started,
            user,
            asked,
            pending,
            logins,
            ..
        } = self;
        let mut ok = true;
        // A length shorter than its own header is broken framing (0).
        let framing = if from_client && !*started {
            // Start-up messages have no type byte.
            |b: &[u8]| u32_be(b, 0).map(|n| if n < 8 { 0 } else { n as usize })
        } else {
            |b: &[u8]| u32_be(b, 1).map(|n| if n < 4 { 0 } else { n as usize + 1 })
        };
        let fed = framed.feed(dir, bytes, framing, |message| {
            if from_client {
                if !*started {
                    if u32_be(message, 4) == Some(PG_STARTUP) {
                        *started = true;
                        *user = startup_user(&message[8..]).unwrap_or_default();
                    }
                } else if message[0] == b'p' && *asked {
                    let password = message[5..].split(|&b| b == 0).next().unwrap_or_default();
                    if !password.is_empty() {
                        let login = Login::wire("postgresql", user, password);
                        super::credentials::awaiting(pending, logins, login, found);
                    }
                    *asked = false;
                }
            } else {
                match (message[0], u32_be(message, 5)) {
                    (b'R', Some(PG_CLEARTEXT)) => *asked = true,
                    (b'R', Some(PG_OK)) => {
                        if let Some(login) = pending.take() {
                            found.push((login, "yes"));
                        }
                        ok = false;
                    }
                    (b'E', _) => {
                        if let Some(login) = pending.take() {
                            found.push((login, "no"));
                        }
                    }
                    _ => {}
                }
            }
        });
        fed && ok
    }
}

/// The `user` parameter of a start-up message's `name \0 value \0` pairs.
fn startup_user(params: &[u8]) -> Option<Vec<u8>> {
    let mut parts = params.split(|&b| b == 0);
    while let Some(name) = parts.next() {
        let value = parts.next()?;
        if name == b"user" {
            return Some(value.to_vec());
        }
    }
    None
}

/// BER tags of LDAP.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTETS: u8 = 0x04;
const ENUMERATED: u8 = 0x0a;
const BIND_REQUEST: u8 = 0x60;
const BIND_RESPONSE: u8 = 0x61;
/// `[0]`: a simple bind's password.
const SIMPLE: u8 = 0x80;

/// An LDAP message's id and protocol operation (tag and value).
fn ldap_message(bytes: &[u8]) -> Option<(i64, u8, &[u8])> {
    let (tag, body, _) = tlv(bytes)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, id, rest) = tlv(body)?;
    if tag != INTEGER {
        return None;
    }
    let (op, value, _) = tlv(rest)?;
    // Operations are of the application class.
    (op & 0xc0 == 0x40).then_some((integer(id)?, op, value))
}

/// An LDAP connection: simple binds and their results.
#[derive(Debug, Default)]
pub struct Ldap {
    framed: Framed,
    client_dir: usize,
    /// The bind awaiting its result, and its message id.
    pub pending: Option<Login>,
    pending_id: i64,
    /// Logins seen.
    pub logins: u32,
}

impl Ldap {
    /// A connection whose client (direction `dir`) opened with an LDAP
    /// message.
    pub fn new(dir: usize, first: &[u8]) -> Option<Self> {
        let len = ber_len(first)?;
        let whole = first.get(..len).unwrap_or(first);
        let opens = first.first() == Some(&SEQUENCE)
            && (len <= first.len() && ldap_message(whole).is_some()
                || len > first.len()
                    && len <= MAX_MESSAGE
                    && first
                        .get(2..4)
                        .is_some_and(|t| t[0] == INTEGER || t[1] == INTEGER));
        opens.then(|| Self {
            client_dir: dir,
            ..Self::default()
        })
    }

    /// Reads bytes of direction `dir`; answered binds go to `found`. False
    /// once the framing broke.
    pub fn read(
        &mut self,
        dir: usize,
        bytes: &[u8],
        found: &mut Vec<(Login, &'static str)>,
    ) -> bool {
        let from_client = dir == self.client_dir;
        let Self {
            framed,
            pending,
            pending_id,
            logins,
            ..
        } = self;
        framed.feed(dir, bytes, ber_len, |message| {
            let Some((id, op, value)) = ldap_message(message) else {
                return;
            };
            match op {
                BIND_REQUEST if from_client => {
                    if let Some((name, password)) = simple_bind(value) {
                        let login = Login::wire("ldap", name, password);
                        super::credentials::awaiting(pending, logins, login, found);
                        *pending_id = id;
                    }
                }
                BIND_RESPONSE if !from_client && id == *pending_id => {
                    let result = tlv(value).filter(|(t, _, _)| *t == ENUMERATED);
                    if let (Some(login), Some((_, code, _))) = (pending.take(), result) {
                        found.push((
                            login,
                            if integer(code) == Some(0) {
                                "yes"
                            } else {
                                "no"
                            },
                        ));
                    }
                }
                _ => {}
            }
        })
    }
}

/// A bind request's name and simple password (none for anonymous or SASL
/// binds).
fn simple_bind(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, _, rest) = tlv(value)?;
    if tag != INTEGER {
        return None;
    }
    let (tag, name, rest) = tlv(rest)?;
    if tag != OCTETS {
        return None;
    }
    let (tag, password, _) = tlv(rest)?;
    (tag == SIMPLE && !password.is_empty()).then_some((name, password))
}

/// An SNMP v1 or v2c message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snmp<'a> {
    /// The community.
    pub community: &'a [u8],
    /// The PDU's tag (`0xa0` GetRequest ... `0xa2` Response ...).
    pub pdu: u8,
    /// The request id (0 for a v1 trap).
    pub request_id: i64,
}

/// PDU tags: a response, and the traps (v1, v2).
pub const SNMP_RESPONSE: u8 = 0xa2;
pub const SNMP_TRAPS: [u8; 2] = [0xa4, 0xa7];

/// An SNMP v1 or v2c message (a datagram's payload).
pub fn snmp(payload: &[u8]) -> Option<Snmp<'_>> {
    let (tag, body, _) = tlv(payload)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, version, rest) = tlv(body)?;
    if tag != INTEGER || !matches!(integer(version)?, 0 | 1) {
        return None;
    }
    let (tag, community, rest) = tlv(rest)?;
    if tag != OCTETS {
        return None;
    }
    let (pdu, value, _) = tlv(rest)?;
    if !(0xa0..=0xa8).contains(&pdu) {
        return None;
    }
    let request_id = match tlv(value) {
        Some((INTEGER, id, _)) if !SNMP_TRAPS[..1].contains(&pdu) => integer(id)?,
        _ if pdu == SNMP_TRAPS[0] => 0,
        _ => return None,
    };
    Some(Snmp {
        community,
        pdu,
        request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ber_lengths_short_and_long() {
        let long = [&[0x04, 0x82, 0x01, 0x00][..], &[7; 256]].concat();
        let (tag, value, rest) = tlv(&long).unwrap();
        assert_eq!((tag, value.len(), rest.len()), (4, 256, 0));
        assert_eq!(ber_len(&long), Some(260));
        assert_eq!(
            ber_len(&[0x30, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            None,
            "too long a length"
        );
        assert!(tlv(&long[..100]).is_none(), "cut short");
        assert_eq!(integer(&[0xff]), Some(-1));
        assert_eq!(integer(&[0x01, 0x00]), Some(256));
    }

    #[test]
    fn snmp_get_and_response() {
        let get = b"\x30\x26\x02\x01\x01\x04\x06public\xa0\x19\x02\x04\x1b\x2c\x3d\x4e\x02\x01\x00\x02\x01\x00\x30\x0b\x30\x09\x06\x05\x2b\x06\x01\x02\x01\x05\x00";
        let message = snmp(get).unwrap();
        assert_eq!(
            (message.community, message.pdu, message.request_id),
            (&b"public"[..], 0xa0, 0x1b2c3d4e)
        );
        assert!(
            snmp(b"\x30\x03\x02\x01\x03").is_none(),
            "v3 has no community"
        );
        assert!(snmp(&get[..20]).is_none());
    }

    #[test]
    fn a_message_across_segments_is_gathered() {
        let mut framed = Framed::default();
        let message = b"\x30\x05\x02\x01\x01\x42\x00";
        let mut seen = Vec::new();
        assert!(framed.feed(0, &message[..3], ber_len, |m| seen.push(m.to_vec())));
        assert!(seen.is_empty());
        assert!(
            framed.feed(0, &[&message[3..], &message[..]].concat(), ber_len, |m| {
                seen.push(m.to_vec())
            })
        );
        assert_eq!(seen, [message.to_vec(), message.to_vec()]);
        let huge = [0x30, 0x84, 0, 1, 0, 0];
        assert!(!framed.feed(1, &huge, ber_len, |_| {}));
    }
}
