//! Which topic names the server accepts.
//!
//! Topic names arrive from the network and backends may turn them into file names, so the
//! server checks each one at the boundary, before any backend sees it. The rules follow
//! Kafka's (at most 249 characters of `A-Z a-z 0-9 . _ -`) plus streambed's namespace
//! prefix: `ns:topic`, with one colon between two non-empty parts.

use thiserror::Error;

/// The longest topic name accepted, namespace included (Kafka's limit).
pub const MAX_TOPIC_NAME_LEN: usize = streambed::topic_name::MAX_TOPIC_NAME_LEN;

/// Why a topic name was refused; its message is what the server tells the client.
///
/// ```
/// use streambed_server::topic::{validate_topic, TopicNameError};
///
/// let error = validate_topic("ns:").unwrap_err();
/// assert_eq!(error, TopicNameError::Empty("ns:".to_owned()));
/// assert_eq!(error.to_string(), r#"topic name "ns:" has an empty part"#);
/// ```
#[derive(Clone, Debug, Eq, Error, PartialEq)]
pub enum TopicNameError {
    /// The name is empty, or one side of the namespace colon is.
    #[error("topic name {0:?} has an empty part")]
    Empty(String),
    /// The name is longer than [`MAX_TOPIC_NAME_LEN`].
    #[error("topic name is {0} characters long, more than the {MAX_TOPIC_NAME_LEN} allowed")]
    TooLong(usize),
    /// The name holds a character outside `A-Z a-z 0-9 . _ -` (or a second colon).
    #[error("topic name {name:?} contains {found:?}; only A-Z a-z 0-9 . _ - and one namespace colon are allowed")]
    BadCharacter {
        /// The name refused.
        name: String,
        /// The first character not allowed.
        found: char,
    },
    /// The name (or its namespace) is `.` or `..`, which name directories.
    #[error("topic name {0:?} is reserved")]
    Reserved(String),
    /// The file-system log refuses the name (it would collide with a topic's own files).
    #[cfg(feature = "file")]
    #[error("{0}")]
    FileLog(String),
}

/// Checks a topic name against the rules of the [module docs](self).
///
/// ```
/// use streambed_server::topic::{validate_topic, TopicNameError};
///
/// assert!(validate_topic("default:end-device-events").is_ok());
/// assert!(matches!(validate_topic("../etc"), Err(TopicNameError::BadCharacter { .. })));
/// ```
pub fn validate_topic(name: &str) -> Result<(), TopicNameError> {
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(TopicNameError::TooLong(name.len()));
    }
    let (namespace, topic) = match name.split_once(':') {
        Some((namespace, topic)) => (Some(namespace), topic),
        None => (None, name),
    };
    for part in namespace.into_iter().chain(Some(topic)) {
        if part.is_empty() {
            return Err(TopicNameError::Empty(name.to_owned()));
        }
        if let Some(found) = part
            .chars()
            .find(|&c| !streambed::topic_name::is_kafka_topic_char(c))
        {
            return Err(TopicNameError::BadCharacter {
                name: name.to_owned(),
                found,
            });
        }
        if part == "." || part == ".." {
            return Err(TopicNameError::Reserved(name.to_owned()));
        }
    }
    // The file-system log keeps a topic's history, work and index files beside it under
    // suffixed names (`t.history`, …); such names are its own and cannot be topics.
    #[cfg(feature = "file")]
    if let Err(error) = streambed_logged::validate_topic_name(name) {
        return Err(TopicNameError::FileLog(error.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_style_names_with_or_without_namespace_are_accepted() {
        for name in ["a", "readings", "default:end-device-events", "ns_1:a.b-c"] {
            assert_eq!(validate_topic(name), Ok(()), "{name}");
        }
        assert_eq!(validate_topic(&"x".repeat(MAX_TOPIC_NAME_LEN)), Ok(()));
    }

    #[cfg(feature = "file")]
    #[test]
    fn names_of_a_file_log_topics_own_files_are_reserved() {
        for name in [
            "t.history",
            "ns:t.ancient_history",
            "t.work",
            "t.index",
            "..a",
        ] {
            assert!(
                matches!(validate_topic(name), Err(TopicNameError::FileLog(_))),
                "{name}"
            );
        }
    }

    #[test]
    fn names_that_could_escape_a_directory_or_confuse_a_path_are_refused() {
        for name in [
            "", ":a", "a:", "a:b:c", "a/b", "a\\b", "..", "ns:.", "a b", "a\0", "é",
        ] {
            assert!(validate_topic(name).is_err(), "{name:?}");
        }
        assert_eq!(
            validate_topic(&"x".repeat(MAX_TOPIC_NAME_LEN + 1)),
            Err(TopicNameError::TooLong(MAX_TOPIC_NAME_LEN + 1))
        );
    }
}
