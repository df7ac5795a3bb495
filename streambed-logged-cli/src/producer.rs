//! `logged produce`: JSON producer records in, one after another, appended as they come.

use std::io::Read;

use indicatif::ProgressBar;
use serde_json::Deserializer;
use streambed::commit_log::ProducerRecord;
use streambed_logged::FileLog;

use crate::errors::CliError;

/// Appends every record of `input` in order and answers how many were appended.
///
/// Records are parsed one at a time, so a pipeline can stream them in. The first record
/// that does not parse, or that the log refuses, stops the command with an error naming
/// it; the log is never handed a record that is only partly read. `progress` counts each
/// record appended (a hidden bar when no one is watching).
pub async fn produce(
    log: &FileLog,
    input: impl Read,
    progress: &ProgressBar,
) -> Result<u64, CliError> {
    let mut produced = 0;
    for (index, record) in Deserializer::from_reader(input)
        .into_iter::<ProducerRecord>()
        .enumerate()
    {
        let number = index as u64 + 1;
        let record = record.map_err(|source| {
            if source.is_io() {
                CliError::Read {
                    number,
                    source: source.into(),
                }
            } else {
                CliError::BadRecord {
                    number,
                    records_produced: produced,
                    source,
                }
            }
        })?;
        log.produce_with_cause(record)
            .await
            .map_err(|source| CliError::Produce {
                number,
                records_produced: produced,
                source,
            })?;
        produced += 1;
        progress.inc(1);
    }
    Ok(produced)
}
