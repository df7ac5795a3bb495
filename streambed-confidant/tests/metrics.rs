//! What a `FileSecretStore` reports through the `metrics` facade, seen through a test
//! recorder: cache hits and misses of secret reads, and failures by kind, each counted
//! once.

use std::{collections::HashMap, os::unix::fs::PermissionsExt, time::Duration};

use streambed::secret_store::{SecretData, SecretStore};
use streambed_confidant::{ConfidantError, FileSecretStore};
use streambed_test::metrics::Recording;

fn runtime() -> tokio::runtime::Runtime {
    // One thread: the recorder is installed for this thread only, and every counter is
    // incremented by the caller's task, not on the blocking pool.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn private_store(root: &std::path::Path) -> FileSecretStore {
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).unwrap();
    FileSecretStore::new(root, &[7; 16], Duration::from_secs(60), 100, None)
}

#[test]
fn reads_count_a_miss_for_each_file_read_and_a_hit_for_each_cached_answer() {
    let recording = Recording::new();
    let _local = recording.install();
    let root = tempfile::tempdir().unwrap();
    let ss = private_store(root.path());
    runtime().block_on(async {
        let data = SecretData {
            data: HashMap::from([("value".to_string(), "v".to_string())]),
        };
        ss.create_secret("a/b", data).await.unwrap();
        for _ in 0..3 {
            assert!(ss.get_secret("a/b").await.unwrap().is_some());
        }
        // Absence is remembered too: one file read, then a hit.
        assert!(ss.get_secret("a/absent").await.unwrap().is_none());
        assert!(ss.get_secret("a/absent").await.unwrap().is_none());
    });
    let recorded = recording.recorded();
    assert_eq!(recorded.counter("confidant_cache_misses_total", &[]), 2);
    assert_eq!(recorded.counter("confidant_cache_hits_total", &[]), 3);
    assert_eq!(ss.cache_stats().loads, 2);
}

#[test]
fn failures_are_counted_once_by_kind_where_they_arise() {
    let recording = Recording::new();
    let _local = recording.install();
    let root = tempfile::tempdir().unwrap();
    let ss = private_store(root.path());
    runtime().block_on(async {
        ss.try_userpass_create_update_user("ann", "ann", "pw")
            .await
            .unwrap();
        assert!(matches!(
            ss.try_userpass_auth("ann", "wrong").await,
            Err(ConfidantError::AuthenticationFailed)
        ));
        assert!(ss.try_token_principal("not a token").is_err());
        assert!(matches!(
            ss.try_get_secret("../escape").await,
            Err(ConfidantError::InvalidName(_))
        ));
        // A root that others may read refuses reads and writes alike.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = SecretData {
            data: HashMap::new(),
        };
        assert!(ss.try_create_secret("a/b", data).await.is_err());
        // The login reads the user's file first: its failure is a read error only.
        assert!(ss.try_userpass_auth("ann", "pw").await.is_err());
    });
    let recorded = recording.recorded();
    let failures: HashMap<&str, u64> = recorded
        .counters()
        .filter(|(name, _)| name.contains("_errors_") || name.contains("_failures_"))
        .collect();
    assert_eq!(
        failures,
        HashMap::from([
            (
                "confidant_auth_failures_total{kind=authentication_failed}",
                2
            ),
            ("confidant_read_errors_total{kind=invalid_name}", 1),
            ("confidant_read_errors_total{kind=insecure_root}", 1),
            ("confidant_write_errors_total{kind=insecure_root}", 1),
        ])
    );
}
