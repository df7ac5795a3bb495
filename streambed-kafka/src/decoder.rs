//! Splits the body of a consumer stream into records, however it is cut into chunks.
//!
//! The server writes JSON values one after another; the network may deliver a value in
//! several pieces or several values (with or without whitespace between them) in one. The
//! decoder parses every complete value of what it has and keeps the incomplete rest for
//! the next chunk.

use std::collections::VecDeque;

use serde_json::Deserializer;
use streambed::commit_log::ConsumerRecord;
use thiserror::Error;

/// The body is not a sequence of records; the connection is not worth keeping.
#[derive(Debug, Error)]
pub(crate) enum DecodeError {
    #[error("invalid record in stream: {0}")]
    Invalid(#[from] serde_json::Error),
    #[error("an incomplete record already holds {0} bytes, more than the {1} allowed")]
    TooLarge(usize, usize),
}

#[derive(Debug)]
pub(crate) struct RecordDecoder {
    /// Bytes of a value not yet complete.
    partial: Vec<u8>,
    max_partial: usize,
}

impl RecordDecoder {
    pub(crate) fn new(max_partial: usize) -> Self {
        Self {
            partial: Vec::new(),
            max_partial,
        }
    }

    /// Decodes what `chunk` completes, appending the records to `out`.
    pub(crate) fn push(
        &mut self,
        chunk: &[u8],
        out: &mut VecDeque<ConsumerRecord>,
    ) -> Result<(), DecodeError> {
        if self.partial.is_empty() {
            // The common case of whole values per chunk: parse in place, copy only a tail.
            let used = decode(chunk, out)?;
            self.keep(&chunk[used..])
        } else {
            self.partial.extend_from_slice(chunk);
            let partial = std::mem::take(&mut self.partial);
            let used = decode(&partial, out);
            self.partial = partial;
            let used = used?;
            self.partial.drain(..used);
            self.check_size()
        }
    }

    /// Forgets an incomplete value, for a new connection.
    pub(crate) fn clear(&mut self) {
        self.partial.clear();
    }

    fn keep(&mut self, rest: &[u8]) -> Result<(), DecodeError> {
        self.partial.extend_from_slice(rest);
        self.check_size()
    }

    fn check_size(&mut self) -> Result<(), DecodeError> {
        if self.partial.len() > self.max_partial {
            let len = self.partial.len();
            self.partial = Vec::new();
            return Err(DecodeError::TooLarge(len, self.max_partial));
        }
        Ok(())
    }
}

/// Parses complete values from the start of `bytes`; answers how many bytes they used.
fn decode(bytes: &[u8], out: &mut VecDeque<ConsumerRecord>) -> Result<usize, DecodeError> {
    let mut values = Deserializer::from_slice(bytes).into_iter::<ConsumerRecord>();
    loop {
        let start = values.byte_offset();
        match values.next() {
            Some(Ok(record)) => out.push_back(record),
            Some(Err(error)) if error.is_eof() => return Ok(start),
            Some(Err(error)) => return Err(error.into()),
            None => return Ok(values.byte_offset()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streambed::commit_log::Topic;

    fn record(offset: u64) -> ConsumerRecord {
        ConsumerRecord {
            topic: Topic::from("t"),
            headers: vec![],
            timestamp: None,
            key: offset * 10,
            value: vec![offset as u8; 5],
            partition: 0,
            offset,
        }
    }

    fn body(records: &[ConsumerRecord], separator: &str) -> Vec<u8> {
        let mut body = Vec::new();
        for r in records {
            body.extend(serde_json::to_vec(r).unwrap());
            body.extend(separator.as_bytes());
        }
        body
    }

    fn decode_chunks(chunks: &[&[u8]]) -> Vec<ConsumerRecord> {
        let mut decoder = RecordDecoder::new(1 << 20);
        let mut out = VecDeque::new();
        for chunk in chunks {
            decoder.push(chunk, &mut out).unwrap();
        }
        assert!(decoder.partial.iter().all(u8::is_ascii_whitespace));
        out.into_iter().collect()
    }

    #[test]
    fn values_split_at_every_byte_are_reassembled() {
        let records: Vec<_> = (0..3).map(record).collect();
        for separator in ["", "\n", " \r\n"] {
            let body = body(&records, separator);
            let chunks: Vec<&[u8]> = body.chunks(1).collect();
            assert_eq!(decode_chunks(&chunks), records, "separator {separator:?}");
        }
    }

    #[test]
    fn several_values_in_one_chunk_are_all_decoded() {
        let records: Vec<_> = (0..5).map(record).collect();
        assert_eq!(decode_chunks(&[&body(&records, "\n")]), records);
        assert_eq!(decode_chunks(&[&body(&records, "")]), records);
    }

    #[test]
    fn chunks_cut_anywhere_mixing_whole_and_partial_values_decode_in_order() {
        let records: Vec<_> = (0..4).map(record).collect();
        let body = body(&records, "\n");
        for cut in 1..body.len() {
            for second_cut in (cut..=body.len()).step_by(13) {
                let chunks = [&body[..cut], &body[cut..second_cut], &body[second_cut..]];
                assert_eq!(decode_chunks(&chunks), records, "cuts {cut} {second_cut}");
            }
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let mut decoder = RecordDecoder::new(1024);
        let mut out = VecDeque::new();
        assert!(decoder.push(b"{\"topic\": nope}", &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn an_incomplete_value_beyond_the_limit_is_an_error() {
        let mut decoder = RecordDecoder::new(8);
        let mut out = VecDeque::new();
        assert!(matches!(
            decoder.push(br#"{"topic":"a-very-long"#, &mut out),
            Err(DecodeError::TooLarge(..))
        ));
    }
}
