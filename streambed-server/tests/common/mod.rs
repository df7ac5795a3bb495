//! Starting and stopping servers on loopback for the tests; the program as a child
//! process, its TLS files and its confidant store are in the submodules.
#![allow(dead_code)]

#[cfg(unix)]
pub mod confidant;
pub mod program;
pub mod tls;

use std::net::SocketAddr;

use serde_json::json;
use streambed::commit_log::CommitLog;
use streambed_server::{memory::MemoryLog, serve, Server, ServerConfig};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use url::Url;

pub struct TestServer {
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// A server of `log` on a free loopback port.
    pub async fn start<CL: CommitLog + 'static>(log: CL, config: ServerConfig) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), log, config).await
    }

    /// A server of a new, empty in-memory log on a free loopback port.
    pub async fn start_memory(config: ServerConfig) -> Self {
        Self::start(MemoryLog::new(), config).await
    }

    /// A server of `log` on `address` (for a restart on the same port).
    pub async fn start_on<CL: CommitLog + 'static>(
        address: SocketAddr,
        log: CL,
        config: ServerConfig,
    ) -> Self {
        let listener = TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(log, listener, config, async {
            let _ = stopped.await;
        }));
        Self {
            address,
            stop: Some(stop),
            task,
        }
    }

    /// `server` (say, with identities) on a free loopback port.
    pub async fn start_server<CL: CommitLog + 'static>(server: Server<CL>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            address,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> Url {
        Url::parse(&format!("http://{}", self.address)).unwrap()
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Shuts the server down gracefully and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap().unwrap();
    }

    /// Kills the server at once: every connection drops mid-response.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Posts `body` to `path` on `server`.
pub async fn post(
    server: &TestServer,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.endpoint(path))
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Opens a consumer stream of group `g` on `topic`; the response is the stream.
pub async fn subscribe(server: &TestServer, topic: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.endpoint("/consumers/g"))
        .json(&json!({"subscriptions": [{"topic": topic}]}))
        .send()
        .await
        .unwrap()
}

/// The token OpenBao (or Vault) at `vault` gives userpass user `user` logging in.
pub async fn userpass_token(vault: &Url, user: &str, password: &str) -> String {
    let login: serde_json::Value = reqwest::Client::new()
        .post(
            vault
                .join(&format!("v1/auth/userpass/login/{user}"))
                .unwrap(),
        )
        .json(&json!({ "password": password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["auth"]["client_token"].as_str().unwrap().to_owned()
}

/// The count of requests refused for `reason` in the Prometheus text `metrics`.
pub fn refused_count(metrics: &str, reason: &str) -> u64 {
    let prefix = format!("streambed_refused_total{{reason=\"{reason}\"}} ");
    let line = metrics.lines().find_map(|l| l.strip_prefix(&prefix));
    line.unwrap_or_else(|| panic!("no {prefix} in:\n{metrics}"))
        .parse()
        .unwrap()
}

/// The body `client` gets for `url`.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}
