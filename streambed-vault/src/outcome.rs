//! How a call reads the server's answer: accepted, denied, or failed.
//!
//! Every call of the store (logins, token lookup, KV reads and writes, user management)
//! treats a denial and an unexpected status the same way: counted under the call's
//! label, and reported as [`VaultError::Unauthorized`] or [`VaultError::Status`]. That
//! verdict lives here once.

use log::debug;

use crate::{
    call::{Counted, Reply, UNAUTHORIZED},
    VaultError,
};

/// `Ok` for a successful answer; else the denial or failure it reports, counted.
pub(crate) fn accepted(reply: &Reply, counted: &Counted<'_>) -> Result<(), VaultError> {
    if reply.is_denied() {
        return Err(denied(reply, counted));
    }
    if !reply.status.is_success() {
        return Err(reply.failure(counted));
    }
    Ok(())
}

/// The server said no: counted as unauthorized, with its reason in the debug log.
pub(crate) fn denied(reply: &Reply, counted: &Counted<'_>) -> VaultError {
    counted.count(UNAUTHORIZED);
    debug!(
        "Secret store denied {} {} ({}): {}",
        counted.label,
        counted.value,
        reply.status,
        reply.message()
    );
    VaultError::Unauthorized
}
