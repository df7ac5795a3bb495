//! What a secret read costs: from the cache (the common case), and from the server over
//! loopback HTTP when nothing may be cached.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use streambed::secret_store::SecretStore;
use streambed_test::server::{self, Response};
use streambed_vault::VaultSecretStore;

fn get_secret(c: &mut Criterion) {
    let runtime = streambed_test::runtime::current_thread();
    let server = server::http(|request| async move {
        // The path's last component says how long the secret may be cached.
        let ttl = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("0s")
            .to_string();
        Response::json(&json!({
            "lease_duration": 0,
            "data": { "data": { "value": "00112233445566778899aabbccddeeff", "ttl": ttl } }
        }))
    });
    let ss = VaultSecretStore::new(
        server.url().parse().unwrap(),
        None,
        false,
        Duration::from_secs(60),
        10_000,
        Some("ttl"),
    );
    // A full cache, so that lookups and recency updates work at their largest size.
    runtime.block_on(async {
        for i in 0..10_000 {
            ss.get_secret(&format!("default/{i}/1h")).await.unwrap();
        }
    });

    c.bench_function("get_secret cached (10 000 cached)", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 7919) % 10_000;
            runtime
                .block_on(ss.get_secret(&format!("default/{i}/1h")))
                .unwrap()
        })
    });
    c.bench_function("get_secret uncached (loopback HTTP)", |b| {
        b.iter(|| runtime.block_on(ss.get_secret("default/fresh/0s")).unwrap())
    });
}

criterion_group!(benches, get_secret);
criterion_main!(benches);
