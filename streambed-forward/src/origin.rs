//! Where a forwarded record came from, in two headers every forwarded record carries: the
//! forwarder's source id and the record's offset in the source. Forwarding is at least
//! once (a forwarder killed between the destination's acknowledgement and storing its
//! position sends some records again), so these headers are what lets a consumer of the
//! destination recognise a record it has already seen.

use streambed::commit_log::{ConsumerRecord, Header, HeaderKey, ProducerRecord};

/// The header naming the source a record was forwarded from.
pub const ORIGIN_HEADER: &str = "streambed-origin";
/// The header holding the record's offset in its source, in decimal ASCII.
pub const ORIGIN_OFFSET_HEADER: &str = "streambed-origin-offset";

/// Where a record came from: its source's id and its offset there (in the partition of
/// the same number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The forwarder's source id.
    pub source: &'a str,
    /// The record's offset in the source.
    pub offset: u64,
}

impl<'a> Origin<'a> {
    /// The origin a forwarded record carries; `None` for a record that was not forwarded
    /// (or whose origin headers are not well-formed).
    ///
    /// ```
    /// use streambed::commit_log::{ConsumerRecord, Header, HeaderKey, Topic};
    /// use streambed_forward::{Origin, ORIGIN_HEADER, ORIGIN_OFFSET_HEADER};
    ///
    /// let record = ConsumerRecord {
    ///     topic: Topic::from("readings"),
    ///     headers: vec![
    ///         Header { key: HeaderKey::from(ORIGIN_HEADER), value: b"router-7".to_vec() },
    ///         Header { key: HeaderKey::from(ORIGIN_OFFSET_HEADER), value: b"42".to_vec() },
    ///     ],
    ///     timestamp: None,
    ///     key: 1,
    ///     value: vec![],
    ///     partition: 0,
    ///     offset: 9,
    /// };
    /// assert_eq!(Origin::of(&record), Some(Origin { source: "router-7", offset: 42 }));
    /// ```
    pub fn of(record: &'a ConsumerRecord) -> Option<Origin<'a>> {
        let header = |name: &str| {
            record
                .headers
                .iter()
                .find(|header| header.key == name)
                .map(|header| header.value.as_slice())
        };
        let source = std::str::from_utf8(header(ORIGIN_HEADER)?).ok()?;
        let offset = std::str::from_utf8(header(ORIGIN_OFFSET_HEADER)?)
            .ok()?
            .parse()
            .ok()?;
        Some(Origin { source, offset })
    }
}

/// The record to produce at the destination for a record read from the source: the same
/// topic, partition, key, value, timestamp and headers, with the origin headers set to
/// this source (replacing those of an earlier hop, so a record forwarded twice names the
/// last one).
pub(crate) fn forwarded(record: &ConsumerRecord, source: &str) -> ProducerRecord {
    let mut headers = Vec::with_capacity(record.headers.len() + 2);
    headers.extend(
        record
            .headers
            .iter()
            .filter(|header| header.key != ORIGIN_HEADER && header.key != ORIGIN_OFFSET_HEADER)
            .cloned(),
    );
    headers.push(Header {
        key: HeaderKey::from(ORIGIN_HEADER),
        value: source.as_bytes().to_vec(),
    });
    headers.push(Header {
        key: HeaderKey::from(ORIGIN_OFFSET_HEADER),
        value: record.offset.to_string().into_bytes(),
    });
    ProducerRecord {
        topic: record.topic.clone(),
        headers,
        timestamp: record.timestamp,
        key: record.key,
        value: record.value.clone(),
        partition: record.partition,
    }
}

#[cfg(test)]
mod tests {
    use streambed::commit_log::Topic;

    use super::*;

    fn consumed(headers: Vec<Header>, offset: u64) -> ConsumerRecord {
        ConsumerRecord {
            topic: Topic::from("t"),
            headers,
            timestamp: None,
            key: 3,
            value: b"v".to_vec(),
            partition: 2,
            offset,
        }
    }

    #[test]
    fn a_forwarded_record_names_its_source_and_offset_and_keeps_the_rest() {
        let own = Header {
            key: HeaderKey::from("unit"),
            value: b"C".to_vec(),
        };
        let produced = forwarded(&consumed(vec![own.clone()], 17), "router-7");
        assert_eq!(produced.headers[0], own);
        assert_eq!((produced.key, produced.partition), (3, 2));
        let back = ConsumerRecord {
            headers: produced.headers,
            ..consumed(vec![], 0)
        };
        assert_eq!(
            Origin::of(&back),
            Some(Origin {
                source: "router-7",
                offset: 17
            })
        );
    }

    #[test]
    fn forwarding_again_replaces_the_earlier_hops_origin() {
        let first = forwarded(&consumed(vec![], 5), "router-7");
        let second = forwarded(&consumed(first.headers, 900), "cloud");
        assert_eq!(second.headers.len(), 2);
        let back = consumed(second.headers, 0);
        assert_eq!(Origin::of(&back).unwrap().source, "cloud");
        assert_eq!(Origin::of(&back).unwrap().offset, 900);
    }

    #[test]
    fn records_without_well_formed_origin_headers_have_none() {
        assert_eq!(Origin::of(&consumed(vec![], 0)), None);
        let bad = vec![
            Header {
                key: HeaderKey::from(ORIGIN_HEADER),
                value: b"r".to_vec(),
            },
            Header {
                key: HeaderKey::from(ORIGIN_OFFSET_HEADER),
                value: b"x1".to_vec(),
            },
        ];
        assert_eq!(Origin::of(&consumed(bad, 0)), None);
    }
}
