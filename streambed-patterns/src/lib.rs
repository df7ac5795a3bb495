//! Patterns for services built of tasks that talk over channels.
//!
//! - [`ask`]: send a request to a task and await its reply, with the reply channel made for
//!   you.
//!
//! ```
//! use streambed_patterns::ask::Ask;
//! use tokio::sync::mpsc;
//!
//! // The commands a task owning a counter accepts; `Get` carries where to reply.
//! enum Command {
//!     Increment,
//!     Get(Box<dyn FnOnce(u64) + Send>),
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (sender, mut receiver) = mpsc::channel(8);
//! tokio::spawn(async move {
//!     let mut count = 0;
//!     while let Some(command) = receiver.recv().await {
//!         match command {
//!             Command::Increment => count += 1,
//!             Command::Get(reply_to) => reply_to(count),
//!         }
//!     }
//! });
//! sender.send(Command::Increment).await.unwrap();
//! sender.send(Command::Increment).await.unwrap();
//! // Commands are handled in order, so the answer counts both increments.
//! assert_eq!(sender.ask(Command::Get).await, Ok(2));
//! # }
//! ```

#![warn(missing_docs)]

pub mod ask;
