//! Mining sessions over Stratum (v1) and XMRig's JSON-RPC: a client line
//! calling `mining.subscribe`, `mining.authorize` or `login` makes the
//! session a mining one, reported once with what identifies the miner
//! (worker or wallet, agent, method).

use std::collections::HashSet;

use rustc_hash::FxBuildHasher;

use crate::reassembly::StreamId;

use super::{excerpt, Finding};

/// Client bytes of a session read at most for its first calls.
const MAX_BYTES: usize = 4 << 10;
/// Client lines read at most for a mining call.
const MAX_LINES: usize = 4;

/// Stratum state of one worker.
#[derive(Debug, Default)]
pub struct Stratum {
    /// Flows already reported or given up.
    settled: HashSet<u64, FxBuildHasher>,
    /// Partial first lines by flow.
    pending: std::collections::HashMap<u64, Vec<u8>, FxBuildHasher>,
}

impl Stratum {
    /// Client bytes of a TCP flow.
    pub fn stream(&mut self, stream: &StreamId, bytes: &[u8], out: &mut impl FnMut(Finding)) {
        if stream.dir != 0 || self.settled.contains(&stream.flow_id) {
            return;
        }
        let pending = self.pending.entry(stream.flow_id).or_default();
        if pending.is_empty() && bytes.first() != Some(&b'{') {
            self.pending.remove(&stream.flow_id);
            self.settled.insert(stream.flow_id);
            return;
        }
        let room = MAX_BYTES.saturating_sub(pending.len());
        pending.extend_from_slice(&bytes[..bytes.len().min(room)]);
        let complete = pending
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let lines: Vec<&[u8]> = pending[..complete]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let calls: Vec<Call> = lines.iter().filter_map(|line| call(line)).collect();
        // The login or authorization names the miner; a subscription alone
        // is reported once no more lines will be read.
        let named = calls.iter().find(|c| c.names_miner);
        let given_up = pending.len() >= MAX_BYTES || lines.len() >= MAX_LINES;
        let report = named.or_else(|| calls.first().filter(|_| given_up));
        if let Some(found) = report {
            let mut metadata = found.metadata.clone();
            if let Some(agent) = calls.iter().find_map(|c| c.agent.as_deref()) {
                if !metadata.contains(", agent ") {
                    metadata.push_str(&format!(", agent {agent}"));
                }
            }
            out(Finding {
                sid: 9_200_201,
                msg: "MIRADOR MINING Stratum/JSON-RPC mining session",
                family: "mining",
                classtype: "coin-mining",
                priority: 2,
                metadata,
                excerpt: excerpt(pending),
            });
        }
        if report.is_some() || given_up {
            self.pending.remove(&stream.flow_id);
            self.settled.insert(stream.flow_id);
        }
    }

    /// Forgets a flow.
    pub fn end_flow(&mut self, flow_id: u64) {
        self.settled.remove(&flow_id);
        self.pending.remove(&flow_id);
    }
}

/// A mining call read from a client line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    /// `key value` pairs.
    metadata: String,
    /// The miner software, when the call says.
    agent: Option<String>,
    /// It names the miner (wallet or worker).
    names_miner: bool,
}

/// The mining call `line` makes, when it makes one.
fn call(line: &[u8]) -> Option<Call> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    let method = value.get("method")?.as_str()?;
    let params = value.get("params");
    let first = || params.and_then(|p| p.get(0)).and_then(|v| v.as_str());
    match method {
        "mining.subscribe" => Some(Call {
            metadata: "tool stratum, method mining.subscribe".into(),
            agent: first().map(str::to_owned),
            names_miner: false,
        }),
        "mining.authorize" => {
            let worker = first().unwrap_or("");
            let (wallet, rig) = worker.split_once('.').unwrap_or((worker, ""));
            Some(Call {
                metadata: format!(
                    "tool stratum, method mining.authorize, wallet {wallet}, worker {rig}"
                ),
                agent: None,
                names_miner: true,
            })
        }
        "login" => {
            let params = params?;
            let wallet = params.get("login")?.as_str()?;
            let agent = params.get("agent").and_then(|a| a.as_str());
            Some(Call {
                metadata: format!("tool xmrig, method login, wallet {wallet}"),
                agent: agent.map(str::to_owned),
                names_miner: true,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mining_calls_are_named_with_their_miner() {
        let authorize =
            call(br#"{"id": 2, "method": "mining.authorize", "params": ["bc1qabc.rig01", "x"]}"#)
                .unwrap();
        assert_eq!(
            authorize.metadata,
            "tool stratum, method mining.authorize, wallet bc1qabc, worker rig01"
        );
        assert!(authorize.names_miner);
        let login = call(
            br#"{"id":1,"method":"login","params":{"login":"44AFF","pass":"x","agent":"XMRig/6.21.0"}}"#,
        )
        .unwrap();
        assert_eq!(login.metadata, "tool xmrig, method login, wallet 44AFF");
        assert_eq!(login.agent.as_deref(), Some("XMRig/6.21.0"));
        assert_eq!(
            call(br#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}"#),
            None
        );
        assert_eq!(call(b"not json"), None);
    }

    #[test]
    fn a_session_is_reported_once_with_its_miner() {
        let mut stratum = Stratum::default();
        let stream = StreamId {
            flow_id: 7,
            dir: 0,
            src: "10.0.0.1:4000".parse().unwrap(),
            dst: "10.0.0.2:3333".parse().unwrap(),
            carrier: Default::default(),
        };
        let mut found = Vec::new();
        stratum.stream(
            &stream,
            b"{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"cgminer/4.11\"]}\n",
            &mut |f| found.push(f),
        );
        assert!(found.is_empty(), "waits for the worker");
        stratum.stream(
            &stream,
            b"{\"params\": [\"wallet.rig\", \"x\"], \"id\": 2, \"method\": \"mining.authorize\"}\n",
            &mut |f| found.push(f),
        );
        stratum.stream(
            &stream,
            b"{\"id\": 3, \"method\": \"mining.submit\"}\n",
            &mut |f| found.push(f),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].metadata,
            "tool stratum, method mining.authorize, wallet wallet, worker rig, agent cgminer/4.11"
        );
    }
}
