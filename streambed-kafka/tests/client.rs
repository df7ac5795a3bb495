//! The client against a scripted server that controls every chunk boundary, refusal and
//! cut connection.

use std::time::Duration;

use streambed::commit_log::{
    CommitLog, Consumer, ConsumerOffset, ConsumerRecord, PartitionOffsets, ProducerError,
    ProducerRecord, Subscription, Topic,
};
use streambed_kafka::{ClientError, KafkaRestCommitLog};
use streambed_test::server::{
    self, AfterChunks, Method, Request, Response, Script, Server, StatusCode,
};
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

/// A server giving `answers` in turn, and the script that records what it was asked.
fn scripted(answers: impl IntoIterator<Item = Response>) -> (Script, Server) {
    let script = Script::new(answers);
    let server = server::http(script.handler());
    (script, server)
}

fn log_of(server: &Server) -> KafkaRestCommitLog {
    KafkaRestCommitLog::new(server.url().parse().unwrap(), None, false)
}

/// A consumer stream's answer: `chunks` as HTTP chunks split exactly there, then `after`.
fn records_answer(chunks: Vec<Vec<u8>>, after: AfterChunks) -> Response {
    Response::new(StatusCode::OK)
        .header("content-type", "application/x-ndjson")
        .chunks_then(chunks, Duration::ZERO, after)
}

/// A refusal as the Kafka HTTP API words it.
fn error_answer(status: StatusCode, message: &str) -> Response {
    Response::json(&serde_json::json!({"error_code": status.as_u16(), "message": message}))
        .status(status)
}

/// The consumer request `request` carries, checked to be a subscription of the group.
fn consumer_request(request: &Request) -> Consumer {
    assert_eq!(
        (request.method(), request.uri().path()),
        (&Method::POST, "/consumers/farmo-integrator")
    );
    serde_json::from_slice(request.body()).unwrap()
}

fn position(offset: u64) -> ConsumerOffset {
    ConsumerOffset {
        topic: Topic::from(TOPIC),
        partition: 0,
        offset,
    }
}

/// Subscribes from `offsets` to a server answering `answers` in turn, until the stream has
/// been idle for `idle`; the records delivered and the subscriptions the client sent.
async fn consume(
    offsets: Vec<ConsumerOffset>,
    answers: Vec<Response>,
    idle: Duration,
) -> (Vec<ConsumerRecord>, Vec<Consumer>) {
    let (script, server) = scripted(answers);
    let log = log_of(&server);
    let records = log
        .scoped_subscribe("farmo-integrator", offsets, subscription(), Some(idle))
        .collect::<Vec<_>>()
        .await;
    drop(log);
    drop(server);
    let requests = script.requests().iter().map(consumer_request).collect();
    (records, requests)
}

/// Serves one consumer stream whose body is `chunks`, held open after them: the client
/// must end on its idle timeout, not on the end of the body.
async fn consume_chunks(chunks: Vec<Vec<u8>>) -> (Vec<ConsumerRecord>, Consumer) {
    let (records, mut requests) = consume(
        vec![position(0)],
        vec![records_answer(chunks, AfterChunks::HoldOpen)],
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    (records, requests.remove(0))
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
            offsets: vec![position(0)],
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
    let first = json(0..3, "\n");
    let cut = first.len() - 20;
    let answers = vec![
        // Records 0 and 1, then half of 2, then the connection drops.
        records_answer(vec![first[..cut].to_vec()], AfterChunks::Cut),
        // A careless server replaying from 1: the client must skip it.
        records_answer(vec![json(1..5, "\n")], AfterChunks::End),
        // After the clean end: nothing more, held until the client goes.
        records_answer(vec![], AfterChunks::HoldOpen),
    ];
    let (records, requests) = consume(vec![], answers, Duration::from_millis(300)).await;
    assert_eq!(records, (0..5).map(consumer_record).collect::<Vec<_>>());
    let offsets: Vec<_> = requests.into_iter().map(|r| r.offsets).collect();
    assert_eq!(offsets, vec![vec![], vec![position(1)], vec![position(4)]]);
}

#[tokio::test]
async fn a_subscription_the_server_refuses_ends_the_stream() {
    let (script, server) = scripted([error_answer(StatusCode::BAD_REQUEST, "bad topic")]);
    let records: Vec<ConsumerRecord> = log_of(&server)
        .scoped_subscribe("g", vec![], subscription(), None)
        .collect()
        .await;
    assert!(records.is_empty());
    assert_eq!(script.remaining(), 0);
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
    // Extra fields, as some servers send, are ignored.
    let (script, server) = scripted([Response::json(&serde_json::json!(
        {"key_schema_id": null, "offsets": [{"partition": 0, "offset": 100}]}
    ))]);
    assert_eq!(
        log_of(&server)
            .produce(producer_record())
            .await
            .unwrap()
            .offset,
        100
    );
    let requests = script.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method(), requests[0].uri().path()),
        (&Method::POST, "/topics/default:end-device-events")
    );
    let body: serde_json::Value = serde_json::from_slice(requests[0].body()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"records": [{"topic": TOPIC, "headers": [], "timestamp": null,
                                        "key": 0, "value": "aGkgdGhlcmU=", "partition": 0}]})
    );
}

#[tokio::test]
async fn produce_refused_by_the_server_reports_why() {
    let refusal = || error_answer(StatusCode::BAD_REQUEST, "malformed JSON: oops");
    let (script, server) = scripted([refusal(), refusal()]);
    let log = log_of(&server);
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
    assert_eq!(script.remaining(), 0);
}

#[tokio::test]
async fn calls_wait_with_back_off_while_the_server_is_unreachable() {
    // A port nobody listens on until the server "comes up".
    let address = server::free_addr();
    let log = KafkaRestCommitLog::new(format!("http://{address}/").parse().unwrap(), None, false);
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

    let _server = server::http_on(address, |request| async move {
        if request.method() == Method::GET {
            assert_eq!(
                request.uri().path(),
                "/topics/default:end-device-events/partitions/0/offsets"
            );
            Response::json(&serde_json::json!({"beginning_offset": 0, "end_offset": 1}))
        } else {
            Response::json(&serde_json::json!({"offsets": [{"offset": 7}]}))
        }
    })
    .unwrap();
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
    let (script, server) = scripted([error_answer(StatusCode::NOT_FOUND, "no records")]);
    assert_eq!(log_of(&server).offsets(Topic::from(TOPIC), 0).await, None);
    assert_eq!(script.remaining(), 0);
}

#[tokio::test]
async fn a_batch_of_several_topics_is_refused_before_sending() {
    // No answers: a request would also fail the test when the server drops.
    let (script, server) = scripted([]);
    let mut other = producer_record();
    other.topic = Topic::from("default:other");
    assert!(matches!(
        log_of(&server)
            .produce_batch(&[producer_record(), other])
            .await,
        Err(ClientError::MixedTopics { .. })
    ));
    assert!(script.requests().is_empty());
}
