//! What code under test reported through the `metrics` facade: a recorder for the test's
//! thread, and its counters and histograms read back by name and labels.
//!
//! Series are named as in the Prometheus text format without quotes, `name{k=v,...}`, with
//! the labels in the order the code registered them.
//!
//! ```
//! use streambed_test::metrics::Recording;
//!
//! let recording = Recording::new();
//! {
//!     let _installed = recording.install();
//!     metrics::counter!("reads_total", "kind" => "miss").increment(2);
//!     metrics::counter!("reads_total", "kind" => "hit").increment(3);
//! }
//! let recorded = recording.recorded();
//! assert_eq!(recorded.counter("reads_total", &[("kind", "miss")]), 2);
//! assert_eq!(recorded.counter_total("reads_total"), 5);
//! assert_eq!(recorded.counter("writes_total", &[]), 0);
//! // Read again, the totals stay.
//! assert_eq!(recording.recorded().counter_total("reads_total"), 5);
//! ```

use std::{collections::HashMap, sync::Mutex};

use metrics::{Key, LocalRecorderGuard};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// A recorder that keeps every series it is given, to be read back with
/// [`Recording::recorded`].
pub struct Recording {
    recorder: DebuggingRecorder,
    snapshotter: Snapshotter,
    /// Everything read so far: a snapshot takes the recorder's values (it starts again
    /// from 0), so they are added up here.
    totals: Mutex<Recorded>,
}

impl Default for Recording {
    fn default() -> Self {
        Self::new()
    }
}

impl Recording {
    /// A recorder with nothing recorded yet.
    pub fn new() -> Self {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        Self {
            recorder,
            snapshotter,
            totals: Mutex::default(),
        }
    }

    /// Makes this the recorder of the calling thread until the guard is dropped. Code
    /// registers its series when it makes them (a log when it is built, for instance), so
    /// install the recorder first; and keep the work on this thread (a current-thread
    /// runtime), since other threads report elsewhere.
    pub fn install(&self) -> LocalRecorderGuard<'_> {
        metrics::set_default_local_recorder(&self.recorder)
    }

    /// What was recorded so far: counter totals and histogram counts since the recording
    /// began (however often this is called).
    pub fn recorded(&self) -> Recorded {
        let mut totals = self
            .totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let name = series_name(key.key());
            match value {
                DebugValue::Counter(n) => *totals.counters.entry(name).or_default() += n,
                DebugValue::Histogram(values) => {
                    *totals.histograms.entry(name).or_default() += values.len()
                }
                DebugValue::Gauge(_) => {}
            }
        }
        totals.clone()
    }
}

/// `name{k=v,...}` of a series.
fn series_name(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|label| format!("{}={}", label.key(), label.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

/// The counters and histograms a [`Recording`] saw, by series.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    counters: HashMap<String, u64>,
    histograms: HashMap<String, usize>,
}

impl Recorded {
    /// The counter `name` with exactly `labels` (0 if it never counted).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters
            .get(&Self::series(name, labels))
            .copied()
            .unwrap_or(0)
    }

    /// The counter `name` summed over all its labels.
    pub fn counter_total(&self, name: &str) -> u64 {
        over_labels(&self.counters, name).sum()
    }

    /// Every counter, as `(series, value)`.
    pub fn counters(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counters
            .iter()
            .map(|(series, n)| (series.as_str(), *n))
    }

    /// How many values the histogram `name` recorded, over all its labels.
    pub fn histogram_count(&self, name: &str) -> usize {
        over_labels(&self.histograms, name).sum()
    }

    fn series(name: &str, labels: &[(&str, &str)]) -> String {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{name}{{{}}}", labels.join(","))
    }
}

/// The values of every series of `name`, whatever its labels.
fn over_labels<'a, T: Copy>(
    series: &'a HashMap<String, T>,
    name: &str,
) -> impl Iterator<Item = T> + 'a {
    let prefix = format!("{name}{{");
    series
        .iter()
        .filter(move |(series, _)| series.starts_with(&prefix))
        .map(|(_, value)| *value)
}
