use super::*;

/// Collects what a stream delivers: bytes by offset, and gaps.
#[derive(Default)]
struct Collect {
    bytes: Vec<u8>,
    gaps: Vec<(u64, u64)>,
}

impl StreamSink for Collect {
    fn stream_data(&mut self, _: &StreamId, offset: u64, bytes: &[u8]) {
        assert_eq!(
            offset,
            self.bytes.len() as u64,
            "data is delivered in order"
        );
        self.bytes.extend_from_slice(bytes);
    }

    fn stream_gap(&mut self, _: &StreamId, offset: u64, len: u64) {
        assert_eq!(offset, self.bytes.len() as u64);
        self.gaps.push((offset, len));
        self.bytes.extend(std::iter::repeat_n(0, len as usize));
    }
}

fn id() -> StreamId {
    StreamId {
        flow_id: 1,
        dir: 0,
        src: "10.0.0.1:1000".parse().unwrap(),
        dst: "10.0.0.2:80".parse().unwrap(),
        carrier: Default::default(),
    }
}

struct Harness {
    stream: Stream,
    config: ReassemblyConfig,
    budget: ReassemblyBudget,
    out: Collect,
}

impl Harness {
    fn new(isn: u32, config: ReassemblyConfig) -> Self {
        let mut stream = Stream::default();
        stream.anchor_syn(isn);
        stream.set_policy(config.policy);
        Self {
            stream,
            config,
            budget: ReassemblyBudget::default(),
            out: Collect::default(),
        }
    }

    fn send(&mut self, seq: u32, data: &[u8]) {
        let (config, budget, out) = (&self.config, &mut self.budget, &mut self.out);
        let segment = Segment {
            seq,
            payload: data,
            fin: false,
        };
        self.stream.segment(&id(), segment, config, budget, out);
    }

    fn ack(&mut self, ack: u32) {
        let (config, budget, out) = (&self.config, &mut self.budget, &mut self.out);
        self.stream.acknowledged(&id(), ack, config, budget, out);
    }

    fn finish(&mut self) {
        let (config, budget, out) = (&self.config, &mut self.budget, &mut self.out);
        self.stream.flush(&id(), config, budget, out);
    }
}

#[test]
fn in_order_segments_pass_straight_through() {
    let mut h = Harness::new(1000, ReassemblyConfig::default());
    h.send(1001, b"GET / ");
    h.send(1007, b"HTTP/1.1");
    assert_eq!(h.out.bytes, b"GET / HTTP/1.1");
    assert_eq!(h.stream.held_bytes(), 0);
    assert_eq!(*h.stream.counters(), StreamCounters::default());
}

#[test]
fn out_of_order_segment_waits_for_the_hole() {
    let mut h = Harness::new(0, ReassemblyConfig::default());
    h.send(7, b"world");
    assert!(h.out.bytes.is_empty());
    assert_eq!(h.budget.used, 5);
    h.send(1, b"hello ");
    assert_eq!(h.out.bytes, b"hello world");
    assert_eq!(h.stream.counters().out_of_order, 1);
    assert_eq!(h.budget.used, 0);
}

#[test]
fn retransmission_is_counted_and_not_delivered_twice() {
    let mut h = Harness::new(0, ReassemblyConfig::default());
    h.send(1, b"abcdef");
    h.send(1, b"abcdef");
    h.send(3, b"cdefgh");
    assert_eq!(h.out.bytes, b"abcdefgh");
    assert_eq!(h.stream.counters().retransmits, 1);
    assert_eq!(h.stream.counters().overlaps, 1);
}

#[test]
fn overlapping_segment_keeps_first_bytes_by_default() {
    let mut h = Harness::new(0, ReassemblyConfig::default());
    h.send(5, b"AAAA");
    h.send(5, b"BBBBBB");
    h.send(1, b"0123");
    assert_eq!(h.out.bytes, b"0123AAAABB");
    assert_eq!(h.stream.counters().conflicting_overlaps, 1);
}

#[test]
fn overlapping_segment_keeps_last_bytes_under_the_last_policy() {
    let config = ReassemblyConfig {
        policy: OverlapPolicy::Last,
        ..ReassemblyConfig::default()
    };
    let mut h = Harness::new(0, config);
    h.send(5, b"AAAAAAAA");
    h.send(7, b"BB");
    h.send(1, b"0123");
    assert_eq!(h.out.bytes, b"0123AABBAAAA");
    assert_eq!(h.stream.counters().conflicting_overlaps, 1);
}

#[test]
fn acknowledged_bytes_never_seen_become_a_gap() {
    let mut h = Harness::new(0, ReassemblyConfig::default());
    h.send(1, b"abc");
    h.send(11, b"xyz");
    h.ack(14);
    assert_eq!(h.out.gaps, [(3, 7)]);
    assert_eq!(&h.out.bytes[10..], b"xyz");
    assert_eq!(h.stream.counters().gaps, 1);
    assert_eq!(h.stream.counters().gap_bytes, 7);
}

#[test]
fn fin_sequence_number_is_not_a_gap() {
    let mut h = Harness::new(0, ReassemblyConfig::default());
    let (config, budget, out) = (&h.config, &mut h.budget, &mut h.out);
    let segment = Segment {
        seq: 1,
        payload: b"bye",
        fin: true,
    };
    h.stream.segment(&id(), segment, config, budget, out);
    h.ack(5);
    assert!(h.out.gaps.is_empty());
}

#[test]
fn sequence_numbers_wrap() {
    let mut h = Harness::new(u32::MAX - 2, ReassemblyConfig::default());
    h.send(u32::MAX - 1, b"ab");
    h.send(2, b"ef");
    h.send(0, b"cd");
    assert_eq!(h.out.bytes, b"abcdef");
    assert!(h.out.gaps.is_empty());
}

#[test]
fn depth_stops_delivery() {
    let config = ReassemblyConfig {
        depth: 5,
        ..ReassemblyConfig::default()
    };
    let mut h = Harness::new(0, config);
    h.send(1, b"abc");
    h.send(4, b"defgh");
    h.send(9, b"ijk");
    assert_eq!(h.out.bytes, b"abcde");
    assert!(h.stream.counters().depth_reached);
}

#[test]
fn stream_memcap_skips_to_held_data() {
    let config = ReassemblyConfig {
        stream_memcap: 8,
        ..ReassemblyConfig::default()
    };
    let mut h = Harness::new(0, config);
    h.send(11, b"abcde");
    h.send(21, b"fghij");
    assert_eq!(h.out.gaps, [(0, 10)]);
    assert_eq!(&h.out.bytes[10..], b"abcde");
    assert_eq!(h.stream.counters().memcap_flushes, 1);
    assert_eq!(h.budget.used, 5);
}

#[test]
fn flush_delivers_held_data_after_gaps() {
    let mut h = Harness::new(0, ReassemblyConfig::default());
    h.send(1, b"a");
    h.send(4, b"d");
    h.finish();
    assert_eq!(h.out.gaps, [(1, 2)]);
    assert_eq!(h.out.bytes, b"a\0\0d");
    assert_eq!(h.budget.used, 0);
}

/// A small xorshift generator, so the model test needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn shuffled_duplicated_segments_reassemble_to_the_original() {
    for seed in 1..300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let len = 1 + rng.below(3_000) as usize;
        let original: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let isn = rng.next() as u32;
        let mut segments = Vec::new();
        let mut at = 0;
        while at < len {
            let size = (1 + rng.below(400) as usize).min(len - at);
            segments.push((at, size));
            if rng.below(4) == 0 {
                // An overlapping re-send of part of the stream.
                let start = at.saturating_sub(rng.below(50) as usize);
                segments.push((start, (size + 30).min(len - start)));
            }
            at += size;
        }
        for i in (1..segments.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            segments.swap(i, j);
        }
        let mut h = Harness::new(isn, ReassemblyConfig::default());
        for (start, size) in segments {
            let seq = isn.wrapping_add(1).wrapping_add(start as u32);
            h.send(seq, &original[start..start + size]);
        }
        h.finish();
        assert_eq!(h.out.bytes, original, "seed {seed}");
        assert!(h.out.gaps.is_empty(), "seed {seed}");
        assert_eq!(h.stream.counters().conflicting_overlaps, 0);
        assert_eq!(h.budget.used, 0);
    }
}

fn acked(policy: OverlapPolicy) -> Harness {
    Harness::new(
        0,
        ReassemblyConfig {
            policy,
            inline: false,
            ..ReassemblyConfig::default()
        },
    )
}

#[test]
fn unacknowledged_bytes_wait_for_the_receiver_outside_inline_mode() {
    let mut h = acked(OverlapPolicy::First);
    h.send(1, b"GOOD");
    assert!(h.out.bytes.is_empty());
    h.ack(3);
    assert_eq!(h.out.bytes, b"GO");
    h.ack(5);
    assert_eq!(h.out.bytes, b"GOOD");
    assert_eq!(h.stream.counters().out_of_order, 0);
}

#[test]
fn a_segment_sent_twice_is_decided_by_the_receivers_policy() {
    // Suricata's eve-overlap-payload tests: "GOOD" then "EVIL" at the same
    // sequence number, acknowledged after both.
    for (policy, kept) in [
        (OverlapPolicy::First, b"GOOD"),
        (OverlapPolicy::Bsd, b"GOOD"),
        (OverlapPolicy::Windows, b"GOOD"),
        (OverlapPolicy::Linux, b"GOOD"),
        (OverlapPolicy::OldLinux, b"EVIL"),
        (OverlapPolicy::Solaris, b"EVIL"),
        (OverlapPolicy::Last, b"EVIL"),
    ] {
        let mut h = acked(policy);
        h.send(1, b"GOOD");
        h.send(1, b"EVIL");
        h.ack(5);
        assert_eq!(h.out.bytes, kept, "{policy:?}");
        assert_eq!(h.stream.counters().conflicting_overlaps, 1);
    }
}

#[test]
fn target_policies_decide_by_where_the_segments_start_and_end() {
    // Held "AAAA" at 2..6; the new segment is "bbbbbb" at 0..6 (starts
    // before, ends with it), then "cccccc" at 4..10 (starts after, ends past).
    let cases = [
        (OverlapPolicy::Bsd, b"bbbbbbcccc"),
        (OverlapPolicy::Linux, b"bbbbbbcccc"),
        (OverlapPolicy::Solaris, b"bbbbcccccc"),
        (OverlapPolicy::First, b"bbAAAAcccc"),
        (OverlapPolicy::Vista, b"bbAAAAcccc"),
        (OverlapPolicy::Last, b"bbbbcccccc"),
    ];
    for (policy, kept) in cases {
        let mut h = acked(policy);
        h.send(3, b"AAAA");
        h.send(1, b"bbbbbb");
        h.send(5, b"cccccc");
        h.ack(11);
        assert_eq!(h.out.bytes, kept, "{policy:?}");
    }
}

#[test]
fn the_longest_host_prefix_names_the_policy() {
    let mut hosts = HostPolicies::default();
    hosts.add("0.0.0.0/0", OverlapPolicy::Windows).unwrap();
    hosts.add("10.0.0.0/8", OverlapPolicy::Linux).unwrap();
    hosts.add("10.1.2.3", OverlapPolicy::OldLinux).unwrap();
    hosts.add("2001:db8::/32", OverlapPolicy::Bsd).unwrap();
    let of = |a: &str| hosts.policy_of(a.parse().unwrap());
    assert_eq!(of("192.0.2.1"), Some(OverlapPolicy::Windows));
    assert_eq!(of("10.9.9.9"), Some(OverlapPolicy::Linux));
    assert_eq!(of("10.1.2.3"), Some(OverlapPolicy::OldLinux));
    assert_eq!(of("2001:db8::1"), Some(OverlapPolicy::Bsd));
    assert_eq!(of("2001:db9::1"), None);
    assert!(hosts.add("10.0.0.0/33", OverlapPolicy::Bsd).is_err());
    assert!(hosts.add("host", OverlapPolicy::Bsd).is_err());
}
