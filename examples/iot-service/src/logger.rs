//! A minimal logger writing to standard error, so the example needs no logging crate.

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, _metadata: &Metadata) -> bool {
        true
    }

    fn log(&self, record: &Record) {
        eprintln!(
            "{:5} {}: {}",
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Logs at `level` and above; `RUST_LOG=debug` (or another level name) overrides it.
pub fn init(level: LevelFilter) {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or(level);
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(level);
    }
}
