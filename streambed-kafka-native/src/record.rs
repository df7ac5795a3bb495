//! Records between streambed's form and Kafka's: the `u64` key as 8 big-endian bytes,
//! headers by name, the timestamp to the millisecond.
//!
//! Records written by other Kafka clients need not follow streambed's convention: a key
//! that is not 8 bytes long is read as the FNV-1a hash of its bytes (none at all reads as
//! 0), so that records with equal keys still have equal streambed keys. Headers come back
//! ordered by name, since rskafka's record keeps them in a map.

use std::collections::BTreeMap;

use chrono::Utc;
use rskafka::record::{Record, RecordAndOffset};
use streambed::commit_log::{ConsumerRecord, Header, HeaderKey, Partition, ProducerRecord, Topic};

use crate::error::KafkaNativeError;

/// A streambed record as Kafka's. Refuses a record with a repeated header key rather
/// than drop one of its values.
pub(crate) fn to_kafka(record: ProducerRecord) -> Result<Record, KafkaNativeError> {
    let mut headers = BTreeMap::new();
    for Header { key, value } in record.headers {
        if headers.insert(key.to_string(), value).is_some() {
            return Err(KafkaNativeError::DuplicateHeader {
                topic: record.topic.to_string(),
                key: key.to_string(),
            });
        }
    }
    Ok(Record {
        key: Some(record.key.to_be_bytes().to_vec()),
        value: Some(record.value),
        headers,
        timestamp: record.timestamp.unwrap_or_else(Utc::now),
    })
}

/// A Kafka record, read from `partition` of the Kafka topic holding `topic`, as streambed's.
pub(crate) fn from_kafka(
    topic: &Topic,
    partition: Partition,
    RecordAndOffset { record, offset }: RecordAndOffset,
) -> ConsumerRecord {
    ConsumerRecord {
        topic: topic.clone(),
        headers: record
            .headers
            .into_iter()
            .map(|(key, value)| Header {
                key: HeaderKey::from(key),
                value,
            })
            .collect(),
        timestamp: Some(record.timestamp),
        key: record.key.as_deref().map_or(0, streambed_key),
        value: record.value.unwrap_or_default(),
        partition,
        // Kafka never answers a negative offset for a record.
        offset: u64::try_from(offset).unwrap_or_default(),
    }
}

/// The streambed key of a Kafka key: its value when it is 8 bytes, else a hash of it.
fn streambed_key(key: &[u8]) -> u64 {
    match <[u8; 8]>::try_from(key) {
        Ok(bytes) => u64::from_be_bytes(bytes),
        Err(_) => key.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        }),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn producer_record(headers: Vec<Header>) -> ProducerRecord {
        ProducerRecord {
            topic: Topic::from("t"),
            headers,
            timestamp: Some(Utc.timestamp_millis_opt(1_700_000_000_123).unwrap()),
            key: 0x0102_0304_0506_0708,
            value: b"v".to_vec(),
            partition: 0,
        }
    }

    fn header(key: &str, value: &[u8]) -> Header {
        Header {
            key: HeaderKey::from(key),
            value: value.to_vec(),
        }
    }

    #[test]
    fn the_key_travels_as_eight_big_endian_bytes_and_comes_back() {
        let kafka = to_kafka(producer_record(vec![header("a", b"1")])).unwrap();
        assert_eq!(kafka.key.as_deref(), Some(&[1, 2, 3, 4, 5, 6, 7, 8][..]));
        let back = from_kafka(
            &Topic::from("t"),
            0,
            RecordAndOffset {
                record: kafka,
                offset: 7,
            },
        );
        assert_eq!(back.key, 0x0102_0304_0506_0708);
        assert_eq!(back.offset, 7);
        assert_eq!(back.headers, vec![header("a", b"1")]);
        assert_eq!(back.value, b"v");
    }

    #[test]
    fn a_repeated_header_key_is_refused_not_dropped() {
        let error = to_kafka(producer_record(vec![header("a", b"1"), header("a", b"2")]));
        assert!(matches!(
            error,
            Err(KafkaNativeError::DuplicateHeader { key, .. }) if key == "a"
        ));
    }

    #[test]
    fn foreign_keys_of_other_lengths_read_as_a_stable_hash() {
        assert_eq!(streambed_key(b"device-1"), u64::from_be_bytes(*b"device-1"));
        assert_eq!(streambed_key(b"sensor"), streambed_key(b"sensor"));
        assert_ne!(streambed_key(b"sensor"), streambed_key(b"sensor2"));
        // FNV-1a of the empty input is its offset basis.
        assert_eq!(streambed_key(b""), 0xcbf2_9ce4_8422_2325);
    }
}
