//! Capture files: classic pcap and pcapng.
//!
//! [`CaptureFile`] reads either format from any [`Read`] (a file, or a byte
//! slice in tests and fuzzing) and yields one [`RawPacket`] at a time from a
//! buffer it reuses. It handles both byte orders, micro- and nanosecond pcap,
//! and pcapng sections with several interfaces, each with its own link type,
//! timestamp resolution (`if_tsresol`) and offset (`if_tsoffset`).
//!
//! Errors carry the file and the byte offset of the record that could not be
//! read. A reader stops at its first error; every packet returned before it is
//! good. Packets of a pcapng interface whose link type we cannot decode are
//! skipped and counted, and the first such interface is reported as a warning.

use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{LinkType, RawPacket};

/// Largest record we accept, bytes. Anything longer is a corrupt length field
/// (the largest real snap length, 262 144, is well under it).
pub const MAX_RECORD_LEN: usize = 1 << 20;

const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Bytes of a pcap record's header (time, captured and wire lengths).
const PCAP_RECORD_HEADER: usize = 16;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_OBSOLETE_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;
const PCAPNG_OPT_END: u16 = 0;
const PCAPNG_OPT_TSRESOL: u16 = 9;
const PCAPNG_OPT_TSOFFSET: u16 = 14;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// What went wrong while reading a capture file.
#[derive(Debug, thiserror::Error)]
pub enum CaptureErrorKind {
    /// The file could not be opened or read.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The file holds no bytes at all.
    #[error("file is empty")]
    Empty,
    /// The first four bytes are neither a pcap nor a pcapng magic number.
    #[error("not a pcap or pcapng file (magic {0:#010x})")]
    BadMagic(u32),
    /// The file ends inside a header or a record.
    #[error("truncated {what}: needed {needed} bytes, {available} available")]
    Truncated {
        /// The structure that was cut.
        what: &'static str,
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes that were left in the file.
        available: usize,
    },
    /// A length field is impossible.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// The structure whose length field is wrong.
        what: &'static str,
        /// The offending value.
        detail: String,
    },
    /// The link type is not one mirador decodes.
    #[error("unsupported link type {0} (supported: Ethernet 1, Linux SLL 113, SLL2 276, raw IP 101/228/229, BSD loopback 0/108, Cisco HDLC 104)")]
    UnsupportedLinkType(u32),
}

/// An error reading a capture file, with where it happened.
#[derive(Debug, thiserror::Error)]
#[error("{path}: at byte offset {offset}: {kind}")]
pub struct CaptureError {
    /// The file being read.
    pub path: PathBuf,
    /// Byte offset of the header or record that failed.
    pub offset: u64,
    /// What failed.
    pub kind: CaptureErrorKind,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link: Option<LinkType>,
    linktype: u32,
    units_per_sec: u64,
    offset_secs: i64,
}

#[derive(Debug)]
enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        link: LinkType,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Bytes asked of the reader at a time: large enough that a read costs
/// little per packet, small enough that the records stay in cache while the
/// worker reads them.
const READ_CHUNK: usize = 256 << 10;

/// A reader's bytes seen through one reused buffer. The current record sits
/// at `start..start + len`; bytes up to `end` are read but not yet part of
/// a record. Records are parsed where they were read: a record is only
/// moved when it straddles the end of the buffer.
struct Window<R> {
    reader: R,
    data: Vec<u8>,
    start: usize,
    len: usize,
    end: usize,
}

impl<R: Read> Window<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            data: vec![0; READ_CHUNK],
            start: 0,
            len: 0,
            end: 0,
        }
    }

    fn record(&self) -> &[u8] {
        &self.data[self.start..self.start + self.len]
    }

    /// Ends the current record; the next one starts after it.
    fn consume(&mut self) {
        self.start += self.len;
        self.len = 0;
    }

    /// Grows the current record by up to `n` bytes; fewer only at the end
    /// of the input. Returns how many it grew by.
    fn extend(&mut self, n: usize) -> io::Result<usize> {
        let want = self.len + n;
        if self.start + want > self.data.len() {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if want > self.data.len() {
                self.data.resize(want.next_multiple_of(READ_CHUNK), 0);
            }
        }
        while self.end < self.start + want {
            match self.reader.read(&mut self.data[self.end..]) {
                Ok(0) => break,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let got = n.min(self.end - self.start - self.len);
        self.len += got;
        Ok(got)
    }
}

/// The packet last read: where it sits in the current record.
#[derive(Debug, Clone)]
struct Current {
    ts_ns: u64,
    link: LinkType,
    wire_len: u32,
    data: Range<usize>,
}

/// A pcap or pcapng file read one packet at a time.
pub struct CaptureFile<R> {
    path: PathBuf,
    window: Window<R>,
    format: Format,
    /// Offset of the next unread byte.
    offset: u64,
    current: Option<Current>,
    last_ts_ns: u64,
    skipped_unsupported: u64,
    warnings: Vec<CaptureError>,
}

/// The input name that stands for standard input.
pub const STDIN: &str = "-";

/// The error of an input `path` that could not be opened or listed.
pub(crate) fn not_opened(path: &Path) -> impl FnOnce(io::Error) -> CaptureError + '_ {
    move |e| CaptureError {
        path: path.to_owned(),
        offset: 0,
        kind: e.into(),
    }
}

impl CaptureFile<File> {
    /// Opens a capture file and reads its file header.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        Self::new(path, File::open(path).map_err(not_opened(path))?)
    }
}

/// A capture read from a file or from standard input.
pub type Input = CaptureFile<Box<dyn Read + Send>>;

impl Input {
    /// Opens a capture file, or standard input when `path` is [`STDIN`],
    /// and reads its file header. Standard input ends early once `stop` is
    /// set while it waits for bytes.
    pub fn open_input(
        path: &Path,
        stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Self, CaptureError> {
        let name = Path::new("stdin");
        if path == Path::new(STDIN) {
            let reader =
                super::stdin::StdinReader::spawn(stop.clone()).map_err(not_opened(name))?;
            return Self::new(name, Box::new(reader));
        }
        Self::new(path, Box::new(File::open(path).map_err(not_opened(path))?))
    }
}

impl<R: Read> CaptureFile<R> {
    /// Reads the file header from `reader`; `path` names the source in errors.
    pub fn new(path: &Path, reader: R) -> Result<Self, CaptureError> {
        let mut file = Self {
            path: path.to_owned(),
            window: Window::new(reader),
            format: Format::Pcap {
                big_endian: false,
                nanos: false,
                link: LinkType::Ethernet,
            },
            offset: 0,
            current: None,
            last_ts_ns: 0,
            skipped_unsupported: 0,
            warnings: Vec::new(),
        };
        if !file.fill(4, "file header")? {
            return Err(file.error(0, CaptureErrorKind::Empty));
        }
        let magic_le = u32::from_le_bytes(file.record()[..4].try_into().unwrap_or_default());
        let magic_be = magic_le.swap_bytes();
        match (magic_le, magic_be) {
            (PCAPNG_SHB, _) => {
                file.format = Format::PcapNg {
                    big_endian: false,
                    interfaces: Vec::new(),
                };
                file.read_section_header(0)?;
            }
            (m, _) if m == PCAP_MAGIC_MICROS || m == PCAP_MAGIC_NANOS => {
                file.read_pcap_header(false, m == PCAP_MAGIC_NANOS)?
            }
            (_, m) if m == PCAP_MAGIC_MICROS || m == PCAP_MAGIC_NANOS => {
                file.read_pcap_header(true, m == PCAP_MAGIC_NANOS)?
            }
            _ => return Err(file.error(0, CaptureErrorKind::BadMagic(magic_be))),
        }
        Ok(file)
    }

    /// The path this file was opened as.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Offset of the next unread byte (bytes read so far).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Packets skipped because their pcapng interface has an unsupported link type.
    pub fn skipped_unsupported(&self) -> u64 {
        self.skipped_unsupported
    }

    /// Takes the non-fatal problems found so far (unsupported pcapng interfaces).
    pub fn take_warnings(&mut self) -> Vec<CaptureError> {
        std::mem::take(&mut self.warnings)
    }

    /// Reads the next packet; `Ok(None)` at a clean end of file.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        let found = match self.format {
            Format::Pcap { .. } => self.next_pcap_record()?,
            Format::PcapNg { .. } => self.next_pcapng_packet()?,
        };
        Ok(if found { self.packet() } else { None })
    }

    /// True when the next record was read already in full, so that
    /// [`Self::next_packet`] will not wait on the reader for it. In pcapng
    /// that is the next packet block, with every block before it.
    pub fn next_is_buffered(&self) -> bool {
        let window = &self.window;
        let mut rest = &window.data[window.start + window.len..window.end];
        let (big_endian, length_at, header) = match self.format {
            Format::Pcap { big_endian, .. } => (big_endian, 8, PCAP_RECORD_HEADER),
            // A block's length counts its header.
            Format::PcapNg { big_endian, .. } => (big_endian, 4, 0),
        };
        let word = |bytes: &[u8], at: usize| {
            let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
            Some(if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        loop {
            let Some(length) = word(rest, length_at) else {
                return false;
            };
            let size = header + length as usize;
            if rest.len() < size {
                return false;
            }
            let is_packet = match self.format {
                Format::Pcap { .. } => true,
                Format::PcapNg { .. } => matches!(word(rest, 0), Some(2 | 3 | 6)),
            };
            // A block that says it is shorter than its header ends here.
            if is_packet || size < 12 {
                return true;
            }
            rest = &rest[size..];
        }
    }

    /// The packet the last [`Self::next_packet`] returned, still in the
    /// buffer until the next call; `None` before the first and at the end.
    pub fn packet(&self) -> Option<RawPacket<'_>> {
        let current = self.current.as_ref()?;
        Some(RawPacket {
            ts_ns: current.ts_ns,
            link: current.link,
            wire_len: current.wire_len,
            data: &self.record()[current.data.clone()],
        })
    }

    fn error(&self, offset: u64, kind: CaptureErrorKind) -> CaptureError {
        CaptureError {
            path: self.path.clone(),
            offset,
            kind,
        }
    }

    /// Grows the current record by `n` bytes and reads into them until they are full or
    /// the file ends; returns how many were read. Advances `offset` only when
    /// all `n` arrived.
    fn read_more(&mut self, n: usize) -> Result<usize, CaptureError> {
        let got = self
            .window
            .extend(n)
            .map_err(|e| self.error(self.offset, e.into()))?;
        if got == n {
            self.offset += n as u64;
        }
        Ok(got)
    }

    /// Starts a new record of exactly `n` bytes. `Ok(false)` when the
    /// file ends before the first byte, an error when it ends part-way.
    fn fill(&mut self, n: usize, what: &'static str) -> Result<bool, CaptureError> {
        self.window.consume();
        let start = self.offset;
        match self.read_more(n)? {
            0 => Ok(false),
            got if got == n => Ok(true),
            available => Err(self.error(
                start,
                CaptureErrorKind::Truncated {
                    what,
                    needed: n,
                    available,
                },
            )),
        }
    }

    /// Like [`Self::fill`] but grows the current record; an end
    /// of file anywhere in the `n` bytes is an error at `start`.
    fn fill_more(&mut self, n: usize, start: u64, what: &'static str) -> Result<(), CaptureError> {
        let have = self.window.len;
        let got = self.read_more(n)?;
        if got < n {
            return Err(self.error(
                start,
                CaptureErrorKind::Truncated {
                    what,
                    needed: have + n,
                    available: have + got,
                },
            ));
        }
        Ok(())
    }

    /// The record being read: header and body.
    fn record(&self) -> &[u8] {
        self.window.record()
    }

    fn u16_at(&self, big_endian: bool, at: usize) -> u16 {
        let b = [self.record()[at], self.record()[at + 1]];
        if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32_at(&self, big_endian: bool, at: usize) -> u32 {
        let mut b = [0; 4];
        b.copy_from_slice(&self.record()[at..at + 4]);
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn read_pcap_header(&mut self, big_endian: bool, nanos: bool) -> Result<(), CaptureError> {
        self.fill_more(20, 0, "pcap file header")?;
        let linktype = self.u32_at(big_endian, 20) & 0xffff;
        let link = LinkType::from_linktype(linktype)
            .ok_or_else(|| self.error(20, CaptureErrorKind::UnsupportedLinkType(linktype)))?;
        self.format = Format::Pcap {
            big_endian,
            nanos,
            link,
        };
        Ok(())
    }

    /// Reads the next pcap record into `current`; false at the end.
    fn next_pcap_record(&mut self) -> Result<bool, CaptureError> {
        self.current = None;
        let Format::Pcap {
            big_endian,
            nanos,
            link,
        } = self.format
        else {
            return Ok(false);
        };
        let start = self.offset;
        if !self.fill(PCAP_RECORD_HEADER, "pcap record header")? {
            return Ok(false);
        }
        let secs = u64::from(self.u32_at(big_endian, 0));
        let frac = u64::from(self.u32_at(big_endian, 4));
        let caplen = self.u32_at(big_endian, 8) as usize;
        let wire_len = self.u32_at(big_endian, 12);
        if caplen > MAX_RECORD_LEN {
            return Err(self.error(
                start,
                CaptureErrorKind::Corrupt {
                    what: "pcap record",
                    detail: format!("captured length {caplen} exceeds {MAX_RECORD_LEN}"),
                },
            ));
        }
        let ts_ns = secs * NANOS_PER_SEC + if nanos { frac } else { frac * 1_000 };
        self.fill_more(caplen, start, "pcap record")?;
        self.last_ts_ns = ts_ns;
        self.current = Some(Current {
            ts_ns,
            link,
            wire_len: wire_len.max(caplen as u32),
            data: PCAP_RECORD_HEADER..PCAP_RECORD_HEADER + caplen,
        });
        Ok(true)
    }

    /// Reads a section header block whose first bytes (at least its type) are
    /// already in the record.
    fn read_section_header(&mut self, start: u64) -> Result<(), CaptureError> {
        let have = self.window.len;
        self.fill_more(12 - have, start, "pcapng section header")?;
        let bom = self.u32_at(false, 8);
        let big_endian = match bom {
            PCAPNG_BYTE_ORDER_MAGIC => false,
            m if m.swap_bytes() == PCAPNG_BYTE_ORDER_MAGIC => true,
            m => {
                return Err(self.error(
                    start,
                    CaptureErrorKind::Corrupt {
                        what: "pcapng section header",
                        detail: format!("byte-order magic {m:#010x}"),
                    },
                ))
            }
        };
        let total = self.u32_at(big_endian, 4) as usize;
        if !(28..=MAX_RECORD_LEN).contains(&total) || total % 4 != 0 {
            return Err(self.error(
                start,
                CaptureErrorKind::Corrupt {
                    what: "pcapng section header",
                    detail: format!("block length {total}"),
                },
            ));
        }
        self.fill_more(total - 12, start, "pcapng section header")?;
        self.format = Format::PcapNg {
            big_endian,
            interfaces: Vec::new(),
        };
        Ok(())
    }

    /// Reads blocks up to the next packet into `current`; false at the end.
    fn next_pcapng_packet(&mut self) -> Result<bool, CaptureError> {
        self.current = None;
        loop {
            let start = self.offset;
            if !self.fill(8, "pcapng block header")? {
                return Ok(false);
            }
            if self.u32_at(false, 0) == PCAPNG_SHB {
                self.read_section_header(start)?;
                continue;
            }
            let big_endian = match &self.format {
                Format::PcapNg { big_endian, .. } => *big_endian,
                Format::Pcap { .. } => return Ok(false),
            };
            let block_type = self.u32_at(big_endian, 0);
            let total = self.u32_at(big_endian, 4) as usize;
            if !(12..=MAX_RECORD_LEN).contains(&total) || total % 4 != 0 {
                return Err(self.error(
                    start,
                    CaptureErrorKind::Corrupt {
                        what: "pcapng block",
                        detail: format!("type {block_type:#x} with block length {total}"),
                    },
                ));
            }
            self.fill_more(total - 8, start, "pcapng block")?;
            let body = 8..total - 4;
            match block_type {
                PCAPNG_IDB => self.read_interface(big_endian, body, start)?,
                PCAPNG_EPB | PCAPNG_OBSOLETE_PB | PCAPNG_SPB => {
                    if let Some(found) = self.packet_block(big_endian, block_type, body, start)? {
                        self.current = Some(found);
                        return Ok(true);
                    }
                }
                _ => {}
            }
        }
    }

    fn corrupt_block(&self, start: u64, detail: String) -> CaptureError {
        self.error(
            start,
            CaptureErrorKind::Corrupt {
                what: "pcapng block",
                detail,
            },
        )
    }

    fn read_interface(
        &mut self,
        big_endian: bool,
        body: Range<usize>,
        start: u64,
    ) -> Result<(), CaptureError> {
        if body.len() < 8 {
            return Err(
                self.corrupt_block(start, "interface description shorter than 8 bytes".into())
            );
        }
        let linktype = u32::from(self.u16_at(big_endian, body.start));
        let mut interface = Interface {
            link: LinkType::from_linktype(linktype),
            linktype,
            units_per_sec: 1_000_000,
            offset_secs: 0,
        };
        let mut at = body.start + 8;
        while at + 4 <= body.end {
            let code = self.u16_at(big_endian, at);
            let len = usize::from(self.u16_at(big_endian, at + 2));
            let value = at + 4;
            if code == PCAPNG_OPT_END || value + len > body.end {
                break;
            }
            match (code, len) {
                (PCAPNG_OPT_TSRESOL, 1) => {
                    let v = self.record()[value];
                    let exp = u32::from(v & 0x7f);
                    let units = if v & 0x80 == 0 {
                        10u64.checked_pow(exp)
                    } else {
                        2u64.checked_pow(exp)
                    };
                    interface.units_per_sec = units.filter(|u| *u > 0).ok_or_else(|| {
                        self.corrupt_block(start, format!("if_tsresol {v:#04x} out of range"))
                    })?;
                }
                (PCAPNG_OPT_TSOFFSET, 8) => {
                    let hi = u64::from(self.u32_at(big_endian, value));
                    let lo = u64::from(self.u32_at(big_endian, value + 4));
                    interface.offset_secs = if big_endian {
                        ((hi << 32) | lo) as i64
                    } else {
                        ((lo << 32) | hi) as i64
                    };
                }
                _ => {}
            }
            at = value + len.div_ceil(4) * 4;
        }
        if interface.link.is_none() {
            self.warnings.push(self.error(
                start,
                CaptureErrorKind::UnsupportedLinkType(interface.linktype),
            ));
        }
        if let Format::PcapNg { interfaces, .. } = &mut self.format {
            interfaces.push(interface);
        }
        Ok(())
    }

    /// Parses an enhanced, simple or obsolete packet block in the record; `None`
    /// when the packet belongs to an interface we skip.
    fn packet_block(
        &mut self,
        big_endian: bool,
        block_type: u32,
        body: Range<usize>,
        start: u64,
    ) -> Result<Option<Current>, CaptureError> {
        let b = body.start;
        let (if_id, ts, caplen, wire_len, data_at) = match block_type {
            PCAPNG_SPB => {
                if body.len() < 4 {
                    return Err(self.corrupt_block(start, "simple packet block too short".into()));
                }
                let wire = self.u32_at(big_endian, b);
                let cap = (wire as usize).min(body.len() - 4);
                (0usize, None, cap, wire, b + 4)
            }
            _ => {
                if body.len() < 20 {
                    return Err(self.corrupt_block(start, "packet block too short".into()));
                }
                let if_id = if block_type == PCAPNG_EPB {
                    self.u32_at(big_endian, b) as usize
                } else {
                    usize::from(self.u16_at(big_endian, b))
                };
                let hi = u64::from(self.u32_at(big_endian, b + 4));
                let lo = u64::from(self.u32_at(big_endian, b + 8));
                let cap = self.u32_at(big_endian, b + 12) as usize;
                let wire = self.u32_at(big_endian, b + 16);
                if cap > body.len() - 20 {
                    return Err(self.corrupt_block(
                        start,
                        format!(
                            "captured length {cap} exceeds block body {}",
                            body.len() - 20
                        ),
                    ));
                }
                (if_id, Some((hi << 32) | lo), cap, wire, b + 20)
            }
        };
        let Format::PcapNg { interfaces, .. } = &self.format else {
            return Ok(None);
        };
        let Some(interface) = interfaces.get(if_id).copied() else {
            return Err(
                self.corrupt_block(start, format!("packet names undefined interface {if_id}"))
            );
        };
        let Some(link) = interface.link else {
            self.skipped_unsupported += 1;
            return Ok(None);
        };
        let ts_ns = match ts {
            Some(units) => {
                let ns = u128::from(units) * u128::from(NANOS_PER_SEC)
                    / u128::from(interface.units_per_sec);
                let offset = i128::from(interface.offset_secs) * i128::from(NANOS_PER_SEC);
                u64::try_from((ns as i128 + offset).max(0)).unwrap_or(u64::MAX)
            }
            None => self.last_ts_ns,
        };
        self.last_ts_ns = ts_ns;
        Ok(Some(Current {
            ts_ns,
            link,
            wire_len: wire_len.max(caplen as u32),
            data: data_at..data_at + caplen,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_header(big_endian: bool, nanos: bool, linktype: u32) -> Vec<u8> {
        let magic = if nanos {
            PCAP_MAGIC_NANOS
        } else {
            PCAP_MAGIC_MICROS
        };
        let mut h = Vec::new();
        let mut put = |v: u32, len: usize| {
            let bytes = if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            if big_endian {
                h.extend_from_slice(&bytes[4 - len..]);
            } else {
                h.extend_from_slice(&bytes[..len]);
            }
        };
        put(magic, 4);
        put(2, 2);
        put(4, 2);
        put(0, 4);
        put(0, 4);
        put(65_535, 4);
        put(linktype, 4);
        h
    }

    fn pcap_record(big_endian: bool, secs: u32, frac: u32, data: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        for v in [secs, frac, data.len() as u32, data.len() as u32 + 10] {
            r.extend_from_slice(&if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            });
        }
        r.extend_from_slice(data);
        r
    }

    /// A packet as the tests compare it: time, link type, wire length, bytes.
    type Owned = (u64, LinkType, u32, Vec<u8>);

    fn read_all(bytes: &[u8]) -> Result<Vec<Owned>, CaptureError> {
        let mut file = CaptureFile::new(Path::new("test.pcap"), bytes)?;
        let mut out = Vec::new();
        while let Some(p) = file.next_packet()? {
            out.push((p.ts_ns, p.link, p.wire_len, p.data.to_vec()));
        }
        Ok(out)
    }

    #[test]
    fn reads_both_byte_orders_and_resolutions() {
        for big_endian in [false, true] {
            for nanos in [false, true] {
                let mut bytes = pcap_header(big_endian, nanos, 1);
                bytes.extend(pcap_record(big_endian, 10, 500, b"abc"));
                let packets = read_all(&bytes).unwrap();
                let frac_ns = if nanos { 500 } else { 500_000 };
                assert_eq!(
                    packets,
                    vec![(
                        10_000_000_000 + frac_ns,
                        LinkType::Ethernet,
                        13,
                        b"abc".to_vec()
                    )]
                );
            }
        }
    }

    /// A reader that hands out at most `step` bytes per read.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(self.step).min(self.bytes.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn records_across_buffer_ends_and_larger_than_it_read_whole() {
        let sizes: Vec<usize> = (0..400)
            .map(|i| match i % 50 {
                7 => READ_CHUNK + 12_345,
                13 => 0,
                n => 60 + n * 97,
            })
            .collect();
        let payload = |i: usize, len: usize| -> Vec<u8> {
            (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
        };
        let mut pcap = pcap_header(false, true, 1);
        let mut pcapng = shb();
        pcapng.extend(idb(1, Some(9)));
        for (i, &len) in sizes.iter().enumerate() {
            pcap.extend(pcap_record(false, i as u32, 0, &payload(i, len)));
            pcapng.extend(epb(0, i as u64 * 1_000_000_000, &payload(i, len)));
        }
        for bytes in [&pcap, &pcapng] {
            for step in [1000, 65_536, usize::MAX] {
                let mut file = CaptureFile::new(Path::new("t"), Trickle { bytes, step }).unwrap();
                let mut seen = 0;
                while let Some(p) = file.next_packet().unwrap() {
                    assert_eq!(p.ts_ns, seen as u64 * 1_000_000_000);
                    assert_eq!(
                        p.data,
                        payload(seen, sizes[seen]).as_slice(),
                        "packet {seen}"
                    );
                    seen += 1;
                }
                assert_eq!(seen, sizes.len());
                assert_eq!(file.offset(), bytes.len() as u64);
            }
        }
    }

    #[test]
    fn truncated_record_reports_its_offset() {
        let mut bytes = pcap_header(false, false, 1);
        bytes.extend(pcap_record(false, 1, 0, b"first"));
        let second_at = bytes.len() as u64;
        bytes.extend(pcap_record(false, 2, 0, b"second packet"));
        bytes.truncate(bytes.len() - 3);
        let mut file = CaptureFile::new(Path::new("t.pcap"), bytes.as_slice()).unwrap();
        assert!(file.next_packet().unwrap().is_some());
        let error = file.next_packet().unwrap_err();
        assert_eq!(error.offset, second_at);
        assert!(
            matches!(error.kind, CaptureErrorKind::Truncated { .. }),
            "{error}"
        );
    }

    #[test]
    fn unsupported_link_type_is_reported_at_its_field() {
        let error = read_all(&pcap_header(false, false, 147)).unwrap_err();
        assert_eq!(error.offset, 20);
        assert!(matches!(
            error.kind,
            CaptureErrorKind::UnsupportedLinkType(147)
        ));
    }

    #[test]
    fn impossible_record_length_is_corrupt() {
        let mut bytes = pcap_header(false, false, 1);
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
        let error = read_all(&bytes).unwrap_err();
        assert!(
            matches!(error.kind, CaptureErrorKind::Corrupt { .. }),
            "{error}"
        );
    }

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut padded = body.to_vec();
        padded.resize(body.len().div_ceil(4) * 4, 0);
        let total = (12 + padded.len()) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(&padded);
        b.extend_from_slice(&total.to_le_bytes());
        b
    }

    fn shb() -> Vec<u8> {
        let mut body = PCAPNG_BYTE_ORDER_MAGIC.to_le_bytes().to_vec();
        body.extend_from_slice(&[1, 0, 0, 0]);
        body.extend_from_slice(&(-1i64).to_le_bytes());
        block(PCAPNG_SHB, &body)
    }

    fn idb(linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
        let mut body = linktype.to_le_bytes().to_vec();
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        if let Some(r) = tsresol {
            body.extend_from_slice(&PCAPNG_OPT_TSRESOL.to_le_bytes());
            body.extend_from_slice(&1u16.to_le_bytes());
            body.extend_from_slice(&[r, 0, 0, 0]);
            body.extend_from_slice(&[0, 0, 0, 0]);
        }
        block(PCAPNG_IDB, &body)
    }

    fn epb(interface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut body = interface.to_le_bytes().to_vec();
        body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        block(PCAPNG_EPB, &body)
    }

    #[test]
    fn a_packet_behind_buffered_pcapng_blocks_is_buffered_and_a_cut_one_is_not() {
        let mut bytes = shb();
        bytes.extend(idb(1, None));
        bytes.extend(epb(0, 1, b"first"));
        // Interface statistics and a name resolution block, then a packet.
        bytes.extend(block(5, &[0; 12]));
        bytes.extend(block(4, &[0; 4]));
        let whole = bytes.len();
        bytes.extend(epb(0, 2, b"second"));
        let mut file = CaptureFile::new(Path::new("s.pcapng"), &bytes[..]).unwrap();
        assert!(file.next_packet().unwrap().is_some());
        assert!(file.next_is_buffered());
        let cut = &bytes[..whole + 10];
        let mut file = CaptureFile::new(Path::new("s.pcapng"), cut).unwrap();
        assert!(file.next_packet().unwrap().is_some());
        assert!(
            !file.next_is_buffered(),
            "the packet after the blocks is cut"
        );
    }

    #[test]
    fn pcapng_interfaces_keep_their_link_type_and_resolution() {
        let mut bytes = shb();
        bytes.extend(idb(1, Some(9)));
        bytes.extend(idb(101, None));
        bytes.extend(idb(147, None));
        bytes.extend(epb(0, 1_500_000_000, b"eth"));
        bytes.extend(epb(1, 2_000_000, b"raw"));
        bytes.extend(epb(2, 1, b"skipped"));
        bytes.extend(block(PCAPNG_SPB, &[2, 0, 0, 0, b'x', b'y']));
        let mut file = CaptureFile::new(Path::new("t.pcapng"), bytes.as_slice()).unwrap();
        let mut got = Vec::new();
        while let Some(p) = file.next_packet().unwrap() {
            got.push((p.ts_ns, p.link, p.data.to_vec()));
        }
        assert_eq!(
            got,
            vec![
                (1_500_000_000, LinkType::Ethernet, b"eth".to_vec()),
                (2_000_000_000, LinkType::RawIp, b"raw".to_vec()),
                (2_000_000_000, LinkType::Ethernet, b"xy".to_vec()),
            ]
        );
        assert_eq!(file.skipped_unsupported(), 1);
        let warnings = file.take_warnings();
        assert_eq!(warnings.len(), 1);
        assert!(matches!(
            warnings[0].kind,
            CaptureErrorKind::UnsupportedLinkType(147)
        ));
    }

    #[test]
    fn second_pcapng_section_resets_interfaces() {
        let mut bytes = shb();
        bytes.extend(idb(1, None));
        bytes.extend(epb(0, 1, b"a"));
        bytes.extend(shb());
        bytes.extend(idb(113, None));
        bytes.extend(epb(0, 2, b"b"));
        let packets = read_all(&bytes).unwrap();
        assert_eq!(packets[0].1, LinkType::Ethernet);
        assert_eq!(packets[1].1, LinkType::LinuxSll);
    }

    #[test]
    fn empty_and_garbage_files_are_errors_at_offset_zero() {
        assert!(matches!(
            read_all(&[]).unwrap_err().kind,
            CaptureErrorKind::Empty
        ));
        let error = read_all(b"GIF89a-not-a-capture").unwrap_err();
        assert_eq!(error.offset, 0);
        assert!(matches!(error.kind, CaptureErrorKind::BadMagic(_)));
    }
}
