//! The `streambed-server` program speaking HTTPS: produce and consume through
//! `KafkaRestCommitLog` with a client certificate, certificates from another CA refused at
//! the handshake, plain HTTP told to use HTTPS, and a new certificate picked up on SIGHUP.
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::{
    program::{Program, PROGRAM},
    tls::{client, identity, trusting, ServerFiles},
};
use streambed::commit_log::CommitLog;
use streambed_kafka::{ClientError, KafkaRestCommitLog};
use streambed_test::{
    pki::TestCa,
    records::{read_topic, record},
};

/// Flags of the program refusing clients without a certificate.
const REQUIRED: &[&str] = &["--tls-require-client-cert"];

/// The program serving HTTPS with `extra` flags and a certificate from `ca`, whose files it
/// reads from `dir`.
fn start_https(ca: &TestCa, dir: &std::path::Path, extra: &[&str]) -> (Program, ServerFiles) {
    let files = ServerFiles::write(ca, dir);
    let mut args = files.args();
    args.extend(extra);
    (Program::start(&args), files)
}

async fn health(client: &reqwest::Client, server: &Program) -> reqwest::Result<u16> {
    let url = format!(
        "{}/topics/default:none/partitions/0/offsets",
        server.https_url("")
    );
    Ok(client.get(url).send().await?.status().as_u16())
}

#[test]
fn help_documents_the_tls_flags() {
    let output = streambed_test::process::command(PROGRAM)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--tls-cert",
        "--tls-key",
        "--tls-client-ca",
        "--tls-require-client-cert",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_key_without_a_certificate_is_refused_before_listening() {
    let output = streambed_test::process::command(PROGRAM)
        .args(["--backend", "memory", "--listen", "127.0.0.1:0"])
        .args(["--tls-key", "/nonexistent.key"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tls-cert"), "{stderr}");
}

#[test]
fn unreadable_tls_files_stop_the_server_before_it_listens_naming_the_file() {
    let output = streambed_test::process::command(PROGRAM)
        .args(["--backend", "memory", "--listen", "127.0.0.1:0"])
        .args(["--tls-cert", "/nonexistent/server.pem"])
        .args(["--tls-key", "/nonexistent/server.key"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/server.pem"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}

/// How long a client may take to give up on a refused handshake and still count as giving
/// up at once rather than retrying: 2 s, stretched under an emulator, where the handshake
/// itself can take seconds.
fn at_once() -> Duration {
    Duration::from_secs(2) * streambed_test::process::slowdown()
}

#[tokio::test]
async fn records_are_produced_and_consumed_over_https_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("farm CA");
    let (server, _) = start_https(&ca, dir.path(), REQUIRED);
    let log = KafkaRestCommitLog::new(
        server.https_url("").parse().unwrap(),
        Some(trusting(&ca)),
        false,
    )
    .with_client_identity(identity(&ca.client("farm-a-sensor-7")))
    .unwrap();
    for key in 0..3 {
        let offset = log
            .produce(record("default:readings", key, format!("{key}")))
            .await
            .unwrap();
        assert_eq!(offset.offset, key);
    }
    let records = read_topic(&log, "default:readings", Duration::from_millis(500)).await;
    assert_eq!(
        records.iter().map(|r| r.value.clone()).collect::<Vec<_>>(),
        [b"0".to_vec(), b"1".to_vec(), b"2".to_vec()]
    );
    let offsets = log.offsets("default:readings".into(), 0).await.unwrap();
    assert_eq!(offsets.end_offset, 2);
}

#[tokio::test]
async fn the_client_arguments_name_the_ca_and_client_certificate_files() {
    use clap::Parser;
    use streambed_kafka::args::CommitLogArgs;

    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("ca");
    let (server, files) = start_https(&ca, dir.path(), REQUIRED);
    let (cert, key) = (dir.path().join("client.pem"), dir.path().join("client.key"));
    ca.client("gateway").write(&cert, &key).unwrap();
    let url = server.https_url("");
    let args = CommitLogArgs::parse_from([
        "service",
        "--cl-server",
        &url,
        "--cl-server-cert-path",
        files.client_ca.to_str().unwrap(),
        "--cl-client-cert-path",
        cert.to_str().unwrap(),
        "--cl-client-key-path",
        key.to_str().unwrap(),
    ]);
    let log = args.commit_log().await.unwrap();
    let offset = log
        .produce(record("default:events", 1, "on"))
        .await
        .unwrap();
    assert_eq!(offset.offset, 0);
}

#[tokio::test]
async fn the_listener_log_line_says_https_and_how_clients_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = start_https(&TestCa::new("ca"), dir.path(), REQUIRED);
    let line = server
        .lines()
        .into_iter()
        .find(|l| l.contains("listening on "))
        .unwrap();
    assert!(
        line.contains("(https, client certificates required"),
        "{line}"
    );
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused_at_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("ours");
    let (server, _) = start_https(&ca, dir.path(), &[]);
    let stranger = TestCa::new("theirs").client("farm-a-sensor-7");
    assert!(health(&client(&ca, Some(&stranger)), &server)
        .await
        .is_err());

    // The Kafka client gives up at once, naming the certificate, rather than retrying.
    let log = KafkaRestCommitLog::new(
        server.https_url("").parse().unwrap(),
        Some(trusting(&ca)),
        false,
    )
    .with_client_identity(identity(&stranger))
    .unwrap();
    let error = tokio::time::timeout(
        at_once(),
        log.produce_with_cause(record("default:readings", 1, "x")),
    )
    .await
    .expect("a refused client certificate is retried")
    .unwrap_err();
    assert!(
        matches!(error, ClientError::Certificate { .. }),
        "{error:?}"
    );

    // Certificates are optional here: without one, and with one of ours, a client is in.
    assert_eq!(health(&client(&ca, None), &server).await.unwrap(), 404);
    let ours = ca.client("farm-a-sensor-8");
    assert_eq!(
        health(&client(&ca, Some(&ours)), &server).await.unwrap(),
        404
    );
}

#[tokio::test]
async fn with_client_certificates_required_a_client_without_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("ca");
    let (server, _) = start_https(&ca, dir.path(), REQUIRED);
    assert!(health(&client(&ca, None), &server).await.is_err());
    let log = KafkaRestCommitLog::new(
        server.https_url("").parse().unwrap(),
        Some(trusting(&ca)),
        false,
    );
    let error = tokio::time::timeout(
        at_once(),
        log.offsets_with_cause("default:readings".into(), 0),
    )
    .await
    .expect("a missing client certificate is retried")
    .unwrap_err();
    assert!(
        matches!(error, ClientError::Certificate { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn plain_http_to_the_tls_port_is_told_to_use_https_and_https_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("ca");
    let (server, _) = start_https(&ca, dir.path(), &[]);
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/health", server.address.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    assert!(plain.text().await.unwrap().contains("HTTPS"));
    assert_eq!(health(&client(&ca, None), &server).await.unwrap(), 404);
}

#[tokio::test]
async fn a_new_certificate_is_used_by_new_connections_after_sighup_and_bad_files_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = TestCa::new("old");
    let (mut server, files) = start_https(&old_ca, dir.path(), &[]);
    let trusts_old = client(&old_ca, None);
    assert_eq!(health(&trusts_old, &server).await.unwrap(), 404);

    // Unusable files: the server says so and keeps serving with what it had.
    std::fs::write(&files.key, "not a key").unwrap();
    server.signal("-HUP");
    assert!(server.wait_for("SIGHUP").contains("not reloaded"));
    assert_eq!(health(&trusts_old, &server).await.unwrap(), 404);

    let new_ca = TestCa::new("new");
    new_ca
        .server("localhost")
        .write(&files.cert, &files.key)
        .unwrap();
    server.signal("-HUP");
    assert!(server
        .wait_for("SIGHUP")
        .contains("reloaded; new connections"));
    assert_eq!(health(&client(&new_ca, None), &server).await.unwrap(), 404);
    assert!(health(&trusts_old, &server).await.is_err());
}
