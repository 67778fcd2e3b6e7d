//! Reassembled TCP streams against tcpflow, an independent reassembler: for
//! every direction of every connection in the sample captures, the bytes the
//! flow table delivers (gaps as zeros, as tcpflow leaves holes in its files)
//! equal the file tcpflow writes.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;

use mirador::capture::CaptureFile;
use mirador::config::Config;
use mirador::flow::{FlowRecord, RecordSink};
use mirador::reassembly::{StreamId, StreamSink};
use mirador::worker::Worker;

#[derive(Default)]
struct Streams {
    bytes: BTreeMap<String, Vec<u8>>,
    records: Vec<FlowRecord>,
    /// tcpflow's file name of each (flow, direction): a port pair's later
    /// connections get `c1`, `c2` ... after the name.
    names: std::collections::HashMap<(u64, usize), String>,
    seen: std::collections::HashMap<String, usize>,
}

impl Streams {
    fn buffer(&mut self, stream: &StreamId) -> &mut Vec<u8> {
        let name = match self.names.get(&(stream.flow_id, stream.dir)) {
            Some(name) => name.clone(),
            None => {
                let base = tcpflow_name(stream.src, stream.dst);
                let count = self.seen.entry(base.clone()).or_default();
                let name = match *count {
                    0 => base,
                    n => format!("{base}c{n}"),
                };
                *count += 1;
                self.names
                    .insert((stream.flow_id, stream.dir), name.clone());
                name
            }
        };
        self.bytes.entry(name).or_default()
    }
}

/// tcpflow's file name for a direction: zero-padded octets and port.
fn tcpflow_name(src: SocketAddr, dst: SocketAddr) -> String {
    let side = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => {
            let o = ip.octets();
            format!(
                "{:03}.{:03}.{:03}.{:03}.{:05}",
                o[0],
                o[1],
                o[2],
                o[3],
                a.port()
            )
        }
        IpAddr::V6(ip) => format!("{ip}.{:05}", a.port()),
    };
    format!("{}-{}", side(src), side(dst))
}

impl StreamSink for Streams {
    fn stream_data(&mut self, stream: &StreamId, offset: u64, bytes: &[u8]) {
        let buf = self.buffer(stream);
        assert_eq!(buf.len() as u64, offset, "in order");
        buf.extend_from_slice(bytes);
    }

    fn stream_gap(&mut self, stream: &StreamId, offset: u64, len: u64) {
        let buf = self.buffer(stream);
        assert_eq!(buf.len() as u64, offset, "in order");
        buf.resize(buf.len() + len as usize, 0);
    }
}

impl RecordSink for Streams {
    fn flow_record(&mut self, record: FlowRecord) {
        self.records.push(record);
    }
}

fn reassemble(pcap: &Path, config: &Config) -> Streams {
    let data = std::fs::read(pcap).unwrap();
    let mut file = CaptureFile::new(pcap, &data[..]).unwrap();
    let mut worker = Worker::new(0, config.worker(), 0, Streams::default());
    while let Ok(Some(packet)) = file.next_packet() {
        worker.process(std::iter::once(packet));
    }
    worker.finish().sink
}

fn tcpflow(pcap: &Path) -> BTreeMap<String, Vec<u8>> {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("tcpflow")
        .arg("-r")
        .arg(pcap)
        .arg("-o")
        .arg(out.path())
        .output()
        .expect("tcpflow is installed (scripts/setup.sh)");
    assert!(status.status.success(), "{status:?}");
    std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_none_or(|x| x != "xml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn streams_equal_tcpflow_output() {
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/stream.pcap");
    let ours = reassemble(&pcap, &Config::default());
    let theirs = tcpflow(&pcap);
    assert_eq!(theirs.len(), 3, "{:?}", theirs.keys());
    assert_eq!(ours.bytes, theirs);
    let counters = |port: u16| {
        ours.records
            .iter()
            .find(|r| r.src_port == port)
            .map(|r| r.reassembly)
            .unwrap()
    };
    let wrapped = counters(43_000);
    assert_eq!(wrapped.out_of_order, 2);
    assert_eq!(wrapped.retransmits, 2);
    assert_eq!(wrapped.gaps, 0);
    let lossy = counters(43_001);
    assert_eq!((lossy.gaps, lossy.gap_bytes), (1, 10));
}

/// tcpflow writes every segment at its offset, so the last bytes win an
/// overlap, even over bytes already in order (here: before the receiver
/// acknowledged them), and it has no depth: compare with the same settings.
fn like_tcpflow() -> Config {
    let mut config = Config::default();
    config.reassembly.depth = 0;
    config.reassembly.policy = mirador::reassembly::OverlapPolicy::Last;
    config.reassembly.inline = false;
    config
}

#[test]
fn every_sample_stream_equals_tcpflow_output() {
    for name in ["basic.pcap", "evasion.pcap", "stream.pcap"] {
        let pcap = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("pcaps")
            .join(name);
        let ours = reassemble(&pcap, &like_tcpflow());
        let theirs = tcpflow(&pcap);
        assert!(!theirs.is_empty(), "{name}");
        // tcpflow does not decode MPLS, so the labelled session of
        // basic.pcap (172.16.0.5:40008) is ours alone.
        let extra: Vec<&String> = ours
            .bytes
            .keys()
            .filter(|k| !theirs.contains_key(*k))
            .collect();
        assert!(
            extra.iter().all(|k| k.contains("172.016.000.00")),
            "{name}: {extra:?}"
        );
        for (file, bytes) in &theirs {
            let mine = &ours.bytes[file];
            assert!(
                mine == bytes,
                "{name}: {file} differs ({} vs {} bytes)",
                mine.len(),
                bytes.len()
            );
        }
    }
}
