//! The service's state: the latest readings of each device, event-sourced from a commit
//! log topic.
//!
//! One task owns the state and the topic's producer side; everything else talks to it
//! with commands. A reading is appended to the log first and applied to memory only once
//! the log has accepted it, so memory never holds what the log would not give back after
//! a restart. At start-up the task replays the topic to rebuild the same state.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, SubsecRound, Utc};
use log::{info, warn};
use serde::{Deserialize, Serialize};
use streambed::commit_log::{CommitLog, Key, ProducerRecord, Subscription, Topic};
use streambed_logged::{compaction::NthKeyBasedRetention, FileLog};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

/// The topic holding every device event.
pub const DEVICE_EVENTS_TOPIC: &str = "device-events";

/// Events kept, and answered, per device. Compaction keeps as many per device on disk.
pub const MAX_EVENTS_PER_DEVICE: usize = 10;

/// Devices the service keeps state for. It bounds memory, and compaction's key map, to
/// what a small gateway can serve; readings from further devices are refused.
pub const MAX_DEVICES: usize = 1_000;

/// What happened to a device.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub enum Event {
    /// A temperature reading, in the device's units.
    TemperatureRead(u32),
}

/// The events of one device, oldest first, with when they were recorded.
pub type DeviceEvents = Vec<(DateTime<Utc>, Event)>;

/// A request to the database task.
pub enum Command {
    /// Answer the events of a device.
    Get(Key, Box<dyn FnOnce(DeviceEvents) + Send>),
    /// Record an event of a device.
    Post(Key, Event),
}

/// The in-memory state: the latest events of each device.
#[derive(Default)]
struct Database {
    devices: HashMap<Key, VecDeque<(DateTime<Utc>, Event)>>,
}

impl Database {
    /// Whether an event of `id` can be kept: a known device, or room for a new one.
    fn accepts(&self, id: Key) -> bool {
        self.devices.contains_key(&id) || self.devices.len() < MAX_DEVICES
    }

    fn apply(&mut self, id: Key, timestamp: DateTime<Utc>, event: Event) {
        if !self.accepts(id) {
            return;
        }
        let events = self.devices.entry(id).or_default();
        if events.len() == MAX_EVENTS_PER_DEVICE {
            events.pop_front();
        }
        events.push_back((timestamp, event));
    }

    fn events(&self, id: Key) -> DeviceEvents {
        self.devices
            .get(&id)
            .map(|events| events.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Registers compaction for the events topic, replays it into memory, then serves
/// commands until every sender is gone.
pub async fn task(mut log: FileLog, mut commands: mpsc::Receiver<Command>) {
    let topic = Topic::from(DEVICE_EVENTS_TOPIC);
    if let Err(error) = log
        .register_compaction(
            topic.clone(),
            NthKeyBasedRetention::new(MAX_DEVICES, MAX_EVENTS_PER_DEVICE),
        )
        .await
    {
        warn!("Cannot register compaction of {topic}; the topic will grow unbounded: {error}");
    }
    let mut database = replay(&log, &topic).await;
    info!("Database ready with {} devices", database.devices.len());

    while let Some(command) = commands.recv().await {
        match command {
            Command::Get(id, reply_to) => reply_to(database.events(id)),
            Command::Post(id, event) => {
                if !database.accepts(id) {
                    warn!("Ignoring device {id}: already keeping {MAX_DEVICES} devices");
                    continue;
                }
                let mut value = Vec::new();
                if let Err(error) = ciborium::into_writer(&event, &mut value) {
                    warn!("Cannot encode an event of device {id}: {error}");
                    continue;
                }
                let timestamp = log_time(Utc::now());
                let record = ProducerRecord {
                    topic: topic.clone(),
                    headers: vec![],
                    timestamp: Some(timestamp),
                    key: id,
                    value,
                    partition: 0,
                };
                match log.produce_with_cause(record).await {
                    Ok(_) => database.apply(id, timestamp, event),
                    Err(error) => warn!("Cannot record an event of device {id}: {error}"),
                }
            }
        }
    }
}

/// A time as the service keeps and serves it: whole milliseconds. The log stores times as
/// floating-point seconds, which cannot hold every nanosecond; rounding both when
/// recording and when replaying makes the state after a restart equal to the state before.
fn log_time(time: DateTime<Utc>) -> DateTime<Utc> {
    time.round_subsecs(3)
}

/// Rebuilds the state from every event in the topic up to its current end.
async fn replay(log: &FileLog, topic: &Topic) -> Database {
    let mut database = Database::default();
    let Some(end) = log.offsets(topic.clone(), 0).await.map(|o| o.end_offset) else {
        return database;
    };
    let subscriptions = vec![Subscription {
        topic: topic.clone(),
    }];
    let mut records = log.scoped_subscribe("iot-service", vec![], subscriptions, None);
    while let Some(record) = records.next().await {
        match (record.timestamp, ciborium::from_reader(&record.value[..])) {
            (Some(timestamp), Ok(event)) => database.apply(record.key, log_time(timestamp), event),
            _ => warn!("Skipping unreadable event at offset {}", record.offset),
        }
        if record.offset >= end {
            break;
        }
    }
    database
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_keeps_only_its_latest_events() {
        let mut database = Database::default();
        let now = Utc::now();
        for reading in 0..(MAX_EVENTS_PER_DEVICE as u32 + 5) {
            database.apply(7, now, Event::TemperatureRead(reading));
        }
        let events = database.events(7);
        assert_eq!(events.len(), MAX_EVENTS_PER_DEVICE);
        assert_eq!(events[0].1, Event::TemperatureRead(5));
        assert!(database.events(8).is_empty());
    }

    #[test]
    fn log_times_survive_the_logs_floating_point_seconds() {
        let time = DateTime::from_timestamp_millis(1_764_287_999_123).unwrap();
        let as_stored = time.timestamp() as f64 + f64::from(time.timestamp_subsec_nanos()) / 1e9;
        let whole = as_stored.floor();
        let read_back =
            DateTime::from_timestamp(whole as i64, ((as_stored - whole) * 1e9) as u32).unwrap();
        assert_ne!(
            read_back, time,
            "the test no longer exercises float rounding"
        );
        assert_eq!(log_time(read_back), time);
    }

    #[test]
    fn devices_beyond_the_limit_are_refused() {
        let mut database = Database::default();
        let now = Utc::now();
        for id in 0..MAX_DEVICES as u64 {
            database.apply(id, now, Event::TemperatureRead(1));
        }
        assert!(database.accepts(0));
        assert!(!database.accepts(MAX_DEVICES as u64));
        database.apply(MAX_DEVICES as u64, now, Event::TemperatureRead(1));
        assert!(database.events(MAX_DEVICES as u64).is_empty());
    }
}
