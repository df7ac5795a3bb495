//! A way in to the private on-disk record codec for the fuzz targets under `fuzz/`,
//! compiled only with the `fuzzing` feature so that normal builds carry no extra public
//! surface.

use streambed::commit_log::{ConsumerRecord, Offset, ProducerRecord, Topic};

use crate::record::{self, Decoded};

/// Appends `record` to `out` as it is stored in a topic file, with `offset`.
///
/// ```
/// use streambed::commit_log::{ProducerRecord, Topic};
/// use streambed_logged::fuzzing::{decode_record, encode_record};
///
/// let record = ProducerRecord {
///     topic: Topic::from("t"),
///     headers: vec![],
///     timestamp: None,
///     key: 1,
///     value: b"v".to_vec(),
///     partition: 0,
/// };
/// let mut bytes = Vec::new();
/// encode_record(&mut bytes, &record, 7);
/// let (decoded, len) = decode_record(&bytes, 1024).unwrap().unwrap();
/// assert_eq!((decoded.offset, len), (7, bytes.len()));
/// ```
pub fn encode_record(out: &mut Vec<u8>, record: &ProducerRecord, offset: Offset) {
    record::encode(
        out,
        &record.headers,
        record.timestamp.as_ref(),
        record.key,
        &record.value,
        offset,
    );
}

/// Decodes the record at the start of `bytes` (at most `limit` bytes long): the record
/// (for topic `fuzz`) and the bytes it takes, `Ok(None)` when `bytes` end before the record
/// does, or `Err` with the reason when they are not a record.
///
/// ```
/// let decoded = streambed_logged::fuzzing::decode_record(&[0, 0], 1024);
/// assert!(matches!(decoded, Ok(None)));
/// ```
pub fn decode_record(
    bytes: &[u8],
    limit: usize,
) -> Result<Option<(ConsumerRecord, usize)>, String> {
    match record::decode(bytes, limit) {
        Decoded::Record(view, len) => {
            Ok(Some((view.to_consumer_record(&Topic::from("fuzz")), len)))
        }
        Decoded::Incomplete => Ok(None),
        Decoded::Corrupt(corruption) => Err(format!("{corruption:?}")),
    }
}
