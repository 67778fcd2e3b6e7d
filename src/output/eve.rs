//! Detections as Suricata EVE `alert` events, one JSON object per line, for
//! the pipelines that already read Suricata (Filebeat, Vector, Logstash).
//!
//! The writer thread hands each batch of detections to an [`EveWriter`]
//! beside the Parquet files. Lines go to a file, renamed to `NAME.1` (and
//! older ones shifted, `keep` kept) once it passes `rotate_mib`, or to a
//! Unix socket (stream or datagram). A socket that is not there, or stops
//! reading, costs the lines sent meanwhile (counted); it is retried at the
//! next batch, and the sensor never waits for it. A file holds whole lines
//! only: a batch the disk cannot take whole is cut back off it and counted.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::writer::{io_error, OutputError};
use crate::decode::ip_proto;
use crate::detect::Detection;
use crate::flow::community_id::community_id_v1;
use crate::utc::UtcTime;

/// Where EVE lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EveTarget {
    /// A regular file, rotated by size.
    #[default]
    File,
    /// A Unix stream socket (one connection, lines separated by `\n`).
    UnixStream,
    /// A Unix datagram socket (one line per datagram).
    UnixDgram,
}

/// How EVE output is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EveConfig {
    /// File or socket.
    pub target: EveTarget,
    /// The file (relative paths under the output folder) or socket path.
    pub path: PathBuf,
    /// A file is rotated once it passes this many bytes.
    pub rotate_bytes: u64,
    /// Rotated files kept (`NAME.1` newest).
    pub keep: u32,
}

/// What the EVE output wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EveReport {
    /// Lines written.
    pub lines: u64,
    /// Lines lost to a socket that was absent or not reading, or to a
    /// file that could not be written (a full disk).
    pub dropped: u64,
    /// Times the file was rotated.
    pub rotations: u64,
}

/// One EVE `alert` event.
#[derive(Debug, Serialize)]
pub struct EveAlert<'a> {
    timestamp: String,
    flow_id: u64,
    event_type: &'static str,
    src_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dest_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u16>,
    proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<Vec<u16>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnel: Option<EveTunnel>,
    community_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    direction: &'static str,
    host: &'a str,
    /// The evidence capture of the flow, relative to the output folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    capture_file: Option<&'a str>,
    alert: EveAlertBody<'a>,
}

/// The outer side of a tunnel, as EVE writes it.
#[derive(Debug, Serialize)]
struct EveTunnel {
    src_ip: String,
    dest_ip: String,
    proto: &'static str,
}

/// The `alert` object.
#[derive(Debug, Serialize)]
struct EveAlertBody<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'a str>,
    severity: u8,
    #[serde(skip_serializing_if = "Map::is_empty")]
    metadata: Map<String, Value>,
}

/// The IANA name EVE gives a protocol number.
fn proto_name(proto: u8) -> String {
    match proto {
        ip_proto::TCP => "TCP".into(),
        ip_proto::UDP => "UDP".into(),
        ip_proto::ICMP => "ICMP".into(),
        ip_proto::ICMPV6 => "IPv6-ICMP".into(),
        ip_proto::GRE => "GRE".into(),
        other => other.to_string(),
    }
}

/// Suricata's timestamp: `2024-03-01T12:00:00.123456+0000`.
fn timestamp(ts_ns: u64) -> String {
    let t = UtcTime::from_unix_secs(ts_ns / 1_000_000_000);
    format!(
        "{}T{:02}:{:02}:{:02}.{:06}+0000",
        t.date(),
        t.hour,
        t.minute,
        t.second,
        ts_ns % 1_000_000_000 / 1_000
    )
}

/// A rule's `metadata` (`key value, key value`) as EVE's `alert.metadata`:
/// each key with the list of its values, and the detection's `family`
/// (a built-in detector's too) when the rule named none.
fn metadata(text: &str, family: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (key, value) = entry.split_once(char::is_whitespace).unwrap_or((entry, ""));
        let values = map
            .entry(key.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = values {
            list.push(Value::String(value.trim().to_owned()));
        }
    }
    map.entry("family")
        .or_insert_with(|| Value::Array(vec![Value::String(family.to_owned())]));
    map
}

impl<'a> EveAlert<'a> {
    /// The EVE event of a detection by sensor `host`.
    pub fn new(host: &'a str, d: &'a Detection) -> Self {
        let icmp = matches!(d.proto, ip_proto::ICMP | ip_proto::ICMPV6);
        let ports = |port: u16| (!icmp && port_proto(d.proto)).then_some(port);
        let vlans = d.carrier.vlans.as_slice();
        EveAlert {
            timestamp: timestamp(d.ts_ns),
            flow_id: d.flow_id,
            event_type: "alert",
            src_ip: d.src.to_string(),
            src_port: ports(d.src_port),
            dest_ip: d.dst.to_string(),
            dest_port: ports(d.dst_port),
            icmp_type: icmp.then_some(d.src_port),
            icmp_code: icmp.then_some(d.dst_port),
            proto: proto_name(d.proto),
            vlan: (!vlans.is_empty()).then(|| vlans.to_vec()),
            tunnel: d.carrier.tunnel.map(|t| EveTunnel {
                src_ip: t.src.to_string(),
                dest_ip: t.dst.to_string(),
                proto: t.kind.as_str(),
            }),
            community_id: community_id_v1(0, d.src, d.dst, d.proto, d.src_port, d.dst_port),
            app_proto: d.app_proto,
            direction: if d.to_server {
                "to_server"
            } else {
                "to_client"
            },
            host,
            capture_file: d.evidence.as_deref(),
            alert: EveAlertBody {
                action: "allowed",
                gid: d.gid,
                signature_id: d.sid,
                rev: d.rev,
                signature: &d.msg,
                category: d.classtype.as_deref(),
                severity: d.priority,
                metadata: metadata(&d.metadata, &d.family),
            },
        }
    }
}

/// Protocols whose records carry ports.
fn port_proto(proto: u8) -> bool {
    matches!(proto, ip_proto::TCP | ip_proto::UDP)
}

/// The open EVE output.
#[derive(Debug)]
pub struct EveWriter {
    config: EveConfig,
    sink: Sink,
    report: EveReport,
    /// The last write to the file failed; the next that succeeds says so.
    failing: super::FailureStreak,
}

#[derive(Debug)]
enum Sink {
    File(LineFile),
    Stream(Option<UnixStream>),
    Dgram(Option<UnixDatagram>),
}

impl EveWriter {
    /// Opens the file (appending) or connects the socket; a socket not
    /// there yet is retried at each batch.
    pub fn open(config: EveConfig, out_dir: &Path) -> Result<Self, OutputError> {
        let config = EveConfig {
            path: match config.target {
                EveTarget::File if config.path.is_relative() => out_dir.join(&config.path),
                _ => config.path.clone(),
            },
            ..config
        };
        let sink = match config.target {
            EveTarget::File => Sink::File(LineFile::open(&config.path)?),
            EveTarget::UnixStream => Sink::Stream(UnixStream::connect(&config.path).ok()),
            EveTarget::UnixDgram => Sink::Dgram(dgram(&config.path)),
        };
        Ok(Self {
            config,
            sink,
            report: EveReport::default(),
            failing: super::FailureStreak::default(),
        })
    }

    /// Writes one line per detection.
    pub fn write(&mut self, host: &str, detections: &[Detection]) -> Result<(), OutputError> {
        for detection in detections {
            let Ok(mut line) = serde_json::to_vec(&EveAlert::new(host, detection)) else {
                self.report.dropped += 1;
                continue;
            };
            line.push(b'\n');
            if let Err(e) = self.send(&line) {
                self.failed(&e);
            }
        }
        self.flush();
        Ok(())
    }

    /// Writes out the lines the file holds back; lines it cannot take are
    /// counted as dropped.
    fn flush(&mut self) {
        if let Sink::File(file) = &mut self.sink {
            match file.flush(&self.config.path, &mut self.report) {
                Ok(()) => self.succeeded(),
                Err(e) => self.failed(&e),
            }
        }
    }

    fn succeeded(&mut self) {
        if self.failing.succeeded() {
            tracing::info!("EVE: writing again");
        }
    }

    fn failed(&mut self, e: &OutputError) {
        if self.failing.failed() {
            tracing::warn!("EVE: {e}: lines are dropped and counted until a write succeeds");
        }
    }

    /// What it wrote so far.
    pub fn report(&self) -> &EveReport {
        &self.report
    }

    /// Flushes and reports. Lines the file still cannot take (a full
    /// disk) are counted as dropped.
    pub fn finish(mut self) -> Result<EveReport, OutputError> {
        self.flush();
        Ok(self.report)
    }

    fn send(&mut self, line: &[u8]) -> Result<(), OutputError> {
        let path = &self.config.path;
        match &mut self.sink {
            Sink::File(file) => {
                if file.len() > 0 && file.len() + line.len() as u64 > self.config.rotate_bytes {
                    file.flush(path, &mut self.report)?;
                    rotate(path, self.config.keep)?;
                    *file = LineFile::open(path)?;
                    self.report.rotations += 1;
                }
                file.push(line);
                if file.pending.len() >= LineFile::FLUSH_BYTES {
                    file.flush(path, &mut self.report)?;
                }
            }
            Sink::Stream(stream) => {
                if stream.is_none() {
                    *stream = UnixStream::connect(path).ok();
                }
                match stream.as_mut().map(|s| s.write_all(line)) {
                    Some(Ok(())) => self.report.lines += 1,
                    _ => {
                        *stream = None;
                        self.report.dropped += 1;
                    }
                }
            }
            Sink::Dgram(socket) => {
                if socket.is_none() {
                    *socket = dgram(path);
                }
                match socket.as_ref().map(|s| s.send(line)) {
                    Some(Ok(_)) => self.report.lines += 1,
                    _ => {
                        *socket = None;
                        self.report.dropped += 1;
                    }
                }
            }
        }
        Ok(())
    }
}

fn dgram(path: &Path) -> Option<UnixDatagram> {
    let socket = UnixDatagram::unbound().ok()?;
    socket.connect(path).ok()?;
    socket.set_nonblocking(true).ok()?;
    Some(socket)
}

/// An EVE file that holds whole lines only. Lines wait in memory until the
/// batch ends or [`Self::FLUSH_BYTES`] gather; a write the disk takes in
/// part is cut back to the last whole line, and its lines are dropped.
#[derive(Debug)]
struct LineFile {
    file: File,
    /// Bytes of whole lines in the file.
    committed: u64,
    /// Lines not written yet.
    pending: Vec<u8>,
    pending_lines: u64,
}

impl LineFile {
    /// Lines held back at most before they are written.
    const FLUSH_BYTES: usize = 64 << 10;

    /// Opens `path` for appending, creating it and its folder.
    fn open(path: &Path) -> Result<Self, OutputError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        let file = super::file_options()
            .append(true)
            .open(path)
            .map_err(io_error(path))?;
        let committed = file.metadata().map_err(io_error(path))?.len();
        Ok(Self {
            file,
            committed,
            pending: Vec::new(),
            pending_lines: 0,
        })
    }

    /// The file's length once what waits is written.
    fn len(&self) -> u64 {
        self.committed + self.pending.len() as u64
    }

    fn push(&mut self, line: &[u8]) {
        self.pending.extend_from_slice(line);
        self.pending_lines += 1;
    }

    /// Writes what waits, counting its lines written or dropped. A write
    /// the disk takes in part is cut back off the file.
    fn flush(&mut self, path: &Path, report: &mut EveReport) -> Result<(), OutputError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.pending_lines);
        let written = self.file.write_all(&self.pending);
        let bytes = self.pending.len() as u64;
        self.pending.clear();
        match written {
            Ok(()) => {
                self.committed += bytes;
                report.lines += lines;
                Ok(())
            }
            Err(e) => {
                report.dropped += lines;
                // Cutting back frees blocks and so works on a full disk;
                // if it fails, the next write appends to a partial line
                // that a reader skips as one broken line.
                let _ = self.file.set_len(self.committed);
                Err(io_error(path)(e))
            }
        }
    }
}

/// `NAME` becomes `NAME.1`, `NAME.1` becomes `NAME.2` ..., the oldest past
/// `keep` removed.
fn rotate(path: &Path, keep: u32) -> Result<(), OutputError> {
    let numbered = |n: u32| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    let oldest = numbered(keep.max(1));
    if oldest.exists() {
        fs::remove_file(&oldest).map_err(io_error(&oldest))?;
    }
    for n in (1..keep.max(1)).rev() {
        let from = numbered(n);
        if from.exists() {
            let to = numbered(n + 1);
            fs::rename(&from, &to).map_err(io_error(&to))?;
        }
    }
    let first = numbered(1);
    fs::rename(path, &first).map_err(io_error(&first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn detection() -> Detection {
        Detection {
            ts_ns: 1_709_294_400_123_456_789,
            flow_id: 42,
            proto: ip_proto::TCP,
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            src_port: 40000,
            dst_port: 80,
            carrier: Default::default(),
            gid: 1,
            sid: 2000001,
            rev: 3,
            msg: Arc::from("ET WEB test"),
            classtype: Some("web-application-attack".into()),
            priority: 1,
            family: Arc::from("webshell"),
            to_server: true,
            stream_offset: Some(10),
            excerpt: b"x".to_vec(),
            app_proto: Some("http"),
            metadata: Arc::from("family webshell, tool chopper, tool antsword"),
            evidence: Some(Arc::from("evidence/date=2024-03-01/hour=12/7.pcapng")),
        }
    }

    #[test]
    fn an_alert_reads_as_suricata_writes_it() {
        let d = detection();
        let event = serde_json::to_value(EveAlert::new("edge-1", &d)).unwrap();
        assert_eq!(event["timestamp"], "2024-03-01T12:00:00.123456+0000");
        assert_eq!(event["event_type"], "alert");
        assert_eq!(event["proto"], "TCP");
        assert_eq!(event["dest_port"], 80);
        assert_eq!(event["direction"], "to_server");
        assert_eq!(event["host"], "edge-1");
        assert_eq!(event["alert"]["signature_id"], 2000001);
        assert_eq!(event["alert"]["severity"], 1);
        assert_eq!(
            event["alert"]["metadata"]["tool"],
            serde_json::json!(["chopper", "antsword"])
        );
        assert!(event["community_id"].as_str().unwrap().starts_with("1:"));
        assert!(event.get("vlan").is_none() && event.get("icmp_type").is_none());
    }

    #[test]
    fn the_file_rotates_past_its_size_keeping_the_newest() {
        let dir = std::env::temp_dir().join(format!("mirador-eve-{}", std::process::id()));
        let config = EveConfig {
            target: EveTarget::File,
            path: PathBuf::from("eve.json"),
            rotate_bytes: 600,
            keep: 2,
        };
        let mut eve = EveWriter::open(config, &dir).unwrap();
        let batch = vec![detection(); 4];
        for _ in 0..4 {
            eve.write("edge-1", &batch).unwrap();
        }
        let report = eve.finish().unwrap();
        assert_eq!(report.lines, 16);
        assert!(report.rotations >= 2);
        let lines = |name: &str| {
            fs::read_to_string(dir.join(name))
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        assert!(lines("eve.json") > 0 && lines("eve.json.1") > 0 && lines("eve.json.2") > 0);
        assert!(!dir.join("eve.json.3").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_socket_costs_lines_not_the_run() {
        let dir = std::env::temp_dir().join(format!("mirador-eve-sock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("eve.sock");
        let config = EveConfig {
            target: EveTarget::UnixStream,
            path: path.clone(),
            rotate_bytes: 0,
            keep: 0,
        };
        let mut eve = EveWriter::open(config, &dir).unwrap();
        eve.write("edge-1", &[detection()]).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        eve.write("edge-1", &[detection(), detection()]).unwrap();
        let report = eve.finish().unwrap();
        assert_eq!((report.lines, report.dropped), (2, 1));
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_nonblocking(true).unwrap();
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut conn, &mut text);
        assert_eq!(text.lines().count(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }
}
