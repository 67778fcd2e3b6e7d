//! The stream class: new in-order bytes of one TCP direction through the
//! stream rules and the built-in detectors that read streams. Each
//! direction keeps an inspection window in its [`FlowState`]: the stream
//! from its start up to `window_bytes`, then a tail of [`WINDOW_TAIL`]
//! bytes, so that a match split across segments is found; all windows
//! together stay under `window_memcap`. Letting a window go (gap, depth,
//! encryption, flow end) is the flow state's job.

use super::verify::Context;
use super::{Detection, FlowState, Inspection};
use crate::decode::ip_proto;
use crate::detect::builtin::StreamData;
use crate::detect::engine::Engine;
use crate::detect::groups::Class;
use crate::reassembly::StreamId;

/// Bytes of a stream direction kept for rules that look back (absolute
/// offsets from the stream start, relative matches across segments).
pub const DEFAULT_WINDOW_BYTES: usize = 16 << 10;

/// Bytes kept once a window is full.
pub(super) const WINDOW_TAIL: usize = 4 << 10;

impl Inspection {
    /// Runs the stream rules (with `rules`) and the built-in detectors over
    /// new stream data at (time, stream, offset).
    pub(super) fn inspect_stream(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        at: (u64, &StreamId, u64),
        bytes: &[u8],
        rules: bool,
        out: &mut impl FnMut(Detection),
    ) {
        let (ts_ns, stream, offset) = at;
        self.clock_ns = self.clock_ns.max(ts_ns);
        let context = || {
            let ends = (stream.src, stream.dst);
            let to_server = stream.dir == 0;
            Context::between(
                ts_ns,
                stream.flow_id,
                ip_proto::TCP,
                ends,
                stream.carrier,
                to_server,
            )
        };
        // Without rules, no window is kept: only the built-in detectors
        // read the stream.
        if rules {
            self.stream_rules(engine, flow, &mut context(), stream, offset, bytes, out);
        }
        let mut found = Vec::new();
        let data = StreamData {
            ts_ns,
            stream,
            offset,
            bytes,
        };
        self.builtin
            .stream(&mut flow.builtin, &data, &mut |f| found.push(f));
        self.raise_findings(flow, found, context, out);
    }

    /// Adds new stream bytes to the direction's window and runs the stream
    /// rules over it.
    #[allow(clippy::too_many_arguments)]
    fn stream_rules(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        context: &mut Context,
        stream: &StreamId,
        offset: u64,
        bytes: &[u8],
        out: &mut impl FnMut(Detection),
    ) {
        let window_bytes = self.limits.window_bytes;
        let state = &mut *flow;
        let window = &mut state.windows[stream.dir];
        // Windows are counted by the memory they hold, not the bytes in it.
        self.window_memory -= window.capacity();
        if window.is_empty() {
            state.bases[stream.dir] = offset;
        }
        if window.len() + bytes.len() > window_bytes {
            let keep = WINDOW_TAIL.min(window.len());
            let drop = window.len() - keep;
            window.drain(..drop);
            state.bases[stream.dir] += drop as u64;
        }
        let old_len = window.len();
        window.extend_from_slice(bytes);
        let base = state.bases[stream.dir];
        let buffer = std::mem::take(window);
        context.stream_base = Some(base);
        self.collect_stream(engine, flow, stream, bytes);
        let candidates = std::mem::take(&mut self.candidates.list);
        for &rule in &candidates {
            let compiled = &engine.rules[rule as usize];
            let buffer = buffer.as_slice();
            // Positions count from the stream's first byte kept; when that
            // finds nothing new, from the start of the new data (as for a
            // packet), so that `depth` anchors at a message that starts a
            // later segment.
            let run = || {
                let program = &compiled.program;
                program
                    .run_past(buffer, old_len)
                    .or_else(|| {
                        (old_len > 0)
                            .then(|| program.run(&buffer[old_len..]))
                            .flatten()
                            .map(|end| end + old_len)
                    })
                    .map(|end| (end, buffer))
            };
            let checked = (Class::Stream, buffer.len());
            self.verify(engine, compiled, flow, context, checked, run, out);
        }
        self.candidates.list = candidates;
        if self.window_memory + buffer.capacity() > self.limits.window_memcap {
            // Over the cap: this direction keeps no history.
            self.stats.windows_dropped += 1;
            flow.windows[stream.dir] = Vec::new();
        } else {
            self.window_memory += buffer.capacity();
            flow.windows[stream.dir] = buffer;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::detect::inspect::testing::{inspector, record, stream};
    use crate::detect::inspect::{DetectLimits, FlowState};

    #[test]
    fn split_pattern_is_found_once_across_chunks() {
        let mut d = inspector(
            "alert tcp any any -> any any (content:\"SECRET\"; sid:1;)\n",
            DetectLimits {
                window_memcap: 1 << 20,
                ..DetectLimits::default()
            },
        );
        let mut flow = FlowState::default();
        let mut found = Vec::new();
        d.inspect_stream(
            &mut flow,
            1,
            &stream(1),
            0,
            b"xxSEC",
            usize::MAX,
            &mut |x| found.push(x),
        );
        d.inspect_stream(
            &mut flow,
            2,
            &stream(1),
            5,
            b"RETyy",
            usize::MAX,
            &mut |x| found.push(x),
        );
        d.inspect_stream(&mut flow, 3, &stream(1), 10, b"zz", usize::MAX, &mut |x| {
            found.push(x)
        });
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].stream_offset, Some(8));
        assert_eq!(d.end_flow(&mut flow, &record(), &mut |_| {}), 1);
        assert_eq!(d.state.window_memory, 0);
    }

    #[test]
    fn window_memory_stays_under_its_cap_and_drops_are_counted() {
        let rules =
            "alert tcp any any -> any any (content:\"abc\"; content:\"xyz\"; distance:0; sid:1;)\n";
        let mut d = inspector(
            rules,
            DetectLimits {
                window_memcap: 4_096,
                ..DetectLimits::default()
            },
        );
        let mut flows: Vec<FlowState> = (0..100).map(|_| FlowState::default()).collect();
        let mut found = 0;
        for (id, flow) in flows.iter_mut().enumerate() {
            let id = id as u64;
            d.inspect_stream(
                flow,
                1,
                &stream(id),
                0,
                &[b'.'; 100],
                usize::MAX,
                &mut |_| found += 1,
            );
            assert!(d.state.window_memory <= 4_096);
        }
        assert!(d.stats().windows_dropped > 0);
        // A match inside one chunk needs no history.
        d.inspect_stream(
            &mut flows[99],
            2,
            &stream(99),
            100,
            b"abc...xyz",
            usize::MAX,
            &mut |_| found += 1,
        );
        assert_eq!(found, 1);
        for flow in &mut flows {
            d.end_flow(flow, &record(), &mut |_| {});
        }
        assert_eq!(d.state.window_memory, 0);
    }
}
