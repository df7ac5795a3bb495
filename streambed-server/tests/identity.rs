//! Identities and permissions through the library: bearer tokens of a real
//! `FileSecretStore` checked, refused with 401, and what a principal may do checked against
//! the policy for every topic a request names (403 otherwise).

mod common;

use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, SystemTime},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use common::TestServer;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use streambed::secret_store::SecretStore;
use streambed_confidant::FileSecretStore;
use streambed_server::{
    identity::{Identities, TokenVerifier, Verified, VerifyError},
    memory::MemoryLog,
    policy::Policy,
    principal::Principal,
    quota::{QuotaConfig, RateLimit},
    Server, ServerConfig,
};

const ROOT_SECRET: [u8; 16] = [9; 16];

const POLICY: &str = r#"{
  "principals": {
    "sensor": { "produce": ["farm-a:readings"] },
    "gateway": { "produce": ["farm-a:*"], "create": ["farm-a:*"] },
    "dashboard": { "consume": ["farm-a:readings", "default:*"] }
  }
}"#;

/// A server with identities from a confidant store under a private temporary root, the
/// policy above, and a login token for each principal of the policy.
struct Setup {
    server: TestServer,
    _root: tempfile::TempDir,
    tokens: HashMap<&'static str, String>,
}

/// A confidant store under `root` (made private) with a user of each name in `users`,
/// and their login tokens.
async fn store_with_users(
    root: &std::path::Path,
    users: &[&'static str],
) -> (FileSecretStore, HashMap<&'static str, String>) {
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).unwrap();
    let store = FileSecretStore::new(root, &ROOT_SECRET, Duration::from_secs(60), 100, None);
    let mut tokens = HashMap::new();
    for &user in users {
        store
            .userpass_create_update_user(user, user, "pw")
            .await
            .unwrap();
        let login = store.userpass_auth(user, "pw").await.unwrap();
        tokens.insert(user, login.auth.client_token);
    }
    (store, tokens)
}

async fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let (store, tokens) = store_with_users(root.path(), &["sensor", "gateway", "dashboard"]).await;
    let server = Server::new(MemoryLog::new(), ServerConfig::default())
        .with_identities(Identities::tokens(store))
        .with_policy(Policy::from_json(POLICY).unwrap());
    Setup {
        server: TestServer::start_server(server).await,
        _root: root,
        tokens,
    }
}

impl Setup {
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = reqwest::Client::new().request(method, self.server.endpoint(path));
        match user {
            Some(user) => request.bearer_auth(&self.tokens[user]),
            None => request,
        }
    }

    async fn produce(&self, user: &str, topic: &str) -> StatusCode {
        self.request(
            reqwest::Method::POST,
            &format!("/topics/{topic}"),
            Some(user),
        )
        .json(&records(topic))
        .send()
        .await
        .unwrap()
        .status()
    }

    async fn assert_produces(&self, user: &str, topic: &str) {
        let status = self.produce(user, topic).await;
        assert_eq!(status, StatusCode::OK, "{user} producing to {topic}");
    }

    /// The answer to a GET of the offsets of partition 0 of `topic` by `user`.
    async fn offsets(&self, topic: &str, user: Option<&str>) -> reqwest::Response {
        let path = format!("/topics/{topic}/partitions/0/offsets");
        self.request(reqwest::Method::GET, &path, user)
            .send()
            .await
            .unwrap()
    }

    async fn consume(&self, user: &str, body: Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, "/consumers/g", Some(user))
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

/// A produce request of one record to `topic`.
fn records(topic: &str) -> Value {
    json!({ "records": [{
        "topic": topic, "headers": [], "timestamp": null, "key": 0, "value": "AQ==", "partition": 0
    }] })
}

/// A token in the confidant format (standard base64 of the signed `data`), as a store
/// with `secret` would issue it, expiring at `expires` ms since the epoch.
fn handmade_token(user: &str, expires: u64, secret: &[u8; 16]) -> String {
    let data = format!(r#"{{"username":"{user}","expires":{expires}}}"#);
    let signature = hex::encode(streambed::crypto::sign(data.as_bytes(), secret));
    STANDARD.encode(format!(r#"{{"data":{data},"signature":"{signature}"}}"#))
}

async fn assert_unauthorized(response: reqwest::Response, challenge: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], challenge);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], 401, "{body}");
}

#[tokio::test]
async fn a_token_from_userpass_auth_is_accepted_and_its_user_is_the_principal() {
    let setup = setup().await;
    setup.assert_produces("gateway", "farm-a:readings").await;
    setup.assert_produces("sensor", "farm-a:readings").await;
    let offsets = setup.offsets("farm-a:readings", Some("dashboard")).await;
    assert_eq!(offsets.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_without_an_identity_gets_401_with_a_bearer_challenge() {
    let setup = setup().await;
    let response = setup.offsets("farm-a:readings", None).await;
    assert_unauthorized(response, "Bearer").await;
}

#[tokio::test]
async fn a_malformed_authorization_header_gets_401() {
    let setup = setup().await;
    for value in ["Basic c2Vuc29yOnB3", "Bearer", "Bearer two words", "token"] {
        let response = setup
            .request(
                reqwest::Method::GET,
                "/topics/farm-a:readings/partitions/0/offsets",
                None,
            )
            .header(header::AUTHORIZATION, value)
            .send()
            .await
            .unwrap();
        assert_unauthorized(response, "Bearer error=\"invalid_request\"").await;
    }
}

#[tokio::test]
async fn a_bad_or_expired_token_gets_401() {
    let setup = setup().await;
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let valid = handmade_token("dashboard", now_ms + 60_000, &ROOT_SECRET);
    let expired = handmade_token("dashboard", now_ms - 1_000, &ROOT_SECRET);
    let forged = handmade_token("dashboard", now_ms + 60_000, &[1; 16]);
    let path = setup
        .server
        .endpoint("/topics/default:x/partitions/0/offsets");
    let client = reqwest::Client::new();
    // The hand-made token is accepted, so the format is right and the refusals below are
    // for the expiry and the signature alone.
    let accepted = client.get(&path).bearer_auth(&valid).send().await.unwrap();
    assert_eq!(accepted.status(), StatusCode::NOT_FOUND, "no records yet");
    for token in [expired.as_str(), forged.as_str(), "not-a-token"] {
        let response = client.get(&path).bearer_auth(token).send().await.unwrap();
        assert_unauthorized(response, "Bearer error=\"invalid_token\"").await;
    }
}

#[tokio::test]
async fn producing_without_the_permission_gets_403() {
    let setup = setup().await;
    let response = setup
        .request(
            reqwest::Method::POST,
            "/topics/farm-a:readings",
            Some("dashboard"),
        )
        .json(&records("farm-a:readings"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], 403);
    assert_eq!(
        body["message"],
        r#"principal "dashboard" has no produce permission on topic "farm-a:readings""#
    );
    assert_eq!(
        setup.produce("sensor", "farm-a:other").await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn creating_a_topic_needs_the_create_permission_adding_to_it_does_not() {
    let setup = setup().await;
    assert_eq!(
        setup.produce("sensor", "farm-a:readings").await,
        StatusCode::FORBIDDEN,
        "no records yet: producing would create it"
    );
    setup.assert_produces("gateway", "farm-a:readings").await;
    setup.assert_produces("sensor", "farm-a:readings").await;
}

#[tokio::test]
async fn reading_offsets_needs_the_consume_permission() {
    let setup = setup().await;
    setup.assert_produces("gateway", "farm-a:secret").await;
    let response = setup.offsets("farm-a:secret", Some("dashboard")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn every_subscription_and_every_offset_of_a_consumer_is_checked() {
    let setup = setup().await;
    let allowed = json!({ "topic": "farm-a:readings" });
    let denied = json!({ "topic": "farm-a:secret" });
    for subscriptions in [
        vec![denied.clone()],
        vec![allowed.clone(), denied.clone()],
        vec![denied.clone(), allowed.clone()],
    ] {
        let response = setup
            .consume("dashboard", json!({ "subscriptions": subscriptions }))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{subscriptions:?}"
        );
    }
    let response = setup
        .consume(
            "dashboard",
            json!({
                "offsets": [{ "topic": "farm-a:secret", "partition": 0, "offset": 0 }],
                "subscriptions": [allowed],
            }),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "an offset names a topic too"
    );
    let response = setup
        .consume(
            "dashboard",
            json!({ "subscriptions": [allowed, { "topic": "default:x" }] }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_consumer_sees_the_records_of_the_topics_it_may_read() {
    let setup = setup().await;
    setup.assert_produces("gateway", "farm-a:readings").await;
    let mut response = setup
        .consume(
            "dashboard",
            json!({ "subscriptions": [{ "topic": "farm-a:readings" }] }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let record: Value =
        serde_json::from_slice(chunk.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(record["topic"], "farm-a:readings");
}

#[tokio::test]
async fn with_identities_and_no_policy_everything_is_denied() {
    let root = tempfile::tempdir().unwrap();
    let (store, tokens) = store_with_users(root.path(), &["ann"]).await;
    let server = TestServer::start_server(
        Server::new(MemoryLog::new(), ServerConfig::default())
            .with_identities(Identities::tokens(store)),
    )
    .await;
    let response = reqwest::Client::new()
        .post(server.endpoint("/topics/default:x"))
        .bearer_auth(&tokens["ann"])
        .json(&records("default:x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// Accepts every token as `ann` after `delay`, counting its calls.
struct Slow {
    calls: Arc<AtomicUsize>,
    delay: Duration,
}

#[async_trait::async_trait]
impl TokenVerifier for Slow {
    async fn verify(&self, _token: &str) -> Result<Verified, VerifyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        Ok(Verified::new(Principal::new("ann"), None))
    }
}

async fn slow_server(delay: Duration, timeout: Duration) -> (TestServer, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let verifier = Slow {
        calls: Arc::clone(&calls),
        delay,
    };
    let policy = Policy::from_json(r#"{"principals": {"ann": {"consume": ["*"]}}}"#).unwrap();
    let server = Server::new(MemoryLog::new(), ServerConfig::default())
        .with_identities(Identities::tokens(verifier).verify_timeout(timeout))
        .with_policy(policy);
    (TestServer::start_server(server).await, calls)
}

#[tokio::test]
async fn a_token_is_verified_once_then_served_from_the_cache() {
    let (server, calls) = slow_server(Duration::ZERO, Duration::from_secs(5)).await;
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let response = client
            .get(server.endpoint("/topics/default:x/partitions/0/offsets"))
            .bearer_auth("some-token")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "accepted, no records"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_store_that_does_not_answer_in_time_gets_503_with_retry_after() {
    let (server, _) = slow_server(Duration::from_secs(30), Duration::from_millis(100)).await;
    let response = reqwest::Client::new()
        .get(server.endpoint("/topics/default:x/partitions/0/offsets"))
        .bearer_auth("some-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], 503);
}

/// Accepts `good` as `ann` and refuses every other token, counting its calls.
struct Counting {
    calls: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl TokenVerifier for Counting {
    async fn verify(&self, token: &str) -> Result<Verified, VerifyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match token {
            "good" => Ok(Verified::new(Principal::new("ann"), None)),
            _ => Err(VerifyError::Refused),
        }
    }
}

#[tokio::test]
async fn an_address_that_keeps_failing_gets_429_and_costs_no_more_store_calls() {
    let calls = Arc::new(AtomicUsize::new(0));
    let verifier = Counting {
        calls: Arc::clone(&calls),
    };
    let policy = Policy::from_json(r#"{"principals": {"ann": {"consume": ["*"]}}}"#).unwrap();
    let quotas = QuotaConfig {
        rate_limit: Some(RateLimit {
            per_second: 1,
            burst: 3,
            max_tracked: 16,
        }),
        ..QuotaConfig::unlimited()
    };
    let server = Server::new(MemoryLog::new(), ServerConfig::default())
        .with_identities(Identities::tokens(verifier))
        .with_policy(policy)
        .with_quotas(quotas);
    let server = TestServer::start_server(server).await;
    let client = reqwest::Client::new();
    let offsets = server.endpoint("/topics/default:x/partitions/0/offsets");
    let status = |token: String| {
        let request = client.get(&offsets).bearer_auth(token).send();
        async move { request.await.unwrap().status().as_u16() }
    };
    assert_eq!(status("good".into()).await, 404, "accepted, no records");
    let mut statuses = Vec::new();
    for n in 0..8 {
        statuses.push(status(format!("bad-{n}")).await);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429, 429, 429]);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1 + 3,
        "no call once over the rate"
    );
    // The token kept from before is still served, from the same address.
    assert_eq!(status("good".into()).await, 404);
}
