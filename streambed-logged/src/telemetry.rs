//! What a `FileLog` reports through the `metrics` facade (the names are listed in
//! ARCHITECTURE.md). Handles are registered once, when the log is made, and shared by its
//! topics, so that counting costs an atomic add per batch, never a registry lookup per
//! record; without a recorder installed by then they do nothing. No label carries a topic
//! name: series stay bounded however many topics a log has.

use std::time::Duration;

use metrics::{counter, histogram, Counter, Histogram};

/// The log's series.
pub(crate) struct Telemetry {
    records_produced: Counter,
    bytes_produced: Counter,
    records_consumed: Counter,
    bytes_consumed: Counter,
    compactions: Counter,
    compaction_seconds: Histogram,
    pub(crate) damaged_bytes: Counter,
}

impl Telemetry {
    /// Registers the series with the recorder installed now.
    pub(crate) fn register() -> Self {
        Self {
            records_produced: counter!("logged_records_produced_total"),
            bytes_produced: counter!("logged_bytes_produced_total"),
            records_consumed: counter!("logged_records_consumed_total"),
            bytes_consumed: counter!("logged_bytes_consumed_total"),
            compactions: counter!("logged_compactions_total"),
            compaction_seconds: histogram!("logged_compaction_seconds"),
            damaged_bytes: counter!("logged_damaged_bytes_total"),
        }
    }

    /// A batch of `records` records, `bytes` bytes encoded, reached the file.
    pub(crate) fn produced(&self, records: usize, bytes: usize) {
        self.records_produced.increment(records as u64);
        self.bytes_produced.increment(bytes as u64);
    }

    /// `records` records of `bytes` bytes encoded were handed to a subscriber.
    pub(crate) fn consumed(&self, records: usize, bytes: u64) {
        self.records_consumed.increment(records as u64);
        self.bytes_consumed.increment(bytes);
    }

    /// A compaction committed after `took`.
    pub(crate) fn compacted(&self, took: Duration) {
        self.compactions.increment(1);
        self.compaction_seconds.record(took.as_secs_f64());
    }
}
