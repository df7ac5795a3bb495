//! Streambed topic names as Kafka topic names.
//!
//! Streambed names may carry a namespace, `"ns:topic"`, but Kafka allows only ASCII letters,
//! digits, `.`, `_` and `-`, at most 249 of them. The namespace separator becomes Kafka's
//! conventional `.` (`"farm:readings"` is `farm.readings` on the cluster, which is what a
//! third-party Kafka application sees); any other character a cluster cannot hold is an
//! error, never silently replaced. The one rule lives here so that producing and consuming
//! can never disagree on where a record went.

use std::borrow::Cow;

use streambed::topic_name::{is_kafka_topic_char, MAX_TOPIC_NAME_LEN};
use thiserror::Error;

/// A streambed topic name that no Kafka topic name stands for.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("topic {topic:?} cannot be held by Kafka: {reason}")]
pub struct TopicNameError {
    /// The streambed topic name as given.
    pub topic: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The Kafka topic that holds the records of a streambed topic.
///
/// ```
/// use streambed_kafka_native::kafka_topic_name;
///
/// assert_eq!(kafka_topic_name("readings").unwrap(), "readings");
/// assert_eq!(kafka_topic_name("farm:readings").unwrap(), "farm.readings");
/// assert!(kafka_topic_name("a topic").is_err());
/// ```
pub fn kafka_topic_name(topic: &str) -> Result<Cow<'_, str>, TopicNameError> {
    let error = |reason| TopicNameError {
        topic: topic.to_owned(),
        reason,
    };
    if topic.is_empty() {
        return Err(error("it is empty"));
    }
    if topic.len() > MAX_TOPIC_NAME_LEN {
        return Err(error("it is longer than 249 bytes"));
    }
    if topic == "." || topic == ".." {
        return Err(error("`.` and `..` are reserved"));
    }
    let mut namespaced = false;
    for c in topic.chars() {
        if c == ':' {
            namespaced = true;
        } else if !is_kafka_topic_char(c) {
            return Err(error(
                "only ASCII letters, digits, `.`, `_`, `-` and the namespace `:` are allowed",
            ));
        }
    }
    Ok(if namespaced {
        Cow::Owned(topic.replace(':', "."))
    } else {
        Cow::Borrowed(topic)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_kafka_names_pass_unchanged_without_copying() {
        assert!(matches!(
            kafka_topic_name("conformance-a_b.c").unwrap(),
            Cow::Borrowed("conformance-a_b.c")
        ));
    }

    #[test]
    fn every_namespace_separator_becomes_a_dot() {
        assert_eq!(kafka_topic_name("a:b:c").unwrap(), "a.b.c");
    }

    #[test]
    fn names_kafka_cannot_hold_are_errors_naming_the_topic() {
        for bad in ["", ".", "..", "héllo", "a/b", "a b"] {
            let error = kafka_topic_name(bad).unwrap_err();
            assert_eq!(error.topic, bad);
        }
        assert!(kafka_topic_name(&"x".repeat(250)).is_err());
        assert!(kafka_topic_name(&"x".repeat(249)).is_ok());
    }
}
