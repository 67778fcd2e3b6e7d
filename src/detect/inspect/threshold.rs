//! `threshold` and `detection_filter`: the windows that count a rule's
//! matches per tracked key, and the cap on those shared by flows. Those
//! tracked by flow live in the flow's [`FlowState`]; this module decides
//! only whether a match that passed its rule alerts.
//!
//! Windows run on the worker's clock, the latest packet time it has seen,
//! as Suricata expires its threshold entries by the time it has reached.
//! A capture whose timestamps jump back therefore does not reopen a
//! window that already ended: a match stamped before the window's start
//! counts in the window while the clock is inside it, and opens a new
//! one once the clock has passed its end.

use std::net::IpAddr;

use super::verify::Context;
use super::{FlowState, Inspection};
use crate::detect::engine::CompiledRule;
use crate::detect::rules::{Threshold, ThresholdKind, Track};

/// What a threshold shared by flows counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum TrackKey {
    Rule,
    Addr(IpAddr),
    Pair(IpAddr, IpAddr),
}

/// One rule's threshold: (gid, sid, kind).
pub(super) type ThresholdId = (u32, u32, ThresholdKind);

/// The matches a threshold counted in its current window.
#[derive(Debug, Clone, Copy)]
pub(super) struct ThresholdWindow {
    /// When the window ends, ns.
    end_ns: u64,
    count: u32,
}

impl ThresholdWindow {
    /// A window opened when the clock reads `now_ns`.
    fn new(threshold: &Threshold, now_ns: u64) -> Self {
        let span = (u64::from(threshold.seconds) * 1_000_000_000).max(1);
        Self {
            end_ns: now_ns.saturating_add(span),
            count: 0,
        }
    }

    /// Counts a match when the clock reads `now_ns`; true when it alerts.
    fn tick(&mut self, threshold: &Threshold, now_ns: u64) -> bool {
        if now_ns >= self.end_ns {
            *self = Self::new(threshold, now_ns);
        }
        self.count += 1;
        let count = threshold.count.max(1);
        match threshold.kind {
            ThresholdKind::Limit => self.count <= count,
            ThresholdKind::Threshold => {
                let hit = self.count >= count;
                if hit {
                    self.count = 0;
                }
                hit
            }
            ThresholdKind::Both => self.count == count,
            ThresholdKind::DetectionFilter => self.count > threshold.count,
        }
    }
}

impl Inspection {
    /// Applies `threshold` and `detection_filter`: true when this match alerts.
    pub(super) fn threshold_allows(
        &mut self,
        compiled: &CompiledRule,
        flow: &mut FlowState,
        context: &Context,
    ) -> bool {
        let rule = &compiled.rule;
        let mut allow = true;
        for threshold in [rule.threshold, rule.detection_filter]
            .into_iter()
            .flatten()
        {
            let now = self.clock_ns.max(context.ts_ns);
            let id = (rule.gid, rule.sid, threshold.kind);
            let key = match threshold.track {
                Track::ByRule => TrackKey::Rule,
                Track::BySrc => TrackKey::Addr(context.src),
                Track::ByDst => TrackKey::Addr(context.dst),
                Track::ByBoth => TrackKey::Pair(context.src, context.dst),
                Track::ByFlow => {
                    let windows = &mut flow.thresholds;
                    let at = match windows.iter().position(|(i, _)| *i == id) {
                        Some(at) => at,
                        None => {
                            windows.push((id, ThresholdWindow::new(&threshold, now)));
                            windows.len() - 1
                        }
                    };
                    allow &= windows[at].1.tick(&threshold, now);
                    continue;
                }
            };
            if !self.thresholds.contains_key(&(id, key)) {
                self.make_threshold_room(now);
            }
            let window = self
                .thresholds
                .entry((id, key))
                .or_insert_with(|| ThresholdWindow::new(&threshold, now));
            allow &= window.tick(&threshold, now);
        }
        allow
    }

    /// Keeps the shared thresholds under their cap before one is added:
    /// windows that ended go first, then the half that ends soonest, each
    /// counted as evicted.
    fn make_threshold_room(&mut self, now_ns: u64) {
        let cap = self.limits.threshold_entries.max(1);
        if self.thresholds.len() < cap {
            return;
        }
        let before = self.thresholds.len();
        self.thresholds.retain(|_, w| w.end_ns > now_ns);
        if self.thresholds.len() >= cap {
            let mut ends: Vec<u64> = self.thresholds.values().map(|w| w.end_ns).collect();
            let half = ends.len() / 2;
            let (_, &mut cut, _) = ends.select_nth_unstable(half);
            self.thresholds.retain(|_, w| w.end_ns > cut);
        }
        self.stats.threshold_evictions += (before - self.thresholds.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use crate::detect::inspect::testing::{inspector, record, stream};
    use crate::detect::inspect::{DetectLimits, FlowState};

    #[test]
    fn shared_thresholds_stay_under_their_cap_and_flow_ones_live_in_the_flow() {
        let rules = concat!(
            "alert tcp any any -> any any (content:\"SRC\"; ",
            "threshold: type limit, track by_src, count 1, seconds 60; sid:1;)\n",
            "alert tcp any any -> any any (content:\"FLOW\"; ",
            "threshold: type limit, track by_flow, count 1, seconds 60; sid:2;)\n",
        );
        let mut d = inspector(
            rules,
            DetectLimits {
                threshold_entries: 8,
                ..DetectLimits::default()
            },
        );
        let mut sids = Vec::new();
        for host in 0..20u8 {
            let mut flow = FlowState::default();
            let mut from = stream(u64::from(host));
            from.src = std::net::SocketAddr::from(([10, 1, 0, host], 1000));
            for (i, chunk) in [b"SRC FLOW ", b"SRC FLOW "].iter().enumerate() {
                let offset = (i * chunk.len()) as u64;
                d.inspect_stream(&mut flow, 1, &from, offset, *chunk, usize::MAX, &mut |x| {
                    sids.push(x.sid)
                });
            }
            assert!(d.state.thresholds.len() <= 8);
            assert_eq!(flow.thresholds.len(), 1);
            d.end_flow(&mut flow, &record(), &mut |_| {});
        }
        // One alert of each per source and per flow, whatever was evicted.
        assert_eq!(sids.iter().filter(|&&s| s == 1).count(), 20);
        assert_eq!(sids.iter().filter(|&&s| s == 2).count(), 20);
        assert!(d.stats().threshold_evictions >= 12);
    }

    #[test]
    fn a_window_the_clock_has_passed_is_over_for_matches_stamped_inside_it() {
        let rules = concat!(
            "alert tcp any any -> any any (content:\"SRC\"; ",
            "threshold: type limit, track by_src, count 1, seconds 60; sid:1;)\n",
        );
        let mut d = inspector(rules, DetectLimits::default());
        let (host, other) = (stream(1), stream(2));
        let mut flows = [FlowState::default(), FlowState::default()];
        let mut offsets = [0u64; 2];
        let mut alerts = Vec::new();
        // (flow, seconds, bytes): the second flow moves the clock alone.
        let steps: [(usize, u64, &[u8]); 5] = [
            (0, 100, b"SRC "),
            (0, 130, b"SRC "),
            (1, 1_000, b"nothing "),
            (0, 120, b"SRC "),
            (0, 125, b"SRC "),
        ];
        for (i, (at, secs, bytes)) in steps.into_iter().enumerate() {
            let id = if at == 0 { &host } else { &other };
            let ts = secs * 1_000_000_000;
            d.inspect_stream(
                &mut flows[at],
                ts,
                id,
                offsets[at],
                bytes,
                usize::MAX,
                &mut |_| alerts.push(i),
            );
            offsets[at] += bytes.len() as u64;
        }
        // The match stamped 120 s comes when the clock reads 1,000 s, past
        // the window opened at 100 s: it opens a new one, which holds 125 s.
        assert_eq!(alerts, [0, 3]);
    }
}
