//! Patterns for services built of tasks that talk over channels.
//!
//! - [`ask`]: send a request to a task and await its reply, with the reply channel made for
//!   you.

#![warn(missing_docs)]

pub mod ask;
