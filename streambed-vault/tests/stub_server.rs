//! `VaultSecretStore` against a stub server that misbehaves on purpose: down, restarting,
//! failing, slow, answering garbage; and over TLS.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use reqwest::Url;
use serde_json::json;
use streambed::secret_store::{Error, SecretData, SecretStore};
use streambed_test::{
    metrics::Recording,
    server::{self, Method, Request, Response, StatusCode},
};
use streambed_vault::{VaultError, VaultSecretStore};

const TOKEN: &str = "hvs.test-token";

fn login_reply() -> Response {
    Response::json(&json!({
        "request_id": "1",
        "lease_duration": 0,
        "data": null,
        "auth": { "client_token": TOKEN, "lease_duration": 1200, "policies": ["default"] }
    }))
}

fn secret_reply(value: &str, ttl: &str) -> Response {
    Response::json(&json!({
        "request_id": "2",
        "lease_duration": 0,
        "data": {
            "data": { "value": value, "ttl": ttl },
            "metadata": { "version": 1 }
        }
    }))
}

/// A well-behaved server: AppRole login and reads of any secret (value = path).
async fn vault(request: Request) -> Response {
    let path = request.uri().path().to_string();
    match (request.method(), path.as_str()) {
        (&Method::POST, "/v1/auth/approle/login") => login_reply(),
        (&Method::GET, p) if p.starts_with("/v1/secret/data/") => {
            if request.headers().get("x-vault-token").map(|v| v.as_bytes())
                != Some(TOKEN.as_bytes())
            {
                return Response::new(StatusCode::FORBIDDEN)
                    .text(r#"{"errors":["permission denied"]}"#);
            }
            secret_reply(&p["/v1/secret/data/".len()..], "1h")
        }
        _ => Response::new(StatusCode::NOT_FOUND),
    }
}

fn url(server: &server::Server) -> Url {
    Url::parse(&server.url()).unwrap()
}

fn url_of(addr: std::net::SocketAddr) -> Url {
    Url::parse(&format!("http://{addr}/")).unwrap()
}

fn store(server: Url) -> VaultSecretStore {
    VaultSecretStore::builder(server)
        .ttl_field(Some("ttl"))
        .request_timeout(Some(Duration::from_secs(5)))
        .build()
        .unwrap()
}

fn value(reply: Option<streambed::secret_store::GetSecretReply>) -> Option<String> {
    reply.and_then(|r| r.data.data.get("value").cloned())
}

/// The "value" field of the secret at `path`, read through `ss`, which must answer.
async fn read_value(ss: &VaultSecretStore, path: &str) -> Option<String> {
    value(ss.get_secret(path).await.unwrap())
}

/// A handler that counts requests and answers with `answer(n)` for the n-th (from 0).
fn counting<F>(
    answer: F,
) -> (
    Arc<AtomicUsize>,
    impl Fn(Request) -> std::future::Ready<Response>,
)
where
    F: Fn(usize, &Request) -> Response + Send + Sync + 'static,
{
    let count = Arc::new(AtomicUsize::new(0));
    let handler_count = Arc::clone(&count);
    (count, move |request: Request| {
        let n = handler_count.fetch_add(1, Ordering::SeqCst);
        std::future::ready(answer(n, &request))
    })
}

#[tokio::test]
async fn calls_succeed_once_a_server_that_was_down_comes_up_with_back_off_between_tries() {
    let recording = Recording::new();
    let _recorder = recording.install();
    let addr = server::free_addr();
    let ss = store(url_of(addr));

    let login = {
        let ss = ss.clone();
        tokio::spawn(async move { ss.approle_auth("role", "secret").await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _server = server::http_on(addr, vault).unwrap();
    assert!(login.await.unwrap().is_ok());
    assert_eq!(
        read_value(&ss, "default/a").await,
        Some("default/a".to_string())
    );
    // Back-off waits 100 ms, then about 190 ms, 370 ms...: a handful of tries in 400 ms,
    // where a busy loop would make thousands.
    let unavailable = recording.recorded().counter("ss_unavailables", &[]);
    assert!((2..=5).contains(&unavailable), "{unavailable} tries failed");
}

#[tokio::test]
async fn a_server_restarted_mid_session_is_used_again() {
    let first = server::http(vault);
    let addr = first.addr();
    let ss = store(url(&first));
    ss.approle_auth("role", "secret").await.unwrap();
    assert!(ss.get_secret("default/a").await.unwrap().is_some());

    // The server goes away, closing the pooled connection; a read is waiting when it
    // comes back on the same port.
    first.stop();
    let read = {
        let ss = ss.clone();
        tokio::spawn(async move { ss.get_secret("default/b").await })
    };
    tokio::time::sleep(Duration::from_millis(250)).await;
    let _second = server::http_on(addr, vault).unwrap();
    assert_eq!(
        value(read.await.unwrap().unwrap()),
        Some("default/b".to_string())
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_the_server_answers() {
    let recording = Recording::new();
    let _recorder = recording.install();
    let (requests, handler) = counting(|n, _| match n {
        0 => {
            Response::new(StatusCode::SERVICE_UNAVAILABLE).text(r#"{"errors":["Vault is sealed"]}"#)
        }
        1 => Response::new(StatusCode::INTERNAL_SERVER_ERROR),
        _ => secret_reply("v", "1h"),
    });
    let server = server::http(handler);
    let ss = store(url(&server));
    assert_eq!(read_value(&ss, "default/a").await, Some("v".to_string()));
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    assert_eq!(
        recording
            .recorded()
            .counter("ss_other_reply_failures", &[("secret_path", "default/a")]),
        2
    );
    assert_eq!(
        recording
            .recorded()
            .counter("ss_get_secret_requests", &[("secret_path", "default/a")]),
        3
    );
    assert_eq!(
        recording
            .recorded()
            .counter("ss_retries_total", &[("secret_path", "default/a")]),
        2
    );
}

#[tokio::test]
async fn reads_count_cache_hits_and_the_misses_that_made_a_request() {
    let recording = Recording::new();
    let _recorder = recording.install();
    let (requests, handler) = counting(|_, _| secret_reply("v", "1h"));
    let server = server::http(handler);
    let ss = store(url(&server));
    for _ in 0..3 {
        assert_eq!(read_value(&ss, "default/a").await, Some("v".to_string()));
    }
    assert_eq!(read_value(&ss, "default/b").await, Some("v".to_string()));
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    assert_eq!(
        recording.recorded().counter("ss_cache_misses_total", &[]),
        2
    );
    assert_eq!(recording.recorded().counter("ss_cache_hits_total", &[]), 2);
    // One try each: nothing was retried.
    assert_eq!(recording.recorded().counter_total("ss_retries_total"), 0);
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let (requests, handler) = counting(|n, _| match n {
        0 => Response::drop_connection(),
        _ => secret_reply("v", "1h"),
    });
    let server = server::http(handler);
    let ss = store(url(&server));
    assert_eq!(read_value(&ss, "default/a").await, Some("v".to_string()));
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn giving_up_on_a_failing_server_is_an_unavailable_error_and_not_cached() {
    let (requests, handler) = counting(|_, _| Response::new(StatusCode::BAD_GATEWAY));
    let server = server::http(handler);
    let ss = VaultSecretStore::builder(url(&server))
        .max_attempts(Some(2))
        .build()
        .unwrap();
    assert!(matches!(
        ss.try_get_secret("default/a").await,
        Err(VaultError::Unavailable(message)) if message.contains("502")
    ));
    assert_eq!(ss.get_secret("default/a").await, Ok(None));
    assert_eq!(
        requests.load(Ordering::SeqCst),
        4,
        "two tries per read, none cached"
    );
    assert_eq!(
        ss.approle_auth("role", "secret").await,
        Err(Error::Unauthorized)
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_clear_failure() {
    let (requests, handler) = counting(|_, _| {
        Response::new(StatusCode::OK)
            .header("content-type", "text/html")
            .bytes("<html>proxy login</html>")
    });
    let server = server::http(handler);
    let ss = store(url(&server));

    assert!(matches!(
        ss.try_approle_auth("role", "secret").await,
        Err(VaultError::InvalidReply(_))
    ));
    assert_eq!(
        ss.approle_auth("role", "secret").await,
        Err(Error::Unauthorized)
    );
    assert!(!ss.is_authenticated());
    assert!(matches!(
        ss.try_get_secret("default/a").await,
        Err(VaultError::InvalidReply(_))
    ));
    // Remembered like a denial rather than asked again at once.
    assert_eq!(ss.get_secret("default/a").await, Ok(None));
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_slow_server_times_out_and_is_tried_again() {
    let requests = Arc::new(AtomicUsize::new(0));
    let server_requests = Arc::clone(&requests);
    let server = server::http(move |_| {
        let n = server_requests.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            secret_reply("v", "1h")
        }
    });
    let ss = VaultSecretStore::builder(url(&server))
        .request_timeout(Some(Duration::from_millis(200)))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(read_value(&ss, "default/a").await, Some("v".to_string()));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(requests.load(Ordering::SeqCst), 2);

    // A server that is always slow: given up on after the allowed tries.
    let slow = server::http(|_| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Response::new(StatusCode::OK)
    });
    let ss = VaultSecretStore::builder(url(&slow))
        .request_timeout(Some(Duration::from_millis(100)))
        .max_attempts(Some(2))
        .build()
        .unwrap();
    assert!(matches!(
        ss.try_get_secret("default/a").await,
        Err(VaultError::Unavailable(_))
    ));
}

#[tokio::test]
async fn concurrent_reads_of_one_uncached_path_send_one_request_and_cached_reads_none() {
    let recording = Recording::new();
    let _recorder = recording.install();
    let requests = Arc::new(AtomicUsize::new(0));
    let server_requests = Arc::clone(&requests);
    let server = server::http(move |_| {
        server_requests.fetch_add(1, Ordering::SeqCst);
        async {
            // Slow enough that every reader asks while the first request is under way.
            tokio::time::sleep(Duration::from_millis(200)).await;
            secret_reply("v", "600ms")
        }
    });
    let ss = store(url(&server));
    let reads: Vec<_> = (0..16)
        .map(|_| {
            let ss = ss.clone();
            tokio::spawn(async move { ss.get_secret("default/a").await })
        })
        .collect();
    for read in reads {
        assert_eq!(value(read.await.unwrap().unwrap()), Some("v".to_string()));
    }
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    for _ in 0..5 {
        ss.get_secret("default/a").await.unwrap();
    }
    assert_eq!(requests.load(Ordering::SeqCst), 1, "served from the cache");
    assert_eq!(
        recording
            .recorded()
            .counter("ss_get_secret_requests", &[("secret_path", "default/a")]),
        1
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    ss.get_secret("default/a").await.unwrap();
    assert_eq!(
        requests.load(Ordering::SeqCst),
        2,
        "read again after the ttl"
    );
}

#[tokio::test]
async fn a_denial_is_remembered_for_the_unauthorized_timeout_and_counted() {
    let recording = Recording::new();
    let _recorder = recording.install();
    let (requests, handler) = counting(|_, _| {
        Response::new(StatusCode::FORBIDDEN).text(r#"{"errors":["permission denied"]}"#)
    });
    let server = server::http(handler);
    let ss = VaultSecretStore::new(
        url(&server),
        None,
        false,
        Duration::from_millis(300),
        10,
        None,
    );
    assert_eq!(ss.get_secret("a").await, Err(Error::Unauthorized));
    assert_eq!(ss.get_secret("a").await, Err(Error::Unauthorized));
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    assert_eq!(
        recording
            .recorded()
            .counter("ss_unauthorized", &[("secret_path", "a")]),
        1
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(ss.get_secret("a").await, Err(Error::Unauthorized));
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn requests_have_the_paths_headers_and_bodies_of_the_vault_api() {
    let recording = Recording::new();
    let _recorder = recording.install();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let server_seen = Arc::clone(&seen);
    let server = server::http(move |request| {
        let token = request
            .headers()
            .get("x-vault-token")
            .map(|v| v.to_str().unwrap().to_string());
        let body: serde_json::Value =
            serde_json::from_slice(request.body()).unwrap_or(serde_json::Value::Null);
        let line = (
            request.method().to_string(),
            request.uri().path().to_string(),
            token,
            body,
        );
        server_seen.lock().unwrap().push(line);
        let path = request.uri().path().to_string();
        async move {
            match path.as_str() {
                "/v1/auth/approle/login" | "/v1/auth/userpass/login/mary" => login_reply(),
                "/v1/auth/token/lookup-self" => Response::json(&json!({"data": {"id": "t"}})),
                _ => Response::new(StatusCode::NO_CONTENT),
            }
        }
    });
    let ss = store(url(&server));
    ss.approle_auth("r1", "s1").await.unwrap();
    ss.create_secret(
        "default/k",
        SecretData {
            data: HashMap::from([("value".to_string(), "v".to_string())]),
        },
    )
    .await
    .unwrap();
    ss.userpass_create_update_user("mary", "mary", "pw")
        .await
        .unwrap();
    let user = VaultSecretStore::with_new_auth_prepared(&ss);
    user.userpass_auth("mary", "pw").await.unwrap();
    user.token_auth("other-token").await.unwrap();

    let token = Some(TOKEN.to_string());
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (
                "POST".to_string(),
                "/v1/auth/approle/login".to_string(),
                None,
                json!({"role_id": "r1", "secret_id": "s1"})
            ),
            (
                "POST".to_string(),
                "/v1/secret/data/default/k".to_string(),
                token.clone(),
                json!({"data": {"value": "v"}})
            ),
            (
                "POST".to_string(),
                "/v1/auth/userpass/users/mary".to_string(),
                token.clone(),
                json!({"username": "mary", "password": "pw"})
            ),
            (
                "POST".to_string(),
                "/v1/auth/userpass/login/mary".to_string(),
                None,
                json!({"password": "pw"})
            ),
            (
                "GET".to_string(),
                "/v1/auth/token/lookup-self".to_string(),
                Some("other-token".to_string()),
                serde_json::Value::Null
            ),
        ]
    );
    assert_eq!(
        recording
            .recorded()
            .counter("ss_approle_auth_requests", &[("approle_auth", "r1")]),
        1
    );
    assert_eq!(
        recording
            .recorded()
            .counter("ss_userpass_auth_requests", &[("userpass_auth", "mary")]),
        1
    );
    assert_eq!(
        recording.recorded().counter(
            "ss_userpass_create_updates",
            &[("userpass_create_update", "mary")]
        ),
        1
    );
    assert_eq!(
        recording
            .recorded()
            .counter("ss_create_secret_requests", &[("secret_path", "default/k")]),
        1
    );
    assert_eq!(recording.recorded().counter_total("ss_unavailables"), 0);
}

#[tokio::test]
async fn paths_that_would_leave_the_secret_api_are_rejected_without_a_request() {
    let (requests, handler) = counting(|_, _| Response::new(StatusCode::NOT_FOUND));
    let server = server::http(handler);
    let ss = store(url(&server));
    assert!(matches!(
        ss.try_get_secret("../../sys/seal").await,
        Err(VaultError::InvalidInput { .. })
    ));
    assert_eq!(ss.get_secret("a//b").await, Ok(None));
    assert_eq!(
        ss.userpass_auth("../approle/login", "pw").await,
        Err(Error::Unauthorized)
    );
    assert_eq!(requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn tls_with_the_servers_certificate_trusted() {
    let server = server::https(vault);
    let certificate = streambed::read_pem(server.certificate_pem().unwrap().as_bytes())
        .await
        .unwrap();
    let ss = VaultSecretStore::new(
        url(&server),
        Some(certificate),
        false,
        Duration::from_secs(60),
        10,
        Some("ttl"),
    );
    ss.approle_auth("role", "secret").await.unwrap();
    assert_eq!(
        read_value(&ss, "default/a").await,
        Some("default/a".to_string())
    );
}

#[tokio::test]
async fn tls_insecure_skips_verification() {
    let server = server::https(vault);
    let ss = VaultSecretStore::new(
        url(&server),
        None,
        true,
        Duration::from_secs(60),
        10,
        Some("ttl"),
    );
    ss.approle_auth("role", "secret").await.unwrap();
    assert!(ss.get_secret("default/a").await.unwrap().is_some());
}

#[tokio::test]
async fn tls_with_an_untrusted_certificate_is_refused_at_once_naming_the_url() {
    let server = server::https(vault);
    let ss = VaultSecretStore::builder(url(&server)).build().unwrap();
    // Without a bound on tries, a retried refusal would never end. An emulator makes the
    // handshake itself take up to seconds: the bound stretches there.
    let error = tokio::time::timeout(
        Duration::from_secs(1) * streambed_test::process::slowdown(),
        ss.try_approle_auth("role", "secret"),
    )
    .await
    .expect("a refused certificate is retried")
    .unwrap_err();
    assert!(
        matches!(&error, VaultError::Certificate(message)
            if message.contains(&format!("{}v1/auth/approle/login", server.url()))),
        "{error}"
    );
    assert!(error.to_string().contains("certificate"), "{error}");
}

#[tokio::test]
async fn a_write_cancelled_in_flight_still_invalidates_the_cached_read() {
    let version = Arc::new(AtomicUsize::new(1));
    let server_version = version.clone();
    let server = server::http(move |request: Request| {
        let version = server_version.clone();
        async move {
            let path = request.uri().path().to_string();
            match (request.method(), path.as_str()) {
                (&Method::POST, "/v1/auth/approle/login") => login_reply(),
                (&Method::GET, "/v1/secret/data/default/k") => {
                    secret_reply(&format!("v{}", version.load(Ordering::SeqCst)), "1h")
                }
                (&Method::POST, "/v1/secret/data/default/k") => {
                    // The write is applied, but the answer comes too late for the caller.
                    version.store(2, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    Response::json(&json!({}))
                }
                _ => Response::new(StatusCode::NOT_FOUND),
            }
        }
    });
    let ss = store(url(&server));
    ss.approle_auth("role", "secret").await.unwrap();
    assert_eq!(read_value(&ss, "default/k").await.as_deref(), Some("v1"));

    let data = SecretData {
        data: HashMap::from([("value".to_string(), "v2".to_string())]),
    };
    let write = tokio::time::timeout(
        Duration::from_millis(300),
        ss.create_secret("default/k", data),
    );
    assert!(
        write.await.is_err(),
        "the write should still be waiting for its answer"
    );
    assert_eq!(version.load(Ordering::SeqCst), 2);

    // The cached v1 must not outlive the write that was under way.
    assert_eq!(read_value(&ss, "default/k").await.as_deref(), Some("v2"));
}
