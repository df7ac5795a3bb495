//! The behavioural suite every `CommitLog` runs (`streambed_test::conformance`), against
//! the server's in-memory log, and against the Kafka HTTP client talking to this server
//! on loopback (over a `FileLog`, the binary's default backend): what a service sees
//! through the server must be what it sees on the log itself.

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
