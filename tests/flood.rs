//! Floods and evasion that try to exhaust memory: the flow table and the
//! reassembly buffers stay within their caps, what is given up is counted,
//! and every flow still gets its record.

use etherparse::PacketBuilder;
use mirador::capture::{LinkType, RawPacket};
use mirador::config::Config;
use mirador::flow::{EndReason, FlowRecord};
use mirador::worker::Worker;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

fn tcp(src: [u8; 4], sport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, [10, 9, 9, 9], 64)
        .tcp(sport, 80, seq, 65_535);
    let builder = if flags & SYN != 0 {
        builder.syn()
    } else {
        builder
    };
    let builder = if flags & ACK != 0 {
        builder.ack(ack)
    } else {
        builder
    };
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut frame, payload).unwrap();
    frame
}

fn feed(worker: &mut Worker<Vec<FlowRecord>>, ts_ns: u64, frame: &[u8]) {
    worker.process(std::iter::once(RawPacket {
        ts_ns,
        link: LinkType::Ethernet,
        wire_len: frame.len() as u32,
        data: frame,
    }));
}

#[test]
fn half_open_flood_evicts_the_oldest_and_writes_every_record() {
    let mut config = Config::default();
    config.flow.max_flows = 1_000;
    let mut worker = Worker::new(0, config.worker(), 1, Vec::new());
    let connections = 20_000u32;
    for i in 0..connections {
        let src = [172, 16, (i >> 8) as u8, i as u8];
        let frame = tcp(src, 1_024 + (i % 60_000) as u16, i, 0, SYN, b"");
        feed(&mut worker, 1_000_000 * u64::from(i), &frame);
        assert!(worker.active_flows() <= 1_000);
    }
    let finished = worker.finish();
    let (records, stats) = (finished.sink, finished.flows);
    assert_eq!(stats.created, u64::from(connections));
    assert_eq!(
        records.len() as u64,
        stats.created,
        "every flow has its record"
    );
    assert!(stats.peak_active <= 1_000);
    let evicted = records
        .iter()
        .filter(|r| r.end_reason == EndReason::Evicted)
        .count();
    assert_eq!(evicted, (connections - 1_000) as usize);
    assert_eq!(stats.records_for(EndReason::Evicted), evicted as u64);
}

#[test]
fn out_of_order_flood_stays_within_the_reassembly_caps() {
    let mut config = Config::default();
    config.reassembly.stream_memcap = 64 << 10;
    config.reassembly.worker_memcap = 1 << 20;
    let mut worker = Worker::new(0, config.worker(), 1, Vec::new());
    let segment = vec![b'x'; 1_000];
    let mut ts = 0u64;
    let flows = 40u16;
    for f in 0..flows {
        let src = [172, 17, 0, f as u8];
        let (sport, isn, server_isn) = (2_000 + f, 1_000u32, 9_000u32);
        feed(&mut worker, ts, &tcp(src, sport, isn, 0, SYN, b""));
        ts += 1_000;
        // Every segment lands past a hole of 1 byte that is never filled.
        for n in 0..500u32 {
            let seq = isn + 2 + n * 1_000;
            feed(
                &mut worker,
                ts,
                &tcp(src, sport, seq, server_isn + 1, ACK, &segment),
            );
            ts += 1_000;
            let held = worker.reassembly_memory().used;
            assert!(held <= (1 << 20) + 1_000, "held {held} bytes");
        }
    }
    assert!(worker.reassembly_memory().peak <= (1 << 20) + 1_000);
    let finished = worker.finish();
    let (records, stats) = (finished.sink, finished.flows);
    assert_eq!(records.len() as u64, stats.created);
    for record in &records {
        assert!(
            record.reassembly.gaps >= 1,
            "the hole became a gap: {:?}",
            record.reassembly
        );
        assert!(record.reassembly.out_of_order >= 1);
        assert!(
            record.reassembly.memcap_flushes >= 1,
            "the cap was hit and counted"
        );
    }
}
