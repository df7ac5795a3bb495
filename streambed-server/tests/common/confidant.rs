//! A confidant token store on disk, as the program reads it, for the tests that log users in
//! with it (the binary's identities and the secure set-up each had a copy).

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::Duration,
};

use streambed::secret_store::SecretStore;
use streambed_confidant::FileSecretStore;

pub struct Confidant {
    pub store: FileSecretStore,
    root: PathBuf,
    secret_file: PathBuf,
}

impl Confidant {
    /// A store in `dir/confidant` (private to its owner) signing with `secret`, which is
    /// written in hex, with a newline, to `dir/root-secret`.
    pub fn new(dir: &Path, secret: &[u8; 16]) -> Self {
        let root = dir.join("confidant");
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        let secret_file = dir.join("root-secret");
        std::fs::write(&secret_file, format!("{}\n", hex::encode(secret))).unwrap();
        let store = FileSecretStore::new(&root, secret, Duration::from_secs(60), 10, None);
        Self {
            store,
            root,
            secret_file,
        }
    }

    /// Creates `user` with `password` and logs it in: its token.
    pub async fn token(&self, user: &str, password: &str) -> String {
        self.store
            .userpass_create_update_user(user, user, password)
            .await
            .unwrap();
        let login = self.store.userpass_auth(user, password).await.unwrap();
        login.auth.client_token
    }

    /// The program's flags checking tokens with this store.
    pub fn args(&self) -> Vec<&str> {
        vec![
            "--token-store",
            "confidant",
            "--confidant-root-path",
            self.root.to_str().unwrap(),
            "--confidant-root-secret",
            self.secret_file.to_str().unwrap(),
        ]
    }
}
