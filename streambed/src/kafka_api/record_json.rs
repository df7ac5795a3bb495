//! The JSON of a [`ConsumerRecord`] written by hand, for servers that stream a topic's
//! history: serde_json spends most of a record's time escaping the base64 value character
//! by character through `collect_str`. The serde derives on [`ConsumerRecord`] stay the
//! definition of the format; this writer produces exactly their bytes, which the tests
//! check against serde_json over random records.

use std::io::Write;

use base64::{display::Base64Display, engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};

use crate::commit_log::{ConsumerRecord, Header};

/// Appends `record` to `out` as compact JSON, byte for byte what `serde_json::to_writer`
/// writes for it, without a trailing newline.
///
/// ```
/// use streambed::{commit_log::{ConsumerRecord, Topic}, kafka_api::write_consumer_record};
///
/// let record = ConsumerRecord {
///     topic: Topic::from("ns:readings"),
///     headers: vec![],
///     timestamp: None,
///     key: 7,
///     value: b"hi".to_vec(),
///     partition: 0,
///     offset: 41,
/// };
/// let mut out = Vec::new();
/// write_consumer_record(&mut out, &record);
/// assert_eq!(
///     out,
///     br#"{"topic":"ns:readings","headers":[],"timestamp":null,"key":7,"value":"aGk=","partition":0,"offset":41}"#
/// );
/// ```
pub fn write_consumer_record(out: &mut Vec<u8>, record: &ConsumerRecord) {
    // One reservation for the usual record: fixed text, numbers, and the base64 value.
    let headers: usize = record
        .headers
        .iter()
        .map(|h| 24 + h.key.len() + base64_len(h.value.len()))
        .sum();
    out.reserve(128 + record.topic.len() + headers + base64_len(record.value.len()));
    out.extend_from_slice(b"{\"topic\":");
    write_str(out, &record.topic);
    out.extend_from_slice(b",\"headers\":[");
    for (i, header) in record.headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_header(out, header);
    }
    out.extend_from_slice(b"],\"timestamp\":");
    match &record.timestamp {
        Some(at) => write_timestamp(out, at),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"key\":");
    write_number(out, record.key);
    out.extend_from_slice(b",\"value\":");
    write_base64(out, &record.value);
    out.extend_from_slice(b",\"partition\":");
    write_number(out, u64::from(record.partition));
    out.extend_from_slice(b",\"offset\":");
    write_number(out, record.offset);
    out.push(b'}');
}

fn write_header(out: &mut Vec<u8>, header: &Header) {
    out.extend_from_slice(b"{\"key\":");
    write_str(out, &header.key);
    out.extend_from_slice(b",\"value\":");
    write_base64(out, &header.value);
    out.push(b'}');
}

fn write_number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Standard base64 with padding takes 4 characters per 3 bytes or part of 3.
fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

/// A quoted base64 string, encoded straight into `out`. Base64 needs no JSON escaping.
fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(start + base64_len(bytes.len()), 0);
    match STANDARD.encode_slice(bytes, &mut out[start..]) {
        Ok(written) => out.truncate(start + written),
        Err(_) => {
            // Only a too small slice fails, and the slice has the exact length; should
            // that ever differ, the slower path still writes the right text.
            out.truncate(start);
            let _ = write!(out, "{}", Base64Display::new(bytes, &STANDARD));
        }
    }
    out.push(b'"');
}

/// A quoted string escaped as serde_json escapes it: `"` and `\`, the short forms of
/// backspace, tab, newline, form feed and carriage return, `\u00xx` for the other controls
/// below U+0020, and everything else (DEL and non-ASCII too) as it is.
fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            b'\t' => b't',
            b'\n' => b'n',
            0x0c => b'f',
            b'\r' => b'r',
            0x00..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if short == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A quoted RFC 3339 timestamp as chrono's `Serialize` writes it
/// (`to_rfc3339_opts(SecondsFormat::AutoSi, true)`): the fraction only when not zero, in
/// as few of 3, 6 or 9 digits as hold it; a leap second as second 60; `Z` for UTC.
fn write_timestamp(out: &mut Vec<u8>, at: &DateTime<Utc>) {
    out.push(b'"');
    let year = at.year();
    if !(0..=9999).contains(&year) {
        // Signed, wider years are rare enough for chrono to write them itself.
        let text = at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    let (mut second, mut nano) = (at.second(), at.nanosecond());
    if nano >= 1_000_000_000 {
        second += 1;
        nano -= 1_000_000_000;
    }
    // `year` is within 0..=9999, so it has four digits.
    write_digits(out, year.unsigned_abs(), 4);
    out.push(b'-');
    write_digits(out, at.month(), 2);
    out.push(b'-');
    write_digits(out, at.day(), 2);
    out.push(b'T');
    write_digits(out, at.hour(), 2);
    out.push(b':');
    write_digits(out, at.minute(), 2);
    out.push(b':');
    write_digits(out, second, 2);
    if nano != 0 {
        out.push(b'.');
        if nano % 1_000_000 == 0 {
            write_digits(out, nano / 1_000_000, 3);
        } else if nano % 1_000 == 0 {
            write_digits(out, nano / 1_000, 6);
        } else {
            write_digits(out, nano, 9);
        }
    }
    out.extend_from_slice(b"Z\"");
}

/// `n` in exactly `width` decimal digits, zero-padded; `n` must have no more.
fn write_digits(out: &mut Vec<u8>, mut n: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for digit in out[start..].iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit_log::{HeaderKey, Topic};
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn ours(record: &ConsumerRecord) -> String {
        let mut out = Vec::new();
        write_consumer_record(&mut out, record);
        String::from_utf8(out).expect("the writer writes UTF-8")
    }

    fn serdes(record: &ConsumerRecord) -> String {
        serde_json::to_string(record).expect("a record serializes")
    }

    fn record(topic: &str, timestamp: Option<DateTime<Utc>>, value: Vec<u8>) -> ConsumerRecord {
        ConsumerRecord {
            topic: Topic::from(topic),
            headers: vec![],
            timestamp,
            key: u64::MAX,
            value,
            partition: u32::MAX,
            offset: 0,
        }
    }

    /// Text with many of the characters JSON escapes, plus any other.
    fn text() -> impl Strategy<Value = String> {
        let character = prop_oneof![
            proptest::char::range('\0', '\u{7f}'),
            Just('"'),
            Just('\\'),
            any::<char>(),
        ];
        proptest::collection::vec(character, 0..24).prop_map(String::from_iter)
    }

    /// Times from before year 0 to after year 9999, with every kind of fraction, and leap
    /// seconds (a nanosecond count of a second or more at second 59).
    fn timestamp() -> impl Strategy<Value = Option<DateTime<Utc>>> {
        let seconds = prop_oneof![
            -63_000_000_000i64..260_000_000_000,
            -70_000_000_000i64..-62_000_000_000,
            250_000_000_000i64..260_000_000_000,
        ];
        let nanos = prop_oneof![
            Just(0u32),
            (0u32..1000).prop_map(|ms| ms * 1_000_000),
            (0u32..1_000_000).prop_map(|us| us * 1_000),
            0u32..1_000_000_000,
            1_000_000_000u32..2_000_000_000,
        ];
        proptest::option::of((seconds, nanos).prop_map(|(seconds, nanos)| {
            // A leap second only exists at second 59; move others there.
            let seconds = if nanos >= 1_000_000_000 {
                seconds - seconds.rem_euclid(60) + 59
            } else {
                seconds
            };
            DateTime::from_timestamp(seconds, nanos).expect("a time chrono represents")
        }))
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..100),
            1 => proptest::collection::vec(any::<u8>(), 0..5000),
        ]
    }

    fn consumer_record() -> impl Strategy<Value = ConsumerRecord> {
        let headers = proptest::collection::vec(
            (text(), bytes()).prop_map(|(key, value)| Header {
                key: HeaderKey::from(key),
                value,
            }),
            0..4,
        );
        (
            text(),
            headers,
            timestamp(),
            any::<u64>(),
            bytes(),
            any::<u32>(),
            any::<u64>(),
        )
            .prop_map(
                |(topic, headers, timestamp, key, value, partition, offset)| ConsumerRecord {
                    topic: Topic::from(topic),
                    headers,
                    timestamp,
                    key,
                    value,
                    partition,
                    offset,
                },
            )
    }

    proptest! {
        #[test]
        fn writes_what_serde_json_writes(record in consumer_record()) {
            prop_assert_eq!(ours(&record), serdes(&record));
        }
    }

    #[test]
    fn appends_after_what_out_holds() {
        let record = record("t", None, b"x".to_vec());
        let mut out = b"before\n".to_vec();
        write_consumer_record(&mut out, &record);
        assert_eq!(out, [&b"before\n"[..], serdes(&record).as_bytes()].concat());
    }

    #[test]
    fn escapes_every_control_character_as_serde_json_does() {
        let controls: String = ('\0'..='\u{20}')
            .chain(['"', '\\', '\u{7f}', 'é'])
            .collect();
        let mut record = record(&controls, None, vec![]);
        record.headers.push(Header {
            key: HeaderKey::from(controls.as_str()),
            value: vec![0xff],
        });
        assert_eq!(ours(&record), serdes(&record));
        assert!(ours(&record).contains(r#"\u0000\u0001"#));
        assert!(ours(&record).contains(r#"\b\t\n\u000b\f\r"#));
    }

    #[test]
    fn writes_timestamps_of_every_precision_as_chrono_does() {
        let second = Utc.with_ymd_and_hms(2023, 1, 2, 3, 4, 5).unwrap();
        for (nanos, written) in [
            (0, "2023-01-02T03:04:05Z"),
            (250_000_000, "2023-01-02T03:04:05.250Z"),
            (250_000, "2023-01-02T03:04:05.000250Z"),
            (7, "2023-01-02T03:04:05.000000007Z"),
        ] {
            let at = second + chrono::Duration::nanoseconds(nanos);
            let record = record("t", Some(at), vec![]);
            assert_eq!(ours(&record), serdes(&record));
            assert!(ours(&record).contains(written), "{}", ours(&record));
        }
        let far = Utc.with_ymd_and_hms(12345, 6, 7, 8, 9, 10).unwrap();
        let record = record("t", Some(far), vec![]);
        assert_eq!(ours(&record), serdes(&record));
        assert!(ours(&record).contains("+12345-06-07T08:09:10Z"));
    }

    #[test]
    fn writes_large_values_whole() {
        let value: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        let record = record("t", None, value);
        assert_eq!(ours(&record), serdes(&record));
    }
}
