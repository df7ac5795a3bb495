//! Dropping the duplicates that at-least-once forwarding delivers, for consumers that want
//! each record's effect exactly once.
//!
//! A forwarder sends each source partition's records in order, and after a crash resends
//! from its stored position, so a duplicate is always a record whose origin offset is not
//! beyond the highest already seen from that source, topic and partition. Memory is one
//! entry per such triple, however many records pass.

use std::collections::HashMap;

use streambed::commit_log::{ConsumerRecord, Partition, Topic};

use crate::origin::Origin;

/// Remembers, per source, topic and partition, the highest origin offset seen.
///
/// ```
/// use streambed::commit_log::{ConsumerRecord, Header, HeaderKey, Topic};
/// use streambed_forward::{Deduplicator, ORIGIN_HEADER, ORIGIN_OFFSET_HEADER};
///
/// let forwarded = |offset: u64| ConsumerRecord {
///     topic: Topic::from("readings"),
///     headers: vec![
///         Header { key: HeaderKey::from(ORIGIN_HEADER), value: b"router-7".to_vec() },
///         Header {
///             key: HeaderKey::from(ORIGIN_OFFSET_HEADER),
///             value: offset.to_string().into_bytes(),
///         },
///     ],
///     timestamp: None,
///     key: 1,
///     value: vec![],
///     partition: 0,
///     offset: 0,
/// };
/// let mut seen = Deduplicator::default();
/// assert!(seen.is_new(&forwarded(0)));
/// assert!(seen.is_new(&forwarded(1)));
/// // The forwarder restarted and sent offset 1 again.
/// assert!(!seen.is_new(&forwarded(1)));
/// assert!(seen.is_new(&forwarded(2)));
/// ```
#[derive(Debug, Default)]
pub struct Deduplicator {
    /// By source, then by topic and partition: a lookup borrows the source's name rather
    /// than copying it.
    highest: HashMap<String, HashMap<(Topic, Partition), u64>>,
}

impl Deduplicator {
    /// Whether the record's effect is still to be had: `false` for a duplicate of a
    /// forwarded record already seen. Records without origin headers are always new.
    pub fn is_new(&mut self, record: &ConsumerRecord) -> bool {
        let Some(origin) = Origin::of(record) else {
            return true;
        };
        let source = match self.highest.get_mut(origin.source) {
            Some(source) => source,
            None => self.highest.entry(origin.source.to_owned()).or_default(),
        };
        match source.get_mut(&(record.topic.clone(), record.partition)) {
            Some(highest) if origin.offset <= *highest => false,
            Some(highest) => {
                *highest = origin.offset;
                true
            }
            None => {
                source.insert((record.topic.clone(), record.partition), origin.offset);
                true
            }
        }
    }
}
