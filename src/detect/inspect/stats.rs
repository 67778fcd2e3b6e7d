//! Counters of one worker's inspection: [`DetectStats`] for the whole of
//! it and [`ScanStats`] for each class of Hyperscan database, and how the
//! counters of several workers add up. Who bumps a counter is the code it
//! counts; this module owns only the types and their merge.

/// Counters of one detector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectStats {
    /// Packet payloads inspected.
    pub packets: u64,
    /// Stream bytes inspected.
    pub stream_bytes: u64,
    /// Application events inspected (HTTP transaction stages, DNS
    /// questions, TLS hellos).
    pub app_events: u64,
    /// Rules verified after their prefilter matched (or having none).
    pub verified: u64,
    /// Detections emitted.
    pub detections: u64,
    /// Matches a threshold or detection filter kept quiet.
    pub suppressed: u64,
    /// Stream windows given up because the windows' memory cap was reached
    /// (later matches in those directions see only new data).
    pub windows_dropped: u64,
    /// Matches past the alert limit of one inspection, not written
    /// (Suricata's `alert_queue_overflow`).
    pub alert_overflow: u64,
    /// Entries the built-in detectors' cross-flow tables (per host, per
    /// host pair) evicted at their caps.
    pub detector_evictions: u64,
    /// Threshold windows dropped at the `threshold_entries` cap.
    pub threshold_evictions: u64,
    /// Pcre runs given up at PCRE2's match or depth limit (as no match).
    pub pcre_limit_hits: u64,
    /// TLS flows whose encrypted part began.
    pub encrypted_flows: u64,
    /// Stream bytes of encrypted parts that rules did not read.
    pub encrypted_bytes: u64,
    /// Detections by threat family.
    pub by_family: std::collections::BTreeMap<String, u64>,
    /// Prefilter and verification counters per class of database
    /// ([`Class::ALL`](crate::detect::groups::Class::ALL) order).
    pub scan: [ScanStats; 6],
}

impl DetectStats {
    /// Adds another detector's counters.
    pub fn merge(&mut self, other: &DetectStats) {
        self.packets += other.packets;
        self.stream_bytes += other.stream_bytes;
        self.app_events += other.app_events;
        self.verified += other.verified;
        self.detections += other.detections;
        self.suppressed += other.suppressed;
        self.windows_dropped += other.windows_dropped;
        self.alert_overflow += other.alert_overflow;
        self.detector_evictions += other.detector_evictions;
        self.pcre_limit_hits += other.pcre_limit_hits;
        self.threshold_evictions += other.threshold_evictions;
        self.encrypted_flows += other.encrypted_flows;
        self.encrypted_bytes += other.encrypted_bytes;
        for (family, count) in &other.by_family {
            *self.by_family.entry(family.clone()).or_default() += count;
        }
        for (mine, theirs) in self.scan.iter_mut().zip(&other.scan) {
            mine.merge(theirs);
        }
    }
}

/// What the prefilter of one class of database did, and what it let
/// through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Buffers scanned.
    pub scans: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// Pattern matches reported.
    pub matches: u64,
    /// Rules handed on to be checked (matched, or without a pattern).
    pub candidates: u64,
    /// Candidates whose header, flow or flowbit conditions failed.
    pub header_rejects: u64,
    /// Candidates whose matches were run over the buffer.
    pub verified: u64,
    /// Bytes of the buffers those ran over.
    pub verified_bytes: u64,
}

impl std::fmt::Display for ScanStats {
    /// The counters as the summary and the scan bench print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} scans of {} bytes, {} matches, {} candidates, {} header rejects, {} verified over {} bytes",
            self.scans,
            self.bytes,
            self.matches,
            self.candidates,
            self.header_rejects,
            self.verified,
            self.verified_bytes
        )
    }
}

impl ScanStats {
    fn merge(&mut self, other: &ScanStats) {
        self.scans += other.scans;
        self.bytes += other.bytes;
        self.matches += other.matches;
        self.candidates += other.candidates;
        self.header_rejects += other.header_rejects;
        self.verified += other.verified;
        self.verified_bytes += other.verified_bytes;
    }
}
