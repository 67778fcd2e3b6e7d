//! Application-layer parsers over reassembled TCP streams.
//!
//! [`AppLayer`] is one worker's parser state, keyed by flow: it takes each
//! direction's in-order bytes and gaps, and when the flow's record is
//! written it hands over what the parsers learnt (the application protocol
//! and its summary fields). Flows that turn out not to speak a known
//! protocol keep no state. Parsers live one per module: [`http`].

pub mod http;

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

pub use http::{HttpFlow, HttpSummary};

/// One worker's application-layer state.
#[derive(Debug, Default)]
pub struct AppLayer {
    flows: HashMap<u64, HttpFlow, FxBuildHasher>,
    /// Flow ids whose protocol is settled as not HTTP, until they end.
    settled: HashMap<u64, (), FxBuildHasher>,
}

impl AppLayer {
    /// In-order bytes of direction `dir` (0: from the initiator) of a flow.
    pub fn data(&mut self, flow_id: u64, dir: usize, bytes: &[u8]) {
        if self.settled.contains_key(&flow_id) {
            return;
        }
        let flow = self.flows.entry(flow_id).or_default();
        flow.data(dir, bytes);
        if flow.is_done() && !flow.summary().is_http() {
            self.flows.remove(&flow_id);
            self.settled.insert(flow_id, ());
        }
    }

    /// Bytes of a direction were lost.
    pub fn gap(&mut self, flow_id: u64, dir: usize) {
        if let Some(flow) = self.flows.get_mut(&flow_id) {
            flow.gap(dir);
        }
    }

    /// What is known of a flow so far (for an interim record).
    pub fn summary(&self, flow_id: u64) -> Option<&HttpSummary> {
        self.flows
            .get(&flow_id)
            .map(HttpFlow::summary)
            .filter(|s| s.is_http())
    }

    /// Forgets a flow, returning what was known of it.
    pub fn end_flow(&mut self, flow_id: u64) -> Option<HttpSummary> {
        self.settled.remove(&flow_id);
        self.flows
            .remove(&flow_id)
            .map(|f| f.summary().clone())
            .filter(HttpSummary::is_http)
    }
}
