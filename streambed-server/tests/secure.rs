//! The secure set-up all at once, against the program: HTTPS with client certificates
//! optional, a policy, bearer tokens checked with a real `FileSecretStore` (and, apart,
//! with a real OpenBao dev server) and a provenance header. `KafkaRestCommitLog` produces
//! and consumes with a token and with a client certificate; the records and audit lines
//! name the principal; certificates and topics the policy does not grant get 403, no
//! identity 401; refusals show in `/metrics`, which names no principal or topic; and a
//! client that keeps failing to identify itself is rate limited without barring the
//! others. Each test starts one server and runs its checks in turn, to stay quick.
#![cfg(unix)]

#[allow(dead_code)]
#[path = "../../streambed-vault/tests/openbao/bao.rs"]
mod bao;

mod common;

use std::{path::PathBuf, time::Duration};

use common::{
    confidant::Confidant,
    get_text,
    program::{Program, PROGRAM},
    refused_count,
    tls::{client, identity, trusting, ServerFiles},
};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use streambed::commit_log::CommitLog;
use streambed_kafka::KafkaRestCommitLog;
use streambed_test::{
    pki::{Issued, TestCa},
    records::{read_topic, record},
};

/// `ann` logs in with a token; `farm-a-sensor-7` shows a certificate.
const POLICY: &str = r#"{
  "principals": {
    "ann": { "produce": ["farm-a:*"], "create": ["farm-a:*"], "consume": ["farm-a:*"] },
    "farm-a-sensor-7": { "produce": ["farm-a:readings"], "consume": ["farm-a:readings"] }
  }
}"#;

const PROVENANCE: &str = "streambed-principal";

/// Failed identities an address may have in a row before it gets 429 (the rate, one a
/// second, hardly refills during a test).
const FAILURE_BURST: usize = 20;

impl Program {
    /// The JSON of the next audit line that contains `text`.
    fn audit_line(&mut self, text: &str) -> Value {
        let line = self.wait_for(text);
        let (_, json) = line
            .split_once("audit: ")
            .unwrap_or_else(|| panic!("not an audit line: {line}"));
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
    }
}

/// A CA, and the server's certificate and client CA files it made.
struct Pki {
    ca: TestCa,
    _dir: tempfile::TempDir,
    files: ServerFiles,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("farm CA");
        let files = ServerFiles::write(&ca, dir.path());
        Self {
            ca,
            _dir: dir,
            files,
        }
    }

    /// A client trusting the CA, showing `certificate` if given.
    fn client(&self, certificate: Option<&Issued>) -> reqwest::Client {
        client(&self.ca, certificate)
    }

    /// The commit log client of the server, over HTTPS.
    fn log(&self, server: &Program) -> KafkaRestCommitLog {
        KafkaRestCommitLog::new(
            server.https_url("").parse().unwrap(),
            Some(trusting(&self.ca)),
            false,
        )
    }
}

/// The server's arguments for the whole set-up, with `tokens` saying where tokens are
/// checked.
fn secure_args(pki: &Pki, policy: &std::path::Path, tokens: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = pki.files.args().into_iter().map(String::from).collect();
    args.extend(["--policy".into(), policy.to_str().unwrap().to_owned()]);
    args.extend(tokens.iter().map(|s| s.to_string()));
    args.extend(["--provenance-header".into(), PROVENANCE.into()]);
    args.extend(["--rate-limit".into(), "1".into()]);
    args.extend(["--rate-burst".into(), FAILURE_BURST.to_string()]);
    args
}

fn write_policy(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("policy.json");
    std::fs::write(&path, POLICY).unwrap();
    path
}

/// The status `client` gets posting `body` to `path` on `server`, with `token` if given.
async fn post(
    client: &reqwest::Client,
    server: &Program,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> StatusCode {
    let mut request = client.post(server.https_url(path)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status()
}

/// The status `client` gets producing one record without headers to `topic` on `server`.
async fn produce(
    client: &reqwest::Client,
    server: &Program,
    topic: &str,
    token: Option<&str>,
) -> StatusCode {
    let path = format!("/topics/{topic}");
    post(client, server, &path, token, &one_record(topic, json!([]))).await
}

/// A produce request of one record to `topic`, with `headers` on it.
fn one_record(topic: &str, headers: Value) -> Value {
    json!({ "records": [{
        "topic": topic, "headers": headers, "timestamp": null, "key": 0, "value": "AQ==",
        "partition": 0
    }] })
}

/// The value of the provenance header of each record of `topic`, read by `log`.
async fn stamps(log: &KafkaRestCommitLog, topic: &str) -> Vec<String> {
    read_topic(log, topic, Duration::from_millis(300))
        .await
        .iter()
        .map(|record| {
            let stamps: Vec<_> = record
                .headers
                .iter()
                .filter(|h| h.key == PROVENANCE)
                .map(|h| String::from_utf8(h.value.clone()).unwrap())
                .collect();
            assert_eq!(stamps.len(), 1, "one stamp per record: {record:?}");
            stamps[0].clone()
        })
        .collect()
}

/// `KafkaRestCommitLog` with `token` over HTTPS: produces two records to an empty topic,
/// reads them back stamped with `principal`, and the audit lines name it.
async fn a_token_produces_and_consumes(
    server: &mut Program,
    pki: &Pki,
    token: &str,
    principal: &str,
) {
    let log = pki.log(server).with_bearer_token(token.parse().unwrap());
    for key in 0..2 {
        let offset = log
            .produce(record("farm-a:readings", key, "21.5"))
            .await
            .unwrap();
        assert_eq!(offset.offset, key);
    }
    let line = server.audit_line("\"event\":\"produce\"");
    assert_eq!(line["principal"], principal);
    assert_eq!(line["topic"], "farm-a:readings");
    assert_eq!(line["status"], 200);
    assert_eq!(
        stamps(&log, "farm-a:readings").await,
        [principal, principal]
    );
    let line = server.audit_line("\"event\":\"consume\"");
    assert_eq!(line["principal"], principal);
    assert_eq!(line["topics"], json!(["farm-a:readings"]));
    let offsets = log.offsets("farm-a:readings".into(), 0).await.unwrap();
    assert_eq!(offsets.end_offset, 1);
}

/// Counts a refusal reason's line in `/metrics` text.
#[tokio::test]
async fn the_secure_set_up_with_a_confidant_token_a_client_certificate_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let confidant = Confidant::new(dir.path(), &[9; 16]);
    let token = confidant.token("ann", "ann-pass").await;

    let pki = Pki::new();
    let policy = write_policy(dir.path());
    let args = secure_args(&pki, &policy, &confidant.args());
    let mut server = Program::start(&args.iter().map(String::as_str).collect::<Vec<_>>());

    a_token_produces_and_consumes(&mut server, &pki, &token, "ann").await;

    // A client certificate the policy grants needs no token.
    let sensor = pki.ca.client("farm-a-sensor-7");
    let sensor_log = pki
        .log(&server)
        .with_client_identity(identity(&sensor))
        .unwrap();
    let offset = sensor_log
        .produce(record("farm-a:readings", 2, "22.0"))
        .await
        .unwrap();
    assert_eq!(offset.offset, 2);
    let line = server.audit_line("\"event\":\"produce\"");
    assert_eq!(line["principal"], "farm-a-sensor-7");
    assert_eq!(
        stamps(&sensor_log, "farm-a:readings").await,
        ["ann", "ann", "farm-a-sensor-7"]
    );

    // A certificate of the same CA whose subject the policy does not name: 403.
    let stranger = pki.client(Some(&pki.ca.client("farm-b-gateway")));
    let status = produce(&stranger, &server, "farm-a:readings", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let offsets = server.https_url("/topics/farm-a:readings/partitions/0/offsets");
    let response = stranger.get(&offsets).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A subject a CA filled with a line break and quotes is escaped in its audit line.
    let forger = "eve\"}\n{\"event\":\"produce\",\"principal\":\"ann\"}";
    let forging = pki.client(Some(&pki.ca.client(forger)));
    let status = produce(&forging, &server, "farm-a:readings", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let line = server.audit_line("\"principal\":\"eve");
    assert_eq!(line["principal"], forger);
    assert_eq!(
        line["topic"], "farm-a:readings",
        "what was refused is named"
    );
    assert_eq!(line["status"], 403);

    // No identity at all: 401, audited.
    let anonymous = pki.client(None);
    let response = anonymous.get(&offsets).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let line = server.audit_line("\"event\":\"unauthenticated\"");
    assert_eq!(line["reason"], "missing");
    assert_eq!(line["path"], "/topics/farm-a:readings/partitions/0/offsets");

    // A consumer naming one granted and one other topic, in subscriptions or offsets: 403.
    let with_token = pki.client(None);
    for consumer in [
        json!({ "subscriptions": [{ "topic": "farm-a:readings" }, { "topic": "farm-b:readings" }] }),
        json!({
            "offsets": [{ "topic": "farm-b:readings", "partition": 0, "offset": 0 }],
            "subscriptions": [{ "topic": "farm-a:readings" }]
        }),
    ] {
        let status = post(
            &with_token,
            &server,
            "/consumers/g",
            Some(&token),
            &consumer,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{consumer}");
    }

    // A record carrying the provenance header (in any case) is refused, token or not.
    let forged = one_record(
        "farm-a:readings",
        json!([{ "key": "Streambed-Principal", "value": "b3BlcmF0b3I=" }]),
    );
    let status = post(
        &with_token,
        &server,
        "/topics/farm-a:readings",
        Some(&token),
        &forged,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Refusals by reason, and no principal nor topic, in /metrics (served to anyone).
    let metrics = get_text(&anonymous, &server.https_url("/metrics")).await;
    assert_eq!(refused_count(&metrics, "unauthenticated"), 1);
    assert_eq!(refused_count(&metrics, "forbidden"), 5);
    assert_eq!(refused_count(&metrics, "forged_provenance"), 1);
    for private in ["farm-", "sensor-7", "=\"ann\"", "=\"eve"] {
        assert!(!metrics.contains(private), "{private} in:\n{metrics}");
    }

    // An address that keeps bringing bad tokens gets 429 once over the rate, before its
    // tokens cost a store call...
    // Sent until three in a row are refused: natively a few past the burst. Under an
    // emulator each failure can take a good part of the second that refills the bucket by
    // one, so it takes more there (a failure that took a whole second would never empty it).
    let mut statuses = Vec::new();
    let burst_started = std::time::Instant::now();
    for n in 0..FAILURE_BURST * 10 {
        let response = anonymous
            .get(&offsets)
            .bearer_auth(format!("not-a-token-{n}"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key(header::RETRY_AFTER));
        }
        statuses.push(response.status().as_u16());
        if statuses.ends_with(&[429; 3]) {
            break;
        }
    }
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    // One failure (the anonymous request above) was charged already, but the bucket may
    // have refilled to its burst since; and at one a second, each second the burst itself
    // lasts (many under an emulator) may bring one more.
    let refilled_during = burst_started.elapsed().as_secs_f64().ceil() as usize;
    assert!(
        (FAILURE_BURST - 1..=FAILURE_BURST + refilled_during).contains(&unauthorized),
        "{statuses:?} in {:?}",
        burst_started.elapsed()
    );
    assert!(statuses.ends_with(&[429; 3]), "{statuses:?}");
    let last_refused = std::time::Instant::now();
    // ...and so does one with no identity at all. Under an emulator, a second may pass
    // between two requests, and the bucket refills by one each second: there each 401
    // must be paid for by a second since the last 429.
    let mut since_refused = Vec::new();
    loop {
        let status = anonymous.get(&offsets).send().await.unwrap().status();
        if status == StatusCode::TOO_MANY_REQUESTS || streambed_test::process::runner().is_none() {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        since_refused.push(last_refused.elapsed());
        let refills = last_refused.elapsed().as_secs_f64().ceil() as usize;
        assert!(since_refused.len() <= refills, "{since_refused:?}");
    }
    // ...while principals at the same address, known already, are not barred.
    let response = with_token
        .get(&offsets)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let sensor_offsets = sensor_log.offsets("farm-a:readings".into(), 0).await;
    assert_eq!(sensor_offsets.unwrap().end_offset, 2);
}

#[tokio::test]
async fn the_secure_set_up_with_a_token_of_an_openbao_user() {
    let bao = bao::Bao::start().await;
    bao.enable_auth("userpass").await;
    bao.create_user("ann", "ann-pass", &["default"]).await;
    let token = common::userpass_token(&bao.url, "ann", "ann-pass").await;

    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let policy = write_policy(dir.path());
    let tokens = [
        "--token-store",
        "vault",
        "--vault-address",
        bao.url.as_str(),
    ];
    let args = secure_args(&pki, &policy, &tokens);
    let mut server = Program::start(&args.iter().map(String::as_str).collect::<Vec<_>>());

    a_token_produces_and_consumes(&mut server, &pki, &token, "ann").await;

    let client = pki.client(None);
    let status = produce(&client, &server, "farm-b:readings", Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let response = client
        .get(server.https_url("/topics/farm-a:readings/partitions/0/offsets"))
        .bearer_auth("hvs.not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let line = server.audit_line("\"event\":\"unauthenticated\"");
    assert_eq!(line["reason"], "invalid_token");
}

#[test]
fn mutual_tls_without_a_policy_does_not_open_a_non_loopback_address() {
    let pki = Pki::new();
    let output = streambed_test::process::command(PROGRAM)
        .args(["--listen", "0.0.0.0:0", "--backend", "memory"])
        .args(pki.files.args())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("refusing to serve 0.0.0.0:0 without identities"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
}
