//! Every request a client can send reaches the server's router: whatever the method, path,
//! headers and body, handling must never panic and a bad request must never be answered
//! with a server error (5xx), which would blame the server for the client's mistake.
//!
//! Input layout, like an HTTP/1 request: a first line `METHOD PATH`, header lines
//! `name: value`, an empty line, then the body. Lines end with `\n`; what cannot form a
//! valid method, URI or header is dropped (hyper refuses it before any router sees it).
#![no_main]

use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
use streambed_server::{fuzzing::router, memory::MemoryLog, ServerConfig};
use tower::ServiceExt;

/// A consumer stream is read for at most this many chunks (with time paused, each wait
/// for one ends at once when nothing is ready).
const STREAM_CHUNKS: usize = 4;

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let Some(space) = first.iter().position(|&b| b == b' ') else {
        return;
    };
    let mut request = axum::http::Request::builder()
        .method(&first[..space])
        .uri(&first[space + 1..]);
    for line in lines {
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let value = line[colon + 1..].trim_ascii_start();
            let name = axum::http::HeaderName::from_bytes(&line[..colon]);
            let value = axum::http::HeaderValue::from_bytes(value);
            if let (Ok(name), Ok(value)) = (name, value) {
                request = request.header(name, value);
            }
        }
    }
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return;
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(async {
        let log = MemoryLog::new();
        log.produce(ProducerRecord {
            topic: Topic::from("t"),
            headers: vec![],
            timestamp: None,
            key: 1,
            value: b"v".to_vec(),
            partition: 0,
        })
        .await
        .expect("the memory log takes a record");
        let config = ServerConfig {
            max_body_size: 1024,
            consumer_chunk_size: 64,
            ..ServerConfig::default()
        };
        let (_stop, stopping) = tokio::sync::watch::channel(false);
        let response = router(log, &config, stopping)
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        assert!(!status.is_server_error(), "answered {status}");

        // Consumer streams never end by themselves: read a few chunks, then hang up.
        let mut body = response.into_body();
        for _ in 0..STREAM_CHUNKS {
            match tokio::time::timeout(Duration::from_secs(60), body.frame()).await {
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(error))) => panic!("response body failed: {error}"),
                Ok(None) | Err(_) => break,
            }
        }
    });
});
