//! Who may do what to which topics: the permissions the server checks once identities are
//! on, read from a JSON file.
//!
//! Apart from the identity layer, which only says *who* asks, so that the rules can be
//! read, tested and documented on their own. Everything not granted is denied.
//!
//! # The policy file
//!
//! A JSON object whose `principals` map each principal (a token's user, a client
//! certificate's subject) to the topics it may `produce` to, `consume` from and `create`.
//! A topic is named exactly (`farm-a:readings`) or by a prefix ending in `*` (`default:*`
//! is every topic of the `default` namespace, `*` every topic).
//!
//! ```json
//! {
//!   "principals": {
//!     "farm-a-sensor-7": { "produce": ["farm-a:readings"] },
//!     "farm-a-gateway": { "produce": ["farm-a:*"], "create": ["farm-a:*"] },
//!     "dashboard": { "consume": ["farm-a:*", "default:alerts"] },
//!     "operator": { "produce": ["*"], "consume": ["*"], "create": ["*"] }
//!   }
//! }
//! ```
//!
//! - `produce`: append records (`POST /topics/<topic>`).
//! - `create`: needed *as well as* `produce` to append to a topic that has no records yet
//!   (the log answers no offsets for it): without it a principal can only add to topics
//!   that already exist.
//! - `consume`: read records (every subscription and every offset of `POST
//!   /consumers/<group>`) and a topic's offsets (`GET /topics/<topic>/partitions/…`).
//!
//! Unknown fields are errors (a misspelt `"consumes"` would silently grant nothing), and
//! every error names the line and column where the file goes wrong.

use std::{collections::HashMap, fmt, fs, io, path::Path};

use serde::{Deserialize, Deserializer};

use crate::{principal::Principal, topic::validate_topic};

/// An action on a topic that the policy grants or not.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Permission {
    /// Append records to the topic.
    Produce,
    /// Read the topic's records and offsets.
    Consume,
    /// Append the first records of a topic that has none yet (with [`Permission::Produce`]).
    Create,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Permission::Produce => "produce",
            Permission::Consume => "consume",
            Permission::Create => "create",
        })
    }
}

/// The permissions of every principal; see the [module documentation](self) for the file.
///
/// ```
/// use streambed_server::{policy::{Permission, Policy}, principal::Principal};
///
/// let policy = Policy::from_json(r#"{
///     "principals": {
///         "sensor": { "produce": ["farm-a:readings"] },
///         "dashboard": { "consume": ["farm-a:*"] }
///     }
/// }"#).unwrap();
/// let sensor = Principal::new("sensor");
/// assert!(policy.allows(&sensor, Permission::Produce, "farm-a:readings"));
/// assert!(!policy.allows(&sensor, Permission::Consume, "farm-a:readings"));
/// assert!(!policy.allows(&sensor, Permission::Create, "farm-a:readings"));
/// assert!(policy.allows(&Principal::new("dashboard"), Permission::Consume, "farm-a:x"));
/// assert!(!policy.allows(&Principal::new("stranger"), Permission::Consume, "farm-a:x"));
///
/// let error = Policy::from_json("{\"principals\": {\"a\": {\"consumes\": []}}}").unwrap_err();
/// assert!(error.to_string().contains("line 1"), "{error}");
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    principals: HashMap<String, Grants>,
}

/// What one principal is granted.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Grants {
    #[serde(default)]
    produce: Vec<TopicPattern>,
    #[serde(default)]
    consume: Vec<TopicPattern>,
    #[serde(default)]
    create: Vec<TopicPattern>,
}

/// A topic name, or a prefix of names.
#[derive(Clone, Debug, Eq, PartialEq)]
enum TopicPattern {
    Exact(String),
    Prefix(String),
}

impl TopicPattern {
    fn parse(text: &str) -> Result<Self, String> {
        match text.strip_suffix('*') {
            Some(prefix) => {
                if let Some(bad) = prefix
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
                {
                    return Err(format!(
                        "topic pattern {text:?} contains {bad:?}; a pattern is a topic name, or \
                         a prefix of one followed by a single '*' at the end"
                    ));
                }
                Ok(TopicPattern::Prefix(prefix.to_string()))
            }
            None => {
                validate_topic(text).map_err(|e| format!("topic pattern: {e}"))?;
                Ok(TopicPattern::Exact(text.to_string()))
            }
        }
    }

    fn matches(&self, topic: &str) -> bool {
        match self {
            TopicPattern::Exact(name) => name == topic,
            TopicPattern::Prefix(prefix) => topic.starts_with(prefix.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for TopicPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TopicPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Why a policy could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read the policy file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// The text is not a valid policy; the message names the line and column.
    #[error("invalid policy{}: {source}", .path.as_deref().map(|p| format!(" in {p}")).unwrap_or_default())]
    Invalid {
        /// The file, when read from one.
        path: Option<String>,
        /// What is wrong and where.
        source: serde_json::Error,
    },
}

/// A request the policy does not allow; its message is what the client is told (403).
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("{} has no {permission} permission on topic {topic:?}", who(.principal.as_ref()))]
pub struct Denied {
    /// Who asked, if known.
    pub principal: Option<Principal>,
    /// What was not granted.
    pub permission: Permission,
    /// On which topic.
    pub topic: String,
}

fn who(principal: Option<&Principal>) -> String {
    match principal {
        Some(principal) => format!("principal {:?}", principal.as_str()),
        None => "an unidentified client".to_string(),
    }
}

impl Policy {
    /// A policy granting nothing to anyone: every request of an identified client is
    /// refused with 403.
    ///
    /// ```
    /// use streambed_server::{policy::{Permission, Policy}, principal::Principal};
    ///
    /// assert!(!Policy::deny_all().allows(&Principal::new("root"), Permission::Consume, "a"));
    /// ```
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// The policy in `text`, JSON as the [module documentation](self) describes.
    ///
    /// ```
    /// use streambed_server::policy::Policy;
    ///
    /// let error = Policy::from_json(r#"{"principals": {"a": {"produce": ["x*y"]}}}"#)
    ///     .unwrap_err();
    /// assert!(error.to_string().contains("column"), "{error}");
    /// ```
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        serde_json::from_str(text).map_err(|source| PolicyError::Invalid { path: None, source })
    }

    /// The policy in the JSON file at `path`.
    ///
    /// ```
    /// use streambed_server::policy::{Policy, PolicyError};
    ///
    /// let file = tempfile::NamedTempFile::new().unwrap();
    /// std::fs::write(file.path(), r#"{"principals": {"ops": {"consume": ["*"]}}}"#).unwrap();
    /// Policy::load(file.path()).unwrap();
    /// assert!(matches!(Policy::load("/nonexistent/policy.json"), Err(PolicyError::Io { .. })));
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let shown = || path.display().to_string();
        let text = fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: shown(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| PolicyError::Invalid {
            path: Some(shown()),
            source,
        })
    }

    /// `Ok` when `principal` may do `permission` on `topic`, else why not. No principal (a
    /// request that the identity layer did not see) is denied everything.
    ///
    /// ```
    /// use streambed_server::{policy::{Permission, Policy}, principal::Principal};
    ///
    /// let policy = Policy::from_json(r#"{"principals": {"s": {"produce": ["t"]}}}"#).unwrap();
    /// let denied = policy.check(Some(&Principal::new("s")), Permission::Create, "t").unwrap_err();
    /// assert_eq!(denied.to_string(), r#"principal "s" has no create permission on topic "t""#);
    /// ```
    pub fn check(
        &self,
        principal: Option<&Principal>,
        permission: Permission,
        topic: &str,
    ) -> Result<(), Denied> {
        match principal {
            Some(principal) if self.allows(principal, permission, topic) => Ok(()),
            _ => Err(Denied {
                principal: principal.cloned(),
                permission,
                topic: topic.to_string(),
            }),
        }
    }

    /// Whether `principal` may do `permission` on `topic`.
    pub fn allows(&self, principal: &Principal, permission: Permission, topic: &str) -> bool {
        let Some(grants) = self.principals.get(principal.as_str()) else {
            return false;
        };
        let patterns = match permission {
            Permission::Produce => &grants.produce,
            Permission::Consume => &grants.consume,
            Permission::Create => &grants.create,
        };
        patterns.iter().any(|pattern| pattern.matches(topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Policy {
        Policy::from_json(json).unwrap()
    }

    fn error(json: &str) -> String {
        Policy::from_json(json).unwrap_err().to_string()
    }

    #[test]
    fn a_prefix_grants_every_topic_that_starts_with_it_and_nothing_else() {
        let p = policy(r#"{"principals": {"a": {"consume": ["default:*"]}}}"#);
        let a = Principal::new("a");
        assert!(p.allows(&a, Permission::Consume, "default:x"));
        assert!(p.allows(&a, Permission::Consume, "default:"));
        assert!(!p.allows(&a, Permission::Consume, "defaults:x"));
        assert!(!p.allows(&a, Permission::Consume, "other:x"));
    }

    #[test]
    fn a_star_alone_grants_every_topic() {
        let p = policy(r#"{"principals": {"ops": {"produce": ["*"]}}}"#);
        assert!(p.allows(&Principal::new("ops"), Permission::Produce, "any:topic"));
    }

    #[test]
    fn an_exact_name_grants_that_topic_only() {
        let p = policy(r#"{"principals": {"s": {"produce": ["farm-a:readings"]}}}"#);
        let s = Principal::new("s");
        assert!(p.allows(&s, Permission::Produce, "farm-a:readings"));
        assert!(!p.allows(&s, Permission::Produce, "farm-a:readings2"));
        assert!(!p.allows(&s, Permission::Produce, "farm-a:reading"));
    }

    #[test]
    fn permissions_are_granted_separately() {
        let p = policy(r#"{"principals": {"s": {"create": ["t"]}}}"#);
        let s = Principal::new("s");
        assert!(p.allows(&s, Permission::Create, "t"));
        assert!(!p.allows(&s, Permission::Produce, "t"));
        assert!(!p.allows(&s, Permission::Consume, "t"));
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let p = policy(r#"{"principals": {"s": {}}}"#);
        assert!(!p.allows(&Principal::new("s"), Permission::Consume, "t"));
        assert!(!Policy::deny_all().allows(&Principal::new("s"), Permission::Produce, "t"));
    }

    #[test]
    fn a_misspelt_field_is_an_error_naming_it_and_its_line() {
        let message = error("{\"principals\": {\n \"a\": {\n  \"consumes\": [\"x\"]}}}");
        assert!(message.contains("consumes"), "{message}");
        assert!(message.contains("line 3"), "{message}");
        let message = error("{\"principal\": {}}");
        assert!(message.contains("principal"), "{message}");
    }

    #[test]
    fn a_bad_pattern_is_an_error_naming_it_and_its_line() {
        for bad in ["a*b", "**", "a b*", "", "a/b", ".."] {
            let json = format!("{{\"principals\": {{\n\"a\": {{\"produce\": [{bad:?}]}}}}}}");
            let message = error(&json);
            assert!(message.contains("line 2"), "{bad:?}: {message}");
        }
    }

    #[test]
    fn malformed_json_is_an_error_naming_its_line() {
        let message = error("{\n\"principals\": {\n\"a\": }");
        assert!(message.contains("line 3"), "{message}");
    }
}
