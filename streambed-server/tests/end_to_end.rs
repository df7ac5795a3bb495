//! The streambed client and the server together on loopback.

mod common;

use std::time::Duration;

use common::TestServer;
use streambed::commit_log::{
    CommitLog, ConsumerOffset, ConsumerRecord, ProducerRecord, Subscription, Topic,
};
use streambed_kafka::KafkaRestCommitLog;
use streambed_server::ServerConfig;
use tokio_stream::{Stream, StreamExt};

mod backend {
    //! The log behind the server in these tests: the server's default, a `FileLog`.
    pub use streambed_logged::FileLog as Log;

    pub struct Backend {
        pub log: Log,
        /// Removed once the test ends.
        _root: tempfile::TempDir,
    }

    impl Backend {
        /// A new log on the same files, as a restarted server process would open.
        pub fn reopen(&mut self) {
            self.log = Log::new(self._root.path());
        }
    }

    pub fn new() -> Backend {
        let root = tempfile::tempdir().unwrap();
        Backend {
            log: Log::new(root.path()),
            _root: root,
        }
    }
}

const TOPIC: &str = "default:events";

/// A new log, a server of it on a free port with the default settings, and a client.
async fn started() -> (backend::Backend, TestServer, KafkaRestCommitLog) {
    let backend = backend::new();
    let server = TestServer::start(backend.log.clone(), ServerConfig::default()).await;
    let client = client_of(&server);
    (backend, server, client)
}

/// A Kafka client of `server`, as a service would make one.
fn client_of(server: &TestServer) -> KafkaRestCommitLog {
    KafkaRestCommitLog::new(server.url(), None, false)
}

/// Ends a test that would otherwise hang on a lost record.
const PATIENCE: Duration = Duration::from_secs(20);

fn record(key: u64) -> ProducerRecord {
    streambed_test::records::record(TOPIC, key, format!("value {key}"))
}

fn subscription() -> Vec<Subscription> {
    vec![Subscription {
        topic: Topic::from(TOPIC),
    }]
}

async fn produce_keys(server: url::Url, keys: std::ops::Range<u64>) {
    let producer = KafkaRestCommitLog::new(server, None, false);
    for key in keys {
        producer.produce(record(key)).await.unwrap();
    }
}

/// The stream's next record, which must come within [`PATIENCE`].
async fn next_record(stream: &mut (impl Stream<Item = ConsumerRecord> + Unpin)) -> ConsumerRecord {
    let next = tokio::time::timeout(PATIENCE, stream.next()).await;
    next.expect("a record within the patience")
        .expect("an open stream")
}

/// Receives from `stream` into `received` until it holds `count` records.
async fn receive_until(
    stream: &mut (impl Stream<Item = ConsumerRecord> + Unpin),
    received: &mut Vec<ConsumerRecord>,
    count: usize,
) {
    while received.len() < count {
        received.push(next_record(stream).await);
    }
}

fn keys_and_offsets(records: &[ConsumerRecord]) -> Vec<(u64, u64)> {
    records.iter().map(|r| (r.key, r.offset)).collect()
}

fn expected(range: std::ops::Range<u64>) -> Vec<(u64, u64)> {
    range.map(|n| (n, n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_consumes_the_history_then_live_records() {
    let (_backend, server, producer) = started().await;
    for key in 0..10 {
        assert_eq!(producer.produce(record(key)).await.unwrap().offset, key);
    }
    let offsets = producer.offsets(Topic::from(TOPIC), 0).await.unwrap();
    assert_eq!((offsets.beginning_offset, offsets.end_offset), (0, 9));

    let consumer = client_of(&server);
    let mut stream = consumer.scoped_subscribe("readers", vec![], subscription(), None);
    let mut received = Vec::new();
    receive_until(&mut stream, &mut received, 10).await;
    assert_eq!(keys_and_offsets(&received), expected(0..10));
    assert_eq!(received[3].value, b"value 3");

    for key in 10..15 {
        producer.produce(record(key)).await.unwrap();
        let live = next_record(&mut stream).await;
        assert_eq!((live.key, live.offset), (key, key));
    }
    drop(stream);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resumes_without_loss_or_duplicates_across_server_restarts() {
    let (mut backend, server, client) = started().await;
    let address = server.address;
    let offsets = vec![ConsumerOffset {
        topic: Topic::from(TOPIC),
        partition: 0,
        offset: 1,
    }];
    let mut stream = client.scoped_subscribe("restarts", offsets, subscription(), None);
    let mut received = Vec::new();
    produce_keys(server.url(), 0..5).await;
    receive_until(&mut stream, &mut received, 3).await;

    // A graceful restart: the server ends the stream, the client reconnects.
    server.stop().await;
    backend.reopen();
    let server = TestServer::start_on(address, backend.log.clone(), ServerConfig::default()).await;
    produce_keys(server.url(), 5..10).await;
    receive_until(&mut stream, &mut received, 8).await;

    // A crash: connections drop mid-stream; records are appended meanwhile.
    server.kill().await;
    backend.reopen();
    for key in 10..13 {
        backend.log.produce(record(key)).await.unwrap();
    }
    let server = TestServer::start_on(address, backend.log.clone(), ServerConfig::default()).await;
    produce_keys(server.url(), 13..15).await;
    receive_until(&mut stream, &mut received, 13).await;

    assert_eq!(keys_and_offsets(&received), expected(2..15));
    // Nothing more is pending: no duplicate arrives late.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stream.next())
            .await
            .is_err()
    );
    drop(stream);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_consumers_each_see_every_record() {
    const CONSUMERS: usize = 100;
    const RECORDS: u64 = 40;
    let (_backend, server, client) = started().await;
    for key in 0..RECORDS / 2 {
        client.produce(record(key)).await.unwrap();
    }

    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|n| {
            let client = client_of(&server);
            tokio::spawn(async move {
                let stream =
                    client.scoped_subscribe(&format!("c{n}"), vec![], subscription(), None);
                let received: Vec<ConsumerRecord> = stream.take(RECORDS as usize).collect().await;
                keys_and_offsets(&received)
            })
        })
        .collect();

    let batch: Vec<ProducerRecord> = (RECORDS / 2..RECORDS).map(record).collect();
    let offsets = client.produce_batch(&batch).await.unwrap();
    assert_eq!(offsets.first().map(|o| o.offset), Some(RECORDS / 2));

    for consumer in consumers {
        let seen = tokio::time::timeout(PATIENCE, consumer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, expected(0..RECORDS));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_consumer_of_the_whole_history_ends_after_the_last_record() {
    let (_backend, server, client) = started().await;
    for key in 0..20 {
        client.produce(record(key)).await.unwrap();
    }
    let history: Vec<ConsumerRecord> = tokio::time::timeout(
        PATIENCE,
        client
            .scoped_subscribe(
                "history",
                vec![],
                subscription(),
                Some(Duration::from_millis(100)),
            )
            .collect(),
    )
    .await
    .unwrap();
    assert_eq!(keys_and_offsets(&history), expected(0..20));
    server.stop().await;
}
