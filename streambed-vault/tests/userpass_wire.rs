//! What user management puts on the wire, request by request, against a scripted server:
//! `userpass_create_update_user` must send exactly the original's one request, and
//! `rename_user` its documented three.

use std::sync::{Arc, Mutex};

use reqwest::Url;
use serde_json::json;
use streambed::secret_store::SecretStore;
use streambed_test::server::{self, Request, Response, StatusCode};
use streambed_vault::{VaultError, VaultSecretStore};

const TOKEN: &str = "hvs.service-token";

/// One request as the server saw it: method, path, token header and raw body.
#[derive(Debug, PartialEq)]
struct Seen {
    method: String,
    path: String,
    token: Option<String>,
    body: String,
}

/// A server that records every request after the login and answers it with `answer`.
fn recording(
    answer: impl Fn(&Request) -> Response + Send + Sync + 'static,
) -> (server::Server, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server_seen = Arc::clone(&seen);
    let server = server::http(move |request: Request| {
        let response = if request.uri().path() == "/v1/auth/approle/login" {
            Response::json(&json!({
                "auth": { "client_token": TOKEN, "lease_duration": 1200 }
            }))
        } else {
            server_seen.lock().unwrap().push(Seen {
                method: request.method().to_string(),
                path: request.uri().path().to_string(),
                token: request
                    .headers()
                    .get("x-vault-token")
                    .map(|v| v.to_str().unwrap().to_string()),
                body: String::from_utf8(request.body().clone()).unwrap(),
            });
            answer(&request)
        };
        std::future::ready(response)
    });
    (server, seen)
}

async fn logged_in(server: &server::Server) -> VaultSecretStore {
    let ss = VaultSecretStore::builder(Url::parse(&server.url()).unwrap())
        .max_attempts(Some(1))
        .build()
        .unwrap();
    ss.approle_auth("role", "secret").await.unwrap();
    ss
}

fn seen(method: &str, path: &str, body: &str) -> Seen {
    Seen {
        method: method.to_string(),
        path: path.to_string(),
        token: Some(TOKEN.to_string()),
        body: body.to_string(),
    }
}

#[tokio::test]
async fn create_update_sends_one_post_to_the_current_user_with_username_then_password() {
    let (server, requests) = recording(|_| Response::new(StatusCode::NO_CONTENT));
    let ss = logged_in(&server).await;

    ss.userpass_create_update_user("mary", "maria", "pw")
        .await
        .unwrap();

    assert_eq!(
        *requests.lock().unwrap(),
        [seen(
            "POST",
            "/v1/auth/userpass/users/mary",
            r#"{"username":"maria","password":"pw"}"#
        )]
    );
}

#[tokio::test]
async fn create_update_of_a_denied_user_is_unauthorized_after_the_one_request() {
    let (server, requests) = recording(|_| {
        Response::new(StatusCode::FORBIDDEN).text(r#"{"errors":["permission denied"]}"#)
    });
    let ss = logged_in(&server).await;

    assert!(matches!(
        ss.try_userpass_create_update_user("mary", "mary", "pw")
            .await,
        Err(VaultError::Unauthorized)
    ));
    assert_eq!(requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn rename_reads_the_old_user_creates_the_new_one_with_its_settings_and_deletes_the_old() {
    let (server, requests) = recording(|request| match request.method().as_str() {
        "GET" => Response::json(&json!({
            "data": {
                "policies": ["user"],
                "token_policies": ["user"],
                "token_ttl": 600,
                "ttl": 600
            }
        })),
        _ => Response::new(StatusCode::NO_CONTENT),
    });
    let ss = logged_in(&server).await;

    ss.rename_user("john", "johnny", "johnny-pass")
        .await
        .unwrap();

    let requests = requests.lock().unwrap();
    assert_eq!(requests[0], seen("GET", "/v1/auth/userpass/users/john", ""));
    assert_eq!(
        (requests[1].method.as_str(), requests[1].path.as_str()),
        ("POST", "/v1/auth/userpass/users/johnny")
    );
    let body: serde_json::Value = serde_json::from_str(&requests[1].body).unwrap();
    assert_eq!(
        body,
        json!({ "token_policies": ["user"], "token_ttl": 600, "password": "johnny-pass" }),
        "only the token_* settings carry over, not their deprecated aliases"
    );
    assert_eq!(
        requests[2],
        seen("DELETE", "/v1/auth/userpass/users/john", "")
    );
    assert_eq!(requests.len(), 3);
}

#[tokio::test]
async fn rename_of_an_unknown_user_creates_the_new_one_and_deletes_nothing() {
    let (server, requests) = recording(|request| match request.method().as_str() {
        "GET" => Response::new(StatusCode::NOT_FOUND),
        _ => Response::new(StatusCode::NO_CONTENT),
    });
    let ss = logged_in(&server).await;

    ss.rename_user("ghost", "new", "pw").await.unwrap();

    assert_eq!(
        *requests.lock().unwrap(),
        [
            seen("GET", "/v1/auth/userpass/users/ghost", ""),
            seen(
                "POST",
                "/v1/auth/userpass/users/new",
                r#"{"password":"pw"}"#
            ),
        ]
    );
}
