//! The `streambed-server` program gathers audit lines and writes them together: none is
//! lost when it exits, none is held back for long, and other lines keep their place.

use std::{
    io::{BufRead, BufReader, Read},
    process::Stdio,
    time::{Duration, Instant},
};

use reqwest::{Client, StatusCode};
use serde_json::json;

const PROGRAM: &str = env!("CARGO_BIN_EXE_streambed-server");

const REQUESTS: usize = 200;

#[tokio::test]
async fn every_audit_line_is_written_soon_and_before_the_program_exits() {
    let mut child = streambed_test::process::command(PROGRAM)
        .args(["--listen", "127.0.0.1:0", "--backend", "memory"])
        .args(["--rate-limit", "0", "--worker-threads", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let address = loop {
        let mut line = String::new();
        assert_ne!(stderr.read_line(&mut line).unwrap(), 0, "server exited");
        if let Some((_, address)) = line.trim_end().split_once("listening on ") {
            break address.to_owned();
        }
    };
    let client = Client::new();
    let produce = || {
        client
            .post(format!("http://{address}/topics/audited"))
            .json(&json!({ "records": [{
                "topic": "audited", "headers": [], "timestamp": null, "key": 0,
                "value": "AQ==", "partition": 0
            }] }))
            .send()
    };

    // One request alone: its line shows without waiting for more.
    assert_eq!(produce().await.unwrap().status(), StatusCode::OK);
    let started = Instant::now();
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("INFO  audit: {\"event\":\"produce\""),
        "{line}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    // Many at once, then SIGTERM straight away: all written, before the last words.
    let requests: Vec<_> = (1..REQUESTS).map(|_| produce()).collect();
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }
    // SAFETY: kill with a valid pid and signal number.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let lines: Vec<&str> = rest.lines().collect();
    let audit = lines
        .iter()
        .filter(|line| line.starts_with("INFO  audit: {\"event\":\"produce\""))
        .count();
    assert_eq!(audit, REQUESTS - 1, "{rest}");
    let last_audit = lines.iter().rposition(|line| line.contains(" audit: "));
    let terminated = lines.iter().position(|line| line.contains("terminated"));
    assert!(last_audit < terminated, "{rest}");
    assert_eq!(lines.last(), Some(&"INFO  streambed_server: stopped"));
}
