//! What stops a forwarder. A destination that is down does not: the forwarder waits and
//! tries again. What does is anything that would lose the forwarder its place.

use std::path::PathBuf;

use streambed::atomic_file::AtomicFileError;
use thiserror::Error;

/// An error that stops forwarding.
#[derive(Debug, Error)]
pub enum ForwardError {
    /// The position file exists but cannot be read.
    #[error("cannot read the forwarding positions in {path}: {source}")]
    ReadPositions {
        /// The position file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The position file is not one the forwarder wrote.
    #[error("the forwarding positions in {path} are damaged at line {line}: {reason}")]
    BadPositions {
        /// The position file.
        path: PathBuf,
        /// The first line found wrong, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The position could not be stored: forwarding stops rather than forward records
    /// whose position it cannot keep.
    #[error("cannot store the forwarding positions: {0}")]
    WritePositions(#[source] AtomicFileError),
}
