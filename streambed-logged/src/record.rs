//! The on-disk record: the postcard encoding of
//! `{ version: u32, headers: Vec<{ key: String, value: Vec<u8> }>, timestamp: Option<f64>,
//! key: u64, value: Vec<u8>, offset: u64 }` followed by the CRC32C of those bytes, 4 bytes
//! little-endian.
//!
//! The encoding is written out by hand rather than through serde: it is the hottest path of
//! the log, and doing it directly avoids an intermediate struct and its allocations. Tests
//! pin it against the `postcard` crate itself.

use chrono::{DateTime, TimeZone, Utc};
use streambed::commit_log::{ConsumerRecord, Header, HeaderKey, Offset, Topic};

/// The only record version written.
pub(crate) const RECORD_VERSION: u32 = 0;
/// Size of the CRC32C trailer.
pub(crate) const CRC_LEN: usize = 4;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Seconds since the epoch with the fraction, as upstream stores timestamps.
pub(crate) fn timestamp_to_secs(ts: &DateTime<Utc>) -> f64 {
    ts.timestamp() as f64 + f64::from(ts.timestamp_subsec_nanos()) / 1e9
}

/// The inverse of [`timestamp_to_secs`], to the nearest microsecond. Seconds since the
/// epoch in an `f64` resolve a quarter to half a microsecond until 2106, so a timestamp
/// of whole microseconds (whole milliseconds, as Kafka's and most producers' are) reads
/// back exactly rather than a few nanoseconds off; finer digits were never kept.
pub(crate) fn secs_to_timestamp(secs: f64) -> Option<DateTime<Utc>> {
    if !secs.is_finite() {
        return None;
    }
    let whole = secs.floor();
    let mut micros = ((secs - whole) * 1e6).round() as i64;
    let mut whole = whole as i64;
    if micros >= 1_000_000 {
        whole += 1;
        micros -= 1_000_000;
    }
    Utc.timestamp_opt(whole, (micros * 1_000) as u32).single()
}

/// Appends the encoded record, checksum included, to `out`.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    headers: &[Header],
    timestamp: Option<&DateTime<Utc>>,
    key: u64,
    value: &[u8],
    offset: Offset,
) {
    let start = out.len();
    put_varint(out, u64::from(RECORD_VERSION));
    put_varint(out, headers.len() as u64);
    for header in headers {
        put_bytes(out, header.key.as_bytes());
        put_bytes(out, &header.value);
    }
    match timestamp {
        None => out.push(0),
        Some(ts) => {
            out.push(1);
            out.extend_from_slice(&timestamp_to_secs(ts).to_le_bytes());
        }
    }
    put_varint(out, key);
    put_bytes(out, value);
    put_varint(out, offset);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Why bytes are not a record.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Corruption {
    /// A varint runs past its type's width.
    BadVarint,
    /// A version other than 0.
    UnknownVersion,
    /// An option tag other than 0 or 1.
    BadOptionTag,
    /// A header key that is not UTF-8.
    BadHeaderKey,
    /// The record would be larger than the limit.
    TooLarge,
    /// The checksum does not match.
    BadChecksum,
}

/// The outcome of decoding at the start of a buffer.
#[derive(Debug)]
pub(crate) enum Decoded<'a> {
    /// A whole, intact record and the number of bytes it takes.
    Record(RecordView<'a>, usize),
    /// The buffer ends before the record does.
    Incomplete,
    /// The bytes are not a record.
    Corrupt(Corruption),
}

/// A record decoded in place, borrowing from the buffer.
#[derive(Debug)]
pub(crate) struct RecordView<'a> {
    header_count: usize,
    headers: &'a [u8],
    pub(crate) timestamp: Option<f64>,
    pub(crate) key: u64,
    pub(crate) value: &'a [u8],
    pub(crate) offset: Offset,
}

impl RecordView<'_> {
    /// Copies the record out of the buffer for a subscriber.
    pub(crate) fn to_consumer_record(&self, topic: &Topic) -> ConsumerRecord {
        ConsumerRecord {
            topic: topic.clone(),
            headers: self.headers(),
            timestamp: self.timestamp.and_then(secs_to_timestamp),
            key: self.key,
            value: self.value.to_vec(),
            partition: 0,
            offset: self.offset,
        }
    }

    fn headers(&self) -> Vec<Header> {
        let mut headers = Vec::with_capacity(self.header_count);
        let mut cursor = Cursor {
            bytes: self.headers,
            pos: 0,
        };
        for _ in 0..self.header_count {
            // The region was validated when the record was decoded.
            let (Ok(key), Ok(value)) = (cursor.bytes(), cursor.bytes()) else {
                break;
            };
            headers.push(Header {
                key: HeaderKey::from(std::str::from_utf8(key).unwrap_or_default()),
                value: value.to_vec(),
            });
        }
        headers
    }
}

enum Fail {
    Incomplete,
    Corrupt(Corruption),
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn varint(&mut self, max_bytes: usize) -> Result<u64, Fail> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err(Fail::Incomplete);
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Fail::Corrupt(Corruption::BadVarint))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Fail> {
        let end = self.pos.checked_add(len).ok_or(Fail::Incomplete)?;
        let slice = self.bytes.get(self.pos..end).ok_or(Fail::Incomplete)?;
        self.pos = end;
        Ok(slice)
    }

    fn bytes(&mut self) -> Result<&'a [u8], Fail> {
        let len = self.varint(10)?;
        let len = usize::try_from(len).map_err(|_| Fail::Corrupt(Corruption::TooLarge))?;
        self.take(len)
    }
}

/// Decodes the record at the start of `bytes`. A record whose encoding claims more than
/// `limit` bytes is corrupt rather than incomplete, so a damaged length cannot make a
/// reader wait or buffer forever.
pub(crate) fn decode(bytes: &[u8], limit: usize) -> Decoded<'_> {
    match decode_inner(bytes, limit, true) {
        Ok((view, len)) => Decoded::Record(view, len),
        Err(Fail::Incomplete) => Decoded::Incomplete,
        Err(Fail::Corrupt(c)) => Decoded::Corrupt(c),
    }
}

/// Decodes a record [`decode`] has already found intact, without computing its checksum
/// again.
pub(crate) fn decode_checked(bytes: &[u8], limit: usize) -> Option<RecordView<'_>> {
    decode_inner(bytes, limit, false).ok().map(|(view, _)| view)
}

/// The offset a damaged record claims and the bytes it takes, when its fields still parse
/// (only the checksum fails): a hint, never trusted alone, for how far offsets had gone.
pub(crate) fn claimed(bytes: &[u8], limit: usize) -> Option<(Offset, usize)> {
    match decode_inner(bytes, limit, false) {
        Ok((view, len)) => Some((view.offset, len)),
        Err(_) => None,
    }
}

fn decode_inner(bytes: &[u8], limit: usize, verify: bool) -> Result<(RecordView<'_>, usize), Fail> {
    let mut c = Cursor { bytes, pos: 0 };
    let check = |c: &Cursor, extra: u64| {
        if (c.pos as u64).saturating_add(extra) > limit as u64 {
            Err(Fail::Corrupt(Corruption::TooLarge))
        } else {
            Ok(())
        }
    };
    if c.varint(5)? != u64::from(RECORD_VERSION) {
        return Err(Fail::Corrupt(Corruption::UnknownVersion));
    }
    let header_count = c.varint(10)?;
    check(&c, header_count.saturating_mul(2))?;
    let headers_start = c.pos;
    for _ in 0..header_count {
        let key = peek_len(&mut c, &check)?;
        if std::str::from_utf8(key).is_err() {
            return Err(Fail::Corrupt(Corruption::BadHeaderKey));
        }
        peek_len(&mut c, &check)?;
    }
    let headers = &bytes[headers_start..c.pos];
    let timestamp = match c.take(1)?[0] {
        0 => None,
        1 => {
            let raw = c.take(8)?;
            let mut le = [0u8; 8];
            le.copy_from_slice(raw);
            Some(f64::from_le_bytes(le))
        }
        _ => return Err(Fail::Corrupt(Corruption::BadOptionTag)),
    };
    let key = c.varint(10)?;
    let value = peek_len(&mut c, &check)?;
    let offset = c.varint(10)?;
    let body_len = c.pos;
    check(&c, CRC_LEN as u64)?;
    let trailer = c.take(CRC_LEN)?;
    let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if verify && crc32c::crc32c(&bytes[..body_len]) != stored {
        return Err(Fail::Corrupt(Corruption::BadChecksum));
    }
    Ok((
        RecordView {
            header_count: header_count as usize,
            headers,
            timestamp,
            key,
            value,
            offset,
        },
        c.pos,
    ))
}

fn peek_len<'a>(
    c: &mut Cursor<'a>,
    check: &impl Fn(&Cursor, u64) -> Result<(), Fail>,
) -> Result<&'a [u8], Fail> {
    let len = c.varint(10)?;
    check(c, len)?;
    c.take(len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct PostcardHeader {
        key: String,
        value: Vec<u8>,
    }

    #[derive(Serialize)]
    struct PostcardRecord {
        version: u32,
        headers: Vec<PostcardHeader>,
        timestamp: Option<f64>,
        key: u64,
        value: Vec<u8>,
        offset: u64,
    }

    fn sample_headers() -> Vec<Header> {
        vec![Header {
            key: HeaderKey::from("content-type"),
            value: vec![1, 2, 255],
        }]
    }

    #[test]
    fn encoding_equals_postcard_followed_by_crc32c_le() {
        let ts = Utc.timestamp_opt(1_700_000_000, 250_000_000).unwrap();
        for (headers, timestamp, key, value, offset) in [
            (
                sample_headers(),
                Some(ts),
                300u64,
                vec![7u8; 200],
                1u64 << 40,
            ),
            (vec![], None, 0, vec![], 0),
            (vec![], Some(ts), u64::MAX, b"v".to_vec(), u64::MAX),
        ] {
            let mut ours = Vec::new();
            encode(&mut ours, &headers, timestamp.as_ref(), key, &value, offset);
            let mut expected = postcard::to_stdvec(&PostcardRecord {
                version: 0,
                headers: headers
                    .iter()
                    .map(|h| PostcardHeader {
                        key: h.key.to_string(),
                        value: h.value.clone(),
                    })
                    .collect(),
                timestamp: timestamp.as_ref().map(timestamp_to_secs),
                key,
                value: value.clone(),
                offset,
            })
            .unwrap();
            let crc = crc32c::crc32c(&expected);
            expected.extend_from_slice(&crc.to_le_bytes());
            assert_eq!(ours, expected);
        }
    }

    #[test]
    fn decoding_round_trips_every_field() {
        let ts = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        let mut bytes = Vec::new();
        encode(&mut bytes, &sample_headers(), Some(&ts), 9, b"hello", 42);
        let Decoded::Record(view, len) = decode(&bytes, 1024) else {
            panic!("not decoded");
        };
        assert_eq!(len, bytes.len());
        let record = view.to_consumer_record(&Topic::from("t"));
        assert_eq!(record.headers, sample_headers());
        assert_eq!(record.key, 9);
        assert_eq!(record.value, b"hello");
        assert_eq!(record.offset, 42);
        let back = record.timestamp.unwrap();
        assert!(
            (back - ts).num_microseconds().unwrap().abs() <= 1,
            "{back} vs {ts}"
        );
    }

    #[test]
    fn timestamps_of_whole_microseconds_read_back_exactly() {
        for micros in [
            1_796_400_000_123_000,
            1_764_287_999_123_000,
            1_700_000_000_999_999,
            4_102_444_799_999_000, // the last millisecond of 2099
            1,
            0,
            -1_500_000,
        ] {
            let ts = Utc.timestamp_micros(micros).unwrap();
            assert_eq!(secs_to_timestamp(timestamp_to_secs(&ts)), Some(ts), "{ts}");
        }
    }

    #[test]
    fn every_truncation_is_incomplete_and_every_flip_is_detected() {
        let mut bytes = Vec::new();
        encode(&mut bytes, &sample_headers(), None, 9, b"hello world", 42);
        for cut in 0..bytes.len() {
            assert!(
                matches!(decode(&bytes[..cut], 1024), Decoded::Incomplete),
                "cut {cut}"
            );
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x01;
            assert!(
                !matches!(decode(&flipped, 1024), Decoded::Record(..)),
                "flip at {i} went unnoticed"
            );
        }
    }

    #[test]
    fn claimed_lengths_beyond_the_limit_are_corrupt_not_incomplete() {
        let mut bytes = Vec::new();
        encode(&mut bytes, &[], None, 1, &[0u8; 100], 0);
        assert!(matches!(
            decode(&bytes[..10], 50),
            Decoded::Corrupt(Corruption::TooLarge)
        ));
    }
}
