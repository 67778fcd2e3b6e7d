//! Decode cost per packet over the bundled samples (and, when
//! `MIRADOR_BENCH_PCAP` names one, a capture of your own).

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mirador::capture::{CaptureFile, LinkType};
use mirador::decode::decode;

fn load(path: &Path) -> Vec<(LinkType, u32, Vec<u8>)> {
    let mut file = CaptureFile::open(path).expect("sample capture opens");
    let mut packets = Vec::new();
    while let Ok(Some(p)) = file.next_packet() {
        packets.push((p.link, p.wire_len, p.data.to_vec()));
    }
    packets
}

fn bench_decode(c: &mut Criterion) {
    let mut inputs = vec![
        PathBuf::from("pcaps/basic.pcap"),
        PathBuf::from("pcaps/tunnels.pcapng"),
    ];
    if let Some(extra) = std::env::var_os("MIRADOR_BENCH_PCAP") {
        inputs.push(PathBuf::from(extra));
    }
    let mut group = c.benchmark_group("decode");
    for path in inputs {
        let packets = load(&path);
        group.throughput(Throughput::Elements(packets.len() as u64));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut ok = 0usize;
                for (link, wire_len, data) in &packets {
                    let raw = mirador::capture::RawPacket {
                        ts_ns: 0,
                        link: *link,
                        wire_len: *wire_len,
                        data,
                    };
                    ok += usize::from(decode(std::hint::black_box(raw)).is_ok());
                }
                ok
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
