//! Commit log records for tests and benches. Many crates' tests build a `ProducerRecord`
//! that differs only in topic, key and value; this is its one spelling, so a field added
//! to the record type is filled in one place.

use streambed::commit_log::{ProducerRecord, Topic};

/// A record for `topic` with `key` and `value`, no headers, no timestamp, partition 0.
///
/// ```
/// use streambed_test::records::record;
///
/// let produced = record("readings", 7, b"21.5".as_slice());
/// assert_eq!(produced.topic, "readings");
/// assert_eq!(produced.key, 7);
/// assert_eq!(produced.value, b"21.5");
/// assert_eq!(produced.partition, 0);
/// assert!(produced.headers.is_empty() && produced.timestamp.is_none());
/// ```
pub fn record(topic: &str, key: u64, value: impl Into<Vec<u8>>) -> ProducerRecord {
    ProducerRecord {
        topic: Topic::from(topic),
        headers: vec![],
        timestamp: None,
        key,
        value: value.into(),
        partition: 0,
    }
}
