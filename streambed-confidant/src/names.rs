//! Confinement of secret paths and user names to the store's root directory.
//!
//! Names come from callers and, for user names, often from the network; they are checked
//! here once, and file paths are only ever built from the checked form.

use std::path::{Path, PathBuf};

use crate::ConfidantError;

/// Where user records live, below the root.
const USERS_PREFIX: &str = "auth/userpass/users/";

/// The longest secret path accepted, in bytes: Linux's `PATH_MAX` less room for the root.
const MAX_PATH_LEN: usize = 3072;

/// A secret path known to stay inside the root: relative, `/`-separated, with no empty,
/// `.` or `..` component and no NUL.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) struct SecretPath<'a>(&'a str);

impl<'a> SecretPath<'a> {
    pub(crate) fn parse(path: &'a str) -> Result<Self, ConfidantError> {
        check(path, "secret path").map(|()| SecretPath(path))
    }

    pub(crate) fn as_str(&self) -> &'a str {
        self.0
    }

    /// The secret's file below `root`.
    pub(crate) fn file_in(&self, root: &Path) -> PathBuf {
        root.join(self.0)
    }
}

/// The secret path of a user's record, once the user name is known to be one safe path
/// component.
pub(crate) fn user_secret_path(username: &str) -> Result<String, ConfidantError> {
    check(username, "user name")?;
    if username.contains('/') {
        return Err(invalid("user name", username, "contains '/'"));
    }
    Ok(format!("{USERS_PREFIX}{username}"))
}

fn check(name: &str, what: &'static str) -> Result<(), ConfidantError> {
    if name.is_empty() {
        return Err(invalid(what, name, "is empty"));
    }
    if name.len() > MAX_PATH_LEN {
        return Err(invalid(what, name, "is too long"));
    }
    if name.contains('\0') {
        return Err(invalid(what, name, "contains NUL"));
    }
    if name.starts_with('/') {
        return Err(invalid(what, name, "is absolute"));
    }
    for component in name.split('/') {
        match component {
            "" => return Err(invalid(what, name, "has an empty component")),
            "." | ".." => return Err(invalid(what, name, "has a '.' or '..' component")),
            _ => {}
        }
    }
    Ok(())
}

fn invalid(what: &'static str, name: &str, reason: &'static str) -> ConfidantError {
    ConfidantError::InvalidName {
        what,
        name: name.chars().take(256).collect(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_nested_paths_are_accepted() {
        for path in [
            "a",
            "default/secrets.key",
            "a/b/c.d",
            "..a",
            "a..",
            ".hidden",
        ] {
            assert!(SecretPath::parse(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn paths_that_could_leave_the_root_are_refused() {
        for path in [
            "",
            "/etc/passwd",
            "..",
            "../x",
            "a/../../x",
            "a/..",
            ".",
            "./a",
            "a//b",
            "a/",
            "a\0b",
        ] {
            assert!(
                matches!(
                    SecretPath::parse(path),
                    Err(ConfidantError::InvalidName { .. })
                ),
                "{path:?}"
            );
        }
        assert!(SecretPath::parse(&"a".repeat(MAX_PATH_LEN + 1)).is_err());
    }

    #[test]
    fn user_names_must_be_one_component() {
        assert_eq!(
            user_secret_path("mitchellh").unwrap(),
            "auth/userpass/users/mitchellh"
        );
        for name in ["", "..", ".", "a/b", "../../secret", "/abs", "a\0"] {
            assert!(user_secret_path(name).is_err(), "{name:?}");
        }
    }
}
