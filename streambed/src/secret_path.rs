//! The one rule set for secret paths and user names, shared by every secret store.
//!
//! A secret path becomes a file path in `streambed-confidant` and a URL path in
//! `streambed-vault`. When each store checked names its own way, a path could work with one
//! store and fail with the other, so a service that moved between them broke. Both stores
//! now parse every name with [`SecretPath::parse`] or [`UserName::parse`] before any file
//! access or request, and refuse exactly the same names for the same reason.
//!
//! A secret path is relative and `/`-separated. It is refused when it is
//! - empty, or longer than [`MAX_LEN`] bytes (Linux's `PATH_MAX` of 4096 less room for the
//!   store's root directory);
//! - absolute: it starts with `/` (a file store would leave its root; Vault would see an
//!   empty component);
//! - holding a control character anywhere (`char::is_control`: NUL ends C strings, line
//!   breaks forge log lines and headers);
//! - made of a component that is empty (`a//b`, `a/`), `.` or `..` (the file system and
//!   URL normalisation would resolve them to another secret), or longer than
//!   [`MAX_COMPONENT_LEN`] bytes (the longest file name Linux file systems store).
//!
//! Everything else is accepted as written, including spaces, `\`, `%`, `?`, `#`, non-ASCII
//! letters and components that merely start with a dot (`.hidden`, `..a`): they are plain
//! file names, and the Vault client percent-encodes each component. Names are not
//! normalised (no trimming, no case folding), so one name always means one secret.
//!
//! A user name follows the same rules and is a single component: it holds no `/`.
//!
//! ```
//! use streambed::secret_path::{Problem, SecretPath, UserName};
//!
//! let path = SecretPath::parse("default/secrets.key").unwrap();
//! assert_eq!(path.components().collect::<Vec<_>>(), ["default", "secrets.key"]);
//!
//! let error = SecretPath::parse("default/../other").unwrap_err();
//! assert_eq!(error.problem, Problem::DotComponent);
//! assert_eq!(
//!     error.to_string(),
//!     r#"invalid secret path "default/../other": has a '.' or '..' component"#
//! );
//!
//! assert_eq!(UserName::parse("mary").unwrap().as_str(), "mary");
//! assert_eq!(UserName::parse("a/b").unwrap_err().problem, Problem::Slash);
//! ```

use std::fmt;

/// The longest secret path or user name accepted, in bytes.
pub const MAX_LEN: usize = 3072;

/// The longest component of a secret path accepted, in bytes.
pub const MAX_COMPONENT_LEN: usize = 255;

/// How much of a refused name an error keeps, in characters: enough to recognise it, while
/// a huge name does not flood the logs.
const SHOWN_CHARS: usize = 256;

/// What is wrong with a refused secret path or user name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The name is empty.
    #[error("is empty")]
    Empty,
    /// The name is longer than [`MAX_LEN`] bytes.
    #[error("is longer than {MAX_LEN} bytes")]
    TooLong,
    /// The name starts with `/`.
    #[error("starts with '/'")]
    Absolute,
    /// The name holds a control character, such as NUL or a line break.
    #[error("contains a control character")]
    ControlCharacter,
    /// A component is empty: the name has `//` or ends with `/`.
    #[error("has an empty component")]
    EmptyComponent,
    /// A component is `.` or `..`.
    #[error("has a '.' or '..' component")]
    DotComponent,
    /// A component is longer than [`MAX_COMPONENT_LEN`] bytes.
    #[error("has a component longer than {MAX_COMPONENT_LEN} bytes")]
    ComponentTooLong,
    /// A user name holds a `/`.
    #[error("contains '/'")]
    Slash,
}

/// A secret path or user name that was refused, and why.
///
/// ```
/// use streambed::secret_path::{Problem, SecretPath};
///
/// let error = SecretPath::parse("a\nb").unwrap_err();
/// assert_eq!(error.what, "secret path");
/// assert_eq!(error.name, "a\nb");
/// assert_eq!(error.problem, Problem::ControlCharacter);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {name:?}: {problem}")]
#[non_exhaustive]
pub struct SecretPathError {
    /// `"secret path"` or `"user name"`.
    pub what: &'static str,
    /// The refused name, cut after its first 256 characters.
    pub name: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl SecretPathError {
    fn new(what: &'static str, name: &str, problem: Problem) -> Self {
        Self {
            what,
            name: name.chars().take(SHOWN_CHARS).collect(),
            problem,
        }
    }
}

/// A secret path that satisfies the rules of this module: safe to join below a store's
/// root directory and to send as URL path components.
///
/// ```
/// use streambed::secret_path::SecretPath;
///
/// let path = SecretPath::parse("auth/userpass/users/mary").unwrap();
/// assert_eq!(path.as_str(), "auth/userpass/users/mary");
/// assert!(SecretPath::parse("/etc/passwd").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SecretPath<'a>(&'a str);

impl<'a> SecretPath<'a> {
    /// Checks `path` against the rules of this module.
    pub fn parse(path: &'a str) -> Result<Self, SecretPathError> {
        check(path)
            .map(|()| Self(path))
            .map_err(|problem| SecretPathError::new("secret path", path, problem))
    }

    /// The path as given.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// The path's components, in order; none is empty, `.` or `..`.
    pub fn components(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.0.split('/')
    }
}

impl fmt::Display for SecretPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl AsRef<str> for SecretPath<'_> {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// A user name that satisfies the rules of this module: one valid secret path component.
///
/// ```
/// use streambed::secret_path::UserName;
///
/// assert_eq!(UserName::parse("mary").unwrap().to_string(), "mary");
/// assert!(UserName::parse("../approle/login").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserName<'a>(&'a str);

impl<'a> UserName<'a> {
    /// Checks `name` against the rules of this module; it must hold no `/`.
    pub fn parse(name: &'a str) -> Result<Self, SecretPathError> {
        let problem = match check(name) {
            Ok(()) if name.contains('/') => Problem::Slash,
            Ok(()) => return Ok(Self(name)),
            Err(problem) => problem,
        };
        Err(SecretPathError::new("user name", name, problem))
    }

    /// The name as given.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Display for UserName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl AsRef<str> for UserName<'_> {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// The rules of this module, checked in a fixed order so that a name with several problems
/// is always reported with the same one.
fn check(name: &str) -> Result<(), Problem> {
    if name.is_empty() {
        return Err(Problem::Empty);
    }
    if name.len() > MAX_LEN {
        return Err(Problem::TooLong);
    }
    if name.starts_with('/') {
        return Err(Problem::Absolute);
    }
    if name.chars().any(char::is_control) {
        return Err(Problem::ControlCharacter);
    }
    for component in name.split('/') {
        match component {
            "" => return Err(Problem::EmptyComponent),
            "." | ".." => return Err(Problem::DotComponent),
            _ if component.len() > MAX_COMPONENT_LEN => return Err(Problem::ComponentTooLong),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(path: &str) -> Option<Problem> {
        SecretPath::parse(path).err().map(|e| e.problem)
    }

    #[test]
    fn ordinary_paths_are_accepted_as_written() {
        for path in [
            "a",
            "default/secrets.key",
            "a/b/c.d",
            "..a",
            "a..",
            ".hidden/x",
            " spaced / out ",
            "back\\slash",
            "per%cent?query#frag",
            "ünïcödé/日本",
        ] {
            assert_eq!(SecretPath::parse(path).map(|p| p.as_str()), Ok(path));
        }
    }

    #[test]
    fn each_rule_refuses_with_its_own_problem() {
        let long_component = "a".repeat(MAX_COMPONENT_LEN + 1);
        let long_path = ["a"; MAX_LEN / 2 + 1].join("/");
        for (path, expected) in [
            ("", Problem::Empty),
            (long_path.as_str(), Problem::TooLong),
            ("/etc/passwd", Problem::Absolute),
            ("/", Problem::Absolute),
            ("a\0b", Problem::ControlCharacter),
            ("a\nb", Problem::ControlCharacter),
            ("a\rb", Problem::ControlCharacter),
            ("tab\t", Problem::ControlCharacter),
            ("del\u{7f}", Problem::ControlCharacter),
            ("c1\u{85}", Problem::ControlCharacter),
            ("a//b", Problem::EmptyComponent),
            ("a/", Problem::EmptyComponent),
            (".", Problem::DotComponent),
            ("..", Problem::DotComponent),
            ("../x", Problem::DotComponent),
            ("a/./b", Problem::DotComponent),
            ("a/..", Problem::DotComponent),
            (long_component.as_str(), Problem::ComponentTooLong),
        ] {
            assert_eq!(problem(path), Some(expected), "{path:?}");
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let component = "a".repeat(MAX_COMPONENT_LEN);
        assert_eq!(problem(&component), None);
        let mut path = "b/".repeat(MAX_LEN / 2 - 1);
        path.push_str("cc");
        assert_eq!(path.len(), MAX_LEN);
        assert_eq!(problem(&path), None);
    }

    #[test]
    fn components_split_at_every_slash() {
        let path = SecretPath::parse("a/b c/d").unwrap();
        assert_eq!(path.components().collect::<Vec<_>>(), ["a", "b c", "d"]);
    }

    #[test]
    fn user_names_follow_the_path_rules_and_hold_no_slash() {
        assert_eq!(UserName::parse("mitchellh").unwrap().as_str(), "mitchellh");
        for (name, expected) in [
            ("", Problem::Empty),
            ("a/b", Problem::Slash),
            ("/abs", Problem::Absolute),
            ("..", Problem::DotComponent),
            ("a\0", Problem::ControlCharacter),
        ] {
            let error = UserName::parse(name).unwrap_err();
            assert_eq!(
                (error.what, error.problem),
                ("user name", expected),
                "{name:?}"
            );
        }
    }

    #[test]
    fn errors_keep_only_the_start_of_a_long_name() {
        let error = SecretPath::parse(&format!("/{}", "x".repeat(5000))).unwrap_err();
        assert_eq!(error.name.chars().count(), SHOWN_CHARS);
    }
}
