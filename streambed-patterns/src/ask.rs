//! The ask pattern: send a request that carries a way to reply, then await the reply.
//!
//! A task that owns some state (an "actor") receives commands over an `mpsc` channel. A
//! command that wants an answer carries a reply function; [`Ask::ask`] builds that function
//! around a one-shot channel, sends the command and awaits what the actor passes to it.
//!
//! ```
//! use streambed_patterns::ask::Ask;
//! use tokio::sync::mpsc;
//!
//! enum Command {
//!     Add(u32, Box<dyn FnOnce(u32) + Send>),
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (sender, mut receiver) = mpsc::channel(8);
//! tokio::spawn(async move {
//!     let mut total = 0;
//!     while let Some(Command::Add(n, reply_to)) = receiver.recv().await {
//!         total += n;
//!         reply_to(total);
//!     }
//! });
//! assert_eq!(sender.ask(|reply_to| Command::Add(2, reply_to)).await, Ok(2));
//! assert_eq!(sender.ask(|reply_to| Command::Add(3, reply_to)).await, Ok(5));
//! # }
//! ```

use std::{error::Error, fmt};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

/// Why an ask got no reply.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum AskError {
    /// The request could not be sent: the receiving task has gone.
    SendError,
    /// The request was sent but the reply function was dropped without being called.
    ReceiveError,
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::SendError => f.write_str("the request could not be sent: no receiver"),
            AskError::ReceiveError => f.write_str("the request was dropped without a reply"),
        }
    }
}

impl Error for AskError {}

/// Sends a request built around a reply function and awaits the reply.
#[async_trait]
pub trait Ask<A> {
    /// Builds a request with `f`, giving it the function to reply with, sends it and waits
    /// for the reply.
    async fn ask<R>(
        &self,
        f: impl FnOnce(Box<dyn FnOnce(R) + Send>) -> A + Send,
    ) -> Result<R, AskError>
    where
        R: Send + 'static;
}

#[async_trait]
impl<A> Ask<A> for mpsc::Sender<A>
where
    A: Send,
{
    /// Replies travel over a one-shot channel; waiting for room in a full channel applies
    /// the channel's back-pressure to the asker.
    async fn ask<R>(
        &self,
        f: impl FnOnce(Box<dyn FnOnce(R) + Send>) -> A + Send,
    ) -> Result<R, AskError>
    where
        R: Send + 'static,
    {
        let (reply_sender, reply_receiver) = oneshot::channel();
        let reply_to: Box<dyn FnOnce(R) + Send> = Box::new(move |reply| {
            // The asker may have given up waiting; a reply nobody awaits is simply dropped.
            let _ = reply_sender.send(reply);
        });
        self.send(f(reply_to))
            .await
            .map_err(|_| AskError::SendError)?;
        reply_receiver.await.map_err(|_| AskError::ReceiveError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Reply = Box<dyn FnOnce(String) + Send>;

    enum Request {
        Echo(String, Reply),
        Ignore(Reply),
    }

    fn spawn_echo() -> mpsc::Sender<Request> {
        let (sender, mut receiver) = mpsc::channel(1);
        tokio::spawn(async move {
            while let Some(request) = receiver.recv().await {
                match request {
                    Request::Echo(text, reply_to) => reply_to(text),
                    Request::Ignore(reply_to) => drop(reply_to),
                }
            }
        });
        sender
    }

    #[tokio::test]
    async fn ask_returns_the_reply() {
        let sender = spawn_echo();
        let reply = sender
            .ask(|reply_to| Request::Echo("hi".to_string(), reply_to))
            .await;
        assert_eq!(reply, Ok("hi".to_string()));
    }

    #[tokio::test]
    async fn many_concurrent_asks_each_get_their_own_reply() {
        let sender = spawn_echo();
        // Spawn every ask before awaiting any, so they are in flight together.
        let asks: Vec<_> = (0..50)
            .map(|i| {
                let sender = sender.clone();
                tokio::spawn(async move {
                    sender
                        .ask(|reply_to| Request::Echo(i.to_string(), reply_to))
                        .await
                })
            })
            .collect();
        for (i, ask) in asks.into_iter().enumerate() {
            assert_eq!(ask.await.unwrap(), Ok(i.to_string()));
        }
    }

    #[tokio::test]
    async fn ask_of_a_dropped_receiver_is_a_send_error() {
        let (sender, receiver) = mpsc::channel::<Request>(1);
        drop(receiver);
        let reply = sender
            .ask(|reply_to| Request::Echo("hi".to_string(), reply_to))
            .await;
        assert_eq!(reply, Err(AskError::SendError));
    }

    #[tokio::test]
    async fn a_reply_dropped_unanswered_is_a_receive_error() {
        let sender = spawn_echo();
        let reply: Result<String, _> = sender.ask(Request::Ignore).await;
        assert_eq!(reply, Err(AskError::ReceiveError));
    }

    #[test]
    fn errors_say_what_went_wrong() {
        assert!(AskError::SendError.to_string().contains("no receiver"));
        assert!(AskError::ReceiveError
            .to_string()
            .contains("without a reply"));
    }
}
