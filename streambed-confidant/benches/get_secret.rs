//! `get_secret` of a cached secret (answered from memory after the root-directory check)
//! and of an uncached one (a file read on the blocking pool, decryption and decoding).
//! Throughput is reported as elements (reads) per second.

use std::{collections::HashMap, os::unix::fs::PermissionsExt, time::Duration};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streambed::secret_store::{SecretData, SecretStore};
use streambed_confidant::FileSecretStore;

fn get_secret(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let data = SecretData {
        data: HashMap::from([
            (
                "value".to_string(),
                "00112233445566778899aabbccddeeff".to_string(),
            ),
            ("ttl".to_string(), "1h".to_string()),
        ]),
    };

    // The same store but for the cache: one that caches nothing reads the file on every call.
    let store = |max_secrets_cached| {
        FileSecretStore::new(
            root.path(),
            &[1; 16],
            Duration::from_secs(60),
            max_secrets_cached,
            Some("ttl"),
        )
    };
    let cached = store(100);
    let uncached = store(0);
    runtime
        .block_on(cached.create_secret("default/secrets.key", data))
        .expect("create");

    let mut group = c.benchmark_group("get_secret");
    group.throughput(Throughput::Elements(1));
    for (name, ss) in [("cached", &cached), ("uncached", &uncached)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime
                    .block_on(ss.get_secret("default/secrets.key"))
                    .expect("read")
                    .expect("present")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, get_secret);
criterion_main!(benches);
