//! A way in to the private stream decoder for the fuzz targets under `fuzz/`, compiled only
//! with the `fuzzing` feature so that normal builds carry no extra public surface.

use std::collections::VecDeque;

use streambed::commit_log::ConsumerRecord;

use crate::decoder::RecordDecoder;

/// Feeds `chunks` in order to a fresh stream decoder, as the body of one consumer
/// connection would arrive, stopping at the first error as the client drops the connection
/// then. Answers the records decoded and whether an error ended the stream.
///
/// ```
/// let body = br#"{"topic":"t","headers":[],"timestamp":null,"key":1,"value":"","partition":0,"offset":7}"#;
/// let (records, failed) =
///     streambed_kafka::fuzzing::decode_chunks(body.chunks(3), 1 << 20);
/// assert_eq!(records[0].offset, 7);
/// assert!(!failed);
/// ```
pub fn decode_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    max_partial: usize,
) -> (Vec<ConsumerRecord>, bool) {
    let mut decoder = RecordDecoder::new(max_partial);
    let mut records = VecDeque::new();
    for chunk in chunks {
        if decoder.push(chunk, &mut records).is_err() {
            return (records.into(), true);
        }
    }
    (records.into(), false)
}
