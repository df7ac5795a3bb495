//! What the store reports through the `metrics` facade: how often its cache spares a file
//! read, and why calls fail. Each failure is counted once, where it arises: a login that
//! fails because the user's file cannot be read counts as a read error, not as a refused
//! login. A file store never retries, so there is no retry counter.
//!
//! Labels come from fixed lists (the kind of error), never from secret paths or user
//! names, so the number of series cannot grow with what callers ask for.

use metrics::counter;

use crate::ConfidantError;

/// Secret reads answered without reading a file: from the cache, or by a read of the same
/// path already under way.
pub(crate) const CACHE_HITS: &str = "confidant_cache_hits_total";
/// Secret reads that read the secret's file.
pub(crate) const CACHE_MISSES: &str = "confidant_cache_misses_total";
/// Reads of a secret that failed, by `kind`.
pub(crate) const READ_ERRORS: &str = "confidant_read_errors_total";
/// Writes or removals of a secret that failed, by `kind`.
pub(crate) const WRITE_ERRORS: &str = "confidant_write_errors_total";
/// Logins and token checks refused, by `kind` (`authentication_failed` for a wrong
/// password or an invalid token).
pub(crate) const AUTH_FAILURES: &str = "confidant_auth_failures_total";

/// Counts a read of a secret as a cache hit or miss.
pub(crate) fn read(loaded_file: bool) {
    counter!(if loaded_file {
        CACHE_MISSES
    } else {
        CACHE_HITS
    })
    .increment(1);
}

/// Counts `result`'s error, if any, under `counter`, and hands it back.
pub(crate) fn failure<T>(
    counter: &'static str,
    result: Result<T, ConfidantError>,
) -> Result<T, ConfidantError> {
    if let Err(error) = &result {
        counter!(counter, "kind" => kind(error)).increment(1);
    }
    result
}

fn kind(error: &ConfidantError) -> &'static str {
    match error {
        ConfidantError::InsecureRoot { .. } => "insecure_root",
        ConfidantError::RootUnavailable { .. } => "root_unavailable",
        ConfidantError::InvalidName(_) => "invalid_name",
        ConfidantError::Io { .. } => "io",
        ConfidantError::Corrupt { .. } => "corrupt",
        ConfidantError::AuthenticationFailed => "authentication_failed",
        ConfidantError::Abandoned => "abandoned",
    }
}
