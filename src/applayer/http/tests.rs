use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use super::*;

/// Stages seen, with the buffers they carried.
#[derive(Default)]
struct Seen {
    stages: Vec<(HttpStage, Vec<u8>)>,
}

impl Seen {
    fn on(&mut self) -> impl FnMut(&Transaction, HttpStage) + '_ {
        |tx, stage| {
            let what = match stage {
                HttpStage::RequestHeaders => tx.uri.clone(),
                HttpStage::RequestBody => tx.request.body.clone(),
                HttpStage::ResponseHeaders => tx.status.clone(),
                HttpStage::ResponseBody => tx.response.body.clone(),
            };
            self.stages.push((stage, what));
        }
    }
}

fn feed(flow: &mut HttpFlow, seen: &mut Seen, dir: usize, bytes: &[u8]) {
    flow.data(dir, bytes, &HttpLimits::default(), &mut seen.on());
}

#[test]
fn request_and_response_split_over_chunks() {
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    feed(&mut flow, &mut seen, 0, b"GET /a?b=1 HT");
    feed(
        &mut flow,
        &mut seen,
        0,
        b"TP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\n\r\n",
    );
    feed(
        &mut flow,
        &mut seen,
        1,
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    );
    let s = flow.summary();
    assert_eq!(s.method.as_deref(), Some("GET"));
    assert_eq!(s.uri.as_deref(), Some("/a?b=1"));
    assert_eq!(s.host.as_deref(), Some("example.com"));
    assert_eq!(s.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(s.status, Some(404));
    assert!(s.is_http());
    assert_eq!(
        seen.stages,
        [
            (HttpStage::RequestHeaders, b"/a?b=1".to_vec()),
            (HttpStage::ResponseHeaders, b"404".to_vec())
        ]
    );
    assert!(flow.txs.is_empty(), "a finished transaction is let go");
}

#[test]
fn interim_continue_is_skipped_for_the_final_status() {
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    feed(
        &mut flow,
        &mut seen,
        0,
        b"POST /ipp/ HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    feed(
        &mut flow,
        &mut seen,
        1,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 20",
    );
    feed(&mut flow, &mut seen, 0, b"data");
    feed(
        &mut flow,
        &mut seen,
        1,
        b"0 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    assert_eq!(flow.summary().status, Some(200));
    let stages: Vec<_> = seen.stages.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        stages,
        [
            HttpStage::RequestHeaders,
            HttpStage::RequestBody,
            HttpStage::ResponseHeaders,
            HttpStage::ResponseBody
        ]
    );
    let mut upgrade = HttpFlow::default();
    feed(&mut upgrade, &mut seen, 0, b"GET /ws HTTP/1.1\r\n\r\n");
    feed(
        &mut upgrade,
        &mut seen,
        1,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    );
    assert_eq!(upgrade.summary().status, Some(101));
    assert!(
        upgrade.is_done(),
        "after a protocol switch nothing is parsed"
    );
}

#[test]
fn webdav_methods_are_requests_and_http2_prefaces_are_not() {
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    feed(
        &mut flow,
        &mut seen,
        0,
        b"MKCOL /webdav HTTP/1.1\r\nHost: dav\r\nUser-Agent: curl/7.68.0\r\n\r\n",
    );
    feed(
        &mut flow,
        &mut seen,
        1,
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(flow.summary().method.as_deref(), Some("MKCOL"));
    assert_eq!(flow.summary().status, Some(401));
    assert!(looks_like_http(b"PROPFIND / HTTP/1.1\r\n"));
    assert!(!looks_like_http(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
}

#[test]
fn other_protocols_are_given_up_at_once() {
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    feed(&mut flow, &mut seen, 0, b"\x16\x03\x01\x02\x00");
    feed(&mut flow, &mut seen, 1, b"SSH-2.0-OpenSSH\r\n");
    assert!(flow.is_done());
    assert!(!flow.summary().is_http());
    assert!(seen.stages.is_empty());
}

#[test]
fn endless_headers_stop_at_the_bound() {
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    feed(&mut flow, &mut seen, 0, b"GET / HTTP/1.1\r\n");
    for _ in 0..2_000 {
        feed(&mut flow, &mut seen, 0, b"X-Pad: aaaaaaaaaaaaaaaaaaaa\r\n");
        assert!(flow.sides[0].head.len() <= MAX_HEADER_BYTES);
    }
    assert!(matches!(flow.sides[0].phase, Phase::Stopped));
    assert_eq!(flow.limited().heads, 1, "counted once");
}

#[test]
fn pipelined_requests_pair_with_responses_in_order() {
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    feed(
        &mut flow,
        &mut seen,
        0,
        b"GET /one HTTP/1.1\r\nHost: a\r\n\r\nPOST /two HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHEAD /three HTTP/1.1\r\n\r\n",
    );
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(b"second body").unwrap();
    let gz = gz.finish().unwrap();
    let mut responses = Vec::new();
    responses.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
    responses.extend_from_slice(
        format!(
            "HTTP/1.1 201 Created\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            gz.len()
        )
        .as_bytes(),
    );
    responses.extend_from_slice(&gz);
    responses.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n");
    for byte in responses.chunks(7) {
        feed(&mut flow, &mut seen, 1, byte);
    }
    let got: Vec<(HttpStage, String)> = seen
        .stages
        .iter()
        .map(|(s, b)| (*s, String::from_utf8_lossy(b).into_owned()))
        .collect();
    let want: Vec<(HttpStage, String)> = [
        (HttpStage::RequestHeaders, "/one"),
        (HttpStage::RequestHeaders, "/two"),
        (HttpStage::RequestBody, "abc"),
        (HttpStage::RequestHeaders, "/three"),
        (HttpStage::ResponseHeaders, "200"),
        (HttpStage::ResponseBody, "first"),
        (HttpStage::ResponseHeaders, "201"),
        (HttpStage::ResponseBody, "second body"),
        (HttpStage::ResponseHeaders, "200"),
    ]
    .into_iter()
    .map(|(s, b)| (s, b.to_owned()))
    .collect();
    assert_eq!(got, want, "HEAD's answer has no body despite its length");
    assert!(flow.txs.is_empty());
}

#[test]
fn body_until_close_is_given_when_the_direction_ends() {
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    feed(&mut flow, &mut seen, 0, b"GET / HTTP/1.0\n\n");
    feed(
        &mut flow,
        &mut seen,
        1,
        b"HTTP/1.0 200 OK\nServer: x\n\nall of ",
    );
    feed(&mut flow, &mut seen, 1, b"it");
    assert_eq!(seen.stages.len(), 2);
    flow.close(1, &HttpLimits::default(), &mut seen.on());
    assert_eq!(
        seen.stages[2],
        (HttpStage::ResponseBody, b"all of it".to_vec())
    );
}

#[test]
fn folded_headers_and_loose_spacing_are_read() {
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    feed(
        &mut flow,
        &mut seen,
        0,
        b"GET  http://Example.COM:8080/a/../b%41  HTTP/1.1\r\nHost : Example.COM:8080\r\nX-Long: one\r\n  two\r\n\r\n",
    );
    let tx = flow.txs.front().unwrap();
    assert_eq!(tx.method, b"GET");
    assert_eq!(tx.uri_raw, b"http://Example.COM:8080/a/../b%41");
    assert_eq!(tx.uri, b"/bA");
    assert_eq!(tx.host, b"example.com");
    assert_eq!(tx.request.header(b"x-long"), Some(&b"one two"[..]));
    assert_eq!(
        tx.request.header_block,
        b"Host: Example.COM:8080\r\nX-Long: one two\r\n"
    );
}

#[test]
fn bodies_are_shown_in_overlapping_windows_of_the_limit() {
    let limits = HttpLimits {
        request_body: 10,
        ..HttpLimits::default()
    };
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    flow.data(
        0,
        b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n",
        &limits,
        &mut seen.on(),
    );
    let body: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
    for piece in body.chunks(7) {
        flow.data(0, piece, &limits, &mut seen.on());
    }
    flow.data(0, b"GET /next HTTP/1.1\r\n\r\n", &limits, &mut seen.on());
    let windows: Vec<&Vec<u8>> = seen
        .stages
        .iter()
        .filter(|(s, _)| *s == HttpStage::RequestBody)
        .map(|(_, b)| b)
        .collect();
    assert!(windows.len() > 1 && windows.iter().all(|w| w.len() <= 10 + 7));
    // Every 10 bytes of the body are inside some window.
    for start in 0..=90 {
        let part = &body[start..start + 5];
        assert!(
            windows.iter().any(|w| w.windows(5).any(|x| x == part)),
            "bytes at {start}"
        );
    }
    assert_eq!(windows.last().unwrap().last(), Some(&body[99]));
    assert_eq!(seen.stages.last().unwrap().1, b"/next");
}

#[test]
fn a_compressed_body_is_shown_once_up_to_the_limit() {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&b"0123456789".repeat(100)).unwrap();
    let gz = gz.finish().unwrap();
    let limits = HttpLimits {
        response_body: 64,
        ..HttpLimits::default()
    };
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    flow.data(0, b"GET / HTTP/1.1\r\n\r\n", &limits, &mut seen.on());
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    );
    flow.data(1, head.as_bytes(), &limits, &mut seen.on());
    flow.data(1, &gz, &limits, &mut seen.on());
    let bodies: Vec<_> = seen
        .stages
        .iter()
        .filter(|(s, _)| *s == HttpStage::ResponseBody)
        .collect();
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].1.starts_with(b"0123456789") && bodies[0].1.len() <= 64);
    assert_eq!(
        flow.limited().decoded_bodies,
        1,
        "decoding stopped at the limit"
    );
}

#[test]
fn response_without_status_line_is_an_http09_body() {
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    feed(&mut flow, &mut seen, 0, b"GET /x\r\n");
    feed(&mut flow, &mut seen, 1, b"<html>hello");
    flow.close(1, &HttpLimits::default(), &mut seen.on());
    assert_eq!(
        seen.stages.last().unwrap(),
        &(HttpStage::ResponseBody, b"<html>hello".to_vec())
    );
}

#[test]
fn a_head_cut_short_is_read_when_the_direction_ends() {
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    feed(
        &mut flow,
        &mut seen,
        0,
        b"POST /x%20y HTTP/1.0\r\nUser-Agent: m\r\n",
    );
    assert!(seen.stages.is_empty());
    flow.close(0, &HttpLimits::default(), &mut seen.on());
    assert_eq!(seen.stages, [(HttpStage::RequestHeaders, b"/x y".to_vec())]);
    assert_eq!(flow.summary().method.as_deref(), Some("POST"));
}

#[test]
fn bodies_a_status_forbids_are_read_only_when_sent() {
    for (status, follows, body) in [
        (
            "304",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            None,
        ),
        ("204", "EICAR...", Some("EICAR...")),
    ] {
        let mut flow = HttpFlow::default();
        let mut seen = Seen::default();
        feed(
            &mut flow,
            &mut seen,
            0,
            b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        );
        let head = format!("HTTP/1.1 {status} x\r\nContent-Length: 8\r\n\r\n");
        feed(&mut flow, &mut seen, 1, head.as_bytes());
        feed(&mut flow, &mut seen, 1, follows.as_bytes());
        let bodies: Vec<_> = seen
            .stages
            .iter()
            .filter(|(s, _)| *s == HttpStage::ResponseBody)
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect();
        match body {
            None => assert_eq!(bodies, ["ok"], "{status}: the next response is not a body"),
            Some(body) => assert_eq!(bodies, [body], "{status}"),
        }
    }
}

#[test]
fn a_body_that_is_not_chunked_after_all_is_read_to_the_end() {
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    feed(&mut flow, &mut seen, 0, b"GET / HTTP/1.0\r\n\r\n");
    feed(
        &mut flow,
        &mut seen,
        1,
        b"HTTP/1.0 200 ok\r\nTransfer-Encoding: chunked\r\n\r\nX5O!P%@AP",
    );
    feed(&mut flow, &mut seen, 1, b"[4\\PZX");
    flow.close(1, &HttpLimits::default(), &mut seen.on());
    assert_eq!(seen.stages.last().unwrap().1, b"X5O!P%@AP[4\\PZX");
}

#[test]
fn junk_before_a_status_line_is_skipped() {
    let mut flow = HttpFlow::default();
    let mut seen = Seen::default();
    feed(&mut flow, &mut seen, 0, b"GET / HTTP/1.1\r\n\r\n");
    feed(
        &mut flow,
        &mut seen,
        1,
        b" SIP/2.0 200 ok\r\n\x00HTTP/1.1 200 ok\rContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!(
        seen.stages[1],
        (HttpStage::ResponseHeaders, b"200".to_vec())
    );
    assert_eq!(seen.stages[2], (HttpStage::ResponseBody, b"hi".to_vec()));
}
