//! How much one consumer request may ask of the commit log.
//!
//! A backend does work (and may log) per subscription and per offset, and matches each
//! subscription against every offset, so a request naming tens of thousands of either would
//! cost the server far more than its body size suggests. Such a request is refused at the
//! boundary, before the backend sees it, with one clear message rather than one log line
//! per entry.

use std::collections::HashSet;

use streambed::commit_log::Consumer;

/// Why a consumer request was refused; its text is the message sent to the client.
#[derive(Debug, thiserror::Error, Eq, PartialEq)]
pub(crate) enum ConsumerRefused {
    #[error("a consumer may name at most {max} subscriptions; this one names {named}")]
    TooManySubscriptions { max: usize, named: usize },
    #[error("a consumer may name at most {max} offsets; this one names {named}")]
    TooManyOffsets { max: usize, named: usize },
    #[error("topic {0:?} is subscribed to more than once")]
    DuplicateSubscription(String),
}

/// Refuses a consumer naming more than `max` subscriptions or `max` offsets, or the same
/// topic twice among its subscriptions (each would receive every record once more).
pub(crate) fn check_consumer(consumer: &Consumer, max: usize) -> Result<(), ConsumerRefused> {
    if consumer.subscriptions.len() > max {
        return Err(ConsumerRefused::TooManySubscriptions {
            max,
            named: consumer.subscriptions.len(),
        });
    }
    if consumer.offsets.len() > max {
        return Err(ConsumerRefused::TooManyOffsets {
            max,
            named: consumer.offsets.len(),
        });
    }
    let mut seen = HashSet::with_capacity(consumer.subscriptions.len());
    for subscription in &consumer.subscriptions {
        if !seen.insert(subscription.topic.as_str()) {
            return Err(ConsumerRefused::DuplicateSubscription(
                subscription.topic.to_string(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use streambed::commit_log::{ConsumerOffset, Subscription, Topic};

    fn consumer(topics: &[&str], offsets: usize) -> Consumer {
        Consumer {
            offsets: (0..offsets)
                .map(|offset| ConsumerOffset {
                    topic: Topic::from("a"),
                    partition: 0,
                    offset: offset as u64,
                })
                .collect(),
            subscriptions: topics
                .iter()
                .map(|topic| Subscription {
                    topic: Topic::from(*topic),
                })
                .collect(),
        }
    }

    #[test]
    fn a_consumer_within_the_limits_passes() {
        assert_eq!(check_consumer(&consumer(&["a", "b"], 2), 2), Ok(()));
    }

    #[test]
    fn more_subscriptions_or_offsets_than_the_limit_are_refused() {
        assert_eq!(
            check_consumer(&consumer(&["a", "b", "c"], 0), 2),
            Err(ConsumerRefused::TooManySubscriptions { max: 2, named: 3 })
        );
        assert_eq!(
            check_consumer(&consumer(&["a"], 3), 2),
            Err(ConsumerRefused::TooManyOffsets { max: 2, named: 3 })
        );
    }

    #[test]
    fn a_topic_subscribed_twice_is_refused() {
        assert_eq!(
            check_consumer(&consumer(&["a", "b", "a"], 0), 8),
            Err(ConsumerRefused::DuplicateSubscription("a".to_owned()))
        );
    }
}
