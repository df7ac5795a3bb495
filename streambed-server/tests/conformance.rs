//! The behavioural suite every `CommitLog` runs (`streambed_test::conformance`), against
//! the server's in-memory log, and against the Kafka HTTP client talking to this server
//! on loopback over a `FileLog` (the binary's default backend) and over a Kafka cluster
//! (tansu, really started): what a service sees through the server must be what it sees
//! on the log itself.

mod common;

mod memory_log {
    streambed_test::commit_log_conformance!(async {
        (streambed_server::memory::MemoryLog::new(), ())
    });
}

mod kafka_rest_client_through_the_server {
    use streambed_kafka::KafkaRestCommitLog;
    use streambed_server::ServerConfig;

    use super::common::TestServer;

    streambed_test::commit_log_conformance!(async {
        let root = tempfile::tempdir().unwrap();
        let log = streambed_logged::FileLog::new(root.path());
        let server = TestServer::start(log, ServerConfig::default()).await;
        let client = KafkaRestCommitLog::new(server.url(), None, false);
        (client, (server, root))
    });
}

#[cfg(feature = "kafka")]
mod kafka_rest_client_through_the_server_over_kafka {
    use streambed_kafka::KafkaRestCommitLog;
    use streambed_kafka_native::{KafkaNativeCommitLog, KafkaNativeSettings};
    use streambed_server::ServerConfig;
    use streambed_test::tansu::Tansu;

    use super::common::TestServer;

    streambed_test::commit_log_conformance!(async {
        let broker = Tansu::start();
        let log = KafkaNativeCommitLog::with_settings(
            KafkaNativeSettings::new([broker.address()]).create_topics(1, 1),
        );
        let server = TestServer::start(log, ServerConfig::default()).await;
        let client = KafkaRestCommitLog::new(server.url(), None, false);
        (client, (server, broker))
    });
}
