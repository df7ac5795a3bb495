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
