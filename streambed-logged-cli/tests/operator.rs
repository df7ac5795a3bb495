//! Runs the `logged` binary's operator commands (`topics`, `offsets`, `verify`, `tail`,
//! `--format text`) on real log folders, as an operator would from a shell.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::Path,
    process::{Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use streambed_test::process::output_with_stdin;

fn logged(root: &Path, args: &[&str], stdin: &str) -> Output {
    let mut command = streambed_test::process::command(env!("CARGO_BIN_EXE_logged"));
    command.arg("--root-path").arg(root).args(args);
    output_with_stdin(&mut command, stdin.as_bytes())
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "status {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// JSON producer records for `topic` with keys `keys`, value "v<key>" in base64.
fn records(topic: &str, keys: std::ops::Range<u64>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for key in keys {
        let value = [
            "djA=", "djE=", "djI=", "djM=", "djQ=", "djU=", "djY=", "djc=", "djg=", "djk=",
        ][(key % 10) as usize];
        writeln!(
            out,
            r#"{{"topic":"{topic}","headers":[],"timestamp":null,"key":{key},"value":"{value}","partition":0}}"#
        )
        .unwrap();
    }
    out
}

fn produce(root: &Path, input: &str) {
    stdout_of(&logged(root, &["produce", "--file", "-"], input));
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for command in [
        "produce",
        "subscribe",
        "tail",
        "topics",
        "offsets",
        "verify",
    ] {
        let help = stdout_of(&logged(dir.path(), &[command, "--help"], ""));
        assert!(help.contains("Usage: logged"), "{command}: {help}");
    }
}

#[test]
fn produce_prints_only_the_count_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let output = logged(
        dir.path(),
        &["produce", "--file", "-"],
        &records("t", 0..500),
    );
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "logged: produced 500 records\n"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn topics_lists_offsets_records_and_bytes_of_each_topic() {
    let dir = tempfile::tempdir().unwrap();
    produce(dir.path(), &records("readings", 0..7));
    produce(dir.path(), &records("alerts", 0..2));

    let json = stdout_of(&logged(dir.path(), &["topics", "--format", "json"], ""));
    let topics: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(topics.len(), 2);
    assert_eq!(topics[0]["topic"], "alerts");
    assert_eq!(topics[1]["topic"], "readings");
    assert_eq!(topics[1]["beginning_offset"], 0);
    assert_eq!(topics[1]["end_offset"], 6);
    assert_eq!(topics[1]["records"], 7);
    let file_len = fs::metadata(dir.path().join("readings")).unwrap().len();
    assert!(topics[1]["bytes_on_disk"].as_u64().unwrap() >= file_len);
    assert!(topics[1]["last_write"].as_str().unwrap().starts_with("20"));

    let text = stdout_of(&logged(dir.path(), &["topics"], ""));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("TOPIC"), "{text}");
    let readings: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&readings[..4], &["readings", "0", "6", "7"]);
}

#[test]
fn offsets_prints_the_first_and_last_offset_and_fails_without_records() {
    let dir = tempfile::tempdir().unwrap();
    produce(dir.path(), &records("readings", 0..4));
    assert_eq!(
        stdout_of(&logged(dir.path(), &["offsets", "readings"], "")),
        "beginning_offset=0 end_offset=3\n"
    );
    let json = stdout_of(&logged(
        dir.path(),
        &["offsets", "readings", "--format", "json"],
        "",
    ));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        serde_json::json!({"beginning_offset": 0, "end_offset": 3})
    );
    let missing = logged(dir.path(), &["offsets", "absent"], "");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("holds no record"));
}

#[test]
fn verify_reports_damaged_ranges_exits_3_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    produce(dir.path(), &records("readings", 0..10));
    produce(dir.path(), &records("alerts", 0..1));
    let intact = logged(dir.path(), &["verify"], "");
    assert_eq!(intact.status.code(), Some(0));
    let text = String::from_utf8(intact.stdout).unwrap();
    assert!(text.contains("readings: intact, 10 records"), "{text}");
    assert!(text.contains("alerts: intact, 1 records"), "{text}");

    // Every record here is the same length: damage records 4 and 5 exactly.
    let path = dir.path().join("readings");
    let mut bytes = fs::read(&path).unwrap();
    let record_len = bytes.len() / 10;
    let (from, to) = (4 * record_len, 6 * record_len);
    bytes[from..to].fill(0xA5);
    fs::write(&path, &bytes).unwrap();

    let damaged = logged(dir.path(), &["verify", "readings"], "");
    assert_eq!(damaged.status.code(), Some(3));
    let text = String::from_utf8(damaged.stdout).unwrap();
    assert!(text.contains("readings: DAMAGED, 8 records"), "{text}");
    assert!(
        text.contains(&format!(
            "bytes {from}..{to} ({} bytes) damaged between offset 3 and offset 6: 2 records skipped",
            to - from
        )),
        "{text}"
    );
    // Read only: the damage is still there, nothing was cut off.
    assert_eq!(fs::read(&path).unwrap(), bytes);
    // Other topics still verify alone.
    assert_eq!(
        logged(dir.path(), &["verify", "alerts"], "").status.code(),
        Some(0)
    );
}

#[test]
fn subscribe_prints_text_with_utf8_values_and_hex_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    produce(
        dir.path(),
        r#"{"topic":"t","headers":[{"key":"unit","value":"Qw=="}],"timestamp":"2026-12-04T20:00:00Z","key":1,"value":"MjEuNQ==","partition":0}
{"topic":"t","headers":[],"key":2,"value":"/wA=","partition":0}"#,
    );
    let text = stdout_of(&logged(
        dir.path(),
        &[
            "subscribe",
            "--subscription",
            "t",
            "--idle-timeout",
            "300ms",
            "--format",
            "text",
        ],
        "",
    ));
    assert_eq!(
        text,
        "t offset=0 key=1 timestamp=2026-12-04T20:00:00Z headers=[\"unit\"=\"C\"] value=\"21.5\"\n\
         t offset=1 key=2 timestamp=- headers=[] value=0xff00\n"
    );
}

#[test]
fn tail_prints_the_newest_records_then_follows_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    produce(dir.path(), &records("readings", 0..5));
    let mut child = streambed_test::process::command(env!("CARGO_BIN_EXE_logged"))
        .arg("--root-path")
        .arg(dir.path())
        .args(["tail", "readings", "-n", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || lines.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(next().starts_with("readings offset=3 key=3 "));
    assert!(next().starts_with("readings offset=4 key=4 "));

    // Written by another process: the tail is woken by the file watcher.
    produce(dir.path(), &records("readings", 5..7));
    assert!(next().starts_with("readings offset=5 key=5 "));
    let last = next();
    assert!(last.starts_with("readings offset=6 key=6 "), "{last}");
    assert!(last.ends_with("value=\"v6\""), "{last}");

    child.kill().unwrap();
    child.wait().unwrap();
}
