//! Throughput of the crypto primitives at the sizes services use them: small fields,
//! typical records and large state files. Run with `cargo bench -p streambed --bench crypto`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use streambed::crypto;

const SIZES: [usize; 3] = [16, 1024, 64 * 1024];

fn encrypt(c: &mut Criterion) {
    let key = [7u8; crypto::KEY_SIZE];
    let salt = [9u8; crypto::SALT_SIZE];
    let mut group = c.benchmark_group("encrypt");
    for size in SIZES {
        let mut buffer = vec![0u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| crypto::encrypt(black_box(&mut buffer), black_box(&key), black_box(&salt)))
        });
    }
    // A different key on every call defeats the per-thread key cache: the cost of a
    // service that switches keys for every record.
    let mut buffer = [0u8; 16];
    let mut fresh_key = key;
    group.throughput(Throughput::Bytes(16));
    group.bench_function("16-fresh-key", |b| {
        b.iter(|| {
            fresh_key[0] = fresh_key[0].wrapping_add(1);
            crypto::encrypt(
                black_box(&mut buffer),
                black_box(&fresh_key),
                black_box(&salt),
            )
        })
    });
    group.finish();
}

fn sign(c: &mut Criterion) {
    let mut group = c.benchmark_group("sign");
    for size in SIZES {
        let buffer = vec![0u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| crypto::sign(black_box(&buffer), black_box(b"changeme")))
        });
    }
    group.finish();
}

criterion_group!(benches, encrypt, sign);
criterion_main!(benches);
