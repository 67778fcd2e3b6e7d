//! Flow table cost per packet: inserting new flows, and updating flows that
//! exist (the common case), at a table size that does not fit in cache.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mirador::decode::{ip_proto, DecodedPacket, PacketMeta, Transport, Vlans};
use mirador::flow::{FlowConfig, FlowRecord, FlowTable, RecordSink};
use mirador::reassembly::ReassemblyConfig;

const FLOWS: u32 = 100_000;

struct Discard;

impl mirador::reassembly::StreamSink for Discard {}

impl RecordSink for Discard {
    fn flow_record(&mut self, record: FlowRecord) {
        std::hint::black_box(record);
    }
}

fn packets() -> Vec<DecodedPacket<'static>> {
    (0..FLOWS)
        .map(|i| DecodedPacket {
            meta: PacketMeta {
                ts_ns: 1_000_000_000 + u64::from(i),
                wire_len: 100,
                vlans: Vlans::default(),
                tunnel: None,
            },
            src: std::net::Ipv4Addr::from(0x0a00_0000 | i).into(),
            dst: std::net::Ipv4Addr::new(192, 0, 2, 1).into(),
            proto: ip_proto::UDP,
            transport: Transport::Udp {
                src_port: (i % 50_000) as u16 + 1024,
                dst_port: 53,
            },
            payload_len: 40,
            payload: &[],
            segment: &[],
        })
        .collect()
}

fn bench_flow_table(c: &mut Criterion) {
    let packets = packets();
    let mut group = c.benchmark_group("flow_table");
    group.throughput(Throughput::Elements(packets.len() as u64));
    group.bench_function("insert", |b| {
        b.iter_batched(
            || FlowTable::new(FlowConfig::default(), ReassemblyConfig::default(), 0, 7),
            |mut table| {
                for p in &packets {
                    table.track(p, &mut Discard);
                }
                table
            },
            BatchSize::LargeInput,
        )
    });
    let mut table = FlowTable::new(FlowConfig::default(), ReassemblyConfig::default(), 0, 7);
    for p in &packets {
        table.track(p, &mut Discard);
    }
    group.bench_function("update", |b| {
        b.iter(|| {
            for p in &packets {
                table.track(p, &mut Discard);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_flow_table);
criterion_main!(benches);
