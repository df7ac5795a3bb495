//! Makes, at run time, what `scripts/server-speed` needs to measure the server with TLS and
//! identities on, so that no key material is checked in and no OpenSSL is needed: a CA and a
//! server certificate for 127.0.0.1, a `FileSecretStore` with one user, a bearer token that
//! the store's `userpass_auth` issued to it, and a policy letting that user produce.
//!
//! ```sh
//! cargo run --release -p streambed-server --example speed_credentials -- DIR
//! ```
//!
//! Writes into `DIR` (which must exist): `ca.pem`, `server.pem`, `server.key`,
//! `confidant/` (mode 700), `root-secret`, `token` and `policy.json`.

use std::{os::unix::fs::PermissionsExt, path::PathBuf, process::ExitCode, time::Duration};

use streambed::secret_store::SecretStore;
use streambed_confidant::FileSecretStore;
use streambed_test::pki::TestCa;

/// The one principal of the load test, allowed to produce to and create any topic.
const POLICY: &str = r#"{ "principals": { "loader": { "produce": ["*"], "create": ["*"] } } }"#;

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: speed_credentials DIR");
        return ExitCode::from(2);
    };
    let ca = TestCa::new("streambed speed CA");
    std::fs::write(dir.join("ca.pem"), ca.certificate_pem()).expect("ca.pem");
    ca.server("127.0.0.1")
        .write(&dir.join("server.pem"), &dir.join("server.key"))
        .expect("server certificate and key");
    std::fs::write(dir.join("policy.json"), POLICY).expect("policy.json");

    let root = dir.join("confidant");
    std::fs::create_dir(&root).expect("confidant directory");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))
        .expect("confidant directory mode");
    let mut root_secret = [0; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut root_secret)
        .expect("random root secret");
    let hex: String = root_secret.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join("root-secret"), format!("{hex}\n")).expect("root-secret");

    let store = FileSecretStore::new(&root, &root_secret, Duration::from_secs(60), 10, None);
    let runtime = streambed_test::runtime::current_thread();
    let token = runtime.block_on(async {
        store
            .userpass_create_update_user("loader", "loader", "load-pass")
            .await
            .expect("user created");
        store
            .userpass_auth("loader", "load-pass")
            .await
            .expect("login")
            .auth
            .client_token
    });
    std::fs::write(dir.join("token"), token).expect("token");
    ExitCode::SUCCESS
}
