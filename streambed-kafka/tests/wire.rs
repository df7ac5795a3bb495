//! The client's retries and produce replies, request by request, against the scripted
//! loopback server of `streambed-test`: how often each call is sent to a server that cuts
//! connections or says "try later", that a produce is never sent twice once it may have
//! been appended, and which offsets a produce answers.

use std::time::Duration;

use serde_json::json;
use streambed::commit_log::{CommitLog, ProducedOffset, ProducerRecord, Subscription, Topic};
use streambed_kafka::{ClientError, KafkaRestCommitLog};
use streambed_test::{
    records,
    server::{self, json_body, Method, Response, Script, Server, StatusCode},
};
use tokio_stream::StreamExt;

const TOPIC: &str = "default:readings";

/// A request as the server saw it: method, path and JSON body (`null` when empty).
type Seen = (Method, String, serde_json::Value);

/// A server that records every request and answers the n-th (from 0) with `answer(n)`.
fn scripted(answer: impl Fn(usize) -> Response + Send + Sync + 'static) -> (Server, Script) {
    let script = Script::answering(answer);
    (server::http(script.handler()), script)
}

fn client(server: &Server) -> KafkaRestCommitLog {
    KafkaRestCommitLog::try_new(server.url().parse().unwrap(), None, false).unwrap()
}

fn record(key: u64) -> ProducerRecord {
    records::record(TOPIC, key, b"21.5".as_slice())
}

fn record_json(key: u64) -> serde_json::Value {
    json!({"topic": TOPIC, "headers": [], "timestamp": null, "key": key,
           "value": "MjEuNQ==", "partition": 0})
}

fn produce_request(keys: &[u64]) -> Seen {
    let records: Vec<_> = keys.iter().map(|key| record_json(*key)).collect();
    (
        Method::POST,
        format!("/topics/{TOPIC}"),
        json!({ "records": records }),
    )
}

fn offsets_request() -> Seen {
    (
        Method::GET,
        format!("/topics/{TOPIC}/partitions/0/offsets"),
        serde_json::Value::Null,
    )
}

fn offsets_reply(offsets: &[u64]) -> Response {
    let offsets: Vec<_> = offsets.iter().map(|o| json!({"offset": o})).collect();
    Response::json(&json!({ "offsets": offsets }))
}

fn seen(script: &Script) -> Vec<Seen> {
    let requests = script.requests();
    let seen = requests.iter().map(|request| {
        let path = request.uri().path().to_owned();
        (request.method().clone(), path, json_body(request))
    });
    seen.collect()
}

/// Every test here must end on its own: a hang is the failure it guards against.
async fn bounded<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the call hangs")
}

#[tokio::test]
async fn offsets_from_a_server_that_cuts_every_connection_fail_after_five_requests() {
    let (server, requests) = scripted(|_| Response::drop_connection());
    let log = client(&server);
    let error = bounded(log.offsets_with_cause(Topic::from(TOPIC), 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Transport { url, .. } if url.path() == offsets_request().1),
        "{error:?}"
    );
    assert!(error.to_string().contains(&server.url()), "{error}");
    assert_eq!(seen(&requests), vec![offsets_request(); 5]);
}

#[tokio::test]
async fn offsets_while_the_server_says_unavailable_fail_after_five_requests_with_its_status() {
    let (server, requests) = scripted(|_| {
        Response::new(StatusCode::SERVICE_UNAVAILABLE)
            .text(r#"{"error_code":503,"message":"warming up"}"#)
    });
    let log = client(&server);
    let error = bounded(log.offsets_with_cause(Topic::from(TOPIC), 0))
        .await
        .unwrap_err();
    match &error {
        ClientError::Status {
            url,
            status,
            message,
        } => {
            assert_eq!((*status, message.as_str()), (503, "warming up"));
            assert!(url.as_str().starts_with(&server.url()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(seen(&requests).len(), 5);
}

#[tokio::test]
async fn a_produce_cut_after_the_server_read_it_is_not_sent_again() {
    let (server, requests) = scripted(|_| Response::drop_connection());
    let log = client(&server);
    let error = bounded(log.produce_with_cause(record(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Transport { url, .. } if url.as_str().starts_with(&server.url())),
        "{error:?}"
    );
    assert_eq!(seen(&requests), vec![produce_request(&[1])]);
}

#[tokio::test]
async fn a_produce_answered_with_a_status_that_may_follow_its_append_is_not_sent_again() {
    // A gateway that timed out (504) or got a bad answer (502) may have passed the request
    // on to a server that appended the records.
    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::BAD_GATEWAY,
        StatusCode::GATEWAY_TIMEOUT,
    ] {
        let (server, requests) = scripted(move |_| Response::new(status));
        let log = client(&server);
        let error = bounded(log.produce_with_cause(record(1)))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ClientError::Status { status: s, .. } if s == status.as_u16()),
            "{status}: {error:?}"
        );
        assert_eq!(seen(&requests).len(), 1, "{status}");
    }
}

#[tokio::test]
async fn a_produce_the_server_did_not_act_on_is_sent_again_until_answered() {
    let (server, requests) = scripted(|n| match n {
        0..=2 => Response::new(StatusCode::SERVICE_UNAVAILABLE),
        _ => offsets_reply(&[41]),
    });
    let log = client(&server);
    assert_eq!(
        bounded(log.produce(record(1))).await,
        Ok(ProducedOffset { offset: 41 })
    );
    assert_eq!(seen(&requests), vec![produce_request(&[1]); 4]);
}

#[tokio::test]
async fn a_produce_the_server_keeps_refusing_as_unavailable_fails_after_five_requests() {
    let (server, requests) = scripted(|_| Response::new(StatusCode::SERVICE_UNAVAILABLE));
    let log = client(&server);
    let error = bounded(log.produce_with_cause(record(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Status { status: 503, .. }),
        "{error:?}"
    );
    assert_eq!(seen(&requests), vec![produce_request(&[1]); 5]);
}

#[tokio::test]
async fn a_produce_waits_for_an_unreachable_server_beyond_five_tries() {
    let addr = server::free_addr();
    let log = KafkaRestCommitLog::new(format!("http://{addr}/").parse().unwrap(), None, false);
    let produce = tokio::spawn(async move { log.produce(record(1)).await });
    // Back-off waits 0.1, 0.19, 0.37, 0.72 and 1.39 s: six refused tries by 2.5 s.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!produce.is_finished());
    let script = Script::answering(|_| offsets_reply(&[3]));
    let _server = server::http_on(addr, script.handler()).unwrap();
    assert_eq!(
        bounded(produce).await.unwrap(),
        Ok(ProducedOffset { offset: 3 })
    );
    assert_eq!(seen(&script), vec![produce_request(&[1])]);
}

#[tokio::test]
async fn a_produce_takes_the_first_offset_of_a_reply_with_more() {
    let (server, requests) = scripted(|_| offsets_reply(&[7, 8, 9]));
    let log = client(&server);
    assert_eq!(
        log.produce(record(1)).await,
        Ok(ProducedOffset { offset: 7 })
    );
    assert_eq!(seen(&requests), vec![produce_request(&[1])]);
}

#[tokio::test]
async fn a_batch_takes_one_offset_per_record_in_order_and_ignores_extra_entries() {
    let (server, requests) = scripted(|_| offsets_reply(&[10, 11, 12, 99]));
    let log = client(&server);
    let offsets = log
        .produce_batch(&[record(1), record(2), record(3)])
        .await
        .unwrap();
    assert_eq!(
        offsets,
        vec![
            ProducedOffset { offset: 10 },
            ProducedOffset { offset: 11 },
            ProducedOffset { offset: 12 }
        ]
    );
    assert_eq!(seen(&requests), vec![produce_request(&[1, 2, 3])]);
}

#[tokio::test]
async fn a_reply_with_fewer_offsets_than_records_is_a_missing_offsets_error() {
    let (server, requests) = scripted(|n| match n {
        0 => offsets_reply(&[10]),
        _ => offsets_reply(&[]),
    });
    let log = client(&server);
    let error = log
        .produce_batch(&[record(1), record(2)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            ClientError::MissingOffsets { url, records: 2, offsets: 1 }
                if url.as_str().starts_with(&server.url())
        ),
        "{error:?}"
    );
    assert!(matches!(
        log.produce_with_cause(record(3)).await,
        Err(ClientError::MissingOffsets {
            records: 1,
            offsets: 0,
            ..
        })
    ));
    assert_eq!(
        seen(&requests),
        vec![produce_request(&[1, 2]), produce_request(&[3])]
    );
}

#[tokio::test]
async fn a_subscription_to_a_server_that_cuts_every_connection_ends_after_sixteen_requests() {
    let (server, requests) = scripted(|_| Response::drop_connection());
    let log = client(&server);
    let subscriptions = vec![Subscription {
        topic: Topic::from(TOPIC),
    }];
    // Fifteen back-off waits of 31.3 s in all: more than `bounded` allows other calls.
    let records: Vec<_> = tokio::time::timeout(
        Duration::from_secs(60),
        log.scoped_subscribe("group", vec![], subscriptions, None)
            .collect::<Vec<_>>(),
    )
    .await
    .expect("the subscription hangs");
    assert!(records.is_empty());
    let consumer = (
        Method::POST,
        "/consumers/group".to_owned(),
        json!({"offsets": [], "subscriptions": [{"topic": TOPIC}]}),
    );
    assert_eq!(seen(&requests), vec![consumer; 16]);
}

#[tokio::test]
async fn a_subscription_outlasts_a_server_restart_of_several_seconds() {
    // Seven cut requests take 5.5 s of back-off, past the five tries other calls get.
    let (server, requests) = scripted(|n| match n {
        0..=6 => Response::drop_connection(),
        _ => {
            let mut record = record_json(1);
            record["offset"] = json!(5);
            Response::new(StatusCode::OK).text(&format!("{record}\n"))
        }
    });
    let log = client(&server);
    let subscriptions = vec![Subscription {
        topic: Topic::from(TOPIC),
    }];
    let mut records = log.scoped_subscribe("group", vec![], subscriptions, None);
    let record = bounded(records.next()).await.expect("the stream ended");
    assert_eq!(record.offset, 5);
    assert_eq!(seen(&requests).len(), 8);
}

#[tokio::test]
async fn a_topic_or_group_that_is_not_a_path_segment_fails_and_sends_nothing() {
    let (server, requests) = scripted(|_| offsets_reply(&[1]));
    let log = client(&server);
    for topic in ["..", ".", ""] {
        let record = ProducerRecord {
            topic: Topic::from(topic),
            ..record(1)
        };
        let error = bounded(log.produce_with_cause(record)).await.unwrap_err();
        assert!(
            matches!(&error, ClientError::BadPathSegment(segment) if segment == topic),
            "{topic:?}: {error:?}"
        );
        assert!(error.to_string().contains(&format!("{topic:?}")), "{error}");
        assert!(matches!(
            bounded(log.offsets_with_cause(Topic::from(topic), 0)).await,
            Err(ClientError::BadPathSegment(_))
        ));
    }
    let subscriptions = vec![Subscription {
        topic: Topic::from(TOPIC),
    }];
    let records: Vec<_> = bounded(
        log.scoped_subscribe("..", vec![], subscriptions, None)
            .collect::<Vec<_>>(),
    )
    .await;
    assert!(records.is_empty());
    assert_eq!(seen(&requests), vec![]);
}

/// A body of `size` bytes of JSON whitespace, sent in 64 KiB chunks and then held open.
fn endless_reply(status: StatusCode, size: usize) -> Response {
    let chunk = vec![b' '; 64 * 1024];
    Response::new(status).chunks_then(
        std::iter::repeat_n(chunk, size.div_ceil(64 * 1024)),
        Duration::ZERO,
        server::AfterChunks::HoldOpen,
    )
}

#[tokio::test]
async fn a_reply_over_the_size_limit_is_an_error_before_the_server_ends_it() {
    const OVER: usize = 3 * 1024 * 1024;
    let (server, _requests) = scripted(|_| endless_reply(StatusCode::OK, OVER));
    let log = client(&server);
    let error = bounded(log.offsets_with_cause(Topic::from(TOPIC), 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::BadReply { reason, .. } if reason.contains("larger than")),
        "{error:?}"
    );
    let error = bounded(log.produce_with_cause(record(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::BadReply { reason, .. } if reason.contains("larger than")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_refusal_over_the_size_limit_is_reported_without_its_body() {
    let (server, _requests) =
        scripted(|_| Response::new(StatusCode::BAD_REQUEST).bytes(vec![b'x'; 3 * 1024 * 1024]));
    let log = client(&server);
    let error = bounded(log.produce_with_cause(record(1)))
        .await
        .unwrap_err();
    match &error {
        ClientError::Status {
            status, message, ..
        } => {
            assert_eq!(*status, 400);
            assert!(message.contains("larger than"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
