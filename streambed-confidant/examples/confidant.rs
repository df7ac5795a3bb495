//! A service authenticating with a `FileSecretStore`, creating a user, and then logging
//! that user in with a password and with the token it got.
//!
//! Standard input supplies one line: the 32 hex characters of the root secret, followed
//! by the service's secret id. For example:
//!
//! ```text
//! mkdir -p /tmp/confidant && chmod 700 /tmp/confidant
//! echo "1800af9b273e4b9ea71ec723426933a4my-secret-id" | \
//!   cargo run -p streambed-confidant --example confidant -- \
//!   --ss-role-id my-service --ss-root-path /tmp/confidant
//! ```

use std::error::Error;

use clap::Parser;
use streambed::{
    seal::{Key, KEY_HEX_LEN},
    secret_store::SecretStore,
};
use streambed_confidant::{args::SsArgs, FileSecretStore};

/// Sets up a secret store from the usual `--ss-…` arguments.
#[derive(Parser, Debug)]
#[clap(about, long_about = None)]
struct Args {
    #[clap(flatten)]
    ss_args: SsArgs,
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    // One thread suits the single-core devices this store is made for.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let line = streambed::read_line(std::io::stdin())?;
    let (root_secret, secret_id) = line
        .split_at_checked(KEY_HEX_LEN)
        .ok_or("expected a line of 32 hex characters then a secret id on stdin")?;
    if secret_id.is_empty() {
        return Err("expected a secret id after the root secret on stdin".into());
    }
    let root_secret = Key::from_hex(root_secret)?;

    let ss = FileSecretStore::new(
        args.ss_args.ss_root_path,
        root_secret.as_bytes(),
        args.ss_args.ss_unauthorized_timeout.into(),
        args.ss_args.ss_max_secrets,
        args.ss_args.ss_ttl_field.as_deref(),
    );

    // The service authenticates. With this store the operating system user is the
    // identity, so this only checks that the root directory is private.
    ss.approle_auth(&args.ss_args.ss_role_id, secret_id)
        .await
        .map_err(|e| format!("service authentication failed ({e}): is the root path mode 700?"))?;
    println!("Service authenticated");

    // A user to log in as later.
    ss.userpass_create_update_user("mitchellh", "mitchellh", "foo")
        .await
        .map_err(|e| format!("cannot create the user: {e}"))?;
    println!("User created");

    // A person logs in with a name and password, e.g. through an HTTP login. Each user
    // session gets its own store, sharing files and cache with the service's.
    let user_ss = FileSecretStore::with_new_auth_prepared(&ss);
    let auth = user_ss
        .userpass_auth("mitchellh", "foo")
        .await
        .map_err(|e| format!("the user could not log in: {e}"))?;
    println!(
        "User logged in; token valid for {} s",
        auth.auth.lease_duration
    );

    // Later, the person presents the token instead, e.g. with each HTTP request.
    let token_ss = FileSecretStore::with_new_auth_prepared(&ss);
    token_ss
        .token_auth(&auth.auth.client_token)
        .await
        .map_err(|e| format!("the token was refused: {e}"))?;
    println!(
        "Token accepted for {}",
        token_ss.authenticated_user().unwrap_or_default()
    );
    Ok(())
}
