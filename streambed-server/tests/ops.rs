//! The `streambed-server` program's operations and safety flags: `/health`, `/metrics`,
//! audit lines on stderr, the provenance header and the quota flags.

mod common;

use std::time::Duration;

use common::program::{Program, PROGRAM};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

impl Program {
    async fn produce(&self, topic: &str, headers: Value) -> reqwest::Response {
        Client::new()
            .post(self.endpoint(&format!("/topics/{topic}")))
            .json(&json!({"records": [{"topic": topic, "headers": headers, "timestamp": null, "key": 1, "value": "YQ==", "partition": 0}]}))
            .send()
            .await
            .unwrap()
    }
}

#[test]
fn help_documents_the_quota_provenance_audit_and_metrics_flags() {
    let output = streambed_test::process::command(PROGRAM)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--max-streams-per-principal",
        "--max-topics-per-principal",
        "--max-topics",
        "--rate-limit",
        "--rate-burst",
        "--rate-limit-clients",
        "--provenance-header",
        "--audit",
        "--metrics",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[cfg(feature = "prometheus")]
#[tokio::test]
async fn health_answers_and_metrics_report_requests_and_records_in_prometheus_text() {
    let program = Program::start(&[]);
    let client = Client::new();
    let health = client
        .get(program.endpoint("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), r#"{"status":"ok"}"#);

    assert_eq!(
        program
            .produce("default:readings", json!([]))
            .await
            .status(),
        StatusCode::OK
    );
    let metrics = client
        .get(program.endpoint("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    for line in [
        "# TYPE streambed_http_requests_total counter",
        "streambed_http_requests_total{route=\"health\"} 1",
        "streambed_http_requests_total{route=\"produce\"} 1",
        "streambed_records_produced_total 1",
        "streambed_consumer_streams_open 0",
        "streambed_refused_total{reason=\"rate_limit\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    assert!(
        !text.contains("readings"),
        "a topic became a label:\n{text}"
    );
}

#[tokio::test]
async fn without_metrics_the_program_serves_no_metrics_route() {
    let program = Program::start(&["--metrics", "false"]);
    let metrics = Client::new()
        .get(program.endpoint("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn audit_lines_escape_what_clients_chose_so_no_line_can_be_forged() {
    // At debug level the group is also named when its stream ends.
    let program = Program::start(&["--log-level", "debug"]);
    assert_eq!(
        program.produce("default:t", json!([])).await.status(),
        StatusCode::OK
    );
    // A group name carrying a newline and a forged audit line after it.
    let forged = "g\n{\"event\":\"produce\",\"principal\":\"admin\"}\u{1b}[2K";
    let path = format!("/consumers/{}", url_escape(forged));
    let stream = Client::new()
        .post(program.endpoint(&path))
        .json(&json!({"offsets": [{"topic": "default:t", "partition": 0, "offset": 0}], "subscriptions": [{"topic": "default:t"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let lines = program
        .lines_until(|line| line.contains("\"event\":\"consume\""))
        .await;
    let audit: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("INFO  audit: "))
        .collect();
    assert_eq!(audit.len(), 2, "{lines:?}");
    let produce: Value =
        serde_json::from_str(audit[0].strip_prefix("INFO  audit: ").unwrap()).unwrap();
    assert_eq!(produce["event"], "produce");
    assert_eq!(produce["topic"], "default:t");
    assert_eq!(produce["records"], 1);
    assert_eq!(produce["first_offset"], 0);
    assert_eq!(produce["status"], 200);
    assert!(produce["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    let consume: Value =
        serde_json::from_str(audit[1].strip_prefix("INFO  audit: ").unwrap()).unwrap();
    assert_eq!(consume["group"], forged);
    assert_eq!(consume["topics"], json!(["default:t"]));
    assert_eq!(consume["offsets"], 1);

    drop(stream);
    let lines = program
        .lines_until(|line| line.contains("stream ended"))
        .await;
    assert!(
        lines.iter().all(|line| !line.starts_with("{\"event\"")),
        "a forged line appeared: {lines:?}"
    );
}

/// Percent-encodes every byte outside unreserved URL characters.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn audit_false_keeps_audit_lines_off_stderr() {
    let program = Program::start(&["--audit", "false", "--log-level", "debug"]);
    assert_eq!(
        program.produce("t", json!([])).await.status(),
        StatusCode::OK
    );
    // A request logged after the produce shows the log has caught up.
    let _ = Client::new()
        .get(program.endpoint("/health"))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = program.lines();
    assert!(
        lines.iter().all(|line| !line.contains(" audit: ")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn the_provenance_flag_stamps_records_and_refuses_forged_stamps() {
    let program = Program::start(&["--provenance-header", "streambed-principal"]);
    let forged = program
        .produce(
            "t",
            json!([{"key": "streambed-principal", "value": "YWRtaW4="}]),
        )
        .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        program.produce("t", json!([])).await.status(),
        StatusCode::OK
    );
    let mut stream = Client::new()
        .post(program.endpoint("/consumers/g"))
        .json(&json!({"subscriptions": [{"topic": "t"}]}))
        .send()
        .await
        .unwrap();
    let mut text = Vec::new();
    while !text.contains(&b'\n') {
        text.extend_from_slice(&stream.chunk().await.unwrap().unwrap());
    }
    let record: Value = serde_json::from_slice(&text).unwrap();
    // "127.0.0.1" in base64.
    assert_eq!(
        record["headers"],
        json!([{"key": "streambed-principal", "value": "MTI3LjAuMC4x"}])
    );
}

#[test]
fn an_empty_provenance_header_name_stops_the_program() {
    let output = streambed_test::process::command(PROGRAM)
        .args(["--listen", "127.0.0.1:0", "--backend", "memory"])
        .args(["--provenance-header", ""])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("provenance header name is empty"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_rate_limit_flags_set_the_rate_and_the_refused_count_shows_in_metrics() {
    let program = Program::start(&["--rate-limit", "1", "--rate-burst", "2"]);
    let client = Client::new();
    let offsets = program.endpoint("/topics/t/partitions/0/offsets");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = client.get(&offsets).send().await.unwrap();
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(response.headers()["retry-after"], "1");
        }
    }
    assert_eq!(
        statuses,
        [
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    #[cfg(feature = "prometheus")]
    {
        let text = common::get_text(&client, &program.endpoint("/metrics")).await;
        assert_eq!(common::refused_count(&text, "rate_limit"), 1);
    }
}

#[tokio::test]
async fn the_stream_quota_flag_limits_streams_per_client() {
    let program = Program::start(&["--max-streams-per-principal", "1"]);
    let subscribe = || async {
        Client::new()
            .post(program.endpoint("/consumers/g"))
            .json(&json!({"subscriptions": [{"topic": "t"}]}))
            .send()
            .await
            .unwrap()
    };
    let first = subscribe().await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(subscribe().await.status(), StatusCode::TOO_MANY_REQUESTS);
}
