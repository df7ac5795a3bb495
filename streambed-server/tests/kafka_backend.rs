//! The program in front of a Kafka cluster (`--backend kafka://`): what HTTP clients
//! produce lands on the cluster, where a Kafka client reads it, every record in order.
//! The cluster is tansu on loopback, really started.

mod common;

use std::time::Duration;

use common::program::{Program, PROGRAM};
use futures_util::StreamExt;
use streambed::commit_log::{CommitLog, ConsumerOffset, ProducerRecord, Subscription, Topic};
use streambed_kafka::KafkaRestCommitLog;
use streambed_kafka_native::KafkaNativeCommitLog;
use streambed_test::tansu::Tansu;

fn reading(topic: &str, key: u64) -> ProducerRecord {
    ProducerRecord {
        topic: Topic::from(topic),
        headers: vec![],
        timestamp: None,
        key,
        value: format!("reading {key}").into_bytes(),
        partition: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_produced_through_the_server_reach_the_cluster_in_order() {
    let broker = Tansu::start();
    let mut command = streambed_test::process::command(PROGRAM);
    command
        .args(["--listen", "127.0.0.1:0", "--worker-threads", "1"])
        .arg("--backend")
        .arg(format!("kafka://{}", broker.address()))
        .arg("--kafka-create-topics")
        // The client sends one request per record; the default rate limit would refuse
        // some of the 500 sent here in well under a second.
        .args(["--rate-limit", "0"]);
    let server = Program::spawn(command);
    let http = KafkaRestCommitLog::new(server.endpoint("").parse().unwrap(), None, false);

    // One at a time, and in batches, to a namespaced topic and a plain one.
    const RECORDS: u64 = 300;
    for key in 0..100 {
        let produced = http.produce(reading("farm:readings", key)).await.unwrap();
        assert_eq!(produced.offset, key);
    }
    for first in (100..RECORDS).step_by(50) {
        let batch = (first..first + 50)
            .flat_map(|key| [reading("farm:readings", key), reading("alerts", key)])
            .collect();
        if let Err(error) = http.produce_all(batch).await {
            // Let the program's last lines reach the copy kept of them.
            std::thread::sleep(Duration::from_secs(1));
            panic!(
                "produce_all from key {first}: {error:?}\nthe server said:\n{}",
                server.output()
            );
        }
    }
    let offsets = http.offsets(Topic::from("farm:readings"), 0).await.unwrap();
    assert_eq!(
        (offsets.beginning_offset, offsets.end_offset),
        (0, RECORDS - 1)
    );

    let kafka = KafkaNativeCommitLog::new([broker.address()]);
    let idle = Duration::from_secs(2) * streambed_test::process::slowdown();
    let read: Vec<_> = kafka
        .scoped_subscribe(
            "check",
            vec![],
            vec![Subscription {
                topic: Topic::from("farm:readings"),
            }],
            Some(idle),
        )
        .collect()
        .await;
    let keys: Vec<u64> = read.iter().map(|record| record.key).collect();
    assert_eq!(keys, (0..RECORDS).collect::<Vec<_>>());
    assert!(read
        .iter()
        .enumerate()
        .all(|(offset, record)| record.offset == offset as u64
            && record.value == format!("reading {}", record.key).into_bytes()));

    // A subscription through the server from an offset sees the rest of the other topic.
    let rest: Vec<_> = http
        .scoped_subscribe(
            "check",
            vec![ConsumerOffset {
                topic: Topic::from("alerts"),
                partition: 0,
                offset: 149,
            }],
            vec![Subscription {
                topic: Topic::from("alerts"),
            }],
            Some(idle),
        )
        .map(|record| record.key)
        .collect()
        .await;
    assert_eq!(rest, (250..RECORDS).collect::<Vec<_>>());
}
