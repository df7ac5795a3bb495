//! Where secret paths and user names live below the root directory: the only place they
//! become file paths.
//!
//! Names come from callers and, for user names, often from the network. They reach this
//! module only as [`SecretPath`] and [`UserName`], parsed by the rules of
//! [`streambed::secret_path`] that every secret store shares, so no file path built here
//! can leave the root.

use std::path::{Path, PathBuf};

use streambed::secret_path::{SecretPath, UserName};

/// Where user records live, below the root.
const USERS_PREFIX: &str = "auth/userpass/users/";

/// The secret's file below `root`.
pub(crate) fn file_in(root: &Path, path: SecretPath<'_>) -> PathBuf {
    root.join(path.as_str())
}

/// The secret path of a user's record.
pub(crate) fn user_record(user: UserName<'_>) -> String {
    format!("{USERS_PREFIX}{user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_the_file_at_its_path_below_the_root() {
        let path = SecretPath::parse("default/secrets.key").unwrap();
        assert_eq!(
            file_in(Path::new("/var/lib/confidant"), path),
            Path::new("/var/lib/confidant/default/secrets.key")
        );
    }

    #[test]
    fn a_user_record_is_below_the_userpass_prefix_and_a_valid_secret_path() {
        let record = user_record(UserName::parse("mitchellh").unwrap());
        assert_eq!(record, "auth/userpass/users/mitchellh");
        assert!(SecretPath::parse(&record).is_ok());
    }
}
