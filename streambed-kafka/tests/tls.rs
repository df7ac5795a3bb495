//! TLS through rustls: a self-signed server is trusted with `server_cert` or
//! `tls_insecure`, and refused otherwise, at once: no retry cures a certificate.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use streambed::commit_log::{CommitLog, PartitionOffsets, Topic};
use streambed_kafka::{ClientError, KafkaRestCommitLog};
use streambed_test::server::{self, Response, Server};

fn offsets_server(requests: Arc<AtomicUsize>) -> Server {
    server::https(move |request| {
        let requests = Arc::clone(&requests);
        async move {
            requests.fetch_add(1, Ordering::SeqCst);
            assert_eq!(request.uri().path(), "/topics/t/partitions/0/offsets");
            Response::json(&PartitionOffsets {
                beginning_offset: 0,
                end_offset: 3,
            })
        }
    })
}

fn expected() -> Option<PartitionOffsets> {
    Some(PartitionOffsets {
        beginning_offset: 0,
        end_offset: 3,
    })
}

#[tokio::test]
async fn a_self_signed_server_is_trusted_through_its_certificate() {
    let server = offsets_server(Arc::default());
    let pem = server.certificate_pem().unwrap().as_bytes();
    let cert = streambed::read_pem(pem).await.unwrap();
    let log = KafkaRestCommitLog::new(server.url().parse().unwrap(), Some(cert), false);
    assert_eq!(log.offsets(Topic::from("t"), 0).await, expected());
}

#[tokio::test]
async fn tls_insecure_accepts_any_certificate() {
    let server = offsets_server(Arc::default());
    let log = KafkaRestCommitLog::new(server.url().parse().unwrap(), None, true);
    assert_eq!(log.offsets(Topic::from("t"), 0).await, expected());
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_call_at_once_naming_the_url() {
    let requests = Arc::new(AtomicUsize::new(0));
    let server = offsets_server(Arc::clone(&requests));
    let log = KafkaRestCommitLog::new(server.url().parse().unwrap(), None, false);
    // Retried as unreachable it would never end, as a lost request 2.8 s (five tries).
    // An emulator makes the handshake itself take up to seconds: the bound stretches there.
    let error = tokio::time::timeout(
        Duration::from_secs(1) * streambed_test::process::slowdown(),
        log.offsets_with_cause(Topic::from("t"), 0),
    )
    .await
    .expect("a refused certificate is retried")
    .unwrap_err();
    assert!(
        matches!(&error, ClientError::Certificate { url, .. } if url.as_str().starts_with(&server.url())),
        "{error:?}"
    );
    assert!(error.to_string().contains("certificate"), "{error}");
    assert_eq!(requests.load(Ordering::SeqCst), 0);
}
