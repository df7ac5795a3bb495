//! TLS for the tests of the program over HTTPS: the server's certificate files made by a
//! test CA, and clients trusting that CA (the TLS and secure set-up tests each had a copy).

use std::path::{Path, PathBuf};

use streambed_test::pki::{Issued, TestCa};

/// A server certificate for localhost and a client CA from one test CA, written into a
/// directory.
pub struct ServerFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

impl ServerFiles {
    pub fn write(ca: &TestCa, dir: &Path) -> Self {
        let files = Self {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_ca: dir.join("clients.pem"),
        };
        ca.server("localhost")
            .write(&files.cert, &files.key)
            .unwrap();
        std::fs::write(&files.client_ca, ca.certificate_pem()).unwrap();
        files
    }

    /// The program's flags serving HTTPS with these files, client certificates optional.
    pub fn args(&self) -> Vec<&str> {
        vec![
            "--tls-cert",
            self.cert.to_str().unwrap(),
            "--tls-key",
            self.key.to_str().unwrap(),
            "--tls-client-ca",
            self.client_ca.to_str().unwrap(),
        ]
    }
}

pub fn trusting(ca: &TestCa) -> reqwest::Certificate {
    reqwest::Certificate::from_pem(ca.certificate_pem().as_bytes()).unwrap()
}

pub fn identity(issued: &Issued) -> reqwest::Identity {
    reqwest::Identity::from_pem(issued.identity_pem().as_bytes()).unwrap()
}

/// A client trusting `ca`, showing `issued` if given; it keeps no idle connection, so that
/// each request makes its own handshake.
pub fn client(ca: &TestCa, issued: Option<&Issued>) -> reqwest::Client {
    let mut client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(trusting(ca))
        .pool_max_idle_per_host(0);
    if let Some(issued) = issued {
        client = client.identity(identity(issued));
    }
    client.build().unwrap()
}
