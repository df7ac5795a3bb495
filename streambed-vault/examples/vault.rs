//! Authenticates a service with an AppRole (secret id read from standard input), reads a
//! secret, creates a user and logs it in, and shows that the user is denied a secret.
//! See `examples/README.md` for the `bao` commands that prepare a server.

use std::{error::Error, fs::File, process::ExitCode};

use clap::Parser;
use streambed::secret_store::{self, SecretStore};
use streambed_vault::{args::SsArgs, VaultSecretStore};

/// A service that reads a secret, then acts for a user.
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    ss_args: SsArgs,

    /// The secret the service reads, under the namespace.
    #[arg(long, default_value = "secrets.some-secret")]
    secret: String,

    /// A secret the user must not be able to read, under the namespace.
    #[arg(long, default_value = "secrets.other-secret")]
    denied_secret: String,

    /// The user the service creates (or updates) and then logs in.
    #[arg(long, default_value = "mary")]
    username: String,

    /// The user's password.
    #[arg(long, default_value = "mary-password")]
    password: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let ss_args = &args.ss_args;
    let server_cert = match &ss_args.ss_server_cert_path {
        Some(path) => Some(streambed::read_pem(File::open(path)?).await?),
        None => None,
    };
    let ss = VaultSecretStore::new(
        ss_args.ss_server.clone(),
        server_cert,
        ss_args.ss_server_insecure,
        *ss_args.ss_unauthorized_timeout,
        ss_args.ss_max_secrets,
        ss_args.ss_ttl_field.as_deref(),
    );

    eprintln!("Reading the secret id from standard input...");
    let secret_id = streambed::read_line(std::io::stdin())?;
    let mut authentication = streambed::reauthenticate_secret_store(
        ss.clone(),
        &ss_args.ss_role_id,
        &secret_id,
        *ss_args.ss_unauthenticated_timeout,
        *ss_args.ss_max_lease_duration,
    )
    .await;
    if !ss.is_authenticated() {
        authentication.cancel().await;
        return Err("the AppRole login failed: check the role id, secret id and server".into());
    }
    println!("Service authenticated with role {}", ss_args.ss_role_id);

    let secret_path = format!("{}/{}", ss_args.ss_ns, args.secret);
    match ss.get_secret(&secret_path).await {
        Ok(Some(secret)) => println!(
            "Read {secret_path}: {:?}",
            secret
                .data
                .data
                .get("value")
                .map(String::as_str)
                .unwrap_or("<no value field>")
        ),
        Ok(None) => println!("{secret_path} does not exist"),
        Err(secret_store::Error::Unauthorized) => {
            println!("The service may not read {secret_path}")
        }
    }

    // The service manages users; a user then acts through a store of its own, sharing
    // the service's connections but not its token.
    ss.userpass_create_update_user(&args.username, &args.username, &args.password)
        .await
        .map_err(|_| format!("the service may not manage user {}", args.username))?;
    println!("Created or updated user {}", args.username);
    let user = VaultSecretStore::with_new_auth_prepared(&ss);
    let login = user
        .userpass_auth(&args.username, &args.password)
        .await
        .map_err(|_| format!("user {} could not log in", args.username))?;
    println!(
        "User {} logged in, token valid for {} s",
        args.username, login.auth.lease_duration
    );

    let denied_path = format!("{}/{}", ss_args.ss_ns, args.denied_secret);
    match user.get_secret(&denied_path).await {
        Err(secret_store::Error::Unauthorized) => {
            println!(
                "User {} is denied {denied_path}, as expected",
                args.username
            )
        }
        Ok(_) => println!(
            "User {} can read {denied_path}: check the user's policies",
            args.username
        ),
    }

    authentication.cancel().await;
    Ok(())
}
