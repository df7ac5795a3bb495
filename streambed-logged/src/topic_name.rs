//! Topic names are untrusted input that becomes file names: they are checked once, here,
//! and the paths of a topic's files are built only from a checked name.

use std::path::{Path, PathBuf};

use streambed::commit_log::Topic;

use crate::error::TopicNameError;

/// The longest topic name accepted, in bytes (Kafka's limit).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Suffix of the compacted history of a topic.
pub(crate) const HISTORY_SUFFIX: &str = ".history";
/// Suffix of the older history while a compaction is under way.
pub(crate) const ANCIENT_HISTORY_SUFFIX: &str = ".ancient_history";
/// Suffix of the file a compaction writes before it replaces the history.
pub(crate) const WORK_SUFFIX: &str = ".work";
/// Suffix of the sparse offset index of the active file.
pub(crate) const INDEX_SUFFIX: &str = ".index";

const RESERVED_SUFFIXES: [&str; 4] = [
    ANCIENT_HISTORY_SUFFIX,
    HISTORY_SUFFIX,
    WORK_SUFFIX,
    INDEX_SUFFIX,
];

/// Checks that `name` can safely name a topic's files inside the root folder.
///
/// ```
/// use streambed_logged::validate_topic_name;
///
/// assert!(validate_topic_name("ns:readings").is_ok());
/// assert!(validate_topic_name("../etc/passwd").is_err());
/// assert!(validate_topic_name("readings.history").is_err());
/// ```
pub fn validate_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(TopicNameError::TooLong {
            len: name.len(),
            max: MAX_TOPIC_NAME_LEN,
        });
    }
    if let Some(ch) = name.chars().find(|c| matches!(c, '/' | '\\' | '\0')) {
        return Err(TopicNameError::ForbiddenCharacter {
            name: name.to_string(),
            ch,
        });
    }
    if name == "." || name.contains("..") {
        return Err(TopicNameError::Dots {
            name: name.to_string(),
        });
    }
    if let Some(suffix) = RESERVED_SUFFIXES.iter().find(|s| name.ends_with(*s)) {
        return Err(TopicNameError::ReservedSuffix {
            name: name.to_string(),
            suffix,
        });
    }
    Ok(())
}

/// The files of one topic. Suffixes are appended to the name (never
/// `Path::with_extension`), so the topics `a` and `a.b` never share a file.
#[derive(Clone, Debug)]
pub(crate) struct TopicPaths {
    pub(crate) root: PathBuf,
    pub(crate) active: PathBuf,
    pub(crate) history: PathBuf,
    pub(crate) ancient_history: PathBuf,
    pub(crate) work: PathBuf,
    pub(crate) index: PathBuf,
}

impl TopicPaths {
    /// Builds the paths of a topic whose name has passed [`validate_topic_name`].
    pub(crate) fn new(root: &Path, topic: &Topic) -> Result<Self, TopicNameError> {
        validate_topic_name(topic)?;
        let with_suffix = |suffix: &str| root.join(format!("{topic}{suffix}"));
        Ok(Self {
            root: root.to_path_buf(),
            active: root.join(topic.as_str()),
            history: with_suffix(HISTORY_SUFFIX),
            ancient_history: with_suffix(ANCIENT_HISTORY_SUFFIX),
            work: with_suffix(WORK_SUFFIX),
            index: with_suffix(INDEX_SUFFIX),
        })
    }
}

/// The topic a file in the root folder belongs to, whichever of its files it is.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn topic_of_file_name(file_name: &str) -> &str {
    RESERVED_SUFFIXES
        .iter()
        .find_map(|s| file_name.strip_suffix(s))
        .unwrap_or(file_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_root_are_refused() {
        for name in ["a/b", "/abs", "a\\b", "..", ".", "a..b", "nul\0", ""] {
            assert!(validate_topic_name(name).is_err(), "{name:?} was accepted");
        }
    }

    #[test]
    fn names_over_249_bytes_are_refused_and_249_is_accepted() {
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        assert_eq!(
            validate_topic_name(&"x".repeat(250)),
            Err(TopicNameError::TooLong { len: 250, max: 249 })
        );
    }

    #[test]
    fn names_ending_in_a_reserved_suffix_are_refused() {
        for name in ["t.history", "t.ancient_history", "t.work", "t.index"] {
            assert!(matches!(
                validate_topic_name(name),
                Err(TopicNameError::ReservedSuffix { .. })
            ));
        }
    }

    #[test]
    fn dotted_topics_do_not_share_files_with_their_prefix() {
        let root = Path::new("/r");
        let a = TopicPaths::new(root, &Topic::from("a")).unwrap();
        let ab = TopicPaths::new(root, &Topic::from("a.b")).unwrap();
        assert_eq!(ab.history, Path::new("/r/a.b.history"));
        assert_ne!(a.history, ab.history);
        assert_ne!(a.work, ab.work);
        assert_eq!(topic_of_file_name("a.b.ancient_history"), "a.b");
        assert_eq!(topic_of_file_name("ns:t"), "ns:t");
    }
}
