//! Which characters, and how many, a topic name may have wherever it leaves the process:
//! Kafka's rule, `A-Z a-z 0-9 . _ -` and at most 249 bytes. The server checks names
//! against it at its boundary (adding streambed's `ns:` prefix), and the Kafka client maps
//! names onto it; it lives here, once, so that the two cannot disagree.
//!
//! ```
//! use streambed::topic_name::{is_kafka_topic_char, MAX_TOPIC_NAME_LEN};
//!
//! assert!("end-device_events.v2".chars().all(is_kafka_topic_char));
//! assert!(!is_kafka_topic_char(':'));
//! assert_eq!(MAX_TOPIC_NAME_LEN, 249);
//! ```

/// The longest topic name, namespace included, in bytes (Kafka's limit).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Whether Kafka allows `c` in a topic name.
pub fn is_kafka_topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}
