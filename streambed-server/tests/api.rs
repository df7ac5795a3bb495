//! The HTTP API of the server, spoken directly (no streambed client) as another language
//! would: exact JSON, status codes and streaming behaviour.

mod common;

use std::time::Duration;

use common::TestServer;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use streambed::commit_log::{CommitLog, Topic};
use streambed_server::{memory::MemoryLog, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn record_json(topic: &str, key: u64, value: &str) -> Value {
    json!({"topic": topic, "headers": [], "timestamp": null, "key": key, "value": value, "partition": 0})
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{status}"
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn offsets_of_an_unknown_topic_are_404_then_the_range_once_written() {
    let log = MemoryLog::new();
    let server = TestServer::start(log.clone(), ServerConfig::default()).await;
    let client = Client::new();
    let url = server.endpoint("/topics/ns:t/partitions/0/offsets");

    let (status, body) = json_of(client.get(&url).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], 404);
    assert!(body["message"].as_str().unwrap().contains("ns:t"), "{body}");

    let produced = client
        .post(server.endpoint("/topics/ns:t"))
        .json(&json!({"records": [record_json("ns:t", 1, "YQ=="), record_json("ns:t", 2, "Yg==")]}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(produced).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"offsets": [{"offset": 0}, {"offset": 1}]}));

    let (status, body) = json_of(client.get(&url).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"beginning_offset": 0, "end_offset": 1}));
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_4xx_with_a_json_body_and_write_nothing() {
    let log = MemoryLog::new();
    let config = ServerConfig {
        max_body_size: 1024,
        ..ServerConfig::default()
    };
    let server = TestServer::start(log.clone(), config).await;
    let client = Client::new();
    let post = |path: &str, body: Vec<u8>| client.post(server.endpoint(path)).body(body).send();

    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "/topics/t",
            b"{\"records\": [".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            "/topics/t",
            b"{\"records\": [{\"topic\": \"t\xff\"}]}".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed JSON: not UTF-8",
        ),
        (
            "/topics/t",
            b"{\"records\": 3}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid request",
        ),
        (
            "/topics/t",
            json!({"records": [record_json("t", 1, "!!")]})
                .to_string()
                .into_bytes(),
            StatusCode::BAD_REQUEST,
            "base64",
        ),
        (
            "/topics/t",
            json!({"records": [record_json("t", 1, "YQ=="), record_json("u", 1, "YQ==")]})
                .to_string()
                .into_bytes(),
            StatusCode::BAD_REQUEST,
            "posted to topic",
        ),
        (
            "/topics/a%2F..%2Fb",
            json!({"records": [record_json("a/../b", 1, "YQ==")]})
                .to_string()
                .into_bytes(),
            StatusCode::BAD_REQUEST,
            "contains '/'",
        ),
        (
            "/topics/t",
            vec![b' '; 2048],
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than 1024",
        ),
        (
            "/consumers/g",
            b"{}".to_vec(),
            StatusCode::BAD_REQUEST,
            "subscriptions",
        ),
        (
            "/consumers/g",
            br#"{"subscriptions": []}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "at least one subscription",
        ),
        (
            "/consumers/g",
            br#"{"subscriptions": [{"topic": "ns:x:y"}]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "topic name",
        ),
        (
            "/nowhere",
            b"{}".to_vec(),
            StatusCode::NOT_FOUND,
            "no such resource",
        ),
    ];
    for (path, body, expected, message) in cases {
        let (status, reply) = json_of(post(path, body).await.unwrap()).await;
        assert_eq!(status, expected, "{path}: {reply}");
        assert_eq!(reply["error_code"], expected.as_u16(), "{reply}");
        assert!(
            reply["message"].as_str().unwrap().contains(message),
            "{path}: {reply}"
        );
    }

    let (status, _) = json_of(
        client
            .get(server.endpoint("/topics/t/partitions/zero/offsets"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = json_of(
        client
            .get(server.endpoint("/topics/t"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    assert_eq!(log.offsets(Topic::from("t"), 0).await, None);
    assert_eq!(log.offsets(Topic::from("u"), 0).await, None);
    server.stop().await;
}

#[tokio::test]
async fn a_record_for_a_partition_other_than_0_is_refused_with_400_and_nothing_written() {
    // Found by the `server_request` fuzz target: the log's refusal was answered with 500.
    let log = MemoryLog::new();
    let server = TestServer::start(log.clone(), ServerConfig::default()).await;
    let mut stray = record_json("t", 2, "Yg==");
    stray["partition"] = json!(5);
    let response = Client::new()
        .post(server.endpoint("/topics/t"))
        .json(&json!({"records": [record_json("t", 1, "YQ=="), stray]}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("partition 5"),
        "{body}"
    );
    assert_eq!(log.offsets(Topic::from("t"), 0).await, None);
    server.stop().await;
}

#[tokio::test]
async fn a_body_streamed_beyond_the_limit_without_a_length_is_refused_with_413() {
    let server = TestServer::start_memory(ServerConfig {
        max_body_size: 1000,
        ..ServerConfig::default()
    })
    .await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..10).map(|_| Ok(vec![b' '; 200])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = common::post(&server, "/topics/t", body).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}

#[tokio::test]
async fn garbage_on_one_connection_leaves_other_clients_served() {
    let server = TestServer::start(MemoryLog::new(), ServerConfig::default()).await;
    let mut raw = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    raw.write_all(b"\x00\x01 not http at all\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer).await;

    let response = Client::new()
        .get(server.endpoint("/topics/t/partitions/0/offsets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

/// Reads a consumer response until `count` newline-terminated values have arrived.
async fn read_lines(response: &mut reqwest::Response, count: usize) -> Vec<Value> {
    let mut buffer = Vec::new();
    let mut values = Vec::new();
    while values.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("no record within 10 s")
            .unwrap()
            .expect("stream ended");
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            values.push(serde_json::from_slice(&line[..line.len() - 1]).unwrap());
        }
    }
    assert!(buffer.is_empty(), "a value not ended by a newline");
    values
}

#[tokio::test]
async fn consumers_get_records_after_their_offsets_one_json_line_each_then_live_ones() {
    let log = MemoryLog::new();
    let server = TestServer::start(log.clone(), ServerConfig::default()).await;
    let client = Client::new();
    let records: Vec<Value> = (0..3).map(|k| record_json("ns:t", k, "YQ==")).collect();
    client
        .post(server.endpoint("/topics/ns:t"))
        .json(&json!({ "records": records }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let mut response = client
        .post(server.endpoint("/consumers/group-1"))
        .json(&json!({
            "offsets": [{"topic": "ns:t", "partition": 0, "offset": 0}],
            "subscriptions": [{"topic": "ns:t"}, {"topic": "ns:other"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let history = read_lines(&mut response, 2).await;
    assert_eq!(
        history[0],
        json!({"topic": "ns:t", "headers": [], "timestamp": null, "key": 1, "value": "YQ==",
               "partition": 0, "offset": 1})
    );
    assert_eq!(history[1]["offset"], 2);

    client
        .post(server.endpoint("/topics/ns:other"))
        .json(&json!({ "records": [record_json("ns:other", 9, "Yg==")] }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let live = read_lines(&mut response, 1).await;
    assert_eq!(
        (live[0]["topic"].as_str(), &live[0]["offset"]),
        (Some("ns:other"), &json!(0))
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_consumer_streams_so_it_completes_promptly() {
    let log = MemoryLog::new();
    let server = TestServer::start(
        log,
        ServerConfig {
            shutdown_grace_period: Duration::from_secs(30),
            ..ServerConfig::default()
        },
    )
    .await;
    let mut response = common::subscribe(&server, "t").await;
    assert_eq!(response.status(), StatusCode::OK);
    // Well within the grace period: the stream ends instead of holding the shutdown.
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("shutdown waited for the consumer stream");
    assert!(matches!(response.chunk().await, Ok(None)));
}

#[tokio::test]
async fn an_idle_consumer_stream_gets_newline_heartbeats_between_records() {
    let log = MemoryLog::new();
    let server = TestServer::start(
        log.clone(),
        ServerConfig {
            consumer_heartbeat: Some(Duration::from_millis(20)),
            ..ServerConfig::default()
        },
    )
    .await;
    let mut response = common::subscribe(&server, "t").await;
    for _ in 0..2 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(&chunk[..], b"\n");
    }
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_ends() {
    let server = TestServer::start_memory(ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    })
    .await;
    let stream = common::subscribe(&server, "t").await;
    let waiting = tokio::spawn(
        Client::new()
            .get(server.endpoint("/topics/t/partitions/0/offsets"))
            .send(),
    );
    // A negative check: nothing can answer while the stream holds the only connection.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    drop(stream);
    let answer = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served once the stream closed")
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

/// Serves `log` and posts one request of `count` records (keys 0, 1, …) to topic `t`.
async fn post_records<CL: CommitLog + 'static>(log: CL, count: u64) -> (StatusCode, Value) {
    let server = TestServer::start(log, ServerConfig::default()).await;
    let records: Vec<Value> = (0..count)
        .map(|key| record_json("t", key, "dg=="))
        .collect();
    let body = json!({ "records": records }).to_string();
    json_of(common::post(&server, "/topics/t", body).await).await
}

/// A log that appends its first `room` records (to a `MemoryLog`) and fails every one after.
#[derive(Clone)]
struct FullAfter {
    log: MemoryLog,
    room: u64,
}

#[async_trait::async_trait]
impl CommitLog for FullAfter {
    async fn offsets(
        &self,
        topic: Topic,
        partition: u32,
    ) -> Option<streambed::commit_log::PartitionOffsets> {
        self.log.offsets(topic, partition).await
    }

    async fn produce(
        &self,
        record: streambed::commit_log::ProducerRecord,
    ) -> Result<streambed::commit_log::ProducedOffset, streambed::commit_log::ProducerError> {
        let used = self
            .log
            .offsets(record.topic.clone(), 0)
            .await
            .map_or(0, |o| o.end_offset + 1);
        if used >= self.room {
            return Err(streambed::commit_log::ProducerError::CannotProduce);
        }
        self.log.produce(record).await
    }

    fn scoped_subscribe<'a>(
        &'a self,
        group: &str,
        offsets: Vec<streambed::commit_log::ConsumerOffset>,
        subscriptions: Vec<streambed::commit_log::Subscription>,
        idle_timeout: Option<Duration>,
    ) -> std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = streambed::commit_log::ConsumerRecord> + Send + 'a>,
    > {
        self.log
            .scoped_subscribe(group, offsets, subscriptions, idle_timeout)
    }
}

#[tokio::test]
async fn a_log_failing_part_way_through_a_request_answers_500_with_the_offsets_appended() {
    let log = FullAfter {
        log: MemoryLog::new(),
        room: 2,
    };
    let (status, body) = post_records(log.clone(), 4).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body["offsets"],
        json!([{"offset": 0}, {"offset": 1}]),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("record 3 of 4"),
        "{body}"
    );
    let offsets = log.offsets(Topic::from("t"), 0).await.unwrap();
    assert_eq!(offsets.end_offset, 1);
}

#[tokio::test]
async fn a_batched_request_to_a_file_log_is_appended_whole_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = streambed_logged::FileLog::new(dir.path());
    let (status, body) = post_records(log.clone(), 100).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let offsets: Vec<u64> = body["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, (0..100).collect::<Vec<_>>());
    use tokio_stream::StreamExt;
    let read: Vec<u64> = log
        .scoped_subscribe(
            "test",
            vec![],
            vec![streambed::commit_log::Subscription {
                topic: Topic::from("t"),
            }],
            Some(Duration::from_millis(200)),
        )
        .map(|r| r.key)
        .collect()
        .await;
    assert_eq!(read, (0..100).collect::<Vec<_>>());
}
