//! The `streambed-server` program itself: its help, its default file backend and its
//! graceful exit on SIGTERM.

mod common;

use std::process::Command;

use common::program::{Program, PROGRAM};

use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
use streambed_kafka::KafkaRestCommitLog;

#[test]
fn help_documents_every_flag() {
    let output = streambed_test::process::command(PROGRAM)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--root-path",
        "--backend",
        "--kafka-create-topics",
        "--kafka-partitions",
        "--kafka-replication-factor",
        "--kafka-request-deadline",
        "--kafka-ca-file",
        "--kafka-sasl-username",
        "--kafka-sasl-password-file",
        "--kafka-sasl-mechanism",
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
    let mut command = streambed_test::process::command(PROGRAM);
    command
        .args(["--listen", "127.0.0.1:0", "--worker-threads", "1"])
        .arg("--root-path")
        .arg(root.path());
    let server = Program::spawn(command);

    let log = KafkaRestCommitLog::new(server.endpoint("").parse().unwrap(), None, false);
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

    server.signal("-TERM");
    let pid = server.pid();
    let exit = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            let mut server = server;
            server.child.wait()
        }),
    )
    .await;
    let Ok(exit) = exit else {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("the server did not exit on SIGTERM");
    };
    let exit = exit.unwrap().unwrap();
    assert!(exit.success(), "{exit:?}");
}
