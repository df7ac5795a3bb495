//! How often the store sends a call to a server that cuts connections or keeps saying
//! "try later", request by request, against the scripted loopback server of
//! `streambed-test`: a call that may have reached the server is tried five times and then
//! fails naming the URL; only an unreachable server is waited for indefinitely.

use std::time::Duration;

use reqwest::Url;
use serde_json::json;
use streambed::secret_store::SecretStore;
use streambed_test::server::{self, json_body, Method, Response, Script, Server, StatusCode};
use streambed_vault::{VaultError, VaultSecretStore};

const TOKEN: &str = "hvs.retries";

/// A request as the server saw it: method, path, token header and JSON body (`null` when
/// empty).
type Seen = (Method, String, Option<String>, serde_json::Value);

/// A server that records every request and answers the n-th (from 0) with `answer(n)`.
fn scripted(answer: impl Fn(usize) -> Response + Send + Sync + 'static) -> (Server, Script) {
    let script = Script::answering(answer);
    (server::http(script.handler()), script)
}

fn store(server: Url) -> VaultSecretStore {
    VaultSecretStore::builder(server)
        .request_timeout(Some(Duration::from_secs(5)))
        .build()
        .unwrap()
}

fn login_reply() -> Response {
    Response::json(&json!({
        "lease_duration": 0,
        "data": null,
        "auth": { "client_token": TOKEN, "lease_duration": 1200, "policies": ["default"] }
    }))
}

fn login_request() -> Seen {
    (
        Method::POST,
        "/v1/auth/approle/login".to_owned(),
        None,
        json!({"role_id": "role", "secret_id": "secret"}),
    )
}

fn read_request() -> Seen {
    (
        Method::GET,
        "/v1/secret/data/default/a".to_owned(),
        Some(TOKEN.to_owned()),
        serde_json::Value::Null,
    )
}

fn seen(script: &Script) -> Vec<Seen> {
    let requests = script.requests();
    let seen = requests.iter().map(|request| {
        let path = request.uri().path().to_owned();
        let token = request.headers().get("x-vault-token");
        let token = token.map(|v| v.to_str().unwrap().to_owned());
        (request.method().clone(), path, token, json_body(request))
    });
    seen.collect()
}

/// Every test here must end on its own: a hang is the failure it guards against.
async fn bounded<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the call hangs")
}

fn server_url(server: &Server) -> Url {
    server.url().parse().unwrap()
}

#[tokio::test]
async fn a_read_from_a_server_that_cuts_every_connection_fails_after_five_requests() {
    let (server, requests) = scripted(|n| match n {
        0 => login_reply(),
        _ => Response::drop_connection(),
    });
    let ss = store(server_url(&server));
    ss.approle_auth("role", "secret").await.unwrap();
    let error = bounded(ss.try_get_secret("default/a")).await.unwrap_err();
    assert!(
        matches!(&error, VaultError::Unavailable(message)
            if message.contains(&format!("{}v1/secret/data/default/a", server.url()))),
        "{error:?}"
    );
    let mut expected = vec![login_request()];
    expected.extend(vec![read_request(); 5]);
    assert_eq!(seen(&requests), expected);
}

#[tokio::test]
async fn a_login_to_a_server_that_cuts_every_connection_fails_after_five_requests() {
    let (server, requests) = scripted(|_| Response::drop_connection());
    let ss = store(server_url(&server));
    assert_eq!(
        bounded(ss.approle_auth("role", "secret")).await,
        Err(streambed::secret_store::Error::Unauthorized)
    );
    assert_eq!(seen(&requests), vec![login_request(); 5]);
}

#[tokio::test]
async fn a_read_the_server_keeps_answering_unavailable_fails_after_five_requests_with_its_status() {
    let (server, requests) = scripted(|n| match n {
        0 => login_reply(),
        _ => {
            Response::new(StatusCode::SERVICE_UNAVAILABLE).text(r#"{"errors":["Vault is sealed"]}"#)
        }
    });
    let ss = store(server_url(&server));
    ss.approle_auth("role", "secret").await.unwrap();
    let error = bounded(ss.try_get_secret("default/a")).await.unwrap_err();
    assert!(
        matches!(&error, VaultError::Unavailable(message)
            if message.contains("503") && message.contains("Vault is sealed")
                && message.contains(&server.url())),
        "{error:?}"
    );
    assert_eq!(seen(&requests).len(), 6);
}

#[tokio::test]
async fn a_read_cut_four_times_succeeds_on_the_fifth_request() {
    let (server, requests) = scripted(|n| match n {
        0 => login_reply(),
        1..=4 => Response::drop_connection(),
        _ => Response::json(&json!({
            "lease_duration": 0,
            "data": { "data": { "value": "v" }, "metadata": { "version": 1 } }
        })),
    });
    let ss = store(server_url(&server));
    ss.approle_auth("role", "secret").await.unwrap();
    let reply = bounded(ss.get_secret("default/a")).await.unwrap().unwrap();
    assert_eq!(reply.data.data.get("value").map(String::as_str), Some("v"));
    assert_eq!(seen(&requests).len(), 6);
}

#[tokio::test]
async fn an_unreachable_server_is_waited_for_beyond_five_tries() {
    let addr = server::free_addr();
    let ss = store(format!("http://{addr}/").parse().unwrap());
    let login = tokio::spawn(async move { ss.approle_auth("role", "secret").await });
    // Back-off waits 0.1, 0.19, 0.37, 0.72 and 1.39 s: six refused tries by 2.5 s.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!login.is_finished());
    let script = Script::answering(|_| login_reply());
    let _server = server::http_on(addr, script.handler()).unwrap();
    assert!(bounded(login).await.unwrap().is_ok());
    assert_eq!(seen(&script), vec![login_request()]);
}

#[tokio::test]
async fn an_answer_over_the_size_limit_fails_once_without_waiting_for_its_end() {
    let (server, requests) = scripted(|_| {
        let chunk = vec![b' '; 64 * 1024];
        Response::new(StatusCode::OK).chunks_then(
            std::iter::repeat_n(chunk, 32),
            Duration::ZERO,
            server::AfterChunks::HoldOpen,
        )
    });
    let ss = store(server_url(&server));
    let error = bounded(ss.try_approle_auth("role", "secret"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, VaultError::InvalidReply(message) if message.contains("larger than")),
        "{error:?}"
    );
    assert_eq!(seen(&requests), vec![login_request()]);
}
