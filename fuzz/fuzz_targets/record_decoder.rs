//! Topic files are read back from a disk that may hold anything (a crash, a bad sector,
//! another program's bytes): decoding a record from arbitrary bytes must never panic, must
//! stay within the bytes and the size limit it is given, and a record once found must be
//! found the same from its own bytes, each shorter prefix being incomplete. Every record
//! encoded must decode to itself.
//!
//! Input: the whole input is decoded as it stands. It is also read (through `arbitrary`)
//! as a record to encode and decode back.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use streambed::commit_log::{Header, HeaderKey, ProducerRecord, Topic};
use streambed_logged::fuzzing::{decode_record, encode_record};

/// Both a limit fuzz inputs can exceed and one they cannot.
const LIMITS: [usize; 2] = [64, 1 << 20];

/// Timestamps are stored as `f64` seconds: within this many seconds of the epoch (beyond
/// 2100) they come back within a microsecond.
const TIMESTAMP_RANGE_SECS: i64 = 1 << 32;

fuzz_target!(|data: &[u8]| {
    for limit in LIMITS {
        let Ok(Some((record, len))) = decode_record(data, limit) else {
            continue;
        };
        assert!(len <= data.len() && len <= limit, "took {len} bytes");
        let again = decode_record(&data[..len], limit);
        assert_eq!(again, Ok(Some((record, len))));
        for cut in [0, len / 2, len - 1] {
            assert_eq!(decode_record(&data[..cut], limit), Ok(None), "cut at {cut}");
        }
    }

    let mut input = Unstructured::new(data);
    let Ok((headers, millis, key, value, offset)) =
        input.arbitrary::<(Vec<(String, Vec<u8>)>, Option<i64>, u64, Vec<u8>, u64)>()
    else {
        return;
    };
    let timestamp = millis
        .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms % (TIMESTAMP_RANGE_SECS * 1000)));
    let record = ProducerRecord {
        topic: Topic::from("fuzz"),
        headers: headers
            .into_iter()
            .map(|(key, value)| Header {
                key: HeaderKey::from(key),
                value,
            })
            .collect(),
        timestamp,
        key,
        value,
        partition: 0,
    };
    let mut bytes = Vec::new();
    encode_record(&mut bytes, &record, offset);
    let (decoded, len) = decode_record(&bytes, usize::MAX)
        .expect("an encoded record is intact")
        .expect("an encoded record is whole");
    assert_eq!(len, bytes.len());
    assert_eq!(
        (
            &decoded.headers,
            decoded.key,
            &decoded.value,
            decoded.offset
        ),
        (&record.headers, record.key, &record.value, offset)
    );
    match (decoded.timestamp, record.timestamp) {
        (Some(read), Some(written)) => {
            let drift = (read - written)
                .num_microseconds()
                .unwrap_or(i64::MAX)
                .abs();
            assert!(drift <= 1, "timestamp {written} read back as {read}");
        }
        (read, written) => assert_eq!(read, written),
    }
    let cut = bytes.len() / 2;
    assert_eq!(decode_record(&bytes[..cut], usize::MAX), Ok(None));
});
