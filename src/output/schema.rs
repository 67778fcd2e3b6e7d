//! The Arrow schema of flow records, and the conversion of records to batches.
//!
//! Column meanings are documented in `docs/schema.md`. Integer columns are
//! signed (Int32/Int64) because Spark and Trino read unsigned Parquet types
//! poorly; every value fits.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Int32Array, Int32Builder, Int64Array, ListBuilder,
    RecordBatch, StringArray, StringBuilder, StructArray, TimestampMicrosecondArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use crate::applayer::{HttpSummary, TlsSummary};
use crate::decode::{ip_proto, Tunnel, Vlans};
use crate::detect::Detection;
use crate::flow::community_id::community_id_v1;
use crate::flow::FlowRecord;
use crate::reassembly::StreamCounters;

/// Version of the tables' schema, stored in each file's metadata (see
/// `docs/schema.md` for the compatibility rule).
pub const SCHEMA_VERSION: &str = "2";

/// Key of the schema version in Parquet key-value metadata.
pub const SCHEMA_VERSION_KEY: &str = "mirador.schema_version";

pub(super) fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// VLAN tags, outermost first (null when untagged).
fn vlan_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Int32, true)))
}

fn tunnel_fields() -> Fields {
    Fields::from(vec![
        Field::new("type", DataType::Utf8, false),
        Field::new("src_ip", DataType::Utf8, false),
        Field::new("dst_ip", DataType::Utf8, false),
        Field::new("id", DataType::Int64, true),
    ])
}

/// The schema of the `flows` table.
pub fn flow_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("flow_id", DataType::Int64, false),
        Field::new("community_id", DataType::Utf8, false),
        Field::new("sensor", DataType::Utf8, false),
        Field::new("ts_start", timestamp(), false),
        Field::new("ts_end", timestamp(), false),
        Field::new("proto", DataType::Int32, false),
        Field::new("src_ip", DataType::Utf8, false),
        Field::new("dst_ip", DataType::Utf8, false),
        Field::new("src_port", DataType::Int32, false),
        Field::new("dst_port", DataType::Int32, false),
        Field::new("vlan", vlan_type(), true),
        Field::new("tunnel", DataType::Struct(tunnel_fields()), true),
        Field::new("app_proto", DataType::Utf8, true),
        Field::new("pkts_toserver", DataType::Int64, false),
        Field::new("pkts_toclient", DataType::Int64, false),
        Field::new("bytes_toserver", DataType::Int64, false),
        Field::new("bytes_toclient", DataType::Int64, false),
        Field::new("payload_bytes_toserver", DataType::Int64, false),
        Field::new("payload_bytes_toclient", DataType::Int64, false),
        Field::new("tcp_flags_toserver", DataType::Int32, true),
        Field::new("tcp_flags_toclient", DataType::Int32, true),
        Field::new("history", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("end_reason", DataType::Utf8, false),
        Field::new("tcp_retransmits", DataType::Int64, true),
        Field::new("tcp_out_of_order", DataType::Int64, true),
        Field::new("tcp_overlaps", DataType::Int64, true),
        Field::new("tcp_overlaps_conflicting", DataType::Int64, true),
        Field::new("tcp_gaps", DataType::Int64, true),
        Field::new("tcp_gap_bytes", DataType::Int64, true),
        Field::new("tcp_depth_reached", DataType::Boolean, true),
        Field::new("alerted", DataType::Boolean, false),
        Field::new("detections", DataType::Int64, false),
        Field::new("http_method", DataType::Utf8, true),
        Field::new("http_uri", DataType::Utf8, true),
        Field::new("http_host", DataType::Utf8, true),
        Field::new("http_user_agent", DataType::Utf8, true),
        Field::new("http_status", DataType::Int32, true),
        Field::new("dns_query", DataType::Utf8, true),
        Field::new("dns_qtype", DataType::Int32, true),
        Field::new("dns_rcode", DataType::Int32, true),
        Field::new(
            "dns_answers",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new("tls_sni", DataType::Utf8, true),
        Field::new("tls_ja3", DataType::Utf8, true),
        Field::new("tls_ja3s", DataType::Utf8, true),
        Field::new("tls_cert_subject", DataType::Utf8, true),
        Field::new("tls_cert_issuer", DataType::Utf8, true),
        Field::new("tls_cert_sha256", DataType::Utf8, true),
        Field::new("service", DataType::Utf8, true),
        Field::new("worker", DataType::Int32, false),
    ]))
}

fn i64s<R>(records: &[&R], f: impl Fn(&R) -> u64) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(
        records
            .iter()
            .map(|r| i64::try_from(f(r)).unwrap_or(i64::MAX)),
    ))
}

fn i32s<R>(records: &[&R], f: impl Fn(&R) -> i32) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(records.iter().map(|r| f(r))))
}

fn strings<'a, R>(records: &[&'a R], f: impl Fn(&'a R) -> String) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(records.iter().map(|r| f(r))))
}

fn static_strings<R>(records: &[&R], f: impl Fn(&R) -> &'static str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(records.iter().map(|r| f(r))))
}

pub(super) fn micros<R>(records: &[&R], f: impl Fn(&R) -> u64) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from_iter_values(
            records
                .iter()
                .map(|r| i64::try_from(f(r) / 1_000).unwrap_or(i64::MAX)),
        )
        .with_timezone("UTC"),
    )
}

fn tcp_flags(records: &[&FlowRecord], dir: usize) -> ArrayRef {
    Arc::new(Int32Array::from_iter(records.iter().map(|r| {
        (r.proto == ip_proto::TCP).then_some(i32::from(r.tcp_flags[dir]))
    })))
}

/// An HTTP summary field, null when the flow is not HTTP or lacks it.
fn http_text(records: &[&FlowRecord], value: impl Fn(&HttpSummary) -> Option<&str>) -> ArrayRef {
    Arc::new(StringArray::from_iter(
        records.iter().map(|r| r.app.http.as_ref().and_then(&value)),
    ))
}

/// A TLS summary field, null when the flow is not TLS or lacks it.
fn tls_text(records: &[&FlowRecord], value: impl Fn(&TlsSummary) -> Option<&str>) -> ArrayRef {
    Arc::new(StringArray::from_iter(
        records.iter().map(|r| r.app.tls.as_ref().and_then(&value)),
    ))
}

/// The first DNS response's answers; null when the flow saw none.
fn dns_answers(records: &[&FlowRecord]) -> ArrayRef {
    let mut builder = ListBuilder::new(StringBuilder::new());
    for r in records {
        match r.app.dns.as_ref().filter(|d| d.rcode.is_some()) {
            Some(dns) => {
                for answer in &dns.answers {
                    builder.values().append_value(answer);
                }
                builder.append(true);
            }
            None => builder.append_null(),
        }
    }
    Arc::new(builder.finish())
}

/// A reassembly counter, null unless the flow is TCP.
fn tcp_counter(records: &[&FlowRecord], value: impl Fn(&StreamCounters) -> u64) -> ArrayRef {
    Arc::new(Int64Array::from_iter(records.iter().map(|r| {
        (r.proto == ip_proto::TCP).then(|| value(&r.reassembly) as i64)
    })))
}

fn vlans(tags: impl Iterator<Item = Vlans>) -> ArrayRef {
    let mut builder = ListBuilder::new(Int32Builder::new());
    for vlans in tags {
        let ids = vlans.as_slice();
        if ids.is_empty() {
            builder.append_null();
        } else {
            for &id in ids {
                builder.values().append_value(i32::from(id));
            }
            builder.append(true);
        }
    }
    Arc::new(builder.finish())
}

fn tunnels(tunnels: &[Option<Tunnel>]) -> ArrayRef {
    let kind =
        StringArray::from_iter_values(tunnels.iter().map(|t| t.map_or("", |t| t.kind.as_str())));
    let src = StringArray::from_iter_values(
        tunnels
            .iter()
            .map(|t| t.map_or(String::new(), |t| t.src.to_string())),
    );
    let dst = StringArray::from_iter_values(
        tunnels
            .iter()
            .map(|t| t.map_or(String::new(), |t| t.dst.to_string())),
    );
    let id = Int64Array::from_iter(tunnels.iter().map(|t| t.and_then(|t| t.id).map(i64::from)));
    let nulls = NullBuffer::from_iter(tunnels.iter().map(Option::is_some));
    Arc::new(StructArray::new(
        tunnel_fields(),
        vec![Arc::new(kind), Arc::new(src), Arc::new(dst), Arc::new(id)],
        Some(nulls),
    ))
}

/// Builds one record batch of the `flows` table.
pub fn flow_batch(sensor: &str, records: &[&FlowRecord]) -> Result<RecordBatch, ArrowError> {
    let columns: Vec<ArrayRef> = vec![
        i64s(records, |r| r.flow_id),
        strings(records, |r| {
            community_id_v1(0, r.src, r.dst, r.proto, r.src_port, r.dst_port)
        }),
        Arc::new(StringArray::from_iter_values(
            records.iter().map(|_| sensor),
        )),
        micros(records, |r| r.ts_start_ns),
        micros(records, |r| r.ts_end_ns),
        i32s(records, |r| i32::from(r.proto)),
        strings(records, |r| r.src.to_string()),
        strings(records, |r| r.dst.to_string()),
        i32s(records, |r| i32::from(r.src_port)),
        i32s(records, |r| i32::from(r.dst_port)),
        vlans(records.iter().map(|r| r.vlans)),
        tunnels(&records.iter().map(|r| r.tunnel).collect::<Vec<_>>()),
        Arc::new(StringArray::from_iter(records.iter().map(|r| r.app_proto))),
        i64s(records, |r| r.pkts[0]),
        i64s(records, |r| r.pkts[1]),
        i64s(records, |r| r.bytes[0]),
        i64s(records, |r| r.bytes[1]),
        i64s(records, |r| r.payload_bytes[0]),
        i64s(records, |r| r.payload_bytes[1]),
        tcp_flags(records, 0),
        tcp_flags(records, 1),
        strings(records, |r| r.history.as_str().to_owned()),
        static_strings(records, |r| r.state.as_str()),
        static_strings(records, |r| r.end_reason.as_str()),
        tcp_counter(records, |c| u64::from(c.retransmits)),
        tcp_counter(records, |c| u64::from(c.out_of_order)),
        tcp_counter(records, |c| u64::from(c.overlaps)),
        tcp_counter(records, |c| u64::from(c.conflicting_overlaps)),
        tcp_counter(records, |c| u64::from(c.gaps)),
        tcp_counter(records, |c| c.gap_bytes),
        Arc::new(BooleanArray::from_iter(records.iter().map(|r| {
            (r.proto == ip_proto::TCP).then_some(r.reassembly.depth_reached)
        }))),
        Arc::new(BooleanArray::from_iter(
            records.iter().map(|r| Some(r.detections > 0)),
        )),
        i64s(records, |r| u64::from(r.detections)),
        http_text(records, |h| h.method.as_deref()),
        // Secrets in a URI's query are masked (see `secret::redact`).
        Arc::new(StringArray::from_iter(records.iter().map(|r| {
            let uri = r.app.http.as_ref().and_then(|h| h.uri.as_deref());
            uri.map(crate::detect::builtin::secret::redact)
        }))),
        http_text(records, |h| h.host.as_deref()),
        http_text(records, |h| h.user_agent.as_deref()),
        Arc::new(Int32Array::from_iter(records.iter().map(|r| {
            r.app.http.as_ref().and_then(|h| h.status).map(i32::from)
        }))),
        Arc::new(StringArray::from_iter(
            records
                .iter()
                .map(|r| r.app.dns.as_ref().and_then(|d| d.query.as_deref())),
        )),
        Arc::new(Int32Array::from_iter(records.iter().map(|r| {
            r.app.dns.as_ref().and_then(|d| d.qtype).map(i32::from)
        }))),
        Arc::new(Int32Array::from_iter(records.iter().map(|r| {
            r.app.dns.as_ref().and_then(|d| d.rcode).map(i32::from)
        }))),
        dns_answers(records),
        tls_text(records, |t| t.sni.as_deref()),
        tls_text(records, |t| t.ja3.as_deref()),
        tls_text(records, |t| t.ja3s.as_deref()),
        tls_text(records, |t| {
            t.certificate.as_ref().map(|c| c.subject.as_str())
        }),
        tls_text(records, |t| {
            t.certificate.as_ref().map(|c| c.issuer.as_str())
        }),
        tls_text(records, |t| {
            t.certificate.as_ref().map(|c| c.sha256.as_str())
        }),
        Arc::new(StringArray::from_iter(
            records
                .iter()
                .map(|r| r.app.service.as_ref().map(|s| s.service.name())),
        )),
        i32s(records, |r| i32::from(r.worker)),
    ];
    RecordBatch::try_new(flow_schema(), columns)
}

/// The Arrow schema of the `detections` table.
pub fn detection_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", timestamp(), false),
        Field::new("sensor", DataType::Utf8, false),
        Field::new("flow_id", DataType::Int64, false),
        Field::new("community_id", DataType::Utf8, false),
        Field::new("proto", DataType::Int32, false),
        Field::new("src_ip", DataType::Utf8, false),
        Field::new("dst_ip", DataType::Utf8, false),
        Field::new("src_port", DataType::Int32, false),
        Field::new("dst_port", DataType::Int32, false),
        Field::new("app_proto", DataType::Utf8, true),
        Field::new("gid", DataType::Int64, false),
        Field::new("sid", DataType::Int64, false),
        Field::new("rev", DataType::Int64, false),
        Field::new("msg", DataType::Utf8, false),
        Field::new("classtype", DataType::Utf8, true),
        Field::new("priority", DataType::Int32, false),
        Field::new("family", DataType::Utf8, false),
        Field::new("direction", DataType::Utf8, false),
        Field::new("stream_offset", DataType::Int64, true),
        Field::new("excerpt", DataType::Binary, false),
        Field::new("metadata", DataType::Utf8, false),
        Field::new("vlan", vlan_type(), true),
        Field::new("tunnel", DataType::Struct(tunnel_fields()), true),
        Field::new("evidence", DataType::Utf8, true),
    ]))
}

/// Builds one record batch of the `detections` table.
pub fn detection_batch(sensor: &str, records: &[&Detection]) -> Result<RecordBatch, ArrowError> {
    let columns: Vec<ArrayRef> = vec![
        micros(records, |d| d.ts_ns),
        Arc::new(StringArray::from_iter_values(
            records.iter().map(|_| sensor),
        )),
        i64s(records, |d| d.flow_id),
        strings(records, |d| {
            community_id_v1(0, d.src, d.dst, d.proto, d.src_port, d.dst_port)
        }),
        i32s(records, |d| i32::from(d.proto)),
        strings(records, |d| d.src.to_string()),
        strings(records, |d| d.dst.to_string()),
        i32s(records, |d| i32::from(d.src_port)),
        i32s(records, |d| i32::from(d.dst_port)),
        Arc::new(StringArray::from_iter(records.iter().map(|r| r.app_proto))),
        i64s(records, |d| u64::from(d.gid)),
        i64s(records, |d| u64::from(d.sid)),
        i64s(records, |d| u64::from(d.rev)),
        Arc::new(StringArray::from_iter_values(
            records.iter().map(|d| &*d.msg),
        )),
        Arc::new(StringArray::from_iter(
            records.iter().map(|d| d.classtype.as_deref()),
        )),
        i32s(records, |d| i32::from(d.priority)),
        Arc::new(StringArray::from_iter_values(
            records.iter().map(|d| &*d.family),
        )),
        static_strings(records, |d| {
            if d.to_server {
                "to_server"
            } else {
                "to_client"
            }
        }),
        Arc::new(Int64Array::from_iter(
            records.iter().map(|d| d.stream_offset.map(|o| o as i64)),
        )),
        Arc::new(BinaryArray::from_iter_values(
            records.iter().map(|d| &d.excerpt),
        )),
        Arc::new(StringArray::from_iter_values(
            records.iter().map(|d| &*d.metadata),
        )),
        vlans(records.iter().map(|d| d.carrier.vlans)),
        tunnels(&records.iter().map(|d| d.carrier.tunnel).collect::<Vec<_>>()),
        Arc::new(StringArray::from_iter(
            records.iter().map(|d| d.evidence.as_deref()),
        )),
    ];
    RecordBatch::try_new(detection_schema(), columns)
}
