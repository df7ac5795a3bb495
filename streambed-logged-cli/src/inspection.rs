//! `logged topics`, `logged offsets` and `logged verify`: what an operator asks of a log's
//! folder, answered by reading its files without writing a byte (see
//! `streambed_logged::inspect`), so they are safe beside a running service.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use streambed_logged::inspect::{Inspector, TopicSummary, Verification};

use crate::{errors::CliError, format::Format};

/// One topic as `topics --format json` prints it.
#[derive(Serialize)]
struct TopicLine<'a> {
    topic: &'a str,
    beginning_offset: Option<u64>,
    end_offset: Option<u64>,
    records: u64,
    bytes_on_disk: u64,
    last_write: Option<String>,
    damaged_regions: usize,
}

fn last_write(summary: &TopicSummary) -> Option<String> {
    summary
        .last_write
        .map(|t| DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Prints every topic with its offsets, record count, bytes on disk and last write: a
/// table for people, or one JSON object per topic.
pub fn topics(
    inspector: &Inspector,
    format: Format,
    mut output: impl Write,
) -> Result<(), CliError> {
    let mut summaries = Vec::new();
    for topic in inspector.topics()? {
        summaries.push(inspector.summary(&topic)?);
    }
    match format {
        Format::Json => {
            for summary in &summaries {
                let line = TopicLine {
                    topic: &summary.topic,
                    beginning_offset: summary.offsets.as_ref().map(|o| o.beginning_offset),
                    end_offset: summary.offsets.as_ref().map(|o| o.end_offset),
                    records: summary.records,
                    bytes_on_disk: summary.bytes_on_disk,
                    last_write: last_write(summary),
                    damaged_regions: summary.damaged_regions,
                };
                serde_json::to_writer(&mut output, &line).map_err(std::io::Error::from)?;
                output.write_all(b"\n")?;
            }
        }
        Format::Text => {
            let header = [
                "TOPIC",
                "BEGINNING",
                "END",
                "RECORDS",
                "BYTES",
                "LAST WRITE",
                "DAMAGED",
            ]
            .map(str::to_owned);
            let rows: Vec<[String; 7]> = summaries
                .iter()
                .map(|s| {
                    let offset = |o: Option<u64>| o.map_or("-".to_owned(), |o| o.to_string());
                    [
                        s.topic.to_string(),
                        offset(s.offsets.as_ref().map(|o| o.beginning_offset)),
                        offset(s.offsets.as_ref().map(|o| o.end_offset)),
                        s.records.to_string(),
                        s.bytes_on_disk.to_string(),
                        last_write(s).unwrap_or_else(|| "-".to_owned()),
                        s.damaged_regions.to_string(),
                    ]
                })
                .collect();
            let mut widths = header.clone().map(|h| h.len());
            for row in &rows {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.len());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                let cells: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .map(|(cell, width)| format!("{cell:width$}"))
                    .collect();
                writeln!(output, "{}", cells.join("  ").trim_end())?;
            }
        }
    }
    output.flush()?;
    Ok(())
}

/// Prints the first and last offsets of `topic`; a topic without records is an error.
pub fn offsets(
    inspector: &Inspector,
    topic: &str,
    format: Format,
    mut output: impl Write,
) -> Result<(), CliError> {
    let offsets = inspector
        .offsets(topic)?
        .ok_or_else(|| CliError::NoRecords {
            topic: topic.to_owned(),
        })?;
    match format {
        Format::Json => {
            serde_json::to_writer(&mut output, &offsets).map_err(std::io::Error::from)?;
            output.write_all(b"\n")?;
        }
        Format::Text => writeln!(
            output,
            "beginning_offset={} end_offset={}",
            offsets.beginning_offset, offsets.end_offset
        )?,
    }
    output.flush()?;
    Ok(())
}

/// Reads every file of the topics (all of them when `topic` is `None`) and prints what it
/// found. Answers whether everything was intact.
pub fn verify(
    inspector: &Inspector,
    topic: Option<&str>,
    mut output: impl Write,
) -> Result<bool, CliError> {
    let topics = match topic {
        Some(topic) => vec![topic.to_owned()],
        None => inspector.topics()?.iter().map(|t| t.to_string()).collect(),
    };
    let mut intact = true;
    for topic in &topics {
        let verification = inspector.verify(topic)?;
        intact &= verification.is_intact();
        write_verification(&mut output, &verification)?;
    }
    output.flush()?;
    Ok(intact)
}

fn write_verification(output: &mut impl Write, v: &Verification) -> std::io::Result<()> {
    let files = v.files.len();
    let plural = if files == 1 { "" } else { "s" };
    if v.is_intact() {
        writeln!(
            output,
            "{}: intact, {} records in {files} file{plural}",
            v.topic,
            v.records()
        )?;
    } else {
        writeln!(
            output,
            "{}: DAMAGED, {} records in {files} file{plural}, {} damaged regions, \
             {} records skipped at most (offsets missing between intact records)",
            v.topic,
            v.records(),
            v.damaged.len(),
            v.skipped_records()
        )?;
    }
    for damaged in &v.damaged {
        write!(
            output,
            "  {}: bytes {}..{} ({} bytes) damaged",
            damaged.path.display(),
            damaged.from,
            damaged.to,
            damaged.to - damaged.from
        )?;
        let after = damaged
            .after
            .map_or("the start".to_owned(), |a| format!("offset {a}"));
        match (damaged.before, damaged.skipped_records()) {
            (Some(before), Some(skipped)) => writeln!(
                output,
                " between {after} and offset {before}: {skipped} records skipped at most"
            )?,
            _ => writeln!(
                output,
                " after {after}, with no intact record after it: the records lost are unknown"
            )?,
        }
    }
    if let Some(torn) = &v.torn_tail {
        writeln!(
            output,
            "  {}: the last {} bytes (from byte {}) are a record cut short: a write under \
             way, or one a crash interrupted (the next writer cuts it off)",
            torn.path.display(),
            torn.len - torn.at,
            torn.at
        )?;
    }
    Ok(())
}
