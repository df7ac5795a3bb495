//! The program's logger: one line per message on stderr, with audit lines gathered and
//! written together.
//!
//! An audit line per request written on its own costs a system call (and a wait for the
//! stderr lock) per request: under load, a large share of a small request. Audit lines
//! are therefore appended to a buffer that a thread of the logger writes out at most
//! [`GATHER`] after its first line, or at once when it holds [`FULL`] bytes; other
//! messages (rare) are written at once, after the audit lines before them, so that the
//! order of lines is kept. [`log::Log::flush`] writes what is pending, and the program
//! calls it before it exits.

use std::{
    io::Write,
    sync::{
        atomic::{AtomicBool, Ordering},
        Condvar, Mutex, MutexGuard, PoisonError,
    },
    time::Duration,
};

use streambed_server::audit;

/// The longest an audit line waits in the buffer.
const GATHER: Duration = Duration::from_millis(20);

/// A buffer this large is written out without waiting.
const FULL: usize = 64 * 1024;

/// Writes log messages to stderr, one a line; service managers add timestamps.
pub(crate) struct StderrLogger {
    /// Whether audit lines are written.
    audit: bool,
    /// Audit lines not yet written.
    pending: Mutex<Vec<u8>>,
    /// Wakes the writing thread: lines arrived in an empty buffer, or it is full.
    arrived: Condvar,
    /// Whether the writing thread runs; without it audit lines are written at once.
    gathering: AtomicBool,
}

impl StderrLogger {
    /// A logger writing audit lines when `audit`, and the thread writing them out; the
    /// logger lives as long as the program.
    pub(crate) fn install(audit: bool) -> &'static Self {
        let logger: &'static Self = Box::leak(Box::new(Self {
            audit,
            pending: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            gathering: AtomicBool::new(false),
        }));
        if audit {
            let spawned = std::thread::Builder::new()
                .name("audit-log".to_owned())
                .spawn(move || logger.write_gathered());
            match spawned {
                Ok(_) => logger.gathering.store(true, Ordering::Release),
                Err(error) => eprintln!("cannot start the audit log thread: {error}"),
            }
        }
        logger
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while appending leaves whole lines behind at worst.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writing thread: waits for a first line, gathers more for up to [`GATHER`]
    /// (or until the buffer is full), writes them all at once.
    fn write_gathered(&self) {
        let mut pending = self.lock();
        loop {
            while pending.is_empty() {
                pending = self
                    .arrived
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            pending = self
                .arrived
                .wait_timeout_while(pending, GATHER, |pending| pending.len() < FULL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            write_out(&mut pending);
        }
    }
}

/// Writes `pending` to stderr and empties it. Called with the buffer locked, so that no
/// line is written between the ones before and after it.
fn write_out(pending: &mut Vec<u8>) {
    if !pending.is_empty() {
        let _ = std::io::stderr().lock().write_all(pending);
        pending.clear();
    }
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level() && (self.audit || metadata.target() != audit::TARGET)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Formatted first, then written at once: stderr is unbuffered, and writing the
        // pieces one by one would cost a system call each.
        let line = format!(
            "{:<5} {}: {}\n",
            record.level(),
            record.target(),
            record.args()
        );
        let mut pending = self.lock();
        if record.target() == audit::TARGET && self.gathering.load(Ordering::Acquire) {
            let was_empty = pending.is_empty();
            pending.extend_from_slice(line.as_bytes());
            if was_empty || pending.len() >= FULL {
                self.arrived.notify_one();
            }
        } else {
            write_out(&mut pending);
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {
        write_out(&mut self.lock());
    }
}
