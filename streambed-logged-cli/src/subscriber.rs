//! `logged subscribe` and `logged tail`: records of topics out, one per line, as they
//! arrive.

use std::{io::Write, time::Duration};

use futures_util::{FutureExt, StreamExt};
use streambed::commit_log::{CommitLog, ConsumerOffset, Subscription};
use streambed_logged::{validate_topic_name, FileLog};

use crate::{
    errors::CliError,
    format::{self, Format},
};

/// Writes every record of the subscribed topics after the given offsets to `output`, one
/// per line in `format`, until the idle timeout (or forever without one).
pub async fn subscribe(
    log: &FileLog,
    offsets: Vec<ConsumerOffset>,
    topics: Vec<String>,
    idle_timeout: Option<Duration>,
    format: Format,
    mut output: impl Write,
) -> Result<(), CliError> {
    // The log skips topics it cannot serve with only a warning; a command line deserves
    // a refusal instead of a silently empty output.
    for topic in &topics {
        validate_topic_name(topic).map_err(|source| CliError::BadTopic {
            topic: topic.clone(),
            source,
        })?;
    }
    for offset in &offsets {
        if !topics.iter().any(|topic| *topic == offset.topic) {
            return Err(CliError::OffsetWithoutSubscription {
                topic: offset.topic.to_string(),
            });
        }
        if offset.partition != 0 {
            return Err(CliError::UnsupportedPartition {
                topic: offset.topic.to_string(),
                partition: offset.partition,
            });
        }
    }
    let subscriptions = topics
        .into_iter()
        .map(|topic| Subscription {
            topic: topic.into(),
        })
        .collect();
    let mut records = log.scoped_subscribe("logged", offsets, subscriptions, idle_timeout);
    loop {
        // Flush only when no record is ready at once: a backlog goes out in large writes,
        // and a live record is not held back waiting for the next one.
        let next = match records.next().now_or_never() {
            Some(next) => next,
            None => {
                output.flush()?;
                records.next().await
            }
        };
        let Some(record) = next else { break };
        format::write_record(&mut output, &record, format)?;
    }
    output.flush()?;
    Ok(())
}
