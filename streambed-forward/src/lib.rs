#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod dedup;
mod error;
mod forwarder;
mod origin;
mod positions;

pub use dedup::Deduplicator;
pub use error::ForwardError;
pub use forwarder::{ForwardSettings, Forwarder};
pub use origin::{Origin, ORIGIN_HEADER, ORIGIN_OFFSET_HEADER};
pub use positions::{PositionFile, Positions};
