//! The codecs and the adapter over a real `FileLog` and `FileSecretStore`.

use std::{collections::HashMap, os::unix::fs::PermissionsExt, path::Path, time::Duration};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use streambed::secret_store::{SecretData, SecretStore};
use streambed_codec::{Cbor, CborEncrypted, Codec, CommitLogExt};
use streambed_confidant::FileSecretStore;
use streambed_logged::FileLog;
use streambed_test::records::read_topic;

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
enum Event {
    Registered { id: u64, name: String },
    Reading { id: u64, celsius: f32 },
}

fn events() -> Vec<Event> {
    (0..50)
        .map(|i| {
            if i % 10 == 0 {
                Event::Registered {
                    id: i,
                    name: format!("sensor {i}"),
                }
            } else {
                Event::Reading {
                    id: i / 10 * 10,
                    celsius: i as f32 / 2.0,
                }
            }
        })
        .collect()
}

async fn secret_store(dir: &Path) -> FileSecretStore {
    let root = dir.join("secrets");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ss = FileSecretStore::new(root, &[3; 16], Duration::from_secs(60), 10, None);
    let key = SecretData {
        data: HashMap::from([(
            "value".to_string(),
            "00112233445566778899aabbccddeeff".to_string(),
        )]),
    };
    ss.create_secret("default/secrets.events.key", key)
        .await
        .unwrap();
    ss
}

async fn raw_values(log: &FileLog, topic: &str) -> Vec<Vec<u8>> {
    let history = read_topic(log, topic, Duration::from_millis(200)).await;
    history.into_iter().map(|record| record.value).collect()
}

#[tokio::test]
async fn cbor_events_round_trip_through_a_file_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path().join("log"));
    let adapter = log.clone().adapt::<Event>("events", Cbor);
    for (i, event) in events().into_iter().enumerate() {
        assert_eq!(adapter.produce(event).await, Ok(i as u64));
    }
    let replayed: Vec<Event> = adapter.history().await.collect().await;
    assert_eq!(replayed, events());

    // A fresh log on the same directory replays the same events.
    let reopened = FileLog::new(dir.path().join("log")).adapt::<Event>("events", Cbor);
    assert_eq!(reopened.history().await.collect::<Vec<_>>().await, events());
}

#[tokio::test]
async fn encrypted_events_round_trip_and_are_not_plain_cbor() {
    let dir = tempfile::tempdir().unwrap();
    let ss = secret_store(dir.path()).await;
    let log = FileLog::new(dir.path().join("log"));
    let codec = CborEncrypted::new(&ss, "default/secrets.events.key")
        .await
        .unwrap();
    let adapter = log.clone().adapt::<Event>("sealed", codec);
    for event in events() {
        adapter.produce(event).await.unwrap();
    }
    assert_eq!(adapter.history().await.collect::<Vec<_>>().await, events());

    let values = raw_values(&log, "sealed").await;
    assert_eq!(values.len(), events().len());
    for mut value in values {
        let plain: Option<Event> = Cbor.decode(&mut value);
        assert_eq!(plain, None, "an encrypted value decoded as plain CBOR");
    }
}

#[tokio::test]
async fn a_codec_for_a_missing_or_malformed_key_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let ss = secret_store(dir.path()).await;
    assert!(CborEncrypted::new(&ss, "default/secrets.absent.key")
        .await
        .is_none());
    let not_a_key = SecretData {
        data: HashMap::from([("value".to_string(), "xyz".to_string())]),
    };
    ss.create_secret("default/secrets.bad.key", not_a_key)
        .await
        .unwrap();
    assert!(CborEncrypted::new(&ss, "default/secrets.bad.key")
        .await
        .is_none());
}

#[tokio::test]
async fn history_stops_at_the_end_present_when_called_while_producers_write() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path().join("log"));
    let adapter = log.clone().adapt::<u64>("counts", Cbor);
    for n in 0..100u64 {
        adapter.produce(n).await.unwrap();
    }
    let history = adapter.history().await;

    let writer = {
        let adapter = log.clone().adapt::<u64>("counts", Cbor);
        tokio::spawn(async move {
            for n in 100..1100u64 {
                adapter.produce(n).await.unwrap();
            }
        })
    };
    let replayed: Vec<u64> = tokio::time::timeout(Duration::from_secs(10), history.collect())
        .await
        .expect("history must end");
    writer.await.unwrap();
    assert_eq!(replayed, (0..100).collect::<Vec<_>>());
}

#[tokio::test]
async fn history_of_a_topic_never_written_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = FileLog::new(dir.path().join("log")).adapt::<u64>("nothing", Cbor);
    assert_eq!(adapter.history().await.count().await, 0);
}

#[tokio::test]
async fn records_that_do_not_decode_are_skipped_by_history() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path().join("log"));
    let numbers = log.clone().adapt::<u64>("mixed", Cbor);
    let words = log.clone().adapt::<String>("mixed", Cbor);
    numbers.produce(1).await.unwrap();
    words.produce("two".to_string()).await.unwrap();
    numbers.produce(3).await.unwrap();
    assert_eq!(
        numbers.history().await.collect::<Vec<_>>().await,
        vec![1, 3]
    );
}
