//! Runs the `logged` binary: records produced from a file come back out of `subscribe`.

use std::{path::Path, process::Output};

use streambed_test::process::output_with_stdin;

fn logged(root: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = streambed_test::process::command(env!("CARGO_BIN_EXE_logged"));
    command.arg("--root-path").arg(root).args(args);
    output_with_stdin(&mut command, stdin.unwrap_or_default().as_bytes())
}

fn record(topic: &str, key: u64, value_base64: &str) -> String {
    format!(
        r#"{{"topic":"{topic}","headers":[],"timestamp":null,"key":{key},"value":"{value_base64}","partition":0}}"#
    )
}

fn subscribe(root: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["subscribe", "--idle-timeout", "300ms"];
    args.extend_from_slice(extra);
    let output = logged(root, &args, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn records_produced_from_a_file_come_back_from_subscribe() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("log");
    // Records one after another: on separate lines, on one line, and pretty-printed.
    let input = format!(
        "{}\n{} {}\n{}\n",
        record("readings", 1, "SGkgdGhlcmU="),
        record("readings", 2, "AAE="),
        record("alerts", 3, ""),
        serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&record("readings", 4, "/w==")).unwrap()
        )
        .unwrap()
    );
    let file = dir.path().join("records.json");
    std::fs::write(&file, input).unwrap();
    let output = logged(&root, &["produce", "--file", file.to_str().unwrap()], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let records = subscribe(&root, &["--subscription", "readings"]);
    let keys: Vec<u64> = records.iter().map(|r| r["key"].as_u64().unwrap()).collect();
    let offsets: Vec<u64> = records
        .iter()
        .map(|r| r["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(keys, vec![1, 2, 4]);
    assert_eq!(offsets, vec![0, 1, 2]);
    assert_eq!(records[0]["value"], "SGkgdGhlcmU=");
    assert_eq!(records[0]["topic"], "readings");

    let after_first = subscribe(
        &root,
        &["--subscription", "readings", "--offset", "readings,0,0"],
    );
    assert_eq!(after_first.len(), 2);
    assert_eq!(after_first[0]["offset"], 1);

    let both = subscribe(&root, &["--subscription", "readings", "alerts"]);
    assert_eq!(both.len(), 4);
}

#[test]
fn records_from_standard_input_are_produced_and_subscribe_can_write_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("log");
    let input = format!("{}\n{}\n", record("t", 1, "AQ=="), record("t", 2, "Ag=="));
    let output = logged(&root, &["produce", "--file", "-"], Some(&input));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let out_file = dir.path().join("out.jsonl");
    let output = logged(
        &root,
        &[
            "subscribe",
            "--subscription",
            "t",
            "--idle-timeout",
            "300ms",
            "--output",
            out_file.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = std::fs::read_to_string(out_file).unwrap();
    assert_eq!(written.lines().count(), 2);
}

#[test]
fn a_bad_record_is_named_and_nothing_of_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("log");
    let input = format!(
        "{}\n{}\n{}\n{}\n",
        record("t", 1, "AQ=="),
        record("t", 2, "Ag=="),
        record("t", 3, "not base64!"),
        record("t", 4, "BA==")
    );
    let output = logged(&root, &["produce", "--file", "-"], Some(&input));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("record 3"), "{stderr}");
    assert!(
        stderr.contains("2 records before it were produced"),
        "{stderr}"
    );
    assert!(stderr.contains("line 3"), "{stderr}");

    let records = subscribe(&root, &["--subscription", "t"]);
    let keys: Vec<u64> = records.iter().map(|r| r["key"].as_u64().unwrap()).collect();
    assert_eq!(keys, vec![1, 2]);
}

#[test]
fn a_record_the_log_refuses_is_named_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("log");
    let input = format!(
        "{}\n{}\n",
        record("t", 1, "AQ=="),
        record("../escape", 2, "Ag==")
    );
    let output = logged(&root, &["produce", "--file", "-"], Some(&input));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("record 2"), "{stderr}");
    assert!(stderr.contains("topic"), "{stderr}");
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn a_missing_input_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = logged(
        dir.path(),
        &["produce", "--file", "/nonexistent/records.json"],
        None,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot open /nonexistent/records.json"),
        "{stderr}"
    );
}

#[test]
fn subscribing_to_an_invalid_topic_or_partition_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (
            vec!["subscribe", "--subscription", "../etc"],
            "cannot subscribe to \"../etc\"",
        ),
        (
            vec!["subscribe", "--subscription", "a", "--offset", "b,0,1"],
            "not among the subscriptions",
        ),
        (
            vec!["subscribe", "--subscription", "a", "--offset", "a,1,1"],
            "partition 1",
        ),
    ] {
        let output = logged(dir.path(), &args, None);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
