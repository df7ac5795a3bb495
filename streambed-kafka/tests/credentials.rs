//! What the client sends to prove who it is: `Authorization: Bearer <token>` on every
//! request (produce, offsets, consumer streams), set through the builder method or the
//! command-line arguments.

use std::time::Duration;

use clap::Parser;
use serde_json::json;
use streambed::commit_log::{CommitLog, ConsumerRecord, PartitionOffsets, Topic};
use streambed_kafka::{
    args::{CommitLogArgs, CommitLogArgsError},
    KafkaRestCommitLog,
};
use streambed_test::{
    records::{read_topic, record},
    server::{self, AfterChunks, Request, Response, Script, StatusCode},
};

fn authorization(request: &Request) -> Option<&str> {
    request
        .headers()
        .get("authorization")
        .map(|value| value.to_str().unwrap())
}

/// Answers an offsets request, a produce request and a consumer request, in that order.
fn script() -> Script {
    let consumed = ConsumerRecord {
        topic: Topic::from("default:readings"),
        headers: vec![],
        timestamp: None,
        key: 1,
        value: b"x".to_vec(),
        partition: 0,
        offset: 0,
    };
    Script::new([
        Response::json(&PartitionOffsets {
            beginning_offset: 0,
            end_offset: 0,
        }),
        Response::json(&json!({"offsets": [{"offset": 1}]})),
        Response::new(StatusCode::OK).chunks_then(
            [serde_json::to_vec(&consumed).unwrap()],
            Duration::ZERO,
            AfterChunks::HoldOpen,
        ),
    ])
}

async fn use_every_endpoint(log: &KafkaRestCommitLog) {
    assert!(log.offsets("default:readings".into(), 0).await.is_some());
    let produced = log
        .produce(record("default:readings", 1, "x"))
        .await
        .unwrap();
    assert_eq!(produced.offset, 1);
    let records = read_topic(log, "default:readings", Duration::from_millis(300)).await;
    assert_eq!(records.len(), 1);
}

#[tokio::test]
async fn a_bearer_token_is_sent_with_every_request() {
    let script = script();
    let server = server::http(script.handler());
    let log = KafkaRestCommitLog::new(server.url().parse().unwrap(), None, false)
        .with_bearer_token("s.0123-token".parse().unwrap());
    use_every_endpoint(&log).await;
    let requests = script.requests();
    let paths: Vec<_> = requests.iter().map(|r| r.uri().path().to_owned()).collect();
    assert_eq!(
        paths,
        [
            "/topics/default:readings/partitions/0/offsets",
            "/topics/default:readings",
            "/consumers/test"
        ]
    );
    for request in &requests {
        assert_eq!(
            authorization(request),
            Some("Bearer s.0123-token"),
            "{request:?}"
        );
    }
}

#[tokio::test]
async fn without_a_token_no_authorization_header_is_sent() {
    let script = script();
    let server = server::http(script.handler());
    let log = KafkaRestCommitLog::new(server.url().parse().unwrap(), None, false);
    use_every_endpoint(&log).await;
    assert!(script.requests().iter().all(|r| authorization(r).is_none()));
}

#[tokio::test]
async fn the_token_file_named_by_the_arguments_is_sent_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, "  s.from-a-file\n").unwrap();
    let script = script();
    let server = server::http(script.handler());
    let args = CommitLogArgs::parse_from([
        "service",
        "--cl-server",
        &server.url(),
        "--cl-bearer-token-path",
        token_path.to_str().unwrap(),
    ]);
    let log = args.commit_log().await.unwrap();
    use_every_endpoint(&log).await;
    for request in script.requests() {
        assert_eq!(authorization(&request), Some("Bearer s.from-a-file"));
    }
}

#[tokio::test]
async fn an_unusable_token_or_client_certificate_file_is_reported_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, "two words").unwrap();
    let args = CommitLogArgs::parse_from([
        "service",
        "--cl-bearer-token-path",
        token_path.to_str().unwrap(),
    ]);
    let error = args.commit_log().await.unwrap_err();
    assert!(
        matches!(&error, CommitLogArgsError::BearerToken { path, .. } if *path == token_path),
        "{error:?}"
    );

    let cert_path = dir.path().join("client.pem");
    let key_path = dir.path().join("missing.key");
    std::fs::write(&cert_path, "not PEM").unwrap();
    let args = CommitLogArgs::parse_from([
        "service",
        "--cl-client-cert-path",
        cert_path.to_str().unwrap(),
        "--cl-client-key-path",
        key_path.to_str().unwrap(),
    ]);
    let error = args.commit_log().await.unwrap_err();
    assert!(
        matches!(&error, CommitLogArgsError::ClientCertificate { path, .. } if *path == key_path),
        "{error:?}"
    );
}

#[test]
fn a_client_certificate_needs_its_key() {
    let parsed = CommitLogArgs::try_parse_from(["service", "--cl-client-cert-path", "c.pem"]);
    assert!(parsed.is_err());
}
