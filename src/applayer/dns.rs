//! DNS over UDP and TCP (port 53): the first query and response, for the
//! flow record, parsed with `simple-dns`.
//!
//! Over UDP each datagram is one message; over TCP each direction's stream
//! starts with a 2-byte length, and only the first message of each
//! direction is read (bounded by the length field).

use std::net::{Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{Packet, PacketFlag};

/// The DNS port.
pub const PORT: u16 = 53;

/// Answers kept at most.
const MAX_ANSWERS: usize = 16;

/// What the first query and response said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsSummary {
    /// Name asked for.
    pub query: Option<String>,
    /// Its query type (1 A, 28 AAAA, 16 TXT ...).
    pub qtype: Option<u16>,
    /// Response code of the first response (0 NOERROR, 3 NXDOMAIN ...).
    pub rcode: Option<u8>,
    /// Its answers: addresses, names or the record type.
    pub answers: Vec<String>,
}

impl DnsSummary {
    /// True once a query or a response was read.
    pub fn is_dns(&self) -> bool {
        self.query.is_some() || self.rcode.is_some()
    }

    /// Reads one DNS message; `false` when it is not one.
    pub fn message(&mut self, bytes: &[u8]) -> bool {
        let Ok(packet) = Packet::parse(bytes) else {
            return false;
        };
        if packet.has_flags(PacketFlag::RESPONSE) {
            if self.rcode.is_none() {
                self.rcode = Some(packet.rcode() as u8);
                self.answers = packet
                    .answers
                    .iter()
                    .take(MAX_ANSWERS)
                    .map(|rr| match &rr.rdata {
                        RData::A(a) => Ipv4Addr::from(a.address).to_string(),
                        RData::AAAA(a) => Ipv6Addr::from(a.address).to_string(),
                        RData::CNAME(name) => name.0.to_string(),
                        RData::NS(name) => name.0.to_string(),
                        RData::PTR(name) => name.0.to_string(),
                        other => format!("{:?}", other.type_code()),
                    })
                    .collect();
            }
            if self.query.is_none() {
                self.question(&packet);
            }
        } else if self.query.is_none() {
            self.question(&packet);
        }
        true
    }

    fn question(&mut self, packet: &Packet<'_>) {
        if let Some(q) = packet.questions.first() {
            self.query = Some(q.qname.to_string());
            self.qtype = Some(u16::from(q.qtype));
        }
    }
}

/// DNS over TCP: the first length-prefixed message of each direction.
#[derive(Debug, Clone, Default)]
pub struct DnsStream {
    buffers: [Vec<u8>; 2],
    done: [bool; 2],
}

impl DnsStream {
    /// Takes in-order bytes of direction `dir`; feeds `summary` the first
    /// whole message. Returns `false` once the direction proved not DNS.
    pub fn data(&mut self, dir: usize, bytes: &[u8], summary: &mut DnsSummary) -> bool {
        if self.done[dir] {
            return true;
        }
        let buffer = &mut self.buffers[dir];
        buffer.extend_from_slice(bytes);
        if buffer.len() < 2 {
            return true;
        }
        let len = usize::from(u16::from_be_bytes([buffer[0], buffer[1]]));
        let room = 2 + len;
        if buffer.len() < room {
            return true;
        }
        let message = std::mem::take(buffer);
        self.done[dir] = true;
        summary.message(&message[2..room])
    }
}

#[cfg(test)]
mod tests {
    use simple_dns::rdata::A;
    use simple_dns::{Name, Question, ResourceRecord, CLASS, QCLASS, QTYPE, TYPE};

    use super::*;

    fn query() -> Vec<u8> {
        let mut packet = Packet::new_query(7);
        packet.questions.push(Question::new(
            Name::new_unchecked("example.com"),
            QTYPE::TYPE(TYPE::A),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        packet.build_bytes_vec().unwrap()
    }

    fn response() -> Vec<u8> {
        let mut packet = Packet::new_reply(7);
        packet.questions.push(Question::new(
            Name::new_unchecked("example.com"),
            QTYPE::TYPE(TYPE::A),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        packet.answers.push(ResourceRecord::new(
            Name::new_unchecked("example.com"),
            CLASS::IN,
            60,
            RData::A(A {
                address: u32::from(Ipv4Addr::new(93, 184, 216, 34)),
            }),
        ));
        packet.build_bytes_vec().unwrap()
    }

    #[test]
    fn query_and_response_over_udp() {
        let mut s = DnsSummary::default();
        assert!(s.message(&query()));
        assert!(s.message(&response()));
        assert_eq!(s.query.as_deref(), Some("example.com"));
        assert_eq!(s.qtype, Some(1));
        assert_eq!(s.rcode, Some(0));
        assert_eq!(s.answers, ["93.184.216.34"]);
        assert!(!DnsSummary::default().message(b"\x01\x02not dns"));
    }

    #[test]
    fn length_prefixed_messages_over_tcp_in_pieces() {
        let mut s = DnsSummary::default();
        let mut stream = DnsStream::default();
        let q = query();
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        for piece in framed.chunks(5) {
            assert!(stream.data(0, piece, &mut s));
        }
        assert_eq!(s.query.as_deref(), Some("example.com"));
    }
}
