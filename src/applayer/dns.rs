//! DNS over UDP and TCP (port 53), parsed with `simple-dns`: every
//! request's question names (for rules), every response's answers (for
//! detectors), and the first query and response for the flow record.
//!
//! Over UDP each datagram is one message; over TCP each message of a
//! direction's stream follows a 2-byte length.

use std::net::{Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{Packet, PacketFlag};

/// The DNS port.
pub const PORT: u16 = 53;

/// Answers kept at most.
const MAX_ANSWERS: usize = 16;

/// A DNS message as the parsers hand it on.
#[derive(Debug, Clone, Copy)]
pub enum DnsMessage<'a> {
    /// A request's question for `name`, of record type `qtype`.
    Query {
        /// The question name.
        name: &'a [u8],
        /// Its type (1 A, 16 TXT ...).
        qtype: u16,
    },
    /// A response.
    Answer(&'a DnsAnswer),
}

/// A response: its first question and what it answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsAnswer {
    /// The question name.
    pub name: Vec<u8>,
    /// Its type.
    pub qtype: u16,
    /// Response code (0 NOERROR, 3 NXDOMAIN ...).
    pub rcode: u8,
    /// The answer records (at most [`MAX_ANSWERS`]).
    pub records: Vec<AnswerRecord>,
}

/// One answer record: its type and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRecord {
    /// Record type.
    pub rtype: u16,
    /// TXT strings joined, NULL and unknown types' data as sent, the
    /// target name of CNAME, MX, NS and PTR records; empty for others.
    pub data: Vec<u8>,
}

impl AnswerRecord {
    fn of(rdata: &RData<'_>) -> Self {
        let data = match rdata {
            RData::TXT(txt) => txt
                .iter_raw()
                .flat_map(|(key, value)| {
                    let mut string = key.to_vec();
                    if let Some(value) = value {
                        string.push(b'=');
                        string.extend_from_slice(value);
                    }
                    string
                })
                .collect(),
            RData::NULL(_, null) => null.get_data().to_vec(),
            RData::CNAME(name) => name.0.to_string().into_bytes(),
            RData::NS(name) => name.0.to_string().into_bytes(),
            RData::PTR(name) => name.0.to_string().into_bytes(),
            RData::MX(mx) => mx.exchange.to_string().into_bytes(),
            _ => Vec::new(),
        };
        Self {
            rtype: rdata.type_code().into(),
            data,
        }
    }
}

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

    /// Reads one DNS message, handing a request's question names and a
    /// response's answers to `on`; `false` when it is not one.
    pub fn message(&mut self, bytes: &[u8], on: &mut impl FnMut(DnsMessage<'_>)) -> bool {
        let Ok(packet) = Packet::parse(bytes) else {
            return false;
        };
        if !packet.has_flags(PacketFlag::RESPONSE) {
            for question in &packet.questions {
                on(DnsMessage::Query {
                    name: question.qname.to_string().as_bytes(),
                    qtype: u16::from(question.qtype),
                });
            }
        }
        if packet.has_flags(PacketFlag::RESPONSE) {
            if let Some(question) = packet.questions.first() {
                let answer = DnsAnswer {
                    name: question.qname.to_string().into_bytes(),
                    qtype: u16::from(question.qtype),
                    rcode: packet.rcode() as u8,
                    records: packet
                        .answers
                        .iter()
                        .take(MAX_ANSWERS)
                        .map(|rr| AnswerRecord::of(&rr.rdata))
                        .collect(),
                };
                on(DnsMessage::Answer(&answer));
            }
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

/// DNS over TCP: length-prefixed messages in each direction.
#[derive(Debug, Clone, Default)]
pub struct DnsStream {
    buffers: [Vec<u8>; 2],
    done: [bool; 2],
}

impl DnsStream {
    /// Takes in-order bytes of direction `dir`, feeding each whole message
    /// to `summary` (and question names to `on`). Returns `false` once the
    /// direction proved not DNS; it is then read no more.
    pub fn data(
        &mut self,
        dir: usize,
        bytes: &[u8],
        summary: &mut DnsSummary,
        on: &mut impl FnMut(DnsMessage<'_>),
    ) -> bool {
        if self.done[dir] {
            return true;
        }
        let buffer = &mut self.buffers[dir];
        buffer.extend_from_slice(bytes);
        let mut at = 0;
        while buffer.len() >= at + 2 {
            let len = usize::from(u16::from_be_bytes([buffer[at], buffer[at + 1]]));
            if buffer.len() < at + 2 + len {
                break;
            }
            if !summary.message(&buffer[at + 2..at + 2 + len], on) {
                self.done[dir] = true;
                self.buffers[dir] = Vec::new();
                return false;
            }
            at += 2 + len;
        }
        buffer.drain(..at);
        true
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
        let mut names = Vec::new();
        let mut answers = Vec::new();
        let mut on = |message: DnsMessage<'_>| match message {
            DnsMessage::Query { name, .. } => names.push(name.to_vec()),
            DnsMessage::Answer(answer) => answers.push(answer.clone()),
        };
        assert!(s.message(&query(), &mut on));
        assert!(s.message(&response(), &mut on));
        assert_eq!(names, [b"example.com".to_vec()]);
        assert_eq!(answers.len(), 1);
        assert_eq!((answers[0].qtype, answers[0].records[0].rtype), (1, 1));
        assert_eq!(s.query.as_deref(), Some("example.com"));
        assert_eq!(s.qtype, Some(1));
        assert_eq!(s.rcode, Some(0));
        assert_eq!(s.answers, ["93.184.216.34"]);
        assert!(!DnsSummary::default().message(b"\x01\x02not dns", &mut |_| {}));
    }

    #[test]
    fn length_prefixed_messages_over_tcp_in_pieces() {
        let mut s = DnsSummary::default();
        let mut stream = DnsStream::default();
        let q = query();
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        for piece in framed.chunks(5) {
            assert!(stream.data(0, piece, &mut s, &mut |_| {}));
        }
        assert_eq!(s.query.as_deref(), Some("example.com"));
    }
}
