//! The `streambed-server` program with identities on: a token from a real
//! `FileSecretStore` login and one from a real OpenBao dev server accepted, bad and expired
//! tokens refused with 401, topics without permission refused with 403 (every subscription
//! checked), and the refusal to serve a non-loopback address without identities unless
//! told the data is open.

#[allow(dead_code)]
#[path = "../../streambed-vault/tests/openbao/bao.rs"]
mod bao;

mod common;

use std::{
    io::Read,
    path::Path,
    process::{Command, Stdio},
    time::SystemTime,
};

use base64::{engine::general_purpose::STANDARD, Engine};
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use common::{
    confidant::Confidant,
    program::{Program, PROGRAM},
};

const ROOT_SECRET: [u8; 16] = [4; 16];

const POLICY: &str = r#"{
  "principals": {
    "ann": { "produce": ["farm-a:*"], "create": ["farm-a:*"], "consume": ["farm-a:*"] }
  }
}"#;

impl Program {
    async fn produce(&self, token: Option<&str>, topic: &str) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(self.endpoint(&format!("/topics/{topic}")))
            .json(&json!({ "records": [{
                "topic": topic, "headers": [], "timestamp": null, "key": 0, "value": "AQ==",
                "partition": 0
            }] }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

fn command(args: &[&str]) -> Command {
    let mut command = streambed_test::process::command(PROGRAM);
    command
        .args(["--backend", "memory", "--worker-threads", "1"])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Starts the server with `args` and waits until it listens.
fn start(args: &[&str]) -> Program {
    Program::spawn(command(args))
}

/// Runs the server with `args`, which must make it exit with failure; its stderr.
fn refused(args: &[&str]) -> String {
    let mut child = command(args).spawn().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "{args:?} served:\n{stderr}");
    stderr
}

fn write_policy(dir: &Path) -> String {
    let path = dir.join("policy.json");
    std::fs::write(&path, POLICY).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A token in the confidant format, signed with `secret`, expiring at `expires` (ms).
fn handmade_token(user: &str, expires: u64, secret: &[u8; 16]) -> String {
    let data = format!(r#"{{"username":"{user}","expires":{expires}}}"#);
    let signature = hex::encode(streambed::crypto::sign(data.as_bytes(), secret));
    STANDARD.encode(format!(r#"{{"data":{data},"signature":"{signature}"}}"#))
}

#[tokio::test]
async fn the_binary_accepts_a_confidant_token_and_checks_every_topic_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let confidant = Confidant::new(dir.path(), &ROOT_SECRET);
    let ann = confidant.token("ann", "pw").await;
    let bob = confidant.token("bob", "pw").await;

    let policy = write_policy(dir.path());
    let mut args = vec!["--listen", "127.0.0.1:0", "--policy", &policy];
    args.extend(confidant.args());
    let server = start(&args);

    assert_eq!(
        server.produce(Some(&ann), "farm-a:readings").await.status(),
        StatusCode::OK
    );

    let missing = server.produce(None, "farm-a:readings").await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let expired = handmade_token("ann", now_ms - 1, &ROOT_SECRET);
    for token in [expired.as_str(), "bm90IGEgdG9rZW4="] {
        let response = server.produce(Some(token), "farm-a:readings").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error_code"], 401);
    }

    let forbidden = server.produce(Some(&ann), "farm-b:readings").await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        server.produce(Some(&bob), "farm-a:readings").await.status(),
        StatusCode::FORBIDDEN
    );

    let consume = |subscriptions: Value| {
        reqwest::Client::new()
            .request(Method::POST, server.endpoint("/consumers/g"))
            .bearer_auth(&ann)
            .json(&json!({ "subscriptions": subscriptions }))
            .send()
    };
    let mixed = consume(json!([{ "topic": "farm-a:readings" }, { "topic": "farm-b:readings" }]));
    assert_eq!(mixed.await.unwrap().status(), StatusCode::FORBIDDEN);
    let allowed = consume(json!([{ "topic": "farm-a:readings" }]));
    assert_eq!(allowed.await.unwrap().status(), StatusCode::OK);
    assert!(
        server.output().contains("identities on"),
        "{}",
        server.output()
    );
}

#[tokio::test]
async fn the_binary_accepts_a_token_of_an_openbao_user() {
    let bao = bao::Bao::start().await;
    bao.enable_auth("userpass").await;
    bao.create_user("ann", "ann-pass", &["default"]).await;
    let token = common::userpass_token(&bao.url, "ann", "ann-pass").await;

    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path());
    let server = start(&[
        "--listen",
        "127.0.0.1:0",
        "--policy",
        &policy,
        "--token-store",
        "vault",
        "--vault-address",
        bao.url.as_str(),
    ]);
    assert_eq!(
        server
            .produce(Some(&token), "farm-a:readings")
            .await
            .status(),
        StatusCode::OK
    );
    let response = server
        .produce(Some("hvs.not-a-token"), "farm-a:readings")
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn a_non_loopback_address_without_identities_is_refused() {
    let stderr = refused(&["--listen", "0.0.0.0:0"]);
    assert!(
        stderr.contains("refusing to serve 0.0.0.0:0 without identities"),
        "{stderr}"
    );
    assert!(stderr.contains("--open-data"), "{stderr}");
}

#[test]
fn open_data_serves_a_non_loopback_address_with_a_loud_warning() {
    let server = start(&["--listen", "0.0.0.0:0", "--open-data"]);
    assert!(server.output().contains("WARN"), "{}", server.output());
    assert!(server.output().contains("OPEN DATA"), "{}", server.output());
}

#[test]
fn tokens_over_plain_http_on_a_non_loopback_address_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let confidant = Confidant::new(dir.path(), &ROOT_SECRET);
    let policy = write_policy(dir.path());
    let mut args = vec!["--listen", "0.0.0.0:0", "--policy", &policy];
    args.extend(confidant.args());
    let server = start(&args);
    assert!(
        server.output().contains("WARN") && server.output().contains("in clear"),
        "{}",
        server.output()
    );
}

#[test]
fn a_token_store_without_a_policy_is_refused() {
    let stderr = refused(&["--token-store", "confidant"]);
    assert!(stderr.contains("--token-store needs --policy"), "{stderr}");
}

#[test]
fn a_policy_with_an_error_is_refused_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    std::fs::write(
        &path,
        "{\"principals\": {\n  \"ann\": {\"consumes\": [\"*\"]}}}",
    )
    .unwrap();
    let stderr = refused(&["--policy", path.to_str().unwrap()]);
    assert!(stderr.contains("consumes"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
}
