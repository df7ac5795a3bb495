//! The cost of writing a consumer record as JSON, serde_json's derive against the hand
//! writer a server streams history with, for the record of the server's speed target (a
//! 64-byte value) and one with a header and a timestamp. Run with
//! `cargo bench -p streambed --bench record_json`.

use chrono::{TimeZone, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use streambed::{
    commit_log::{ConsumerRecord, Header, HeaderKey, Topic},
    kafka_api::write_consumer_record,
};

fn records() -> [(&'static str, ConsumerRecord); 2] {
    let plain = ConsumerRecord {
        topic: Topic::from("default:hist"),
        headers: vec![],
        timestamp: None,
        key: 123_456,
        value: vec![0x5a; 64],
        partition: 0,
        offset: 987_654,
    };
    let full = ConsumerRecord {
        headers: vec![Header {
            key: HeaderKey::from("principal"),
            value: b"sensor-17".to_vec(),
        }],
        timestamp: Some(Utc.with_ymd_and_hms(2026, 12, 4, 18, 0, 0).unwrap()),
        ..plain.clone()
    };
    [("64B", plain), ("64B-header-timestamp", full)]
}

fn consumer_record(c: &mut Criterion) {
    let mut group = c.benchmark_group("consumer_record");
    group.throughput(Throughput::Elements(1));
    for (name, record) in records() {
        let mut out = Vec::with_capacity(64 * 1024);
        group.bench_function(format!("serde_json/{name}"), |b| {
            b.iter(|| {
                out.clear();
                serde_json::to_writer(&mut out, black_box(&record)).expect("serializes");
                out.push(b'\n');
            })
        });
        group.bench_function(format!("write_consumer_record/{name}"), |b| {
            b.iter(|| {
                out.clear();
                write_consumer_record(&mut out, black_box(&record));
                out.push(b'\n');
            })
        });
    }
    group.finish();
}

criterion_group!(benches, consumer_record);
criterion_main!(benches);
