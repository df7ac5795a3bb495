//! The `streambed-server` program itself: its help, its default file backend and its
//! graceful exit on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
use streambed_kafka::KafkaRestCommitLog;

const PROGRAM: &str = env!("CARGO_BIN_EXE_streambed-server");

#[test]
fn help_documents_every_flag() {
    let output = Command::new(PROGRAM).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--root-path",
        "--backend",
        "--fsync",
        "--listen",
        "--max-body-size",
        "--header-read-timeout",
        "--body-read-timeout",
        "--shutdown-grace-period",
        "--consumer-heartbeat",
        "--max-connections",
        "--write-timeout",
        "--max-subscriptions",
        "--worker-threads",
        "--log-level",
        "--policy",
        "--token-store",
        "--confidant-root-path",
        "--confidant-root-secret",
        "--vault-address",
        "--vault-ca-file",
        "--token-cache-ttl",
        "--open-data",
        "--help",
        "--version",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_server_keeps_records_in_its_directory_and_exits_cleanly_on_sigterm() {
    let root = tempfile::tempdir().unwrap();
    let mut server = Command::new(PROGRAM)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--worker-threads",
            "1",
            "--root-path",
        ])
        .arg(root.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(server.stderr.take().unwrap());
    let mut output = String::new();
    let address = loop {
        let mut line = String::new();
        let read = stderr.read_line(&mut line).unwrap();
        assert_ne!(read, 0, "server exited early:\n{output}");
        output.push_str(&line);
        if let Some((_, address)) = line.trim_end().split_once("listening on ") {
            break address.to_owned();
        }
    };

    let log = KafkaRestCommitLog::new(format!("http://{address}").parse().unwrap(), None, false);
    let record = ProducerRecord {
        topic: Topic::from("default:kept"),
        headers: vec![],
        timestamp: None,
        key: 5,
        value: b"on disk".to_vec(),
        partition: 0,
    };
    assert_eq!(log.produce(record).await.unwrap().offset, 0);
    assert!(std::fs::read_dir(root.path()).unwrap().next().is_some());

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let pid = server.id().to_string();
    let exit = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::task::spawn_blocking(move || server.wait()),
    )
    .await;
    let Ok(exit) = exit else {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("the server did not exit on SIGTERM");
    };
    let exit = exit.unwrap().unwrap();
    assert!(exit.success(), "{exit:?}");
}
