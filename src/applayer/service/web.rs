//! Services behind HTTP, recognised from their answers: headers only they
//! send (`Server: Docker/…`, `X-Jenkins`, `X-Elastic-Product`, Kubernetes'
//! `Audit-Id` with its flow-control ids, `X-Etcd-Cluster-Id`) and bodies
//! only they write (Elasticsearch's tagline, etcd's and Kubernetes'
//! version documents, a kubelet's pod list, YARN's cluster documents).
//!
//! Access without authentication is an answer of 200 to what an open
//! server gives anyone: Docker's `/containers/json`, Elasticsearch's
//! `_cat` APIs, a kubelet's `/pods`, etcd's keys, YARN's
//! `new-application`, Jenkins' script console.

use memchr::memmem;

use super::{Service, ServiceSummary};
use crate::applayer::{HttpStage, Transaction};

/// Reads a transaction at `stage` into the flow's summary: recognises the
/// service if none is known yet, then its version and any open access.
pub fn transaction(
    summary: &mut Option<ServiceSummary>,
    tx: &Transaction,
    stage: HttpStage,
    server_dir: usize,
) {
    let found = match stage {
        HttpStage::ResponseHeaders => by_headers(tx),
        HttpStage::ResponseBody => by_body(tx),
        HttpStage::RequestHeaders | HttpStage::RequestBody => return,
    };
    if let Some((service, product, version)) = found {
        let summary = summary.get_or_insert_with(|| ServiceSummary::new(service, server_dir));
        if summary.service == service {
            summary.identify(Some(product), version.as_deref());
        }
    }
    let Some(summary) = summary.as_mut() else {
        return;
    };
    if tx.request.header(b"authorization").is_some() {
        summary.auth = true;
    }
    if stage == HttpStage::ResponseHeaders && (tx.status == b"401" || tx.status == b"403") {
        summary.auth = true;
    }
    if summary.open_access.is_none() && tx.status == b"200" {
        summary.open_access = open_access(summary.service, tx, stage);
    }
}

/// The request's path, without its query.
fn path(tx: &Transaction) -> &[u8] {
    let uri = &tx.uri;
    &uri[..memchr::memchr(b'?', uri).unwrap_or(uri.len())]
}

type Found = (Service, &'static str, Option<String>);

fn header_text(tx: &Transaction, name: &[u8]) -> Option<String> {
    let value = tx.response.header(name)?;
    let text = std::str::from_utf8(value).ok()?.trim();
    (!text.is_empty() && text.len() <= super::MAX_VERSION).then(|| text.to_owned())
}

fn by_headers(tx: &Transaction) -> Option<Found> {
    if let Some(server) = header_text(tx, b"server") {
        if let Some(rest) = server.strip_prefix("Docker/") {
            let version = rest.split_whitespace().next().unwrap_or("").to_owned();
            return Some((Service::Docker, "Docker", Some(version)));
        }
    }
    if tx.response.header(b"api-version").is_some() && tx.response.header(b"ostype").is_some() {
        return Some((Service::Docker, "Docker", None));
    }
    if let Some(version) = header_text(tx, b"x-jenkins") {
        return Some((Service::Jenkins, "Jenkins", Some(version)));
    }
    if header_text(tx, b"x-elastic-product").as_deref() == Some("Elasticsearch") {
        return Some((Service::Elasticsearch, "Elasticsearch", None));
    }
    if tx.response.header(b"x-etcd-cluster-id").is_some() {
        return Some((Service::Etcd, "etcd", None));
    }
    let flow_control = tx
        .response
        .header(b"x-kubernetes-pf-flowschema-uid")
        .is_some()
        || tx
            .response
            .header(b"x-kubernetes-pf-prioritylevel-uid")
            .is_some();
    if flow_control && tx.response.header(b"audit-id").is_some() {
        return Some((Service::Kubernetes, "Kubernetes", None));
    }
    None
}

/// The string value of JSON key `key` (`"key" : "value"`).
fn json_string(body: &[u8], key: &str) -> Option<String> {
    let quoted = format!("\"{key}\"");
    let at = memmem::find(body, quoted.as_bytes())? + quoted.len();
    let rest = &body[at..];
    let colon = rest.iter().position(|&b| !b.is_ascii_whitespace())?;
    let rest = rest[colon..].strip_prefix(b":")?;
    let open = rest.iter().position(|&b| !b.is_ascii_whitespace())?;
    let value = rest[open..].strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', value)?;
    let text = std::str::from_utf8(&value[..end]).ok()?;
    (text.len() <= super::MAX_VERSION).then(|| text.to_owned())
}

fn contains(body: &[u8], needle: &[u8]) -> bool {
    memmem::find(body, needle).is_some()
}

fn by_body(tx: &Transaction) -> Option<Found> {
    let body = &tx.response.body;
    if !body.trim_ascii_start().starts_with(b"{") {
        return None;
    }
    if contains(body, b"You Know, for Search") {
        let version = json_string(body, "number");
        return Some((Service::Elasticsearch, "Elasticsearch", version));
    }
    if let Some(version) = json_string(body, "etcdserver") {
        return Some((Service::Etcd, "etcd", Some(version)));
    }
    if json_string(body, "goVersion").is_some() && json_string(body, "platform").is_some() {
        if let Some(version) = json_string(body, "gitVersion") {
            return Some((Service::Kubernetes, "Kubernetes", Some(version)));
        }
    }
    let path = path(tx);
    if (path == b"/pods" || path.starts_with(b"/runningpods"))
        && json_string(body, "kind").as_deref() == Some("PodList")
    {
        return Some((Service::Kubelet, "kubelet", None));
    }
    if path.starts_with(b"/ws/v1/cluster") {
        if contains(body, b"\"clusterInfo\"") {
            let version = json_string(body, "resourceManagerVersion");
            return Some((Service::Yarn, "Hadoop YARN", version));
        }
        if contains(body, b"\"application-id\"") || contains(body, b"\"apps\"") {
            return Some((Service::Yarn, "Hadoop YARN", None));
        }
    }
    None
}

/// What a 200 answer at `stage` gave without authentication, for
/// `service`.
fn open_access(service: Service, tx: &Transaction, stage: HttpStage) -> Option<&'static str> {
    if tx.request.header(b"authorization").is_some() {
        return None;
    }
    let path = path(tx);
    let headers = stage == HttpStage::ResponseHeaders;
    let (found, what) = match service {
        Service::Docker => {
            // `/containers/json`, or with an API version before it.
            let versioned = path
                .strip_prefix(b"/v1.")
                .and_then(|rest| rest.iter().position(|&b| b == b'/').map(|i| &rest[i..]));
            let listed = versioned.unwrap_or(path) == b"/containers/json";
            (headers && listed, "docker /containers/json")
        }
        Service::Elasticsearch => (headers && path.starts_with(b"/_cat"), "elasticsearch _cat"),
        Service::Kubelet => (
            path == b"/pods" || path.starts_with(b"/runningpods"),
            "kubelet /pods",
        ),
        Service::Etcd => (
            headers && (path.starts_with(b"/v2/keys") || path.starts_with(b"/v3/kv/range")),
            "etcd keys",
        ),
        Service::Yarn => (
            path.ends_with(b"/new-application") && tx.method == b"POST",
            "yarn new-application",
        ),
        Service::Jenkins => (
            headers && (path == b"/script" || path == b"/scriptText"),
            "jenkins script console",
        ),
        _ => (false, ""),
    };
    found.then_some(what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applayer::http::Message;

    fn tx(
        method: &str,
        uri: &str,
        status: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Transaction {
        let mut tx = Transaction::default();
        tx.method = method.as_bytes().to_vec();
        tx.uri = uri.as_bytes().to_vec();
        tx.uri_raw = uri.as_bytes().to_vec();
        tx.status = status.as_bytes().to_vec();
        tx.response = Message {
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            body: body.as_bytes().to_vec(),
            ..Message::default()
        };
        tx
    }

    fn read(txs: &[Transaction]) -> Option<ServiceSummary> {
        let mut summary = None;
        for tx in txs {
            transaction(&mut summary, tx, HttpStage::ResponseHeaders, 1);
            transaction(&mut summary, tx, HttpStage::ResponseBody, 1);
        }
        summary
    }

    #[test]
    fn docker_listing_containers_unauthenticated() {
        let s = read(&[tx(
            "GET",
            "/v1.43/containers/json?all=1",
            "200",
            &[("Server", "Docker/24.0.5 (linux)"), ("Api-Version", "1.43")],
            "[]",
        )])
        .unwrap();
        assert_eq!(
            (s.service, s.version.as_deref(), s.open_access),
            (
                Service::Docker,
                Some("24.0.5"),
                Some("docker /containers/json")
            )
        );
    }

    #[test]
    fn elasticsearch_by_tagline_then_cat() {
        let root = tx(
            "GET",
            "/",
            "200",
            &[],
            r#"{ "name" : "n1", "version" : { "number" : "7.10.2" }, "tagline" : "You Know, for Search" }"#,
        );
        let cat = tx("GET", "/_cat/indices", "200", &[], "green open logs");
        let s = read(&[root, cat]).unwrap();
        assert_eq!(
            (s.service, s.version.as_deref(), s.open_access),
            (
                Service::Elasticsearch,
                Some("7.10.2"),
                Some("elasticsearch _cat")
            )
        );
    }

    #[test]
    fn a_refused_request_is_authentication_not_access() {
        let s = read(&[tx("GET", "/script", "401", &[("X-Jenkins", "2.414.1")], "")]).unwrap();
        assert_eq!(
            (s.service, s.version.as_deref(), s.auth, s.open_access),
            (Service::Jenkins, Some("2.414.1"), true, None)
        );
    }

    #[test]
    fn ordinary_web_servers_are_no_service() {
        assert!(read(&[tx(
            "GET",
            "/",
            "200",
            &[("Server", "nginx")],
            r#"{"version":"1"}"#
        )])
        .is_none());
        assert!(read(&[tx("GET", "/_cat/indices", "200", &[], "x")]).is_none());
    }
}
