//! The writer's side of evidence captures: each capture is a pcapng file
//! under `OUT/evidence/date=/hour=/<flow_id>.pcapng`, filled part by part
//! as workers send them ([`crate::evidence`]) and renamed into place when
//! its last part arrived, when more than 256 are open (the oldest), or at
//! shutdown. A capture that fails is logged and counted; the tables go on.
//! One that a killed run left unfinished is kept up to its last whole block
//! at the next start ([`recover_capture`]).
//!
//! pcapng is written here rather than through a crate: a capture needs
//! three block types (section header, one interface with nanosecond
//! timestamps, enhanced packets), and tshark reads the result in the tests.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::journal::in_progress_path;
use super::writer::{io_error, OutputError};
use crate::evidence::{EvidencePacket, EvidencePart};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_TSRESOL: u16 = 9;
/// Timestamps in nanoseconds (10^-9).
const TSRESOL_NANOS: u8 = 9;

/// Captures open at once at most; past it the oldest is completed early.
const MAX_OPEN: usize = 256;

/// Captures being written, by path.
#[derive(Debug)]
pub struct EvidenceFiles {
    root: PathBuf,
    open: HashMap<Arc<str>, (BufWriter<File>, PathBuf, PathBuf)>,
    /// Open captures, oldest first.
    order: VecDeque<Arc<str>>,
    /// Captures completed.
    pub files: u64,
    /// Packets written.
    pub packets: u64,
    /// Parts that could not be written (logged), or that came for a
    /// capture completed early at the cap.
    pub errors: u64,
}

impl EvidenceFiles {
    /// Captures under the output folder `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            open: HashMap::new(),
            order: VecDeque::new(),
            files: 0,
            packets: 0,
            errors: 0,
        }
    }

    /// Writes one part; its last part completes the file. A part that
    /// cannot be written is logged and counted, and its capture dropped;
    /// the tables are not held up by evidence.
    pub fn write(&mut self, part: EvidencePart) {
        if let Err(error) = self.try_write(&part) {
            tracing::error!("evidence capture {}: {error}", part.path);
            self.errors += 1;
            if let Some((_, temp, _)) = self.open.remove(&part.path) {
                let _ = fs::remove_file(temp);
            }
            self.order.retain(|p| *p != part.path);
        }
    }

    fn try_write(&mut self, part: &EvidencePart) -> Result<(), OutputError> {
        if !self.open.contains_key(&part.path) {
            if !part.first {
                // Its start was written and completed early at the cap.
                self.errors += u64::from(!part.packets.is_empty());
                return Ok(());
            }
            while self.open.len() >= MAX_OPEN {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                self.close(&oldest)?;
            }
            let path = self.root.join(&*part.path);
            let dir = path.parent().unwrap_or(&self.root).to_owned();
            fs::create_dir_all(&dir).map_err(io_error(&dir))?;
            let temp = in_progress_path(&path);
            let mut file = BufWriter::new(super::create_file(&temp).map_err(io_error(&temp))?);
            header(&mut file, part.link.linktype()).map_err(io_error(&temp))?;
            self.open.insert(Arc::clone(&part.path), (file, temp, path));
            self.order.push_back(Arc::clone(&part.path));
        }
        let Some((file, temp, _)) = self.open.get_mut(&part.path) else {
            return Ok(());
        };
        for packet in &part.packets {
            enhanced_packet(file, packet).map_err(io_error(temp))?;
        }
        // Each part reaches the kernel: a run killed now leaves it for the
        // next start to keep.
        file.flush().map_err(io_error(temp))?;
        self.packets += part.packets.len() as u64;
        if part.last {
            self.close(&part.path)?;
            self.order.retain(|p| *p != part.path);
        }
        Ok(())
    }

    /// Completes every capture still open.
    pub fn close_all(&mut self) {
        while let Some(path) = self.order.pop_front() {
            if let Err(error) = self.close(&path) {
                tracing::error!("evidence capture {path}: {error}");
                self.errors += 1;
            }
        }
    }

    fn close(&mut self, path: &str) -> Result<(), OutputError> {
        let Some((mut file, temp, path)) = self.open.remove(path) else {
            return Ok(());
        };
        file.flush().map_err(io_error(&temp))?;
        drop(file);
        fs::rename(&temp, &path).map_err(io_error(&path))?;
        self.files += 1;
        Ok(())
    }
}

/// Finishes a capture that a killed run left under its in-progress name
/// `temp`: its whole blocks are kept, a block cut short is dropped, and the
/// file is renamed to `path`. Returns the packets it holds, or `None` when
/// not even its header is whole (the file is left as it was).
pub fn recover_capture(temp: &Path, path: &Path) -> std::io::Result<Option<u64>> {
    let data = fs::read(temp)?;
    let Some((whole, packets)) = whole_blocks(&data) else {
        return Ok(None);
    };
    fs::OpenOptions::new()
        .write(true)
        .open(temp)?
        .set_len(whole)?;
    fs::rename(temp, path)?;
    Ok(Some(packets))
}

/// Bytes of `data` in whole blocks, as this module writes them, and the
/// packets among them; `None` without a section header and an interface.
fn whole_blocks(data: &[u8]) -> Option<(u64, u64)> {
    let word = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (mut at, mut packets, mut interface) = (0, 0, false);
    while let (Some(kind), Some(len)) = (word(at), word(at + 4)) {
        let len = len as usize;
        let whole = len >= 12 && len % 4 == 0 && word(at + len - 4) == Some(len as u32);
        if !whole || (at == 0 && kind != SHB) {
            break;
        }
        interface |= kind == IDB;
        packets += u64::from(kind == EPB);
        at += len;
    }
    interface.then_some((at as u64, packets))
}

/// A section header and one interface of `linktype` with nanosecond
/// timestamps.
fn header(out: &mut impl Write, linktype: u16) -> std::io::Result<()> {
    out.write_all(&SHB.to_le_bytes())?;
    out.write_all(&28u32.to_le_bytes())?;
    out.write_all(&BYTE_ORDER_MAGIC.to_le_bytes())?;
    out.write_all(&1u16.to_le_bytes())?;
    out.write_all(&0u16.to_le_bytes())?;
    out.write_all(&(-1i64).to_le_bytes())?;
    out.write_all(&28u32.to_le_bytes())?;

    out.write_all(&IDB.to_le_bytes())?;
    out.write_all(&32u32.to_le_bytes())?;
    out.write_all(&linktype.to_le_bytes())?;
    out.write_all(&0u16.to_le_bytes())?;
    out.write_all(&0u32.to_le_bytes())?;
    out.write_all(&OPT_TSRESOL.to_le_bytes())?;
    out.write_all(&1u16.to_le_bytes())?;
    out.write_all(&[TSRESOL_NANOS, 0, 0, 0])?;
    out.write_all(&[0u8; 4])?;
    out.write_all(&32u32.to_le_bytes())
}

fn enhanced_packet(out: &mut impl Write, packet: &EvidencePacket) -> std::io::Result<()> {
    let padded = packet.data.len().next_multiple_of(4);
    let total = (32 + padded) as u32;
    out.write_all(&EPB.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(&0u32.to_le_bytes())?;
    out.write_all(&((packet.ts_ns >> 32) as u32).to_le_bytes())?;
    out.write_all(&(packet.ts_ns as u32).to_le_bytes())?;
    out.write_all(&(packet.data.len() as u32).to_le_bytes())?;
    out.write_all(&packet.wire_len.to_le_bytes())?;
    out.write_all(&packet.data)?;
    out.write_all(&[0u8; 3][..padded - packet.data.len()])?;
    out.write_all(&total.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{CaptureFile, LinkType};

    #[test]
    fn captures_read_back_with_their_times_and_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = EvidenceFiles::new(dir.path());
        let packet = |ts_ns, len: usize| EvidencePacket {
            ts_ns,
            wire_len: len as u32 + 10,
            data: vec![0xab; len],
        };
        let part = |packets, first, last| EvidencePart {
            path: "evidence/date=2024-03-01/hour=12/-5.pcapng".into(),
            link: LinkType::Ethernet,
            packets,
            first,
            last,
        };
        files.write(part(
            vec![packet(1_709_294_400_123_456_789, 61)],
            true,
            false,
        ));
        let final_path = dir
            .path()
            .join("evidence/date=2024-03-01/hour=12/-5.pcapng");
        assert!(
            !final_path.exists(),
            "not under its name before it is complete"
        );
        files.write(part(
            vec![packet(1_709_294_401_000_000_001, 64)],
            false,
            true,
        ));
        let mut read = CaptureFile::open(&final_path).unwrap();
        let mut seen = Vec::new();
        while let Some(p) = read.next_packet().unwrap() {
            seen.push((p.ts_ns, p.wire_len, p.data.len(), p.link));
        }
        assert_eq!(
            seen,
            [
                (1_709_294_400_123_456_789, 71, 61, LinkType::Ethernet),
                (1_709_294_401_000_000_001, 74, 64, LinkType::Ethernet),
            ]
        );
        assert_eq!((files.files, files.packets, files.errors), (1, 2, 0));
        // A part after its capture completed is counted, not written.
        files.write(part(vec![packet(1, 1)], false, false));
        assert_eq!(files.errors, 1);
    }

    #[test]
    fn a_capture_cut_short_keeps_its_whole_packets() {
        let dir = tempfile::tempdir().unwrap();
        let packet = |ts_ns| EvidencePacket {
            ts_ns,
            wire_len: 60,
            data: vec![0xab; 57],
        };
        let mut bytes = Vec::new();
        header(&mut bytes, LinkType::Ethernet.linktype()).unwrap();
        for ts in [1, 2, 3] {
            enhanced_packet(&mut bytes, &packet(ts)).unwrap();
        }
        let path = dir.path().join("7.pcapng");
        let temp = in_progress_path(&path);
        // Killed ten bytes into its last block.
        let cut = bytes.len() - (32 + 60) + 10;
        fs::write(&temp, &bytes[..cut]).unwrap();
        assert_eq!(recover_capture(&temp, &path).unwrap(), Some(2));
        assert!(!temp.exists());
        let mut read = CaptureFile::open(&path).unwrap();
        let mut times = Vec::new();
        while let Some(p) = read.next_packet().unwrap() {
            times.push(p.ts_ns);
        }
        assert_eq!(times, [1, 2]);
        // Not even a whole header: nothing to keep.
        fs::write(&temp, &bytes[..20]).unwrap();
        assert_eq!(recover_capture(&temp, &path).unwrap(), None);
        assert!(temp.exists());
    }
}
