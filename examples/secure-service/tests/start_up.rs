//! What a start costs: with a snapshot, a start reads only the records written after it;
//! without one it replays the whole topic, which compaction keeps bounded. Either way it
//! arrives at the same state, and the data on disk is sealed.

use std::time::Instant;

use secure_service::{Config, Service, TOPIC};

const EVENTS: u32 = 100_000;
const THERMOMETERS: u32 = 1_000;
const AFTER_SNAPSHOT: u32 = 250;

fn celsius(i: u32) -> f32 {
    (i % 400) as f32 / 10.0
}

#[tokio::test(flavor = "current_thread")]
async fn a_start_with_a_snapshot_replays_only_the_records_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), [9; 16]);

    let mut service = Service::start(&config).await.unwrap();
    assert_eq!(service.replayed_at_start(), 0);
    let started = Instant::now();
    for i in 0..EVENTS {
        service.record(i % THERMOMETERS, celsius(i)).await.unwrap();
    }
    let produced_in = started.elapsed();
    service.save_snapshot().await.unwrap();
    for i in EVENTS..EVENTS + AFTER_SNAPSHOT {
        service.record(i % THERMOMETERS, celsius(i)).await.unwrap();
    }
    let expected = service.state().clone();
    let last_offset = service.offset();
    drop(service);

    let started = Instant::now();
    let restarted = Service::start(&config).await.unwrap();
    let with_snapshot = started.elapsed();
    assert_eq!(restarted.replayed_at_start(), u64::from(AFTER_SNAPSHOT));
    assert_eq!(restarted.state(), &expected);
    assert_eq!(restarted.offset(), last_offset);
    drop(restarted);

    // Without the snapshot: everything the log still holds is read, and compaction has
    // kept that far below every event ever recorded.
    std::fs::remove_file(config.snapshot_path()).unwrap();
    let started = Instant::now();
    let from_scratch = Service::start(&config).await.unwrap();
    let without_snapshot = started.elapsed();
    let replayed = from_scratch.replayed_at_start();
    assert_eq!(from_scratch.state(), &expected);
    assert!(
        replayed > u64::from(AFTER_SNAPSHOT) && replayed < u64::from(EVENTS),
        "{replayed} records replayed without a snapshot"
    );
    eprintln!(
        "{EVENTS} events produced in {produced_in:?}; start with a snapshot: {} records in \
         {with_snapshot:?}; without: {replayed} records in {without_snapshot:?}",
        AFTER_SNAPSHOT
    );
}

#[tokio::test(flavor = "current_thread")]
async fn events_and_snapshots_are_sealed_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), [3; 16]);
    let mut service = Service::start(&config).await.unwrap();
    // A value whose CBOR encoding would be plain to see: the text of the enum variant.
    service.record(7, 21.5).await.unwrap();
    service.save_snapshot().await.unwrap();
    drop(service);
    for path in [dir.path().join("log").join(TOPIC), config.snapshot_path()] {
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.is_empty(), "{} is empty", path.display());
        assert!(
            !bytes.windows(7).any(|w| w == b"Reading"),
            "{} holds plain CBOR",
            path.display()
        );
    }
    // Another root secret cannot read the keys, so the service refuses to start rather
    // than start empty.
    let wrong = Config::new(dir.path(), [4; 16]);
    assert!(Service::start(&wrong).await.is_err());
}
