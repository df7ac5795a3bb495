//! The behavioural suite every `CommitLog` runs (`streambed_test::conformance`), against a
//! real Kafka-compatible broker: tansu on loopback, one fresh broker per check.

use streambed_kafka_native::{KafkaNativeCommitLog, KafkaNativeSettings};
use streambed_test::tansu::Tansu;

streambed_test::commit_log_conformance!(async {
    let broker = Tansu::start();
    let log = KafkaNativeCommitLog::with_settings(
        KafkaNativeSettings::new([broker.address()]).create_topics(1, 1),
    );
    (log, broker)
});
