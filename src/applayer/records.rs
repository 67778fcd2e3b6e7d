//! Where a TLS connection's encrypted part begins: a walk over the record
//! headers of both directions, five bytes each, skipping the bodies by
//! their length.
//!
//! The encrypted part begins at the first application data record (type
//! 23) of the flow, in either direction, as Suricata's `encryption-handling`
//! has it. Application data the client sends before the server has sent
//! any record (TLS 1.3 early data) does not count. A direction whose bytes
//! stop looking like records (another protocol, a capture picked up in the
//! middle of a record, a gap) is walked no further.

/// Record type of application data.
const APPLICATION_DATA: u8 = 23;

/// Largest record body: 2^14 bytes of plaintext plus what compression and
/// encryption may add (RFC 5246 6.2.3).
const MAX_BODY: u16 = (1 << 14) + 2048;

/// True when `header` is a TLS record header: it starts as one
/// ([`Records::looks_like_tls`]) and its body length is within the limit.
fn is_header(header: &[u8; 5]) -> bool {
    Records::looks_like_tls(header) && u16::from_be_bytes([header[3], header[4]]) <= MAX_BODY
}

/// The walk of one direction.
#[derive(Debug, Clone, Copy, Default)]
struct Direction {
    /// Body bytes still to skip before the next header.
    skip: u32,
    /// Bytes of the next header read so far.
    header: [u8; 5],
    have: u8,
    /// Bytes were seen (the walk starts at the direction's first byte).
    started: bool,
    /// A valid record was seen.
    records: bool,
    /// The bytes stopped looking like records.
    lost: bool,
}

/// The walk of one TLS flow.
#[derive(Debug, Clone, Default)]
pub struct Records {
    dirs: [Direction; 2],
    encrypted: bool,
}

impl Records {
    /// True when a flow whose direction begins with `bytes` may be TLS:
    /// they start with a record header's content type (change cipher spec
    /// to application data) and version (major 3).
    pub fn looks_like_tls(bytes: &[u8]) -> bool {
        matches!(bytes, [20..=APPLICATION_DATA, 3, 0..=4, ..])
    }

    /// True once the encrypted part began.
    pub fn encrypted(&self) -> bool {
        self.encrypted
    }

    /// Takes the next in-order bytes of direction `dir` (0: from the
    /// client), at `offset` in it; returns how many of them come before the
    /// encrypted part (all of them when it has not begun, none once it
    /// has). A direction first seen past its start is not walked.
    pub fn data(&mut self, dir: usize, offset: u64, bytes: &[u8]) -> usize {
        if self.encrypted {
            return 0;
        }
        let server_spoke = self.dirs[1].records;
        let walk = &mut self.dirs[dir];
        if !std::mem::replace(&mut walk.started, true) && offset != 0 {
            walk.lost = true;
        }
        let mut at = 0;
        while !walk.lost && at < bytes.len() {
            if walk.skip > 0 {
                let step = (walk.skip as usize).min(bytes.len() - at);
                walk.skip -= step as u32;
                at += step;
                continue;
            }
            let start = at;
            let step = (5 - usize::from(walk.have)).min(bytes.len() - at);
            let have = usize::from(walk.have);
            walk.header[have..have + step].copy_from_slice(&bytes[at..at + step]);
            walk.have += step as u8;
            at += step;
            if walk.have < 5 {
                break;
            }
            walk.have = 0;
            if !is_header(&walk.header) {
                walk.lost = true;
                break;
            }
            walk.records = true;
            if walk.header[0] == APPLICATION_DATA && (dir == 1 || server_spoke) {
                self.encrypted = true;
                // A header split over chunks began in an earlier one.
                return start.saturating_sub(5 - step);
            }
            walk.skip = u32::from(u16::from_be_bytes([walk.header[3], walk.header[4]]));
        }
        bytes.len()
    }

    /// Bytes of direction `dir` were lost: it is walked no further.
    pub fn gap(&mut self, dir: usize) {
        self.dirs[dir].lost = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, body_len: usize) -> Vec<u8> {
        let mut r = vec![kind, 3, 3];
        r.extend_from_slice(&(body_len as u16).to_be_bytes());
        r.extend(std::iter::repeat_n(0xaa, body_len));
        r
    }

    #[test]
    fn the_first_application_data_record_ends_the_clear_part() {
        let mut walk = Records::default();
        let hello = record(22, 200);
        assert_eq!(walk.data(0, 0, &hello), hello.len());
        let server = [record(22, 90), record(20, 1), record(22, 40)].concat();
        assert_eq!(walk.data(1, 0, &server), server.len());
        let client = [record(20, 1), record(22, 40), record(23, 300)].concat();
        assert_eq!(walk.data(0, hello.len() as u64, &client), 6 + 45);
        assert!(walk.encrypted());
        assert_eq!(walk.data(1, server.len() as u64, &record(23, 10)), 0);
    }

    #[test]
    fn headers_and_bodies_split_anywhere_are_followed() {
        let stream = [record(22, 300), record(20, 1), record(23, 50)].concat();
        let trigger = 305 + 6;
        for split in 1..stream.len() {
            let mut walk = Records::default();
            walk.data(1, 0, &record(22, 10));
            let first = walk.data(0, 0, &stream[..split]);
            if split <= trigger + 4 {
                assert_eq!(first, split, "split {split}");
                let second = walk.data(0, split as u64, &stream[split..]);
                // The header's first byte counts from the second chunk
                // when it is there, and as none of it when it began before.
                assert_eq!(second, trigger.saturating_sub(split), "split {split}");
            } else {
                assert_eq!(first, trigger, "split {split}");
            }
            assert!(walk.encrypted());
        }
    }

    #[test]
    fn early_data_before_the_server_speaks_is_clear() {
        let mut walk = Records::default();
        let client = [record(22, 100), record(23, 30)].concat();
        assert_eq!(walk.data(0, 0, &client), client.len());
        assert!(!walk.encrypted());
        assert_eq!(walk.data(1, 0, &record(22, 60)), 65);
        assert_eq!(walk.data(0, client.len() as u64, &record(23, 30)), 0);
    }

    #[test]
    fn other_protocols_and_gaps_are_never_encrypted() {
        let mut walk = Records::default();
        let text = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20);
        assert_eq!(walk.data(0, 0, &text), text.len());
        walk.data(1, 0, &record(22, 10));
        walk.gap(1);
        assert_eq!(walk.data(1, 15, &record(23, 10)), 15);
        assert!(!walk.encrypted());
        // A direction picked up past its start.
        let mut walk = Records::default();
        walk.data(0, 0, &record(22, 10));
        assert_eq!(walk.data(1, 700, &record(23, 10)), 15);
        assert!(!walk.encrypted());
        assert!(!Records::looks_like_tls(b"GET /"));
        assert!(Records::looks_like_tls(&record(23, 4)));
    }
}
