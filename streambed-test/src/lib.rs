//! Test support for streambed's HTTP clients and file-system backends.
//!
//! [`server`] runs a loopback HTTP or HTTPS server whose every answer the test scripts:
//! status, headers, body, how the body is split into chunks, and whether the connection
//! is cut. The Vault and Kafka clients' tests use it to stand in for servers that are slow,
//! down, restarting or misbehaving. [`faults`] makes writes fail for the file log's and the
//! secret store's fault tests: a full or read-only tmpfs, lowered resource limits.
//! [`records`] builds the commit log records that the tests and benches of the logs, the
//! server and the clients write. [`process`] runs the command-line tools in their tests;
//! [`pki`] makes certificate authorities and certificates for TLS tests;
//! [`runtime`] builds the tokio runtimes of benches and of tests with their own `main`;
//! [`harness`] is the `main` of test binaries that re-execute themselves as a child;
//! [`metrics`] records what code reports through the `metrics` facade, for the tests of
//! its counters. [`conformance`] is the one behavioural suite every `CommitLog` backend
//! runs, through [`commit_log_conformance!`]; [`tansu`] runs a real Kafka-compatible
//! broker for the tests of the Kafka clients, with [`host`] finding and starting such
//! programs of the host.
//!
//! ```
//! use streambed_test::server::{self, Response, StatusCode};
//!
//! let server = server::http(|_request| async { Response::new(StatusCode::NO_CONTENT) });
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! ```

#![warn(missing_docs)]

pub mod conformance;
pub mod faults;
pub mod harness;
pub mod host;
pub mod metrics;
pub mod pki;
pub mod process;
pub mod records;
pub mod runtime;
pub mod server;
pub mod tansu;
