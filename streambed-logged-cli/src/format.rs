//! How `subscribe` and `tail` print a record: JSON lines for programs (values in base64,
//! as `produce` reads them), or one line of text for people, values readable as they are.

use std::io::{self, Write};

use clap::ValueEnum;
use streambed::commit_log::ConsumerRecord;

use crate::errors::CliError;

/// The shape of the records printed.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, ValueEnum)]
pub enum Format {
    /// One JSON object per line, values and header values in base64: what `produce` reads.
    #[default]
    Json,
    /// One line per record: topic, offset, key, timestamp, headers and value, with values
    /// shown as quoted UTF-8 text where they are text and as `0x`-prefixed hex otherwise.
    Text,
}

/// Writes `record` and a newline to `output` in `format`.
pub fn write_record(
    output: &mut impl Write,
    record: &ConsumerRecord,
    format: Format,
) -> Result<(), CliError> {
    match format {
        Format::Json => {
            serde_json::to_writer(&mut *output, record).map_err(|source| {
                if source.is_io() {
                    CliError::Write(source.into())
                } else {
                    CliError::Encode {
                        topic: record.topic.to_string(),
                        offset: record.offset,
                        source,
                    }
                }
            })?;
            output.write_all(b"\n")?;
        }
        Format::Text => write_text(output, record)?,
    }
    Ok(())
}

fn write_text(output: &mut impl Write, record: &ConsumerRecord) -> io::Result<()> {
    write!(
        output,
        "{} offset={} key={} timestamp=",
        record.topic, record.offset, record.key
    )?;
    match &record.timestamp {
        Some(timestamp) => write!(
            output,
            "{}",
            timestamp.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        )?,
        None => output.write_all(b"-")?,
    }
    output.write_all(b" headers=[")?;
    for (i, header) in record.headers.iter().enumerate() {
        if i > 0 {
            output.write_all(b" ")?;
        }
        write!(output, "{:?}=", header.key.as_str())?;
        write_bytes(output, &header.value)?;
    }
    output.write_all(b"] value=")?;
    write_bytes(output, &record.value)?;
    output.write_all(b"\n")
}

/// Text is quoted with Rust's escapes (so a newline in a value cannot split the line, and
/// quotes tell text from hex); anything that is not UTF-8 is written as hex.
fn write_bytes(output: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    match std::str::from_utf8(bytes) {
        Ok(text) => write!(output, "{text:?}"),
        Err(_) => write!(output, "0x{}", hex::encode(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use streambed::commit_log::{Header, Topic};

    use super::*;

    fn text(record: &ConsumerRecord) -> String {
        let mut out = Vec::new();
        write_record(&mut out, record, Format::Text).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn record(value: &[u8]) -> ConsumerRecord {
        ConsumerRecord {
            topic: Topic::from("readings"),
            headers: vec![],
            timestamp: None,
            key: 7,
            value: value.to_vec(),
            partition: 0,
            offset: 3,
        }
    }

    #[test]
    fn text_shows_utf8_values_quoted_and_others_in_hex() {
        assert_eq!(
            text(&record(b"21.5")),
            "readings offset=3 key=7 timestamp=- headers=[] value=\"21.5\"\n"
        );
        assert_eq!(
            text(&record(&[0xff, 0x00, 0x10])),
            "readings offset=3 key=7 timestamp=- headers=[] value=0xff0010\n"
        );
    }

    #[test]
    fn text_keeps_one_record_per_line_and_shows_headers_and_timestamps() {
        let mut record = record(b"line one\nline two");
        record.timestamp = Some("2026-12-04T20:00:00.5Z".parse().unwrap());
        record.headers = vec![
            Header {
                key: "unit".into(),
                value: b"C".to_vec(),
            },
            Header {
                key: "sig".into(),
                value: vec![0xfe, 0xed],
            },
        ];
        assert_eq!(
            text(&record),
            "readings offset=3 key=7 timestamp=2026-12-04T20:00:00.500Z \
             headers=[\"unit\"=\"C\" \"sig\"=0xfeed] value=\"line one\\nline two\"\n"
        );
    }

    #[test]
    fn json_is_what_produce_reads() {
        let mut out = Vec::new();
        write_record(&mut out, &record(b"Hi"), Format::Json).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["value"], "SGk=");
        assert_eq!(value["offset"], 3);
        assert!(out.ends_with(b"\n"));
    }
}
