//! The client against a stub server that controls every byte and every chunk boundary.

mod stub;

use std::time::Duration;

use streambed::commit_log::{
    CommitLog, Consumer, ConsumerOffset, ConsumerRecord, PartitionOffsets, ProducerError,
    ProducerRecord, Subscription, Topic,
};
use streambed_kafka::{ClientError, KafkaRestCommitLog};
use stub::{end_stream, read_request, respond_json, send_chunk, start_stream};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_stream::StreamExt;

const TOPIC: &str = "default:end-device-events";

fn consumer_record(offset: u64) -> ConsumerRecord {
    ConsumerRecord {
        topic: Topic::from(TOPIC),
        headers: vec![],
        timestamp: None,
        key: offset + 100,
        value: format!("record {offset}").into_bytes(),
        partition: 0,
        offset,
    }
}

fn json(offsets: std::ops::Range<u64>, separator: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for offset in offsets {
        body.extend(serde_json::to_vec(&consumer_record(offset)).unwrap());
        body.extend(separator.as_bytes());
    }
    body
}

fn subscription() -> Vec<Subscription> {
    vec![Subscription {
        topic: Topic::from(TOPIC),
    }]
}

/// Serves one consumer connection whose body is `chunks`, then ends the response.
async fn serve_chunks(listener: TcpListener, chunks: Vec<Vec<u8>>) -> Consumer {
    let (mut stream, _) = listener.accept().await.unwrap();
    let request = read_request(&mut stream).await.unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/consumers/farmo-integrator");
    start_stream(&mut stream).await;
    for chunk in chunks {
        send_chunk(&mut stream, &chunk).await;
        tokio::task::yield_now().await;
    }
    // Held open: the client must end on its idle timeout, not on the end of the body.
    let _ = read_request(&mut stream).await;
    serde_json::from_slice(&request.body).unwrap()
}

async fn consume_chunks(chunks: Vec<Vec<u8>>) -> (Vec<ConsumerRecord>, Consumer) {
    let (listener, url) = stub::listen().await;
    let server = tokio::spawn(serve_chunks(listener, chunks));
    let log = KafkaRestCommitLog::new(url, None, false);
    let offsets = vec![ConsumerOffset {
        topic: Topic::from(TOPIC),
        partition: 0,
        offset: 0,
    }];
    let records = log
        .scoped_subscribe(
            "farmo-integrator",
            offsets,
            subscription(),
            Some(Duration::from_millis(200)),
        )
        .collect::<Vec<_>>()
        .await;
    drop(log);
    (records, server.await.unwrap())
}

#[tokio::test]
async fn values_split_mid_value_across_chunks_are_reassembled() {
    let body = json(1..4, "\n");
    let chunks = body.chunks(7).map(<[u8]>::to_vec).collect();
    let (records, request) = consume_chunks(chunks).await;
    assert_eq!(records, (1..4).map(consumer_record).collect::<Vec<_>>());
    assert_eq!(
        request,
        Consumer {
            offsets: vec![ConsumerOffset {
                topic: Topic::from(TOPIC),
                partition: 0,
                offset: 0
            }],
            subscriptions: subscription(),
        }
    );
}

#[tokio::test]
async fn several_values_in_one_chunk_without_newlines_are_all_delivered() {
    let (records, _) = consume_chunks(vec![json(1..5, "")]).await;
    assert_eq!(records, (1..5).map(consumer_record).collect::<Vec<_>>());
}

#[tokio::test]
async fn values_one_per_chunk_with_newlines_are_delivered() {
    let chunks = (1..4)
        .map(|offset| json(offset..offset + 1, "\n"))
        .collect();
    let (records, _) = consume_chunks(chunks).await;
    assert_eq!(records, (1..4).map(consumer_record).collect::<Vec<_>>());
}

#[tokio::test]
async fn chunks_holding_the_end_of_one_value_and_the_start_of_the_next_are_delivered() {
    let body = json(1..6, "\r\n");
    let third = body.len() / 3;
    let chunks = vec![
        body[..third].to_vec(),
        body[third..2 * third].to_vec(),
        body[2 * third..].to_vec(),
    ];
    let (records, _) = consume_chunks(chunks).await;
    assert_eq!(records, (1..6).map(consumer_record).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_dropped_stream_resumes_after_the_last_delivered_offset_without_duplicates() {
    let (listener, url) = stub::listen().await;
    let (requests, mut seen) = mpsc::unbounded_channel::<Consumer>();
    let server = tokio::spawn(async move {
        // First connection: records 0 and 1, then half of 2, then the connection drops.
        let (mut stream, _) = listener.accept().await.unwrap();
        let request = read_request(&mut stream).await.unwrap();
        requests
            .send(serde_json::from_slice(&request.body).unwrap())
            .unwrap();
        start_stream(&mut stream).await;
        let body = json(0..3, "\n");
        let cut = body.len() - 20;
        send_chunk(&mut stream, &body[..cut]).await;
        drop(stream);
        // Second connection: a careless server replaying from 1; the client must skip it.
        let (mut stream, _) = listener.accept().await.unwrap();
        let request = read_request(&mut stream).await.unwrap();
        requests
            .send(serde_json::from_slice(&request.body).unwrap())
            .unwrap();
        start_stream(&mut stream).await;
        send_chunk(&mut stream, &json(1..5, "\n")).await;
        end_stream(&mut stream).await;
        // Third connection (after the clean end): nothing more, held until the client goes.
        let (mut stream, _) = listener.accept().await.unwrap();
        let request = read_request(&mut stream).await.unwrap();
        requests
            .send(serde_json::from_slice(&request.body).unwrap())
            .unwrap();
        start_stream(&mut stream).await;
        let _ = read_request(&mut stream).await;
    });

    let log = KafkaRestCommitLog::new(url, None, false);
    let records: Vec<ConsumerRecord> = log
        .scoped_subscribe(
            "farmo-integrator",
            vec![],
            subscription(),
            Some(Duration::from_millis(300)),
        )
        .collect()
        .await;
    assert_eq!(records, (0..5).map(consumer_record).collect::<Vec<_>>());

    let first = seen.recv().await.unwrap();
    assert!(first.offsets.is_empty());
    let position = |offset| ConsumerOffset {
        topic: Topic::from(TOPIC),
        partition: 0,
        offset,
    };
    assert_eq!(seen.recv().await.unwrap().offsets, vec![position(1)]);
    assert_eq!(seen.recv().await.unwrap().offsets, vec![position(4)]);
    drop(log);
    server.await.unwrap();
}

#[tokio::test]
async fn a_subscription_the_server_refuses_ends_the_stream() {
    let (url, server) = stub::answer_once(
        "400 Bad Request",
        r#"{"error_code":400,"message":"bad topic"}"#,
    )
    .await;
    let log = KafkaRestCommitLog::new(url, None, false);
    let records: Vec<ConsumerRecord> = log
        .scoped_subscribe("g", vec![], subscription(), None)
        .collect()
        .await;
    assert!(records.is_empty());
    server.await.unwrap();
}

fn producer_record() -> ProducerRecord {
    ProducerRecord {
        topic: Topic::from(TOPIC),
        headers: vec![],
        timestamp: None,
        key: 0,
        value: b"hi there".to_vec(),
        partition: 0,
    }
}

#[tokio::test]
async fn produce_posts_the_record_to_its_topic_and_answers_the_first_offset() {
    let (listener, url) = stub::listen().await;
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let request = read_request(&mut stream).await.unwrap();
        // Extra fields, as some servers send, are ignored.
        respond_json(
            &mut stream,
            "200 OK",
            r#"{"key_schema_id":null,"offsets":[{"partition":0,"offset":100}]}"#,
        )
        .await;
        request
    });
    let log = KafkaRestCommitLog::new(url, None, false);
    assert_eq!(log.produce(producer_record()).await.unwrap().offset, 100);
    let request = server.await.unwrap();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/topics/default:end-device-events")
    );
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"records": [{"topic": TOPIC, "headers": [], "timestamp": null,
                                        "key": 0, "value": "aGkgdGhlcmU=", "partition": 0}]})
    );
}

#[tokio::test]
async fn produce_refused_by_the_server_reports_why() {
    let (listener, url) = stub::listen().await;
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().await.unwrap();
            read_request(&mut stream).await.unwrap();
            respond_json(
                &mut stream,
                "400 Bad Request",
                r#"{"error_code":400,"message":"malformed JSON: oops"}"#,
            )
            .await;
        }
    });
    let log = KafkaRestCommitLog::new(url, None, false);
    assert_eq!(
        log.produce(producer_record()).await,
        Err(ProducerError::CannotProduce)
    );
    match log.produce_with_cause(producer_record()).await {
        Err(ClientError::Status {
            status, message, ..
        }) => assert_eq!((status, message.as_str()), (400, "malformed JSON: oops")),
        other => panic!("{other:?}"),
    }
    server.await.unwrap();
}

#[tokio::test]
async fn calls_wait_with_back_off_while_the_server_is_unreachable() {
    // A port nobody listens on until the server "comes up".
    let address = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let log = KafkaRestCommitLog::new(stub::server_url(address), None, false);
    let produce = tokio::spawn({
        let log = log.clone();
        async move { log.produce(producer_record()).await }
    });
    let offsets = tokio::spawn({
        let log = log.clone();
        async move { log.offsets(Topic::from(TOPIC), 0).await }
    });
    // Long enough for both calls to have been refused at least once.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!produce.is_finished() && !offsets.is_finished());

    let listener = TcpListener::bind(address).await.unwrap();
    for _ in 0..2 {
        let (mut stream, _) = listener.accept().await.unwrap();
        let request = read_request(&mut stream).await.unwrap();
        let reply = if request.method == "GET" {
            assert_eq!(
                request.path,
                "/topics/default:end-device-events/partitions/0/offsets"
            );
            r#"{"beginning_offset":0,"end_offset":1}"#
        } else {
            r#"{"offsets":[{"offset":7}]}"#
        };
        respond_json(&mut stream, "200 OK", reply).await;
    }
    assert_eq!(produce.await.unwrap().unwrap().offset, 7);
    assert_eq!(
        offsets.await.unwrap(),
        Some(PartitionOffsets {
            beginning_offset: 0,
            end_offset: 1
        })
    );
}

#[tokio::test]
async fn offsets_of_a_topic_the_server_does_not_know_are_none() {
    let (url, server) = stub::answer_once(
        "404 Not Found",
        r#"{"error_code":404,"message":"no records"}"#,
    )
    .await;
    let log = KafkaRestCommitLog::new(url, None, false);
    assert_eq!(log.offsets(Topic::from(TOPIC), 0).await, None);
    server.await.unwrap();
}

#[tokio::test]
async fn a_batch_of_several_topics_is_refused_before_sending() {
    let (_listener, url) = stub::listen().await;
    let log = KafkaRestCommitLog::new(url, None, false);
    let mut other = producer_record();
    other.topic = Topic::from("default:other");
    assert!(matches!(
        log.produce_batch(&[producer_record(), other]).await,
        Err(ClientError::MixedTopics { .. })
    ));
}
