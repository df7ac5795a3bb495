//! Both secret stores give every secret path and user name the same verdict, because both
//! parse them with `streambed::secret_path`: a name that works with one store works with
//! the other, and a refused name is refused by both for the same reason, before any request
//! or file access.

use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use reqwest::Url;
use streambed::{
    secret_path::{Problem, MAX_COMPONENT_LEN},
    secret_store::{Error, GetSecretReply, SecretData, SecretStore},
};
use streambed_confidant::{ConfidantError, FileSecretStore};
use streambed_test::server::{self, Method, Request, Response, StatusCode};
use streambed_vault::{VaultError, VaultSecretStore};

/// Accepted, or refused for this reason.
type Verdict = Result<(), Problem>;

/// Secret paths and what every store must say of them.
fn secret_paths() -> Vec<(String, Verdict)> {
    let longest_component = "c".repeat(MAX_COMPONENT_LEN);
    // Twelve components of the longest length: 3071 bytes, just within the limit.
    let longest_path = [longest_component.as_str(); 12].join("/");
    let mut table: Vec<(String, Verdict)> = [
        ("a", Ok(())),
        ("default/secrets.key", Ok(())),
        ("auth/userpass/users/mary", Ok(())),
        ("..a/a../.hidden", Ok(())),
        ("with space/back\\slash/per%cent?q#f", Ok(())),
        ("ünïcödé/日本", Ok(())),
        ("", Err(Problem::Empty)),
        ("/etc/passwd", Err(Problem::Absolute)),
        ("a\nb", Err(Problem::ControlCharacter)),
        ("a\0b", Err(Problem::ControlCharacter)),
        ("tab\tbed", Err(Problem::ControlCharacter)),
        ("del\u{7f}", Err(Problem::ControlCharacter)),
        ("a//b", Err(Problem::EmptyComponent)),
        ("a/", Err(Problem::EmptyComponent)),
        (".", Err(Problem::DotComponent)),
        ("..", Err(Problem::DotComponent)),
        ("../../sys/seal", Err(Problem::DotComponent)),
        ("a/./b", Err(Problem::DotComponent)),
        ("a/b/..", Err(Problem::DotComponent)),
    ]
    .into_iter()
    .map(|(path, verdict)| (path.to_string(), verdict))
    .collect();
    table.push((longest_path.clone(), Ok(())));
    table.push((format!("{longest_path}/x"), Err(Problem::TooLong)));
    table.push((
        format!("{longest_component}c"),
        Err(Problem::ComponentTooLong),
    ));
    table
}

/// User names and what every store must say of them.
fn user_names() -> Vec<(&'static str, Verdict)> {
    vec![
        ("mary", Ok(())),
        ("mary.smith-2", Ok(())),
        ("", Err(Problem::Empty)),
        ("a/b", Err(Problem::Slash)),
        ("../approle/login", Err(Problem::DotComponent)),
        ("..", Err(Problem::DotComponent)),
        ("/root", Err(Problem::Absolute)),
        ("mary\n", Err(Problem::ControlCharacter)),
    ]
}

/// A Vault server that has no secret, accepts every write, and counts the requests.
fn vault_server() -> (server::Server, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    let server = server::http(move |request: Request| {
        counted.fetch_add(1, Ordering::SeqCst);
        let status = if request.method() == Method::GET {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::NO_CONTENT
        };
        std::future::ready(Response::new(status))
    });
    (server, requests)
}

fn vault_store(server: &server::Server) -> VaultSecretStore {
    VaultSecretStore::builder(Url::parse(&server.url()).unwrap())
        .max_attempts(Some(1))
        .build()
        .unwrap()
}

/// A confidant store over a fresh private root directory.
fn confidant_store() -> (tempfile::TempDir, FileSecretStore) {
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let ss = FileSecretStore::new(root.path(), &[7; 16], Duration::from_secs(60), 100, None);
    (root, ss)
}

/// The verdict of a Vault call, checking that it made a request exactly when it accepted
/// the name.
async fn vault_verdict<T: std::fmt::Debug>(
    requests: &AtomicUsize,
    call: impl std::future::Future<Output = Result<T, VaultError>>,
) -> Verdict {
    let before = requests.load(Ordering::SeqCst);
    let verdict = match call.await {
        Ok(_) => Ok(()),
        Err(VaultError::InvalidInput(error)) => Err(error.problem),
        Err(other) => panic!("neither accepted nor refused: {other}"),
    };
    let sent = requests.load(Ordering::SeqCst) - before;
    assert_eq!(sent, usize::from(verdict.is_ok()), "requests sent");
    verdict
}

fn confidant_verdict<T: std::fmt::Debug>(answer: Result<T, ConfidantError>) -> Verdict {
    match answer {
        Ok(_) => Ok(()),
        Err(ConfidantError::InvalidName(error)) => Err(error.problem),
        Err(other) => panic!("neither accepted nor refused: {other}"),
    }
}

fn data() -> SecretData {
    SecretData {
        data: HashMap::from([("value".to_string(), "v".to_string())]),
    }
}

#[tokio::test]
async fn both_stores_read_and_write_exactly_the_same_secret_paths() {
    let (server, requests) = vault_server();
    let vault = vault_store(&server);
    for (path, expected) in secret_paths() {
        let shown = format!("{:?}", path.chars().take(40).collect::<String>());

        let read = vault_verdict(&requests, vault.try_get_secret(&path)).await;
        let written = vault_verdict(&requests, vault.try_create_secret(&path, data())).await;
        assert_eq!((read, written), (expected, expected), "vault, {shown}");

        // A fresh root for each path, so that accepted paths never collide as files.
        let (root, confidant) = confidant_store();
        let read = confidant_verdict(confidant.try_get_secret(&path).await);
        let written = confidant_verdict(confidant.try_create_secret(&path, data()).await);
        assert_eq!((read, written), (expected, expected), "confidant, {shown}");
        let files = std::fs::read_dir(root.path()).unwrap().count();
        assert_eq!(files, usize::from(expected.is_ok()), "files, {shown}");
    }
}

#[tokio::test]
async fn both_stores_accept_exactly_the_same_user_names() {
    let (server, requests) = vault_server();
    let vault = vault_store(&server);
    let (_root, confidant) = confidant_store();
    for (name, expected) in user_names() {
        let vault_verdict = vault_verdict(
            &requests,
            vault.try_userpass_create_update_user(name, name, "pw"),
        )
        .await;
        let confidant_verdict = confidant_verdict(
            confidant
                .try_userpass_create_update_user(name, name, "pw")
                .await,
        );
        assert_eq!(
            (vault_verdict, confidant_verdict),
            (expected, expected),
            "{name:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_user_name_logs_in_to_neither_store_and_sends_nothing() {
    let (server, requests) = vault_server();
    let vault = vault_store(&server);
    let (_root, confidant) = confidant_store();
    for (name, expected) in user_names() {
        let Err(problem) = expected else { continue };
        assert!(
            matches!(
                vault.try_userpass_auth(name, "pw").await,
                Err(VaultError::InvalidInput(e)) if e.problem == problem
            ),
            "vault, {name:?}"
        );
        assert!(
            matches!(
                confidant.try_userpass_auth(name, "pw").await,
                Err(ConfidantError::InvalidName(e)) if e.problem == problem
            ),
            "confidant, {name:?}"
        );
    }
    assert_eq!(requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn both_stores_answer_a_refused_path_alike_through_the_trait() {
    let (server, requests) = vault_server();
    let vault = vault_store(&server);
    let (_root, confidant) = confidant_store();
    for (path, expected) in secret_paths() {
        if expected.is_ok() {
            continue;
        }
        let shown = format!("{:?}", path.chars().take(40).collect::<String>());
        for (store, answers) in [
            ("vault", trait_answers(&vault, &path).await),
            ("confidant", trait_answers(&confidant, &path).await),
        ] {
            assert_eq!(
                answers,
                (Ok(None), Err(Error::Unauthorized)),
                "{store}, {shown}"
            );
        }
    }
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "no refused path reaches Vault"
    );
}

/// What the trait answers for a read and a write of `path`: a path no store can hold is
/// absent when read and refused when written.
async fn trait_answers(
    store: &impl SecretStore,
    path: &str,
) -> (Result<Option<GetSecretReply>, Error>, Result<(), Error>) {
    (
        store.get_secret(path).await,
        store.create_secret(path, data()).await,
    )
}
