//! The `streambed-forward` program's command line: what it refuses, and a whole run
//! between two `FileLog`s that ends when the source is idle.

use streambed::commit_log::CommitLog;
use streambed_logged::FileLog;
use streambed_test::records::{read_topic, record};

const PROGRAM: &str = env!("CARGO_BIN_EXE_streambed-forward");

#[test]
fn a_log_url_of_no_known_kind_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = streambed_test::process::command(PROGRAM)
        .args(["--from", "file:/nowhere", "--to", "kafka://cloud"])
        .args(["--topic", "t", "--source-id", "r"])
        .arg("--positions")
        .arg(dir.path().join("p"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("\"cloud\" is not HOST:PORT"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_until_idle_copies_every_record_and_a_second_run_copies_none_again() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("router"), dir.path().join("cloud"));
    let source = FileLog::new(&from);
    for key in 0..5 {
        source
            .produce(record("farm:readings", key, "v"))
            .await
            .unwrap();
    }
    let run = || {
        let output = streambed_test::process::command(PROGRAM)
            .arg(format!("--from=file:{}", from.display()))
            .arg(format!("--to=file:{}", to.display()))
            .args(["--topic", "farm:readings", "--source-id", "router-7"])
            .arg("--positions")
            .arg(dir.path().join("positions"))
            .args(["--until-idle", "300ms"])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{said}");
        said
    };
    assert!(run().contains("forwarded 5 records"));
    assert!(run().contains("forwarded 0 records"));
    let copied = read_topic(
        &FileLog::new(&to),
        "farm:readings",
        std::time::Duration::from_millis(300),
    )
    .await;
    assert_eq!(
        copied.iter().map(|r| r.key).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_following_forwarder_copies_what_another_process_appends_later() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("router"), dir.path().join("cloud"));
    // The router's service: this process, writing while the forwarder runs.
    let service = FileLog::new(&from);
    service.produce(record("readings", 0, "v")).await.unwrap();
    let mut forwarder = streambed_test::process::command(PROGRAM)
        .arg(format!("--from=file:{}", from.display()))
        .arg(format!("--to=file:{}", to.display()))
        .args(["--topic", "readings", "--source-id", "router-7"])
        .arg("--positions")
        .arg(dir.path().join("positions"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for key in 1..20 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        service.produce(record("readings", key, "v")).await.unwrap();
    }
    let cloud = FileLog::new(&to);
    let patience = std::time::Duration::from_secs(30) * streambed_test::process::slowdown();
    let copied = tokio::time::timeout(
        patience,
        streambed_test::records::count_first(&cloud, "readings", 20),
    )
    .await;
    forwarder.kill().unwrap();
    forwarder.wait().unwrap();
    assert_eq!(
        copied.ok(),
        Some(20),
        "the forwarder did not follow the appends"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_go_up_to_a_cluster_and_back_down_over_tls_trusting_a_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = streambed_test::pki::TestCa::new("cluster CA");
    let broker = streambed_test::tansu::Tansu::start_tls(&ca.server("127.0.0.1"));
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.certificate_pem()).unwrap();
    let (router, copy) = (dir.path().join("router"), dir.path().join("copy"));
    let source = FileLog::new(&router);
    for key in 0..3 {
        source.produce(record("readings", key, "v")).await.unwrap();
    }
    let cluster = format!("kafka://{}", broker.address());
    let run = |from: String, to: String, positions: &str| {
        let output = streambed_test::process::command(PROGRAM)
            .args(["--from", &from, "--to", &to])
            .args(["--topic", "readings", "--source-id", "router-7"])
            .arg("--positions")
            .arg(dir.path().join(positions))
            .args(["--until-idle", "1s", "--kafka-create-topics"])
            .arg("--kafka-ca-file")
            .arg(&ca_file)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{said}");
        said
    };
    let up = run(format!("file:{}", router.display()), cluster.clone(), "up");
    assert!(up.contains("forwarded 3 records"), "{up}");
    let down = run(cluster, format!("file:{}", copy.display()), "down");
    assert!(down.contains("forwarded 3 records"), "{down}");
    let copied = read_topic(
        &FileLog::new(&copy),
        "readings",
        std::time::Duration::from_millis(300),
    )
    .await;
    assert_eq!(copied.iter().map(|r| r.key).collect::<Vec<_>>(), [0, 1, 2]);
}
