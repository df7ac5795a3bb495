//! Quotas, provenance and metrics of a `Server` built with them, over HTTP on loopback.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use streambed::commit_log::CommitLog;
use streambed_server::{
    memory::MemoryLog,
    provenance::ProvenanceHeader,
    quota::{QuotaConfig, RateLimit},
    Server, ServerConfig,
};
use streambed_test::records::{read_topic, record};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

/// A server running on a free loopback port until dropped.
struct Running {
    address: SocketAddr,
    _stop: oneshot::Sender<()>,
    _task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(server: Server<MemoryLog>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            address,
            _stop: stop,
            _task: task,
        }
    }

    fn endpoint(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn produce(&self, topic: &str, records: Value) -> (StatusCode, Value) {
        let response = Client::new()
            .post(self.endpoint(&format!("/topics/{topic}")))
            .json(&json!({ "records": records }))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn subscribe(&self, topic: &str) -> reqwest::Response {
        Client::new()
            .post(self.endpoint("/consumers/g"))
            .json(&json!({"subscriptions": [{"topic": topic}]}))
            .send()
            .await
            .unwrap()
    }
}

fn record_json(topic: &str, key: u64, headers: Value) -> Value {
    json!({"topic": topic, "headers": headers, "timestamp": null, "key": key, "value": "YQ==", "partition": 0})
}

fn quotas(change: impl FnOnce(&mut QuotaConfig)) -> QuotaConfig {
    let mut quotas = QuotaConfig::unlimited();
    change(&mut quotas);
    quotas
}

/// Opens a consumer stream of `topic` on a raw connection with a tiny receive buffer and
/// waits for the head of its answer; the stream is what the caller then reads, or not.
async fn raw_consumer(address: SocketAddr, topic: &str) -> (TcpStream, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    let body = json!({"subscriptions": [{"topic": topic}]}).to_string();
    let request = format!(
        "POST /consumers/raw HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0; 16];
    let read = stream.read(&mut head).await.unwrap();
    (stream, String::from_utf8_lossy(&head[..read]).into_owned())
}

/// Retries opening a consumer stream until one is allowed, and says how long it took.
async fn wait_for_stream(server: &Running, topic: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let response = server.subscribe(topic).await;
        if response.status() == StatusCode::OK {
            return started.elapsed();
        }
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            started.elapsed() < within,
            "no stream place freed within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_beyond_the_quota_gets_429_until_the_client_holding_one_disconnects() {
    let config = quotas(|q| q.max_streams_per_principal = Some(1));
    let server =
        Running::start(Server::new(MemoryLog::new(), ServerConfig::default()).with_quotas(config))
            .await;
    let (first, head) = raw_consumer(server.address, "t").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    let refused = server.subscribe("t").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["message"],
        "127.0.0.1 already has 1 consumer streams open, the most allowed"
    );

    // The client vanishes without a word: its place is given back.
    drop(first);
    wait_for_stream(&server, "t", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_gives_its_stream_place_back_after_the_write_timeout() {
    let log = MemoryLog::new();
    // 32 MiB of records: far more than the socket buffers between server and client.
    for key in 0..64 {
        log.produce(record("big", key, vec![b'x'; 512 * 1024]))
            .await
            .unwrap();
    }
    let config = ServerConfig {
        write_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let quotas = quotas(|q| q.max_streams_per_principal = Some(1));
    let server = Running::start(Server::new(log, config).with_quotas(quotas)).await;
    // Connected, answered, then never read again.
    let (_stalled, head) = raw_consumer(server.address, "big").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    assert_eq!(
        server.subscribe("small").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let waited = wait_for_stream(&server, "small", Duration::from_secs(20)).await;
    eprintln!("the stalled consumer's place was freed after {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_rate_get_429_with_retry_after_and_health_is_never_limited() {
    let config = quotas(|q| {
        q.rate_limit = Some(RateLimit {
            per_second: 2,
            burst: 3,
            max_tracked: 16,
        })
    });
    let server =
        Running::start(Server::new(MemoryLog::new(), ServerConfig::default()).with_quotas(config))
            .await;
    let client = Client::new();
    let offsets = server.endpoint("/topics/t/partitions/0/offsets");
    for _ in 0..3 {
        let admitted = client.get(&offsets).send().await.unwrap();
        assert_eq!(admitted.status(), StatusCode::NOT_FOUND, "an empty topic");
    }
    let limited = client.get(&offsets).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "1");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error_code"], 429);
    assert_eq!(
        body["message"],
        "too many requests from 127.0.0.1; retry in 1 s"
    );
    // Produce and consume count against the same rate.
    let (status, _) = server
        .produce("t", json!([record_json("t", 1, json!([]))]))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        server.subscribe("t").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    for _ in 0..20 {
        let health = client.get(server.endpoint("/health")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let admitted = client.get(&offsets).send().await.unwrap();
    assert_eq!(
        admitted.status(),
        StatusCode::NOT_FOUND,
        "admitted once more"
    );
}

/// Asks for a topic's offsets from source address `from`, and says whether the rate limit
/// let it through.
async fn admitted_from(server: &Running, from: std::net::IpAddr) -> bool {
    let client = Client::builder().local_address(from).build().unwrap();
    let response = client
        .get(server.endpoint("/topics/t/partitions/0/offsets"))
        .send()
        .await
        .unwrap();
    match response.status() {
        StatusCode::NOT_FOUND => true,
        StatusCode::TOO_MANY_REQUESTS => false,
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_address_has_its_own_rate_until_the_table_is_full_then_newcomers_share_one() {
    let config = quotas(|q| {
        q.rate_limit = Some(RateLimit {
            per_second: 1,
            burst: 1,
            max_tracked: 16,
        })
    });
    let server =
        Running::start(Server::new(MemoryLog::new(), ServerConfig::default()).with_quotas(config))
            .await;
    let started = Instant::now();
    let a = [127, 0, 0, 2].into();
    assert!(admitted_from(&server, a).await);
    assert!(!admitted_from(&server, a).await, "a's burst of 1 is spent");
    assert!(
        admitted_from(&server, [127, 0, 0, 3].into()).await,
        "another address has its own bucket"
    );

    // 300 more distinct addresses: a table without a cap would admit every one.
    let mut admitted = 0;
    for n in 0..300u32 {
        let address = [127, 0, 1 + (n / 250) as u8, 1 + (n % 250) as u8].into();
        if admitted_from(&server, address).await {
            admitted += 1;
        }
    }
    // At most one bucket per shard (16) at a time, each shard sweeping idle buckets at
    // most once a second, plus the shared bucket's one token a second.
    let seconds = started.elapsed().as_secs() + 1;
    eprintln!("{admitted} of 300 new addresses admitted within {seconds} s");
    assert!(
        admitted <= 17 * seconds,
        "{admitted} of 300 new addresses admitted within {seconds} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_beyond_the_total_quota_are_not_created_but_existing_ones_take_records() {
    let log = MemoryLog::new();
    log.produce(record("old", 0, b"a".as_slice()))
        .await
        .unwrap();
    let config = quotas(|q| q.max_topics = Some(2));
    let server =
        Running::start(Server::new(log.clone(), ServerConfig::default()).with_quotas(config)).await;

    for topic in ["old", "new", "old", "new"] {
        let (status, body) = server
            .produce(topic, json!([record_json(topic, 1, json!([]))]))
            .await;
        assert_eq!(status, StatusCode::OK, "{topic}: {body}");
    }
    let (status, body) = server
        .produce("third", json!([record_json("third", 1, json!([]))]))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        "the server holds its maximum of 2 topics; topic third does not exist"
    );
    assert!(log.offsets("third".into(), 0).await.is_none());
    // An empty produce creates nothing, so it is no creation either.
    let (status, body) = server.produce("third", json!([])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_may_create_only_its_quota_of_topics() {
    let config = quotas(|q| q.max_topics_per_principal = Some(1));
    let server =
        Running::start(Server::new(MemoryLog::new(), ServerConfig::default()).with_quotas(config))
            .await;
    let (status, _) = server
        .produce("a", json!([record_json("a", 1, json!([]))]))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .produce("b", json!([record_json("b", 1, json!([]))]))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        "127.0.0.1 may create at most 1 topics and has; topic b does not exist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_stamped_with_their_producer_and_a_forged_stamp_is_refused() {
    let log = MemoryLog::new();
    let header = ProvenanceHeader::new("streambed-principal").unwrap();
    let server = Running::start(
        Server::new(log.clone(), ServerConfig::default()).with_provenance_header(header),
    )
    .await;
    let other = json!([{"key": "other", "value": "eA=="}]);
    let (status, body) = server
        .produce("t", json!([record_json("t", 1, other)]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let forged = json!([{"key": "Streambed-Principal", "value": "YWRtaW4="}]);
    let (status, body) = server
        .produce(
            "t",
            json!([record_json("t", 2, json!([])), record_json("t", 3, forged)]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "record 2 sets header \"Streambed-Principal\", which only the server may set"
    );

    let records = read_topic(&log, "t", Duration::from_millis(200)).await;
    assert_eq!(records.len(), 1, "the refused request appended nothing");
    let headers: Vec<(&str, &[u8])> = records[0]
        .headers
        .iter()
        .map(|h| (h.key.as_str(), h.value.as_slice()))
        .collect();
    assert_eq!(
        headers,
        [
            ("other", b"x".as_slice()),
            ("streambed-principal", b"127.0.0.1".as_slice())
        ]
    );
}

#[cfg(feature = "prometheus")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_records_streams_errors_and_refusals() {
    use streambed_server::metrics_exporter_prometheus::PrometheusBuilder;

    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let config = quotas(|q| q.max_streams_per_principal = Some(1));
    let server = metrics::with_local_recorder(&recorder, || {
        Server::new(MemoryLog::new(), ServerConfig::default())
            .with_quotas(config)
            .with_metrics(handle)
    });
    let server = Running::start(server).await;
    let records = json!([
        record_json("t", 1, json!([])),
        record_json("t", 2, json!([]))
    ]);
    assert_eq!(server.produce("t", records).await.0, StatusCode::OK);
    let mut stream = server.subscribe("t").await;
    assert_eq!(stream.status(), StatusCode::OK);
    let mut received = 0;
    while received < 2 {
        let chunk = stream.chunk().await.unwrap().unwrap();
        received += chunk.iter().filter(|b| **b == b'\n').count();
    }
    assert_eq!(
        server.subscribe("t").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let client = Client::new();
    let missing = client
        .get(server.endpoint("/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let metrics = client
        .get(server.endpoint("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = metrics.text().await.unwrap();
    for line in [
        "streambed_http_requests_total{route=\"produce\"} 1",
        "streambed_http_requests_total{route=\"consume\"} 2",
        "streambed_http_requests_total{route=\"other\"} 1",
        "streambed_http_errors_total{status=\"404\"} 1",
        "streambed_http_errors_total{status=\"429\"} 1",
        "streambed_records_produced_total 2",
        "streambed_records_consumed_total 2",
        // Each value is the one byte "a".
        "streambed_bytes_produced_total 2",
        "streambed_bytes_consumed_total 2",
        "streambed_consumer_streams_open 1",
        "streambed_refused_total{reason=\"stream_quota\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    assert!(
        !text.contains("\"t\""),
        "a topic name became a label:\n{text}"
    );

    drop(stream);
    let started = Instant::now();
    while !handle_text(&server)
        .await
        .contains("streambed_consumer_streams_open 0")
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the stream never closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(feature = "prometheus")]
async fn handle_text(server: &Running) -> String {
    Client::new()
        .get(server.endpoint("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_metrics_the_metrics_route_is_absent_and_health_answers() {
    let server = Running::start(Server::new(MemoryLog::new(), ServerConfig::default())).await;
    let client = Client::new();
    let metrics = client
        .get(server.endpoint("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::NOT_FOUND);
    let health = client.get(server.endpoint("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.headers()["content-type"], "application/json");
    assert_eq!(health.text().await.unwrap(), r#"{"status":"ok"}"#);
}
