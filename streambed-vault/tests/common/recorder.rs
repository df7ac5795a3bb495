//! A `metrics` recorder that keeps counter totals, for tests that check what a client
//! counts. Install it per test thread with `metrics::set_default_local_recorder`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

/// Counter totals by name and labels, such as `ss_unauthorized{secret_path=a}`.
#[derive(Clone, Default)]
pub struct Counters(Arc<Mutex<HashMap<String, u64>>>);

impl Counters {
    /// The total of the counter `name` with exactly `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let key = render(name, labels.iter().map(|(k, v)| (*k, *v)));
        self.0.lock().unwrap().get(&key).copied().unwrap_or(0)
    }

    /// The total of the counter `name` over all labels.
    pub fn total(&self, name: &str) -> u64 {
        let prefix = format!("{name}{{");
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(key, _)| key.starts_with(&prefix))
            .map(|(_, n)| n)
            .sum()
    }
}

fn render<'a>(name: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let labels: Vec<String> = labels.map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

struct Handle {
    key: String,
    counters: Counters,
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self
            .counters
            .0
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value;
    }

    fn absolute(&self, value: u64) {
        self.counters
            .0
            .lock()
            .unwrap()
            .insert(self.key.clone(), value);
    }
}

impl Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let key = render(key.name(), key.labels().map(|l| (l.key(), l.value())));
        Counter::from_arc(Arc::new(Handle {
            key,
            counters: self.clone(),
        }))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}
