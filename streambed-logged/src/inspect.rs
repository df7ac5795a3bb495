//! Read-only views of a log's folder for operators: which topics it holds, their offsets,
//! sizes and record counts, and whether every byte of their files still frames as records.
//! The `logged` command's `topics`, `offsets` and `verify` are built on these.
//!
//! Nothing here writes: no file is created, repaired or truncated, and no appender is
//! started, so an inspection is safe beside a running service (it then sees the files as
//! they are at that moment; a record still being written shows as a torn tail). Records
//! are framed by the same framer every other reader of the crate uses, so an
//! inspection calls damage exactly what subscribers skip.

use std::{
    collections::BTreeSet,
    fs, io,
    path::{Path, PathBuf},
    time::SystemTime,
};

use streambed::commit_log::{Offset, PartitionOffsets, Topic};
use thiserror::Error;

use crate::{
    damage::DamageLog,
    files::{self, FileKind},
    frame::{Frame, Framer, Tail},
    topic_name::{topic_of_file_name, validate_topic_name, TopicPaths},
    TopicNameError,
};

/// Why an inspection could not be made.
#[derive(Debug, Error)]
pub enum InspectError {
    /// The topic name is not one the log can hold.
    #[error("{topic:?} cannot be a topic: {source}")]
    BadTopic {
        /// The name given.
        topic: String,
        /// Why it is refused.
        source: TopicNameError,
    },
    /// The topic has no file in the folder.
    #[error("there is no topic {topic:?} in {}", root.display())]
    NoSuchTopic {
        /// The name given.
        topic: String,
        /// The log's folder.
        root: PathBuf,
    },
    /// A file or the folder could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
}

/// What one file of a topic holds.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct FileReport {
    /// Where the file is.
    pub path: PathBuf,
    /// Its length in bytes.
    pub bytes: u64,
    /// The intact records read from it.
    pub records: u64,
}

/// Bytes of a file that do not frame as records.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct DamagedRange {
    /// The file holding them.
    pub path: PathBuf,
    /// The first damaged byte.
    pub from: u64,
    /// The byte after the last damaged one.
    pub to: u64,
    /// The offset of the last intact record before the damage, if any.
    pub after: Option<Offset>,
    /// The offset of the first intact record after the damage, in this file or a later
    /// one; `None` when nothing intact follows.
    pub before: Option<Offset>,
}

impl DamagedRange {
    /// The records the damage may have cost: the offsets between the intact records around
    /// it. An upper bound, since a compacted history skips offsets on purpose; `None` when
    /// no intact record follows the damage, so its offsets cannot be known.
    pub fn skipped_records(&self) -> Option<u64> {
        let before = self.before?;
        let first = self.after.map_or(0, |after| after.saturating_add(1));
        Some(before.saturating_sub(first))
    }
}

/// A record cut short at the end of the active file: a write still under way, or one a
/// crash interrupted (the appender cuts it off when it next opens the topic).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct TornTail {
    /// The active file.
    pub path: PathBuf,
    /// Where the incomplete record starts.
    pub at: u64,
    /// The file's length.
    pub len: u64,
}

/// Everything a full read of a topic found.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Verification {
    /// The topic read.
    pub topic: Topic,
    /// Its files in reading order (ancient history, history, active).
    pub files: Vec<FileReport>,
    /// The offsets of the first and last intact records read, if any.
    pub offsets: Option<PartitionOffsets>,
    /// Damaged regions, in reading order.
    pub damaged: Vec<DamagedRange>,
    /// A record cut short at the end of the active file, if any.
    pub torn_tail: Option<TornTail>,
}

impl Verification {
    /// The intact records read from all files.
    pub fn records(&self) -> u64 {
        self.files.iter().map(|f| f.records).sum()
    }

    /// Whether every byte of every file framed as records. A torn tail does not count:
    /// it is where a writer is writing, or what the next writer cuts off.
    pub fn is_intact(&self) -> bool {
        self.damaged.is_empty()
    }

    /// The records the damage may have cost, summed over the regions whose offsets are
    /// known (see [`DamagedRange::skipped_records`]).
    pub fn skipped_records(&self) -> u64 {
        self.damaged
            .iter()
            .filter_map(DamagedRange::skipped_records)
            .sum()
    }
}

/// A topic at a glance.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct TopicSummary {
    /// The topic.
    pub topic: Topic,
    /// The offsets of its first and last intact records, if any.
    pub offsets: Option<PartitionOffsets>,
    /// The intact records it holds.
    pub records: u64,
    /// The bytes of all its files, index included.
    pub bytes_on_disk: u64,
    /// When one of its record files was last written.
    pub last_write: Option<SystemTime>,
    /// Damaged regions found while counting its records.
    pub damaged_regions: usize,
}

/// Reads the topics of a log's folder without writing to it.
///
/// ```
/// use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
/// use streambed_logged::{inspect::Inspector, FileLog};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let log = FileLog::new(dir.path());
/// for key in 0..3 {
///     let record = ProducerRecord {
///         topic: Topic::from("readings"),
///         headers: vec![],
///         timestamp: None,
///         key,
///         value: b"21.5".to_vec(),
///         partition: 0,
///     };
///     log.produce(record).await.unwrap();
/// }
///
/// let inspector = Inspector::new(dir.path());
/// assert_eq!(inspector.topics().unwrap(), vec![Topic::from("readings")]);
/// let verification = inspector.verify("readings").unwrap();
/// assert!(verification.is_intact());
/// assert_eq!(verification.records(), 3);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct Inspector {
    root: PathBuf,
    read_buffer_size: usize,
    max_record_size: usize,
}

impl Inspector {
    /// Inspects the log in `root` written with [`FileLog::new`](crate::FileLog::new)'s
    /// sizes (records of at most 16 KiB).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            read_buffer_size: 64 * 1024,
            max_record_size: 16 * 1024,
        }
    }

    /// Inspects a log whose records may be up to `max_record_size` bytes (the size its
    /// writer was configured with): a larger record would be taken for damage.
    pub fn with_max_record_size(mut self, max_record_size: usize) -> Self {
        self.max_record_size = max_record_size;
        self
    }

    /// The topics with at least one record file in the folder, by name. An absent folder
    /// holds no topic.
    pub fn topics(&self) -> Result<Vec<Topic>, InspectError> {
        let read_error = |source| InspectError::Read {
            path: self.root.clone(),
            source,
        };
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(read_error(e)),
        };
        let mut topics = BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(read_error)?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let topic = topic_of_file_name(&name);
            if validate_topic_name(topic).is_err() || topics.contains(topic) {
                continue;
            }
            // An index or a compaction's work file alone holds no record.
            if let Ok(paths) = TopicPaths::new(&self.root, &Topic::from(topic)) {
                if [&paths.active, &paths.history, &paths.ancient_history]
                    .iter()
                    .any(|p| p.is_file())
                {
                    topics.insert(topic.to_owned());
                }
            }
        }
        Ok(topics.into_iter().map(Topic::from).collect())
    }

    fn paths(&self, topic: &str) -> Result<TopicPaths, InspectError> {
        TopicPaths::new(&self.root, &Topic::from(topic)).map_err(|source| InspectError::BadTopic {
            topic: topic.to_owned(),
            source,
        })
    }

    /// The offsets of the first and last records of `topic`, found as
    /// [`CommitLog::offsets`](streambed::commit_log::CommitLog::offsets) finds them for a
    /// topic another process writes (without reading every record). `None` for a topic
    /// with no intact record, or none at all.
    pub fn offsets(&self, topic: &str) -> Result<Option<PartitionOffsets>, InspectError> {
        let paths = self.paths(topic)?;
        files::offsets_from_disk(
            &paths,
            self.read_buffer_size,
            self.max_record_size,
            &DamageLog::default(),
        )
        .map_err(|source| InspectError::Read {
            path: paths.active.clone(),
            source,
        })
    }

    /// Reads every file of `topic` from start to end: the records it holds and every
    /// damaged region, with the offsets around it.
    pub fn verify(&self, topic: &str) -> Result<Verification, InspectError> {
        let paths = self.paths(topic)?;
        let read_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| InspectError::Read { path, source }
        };
        let opened = files::open_sequence(&paths).map_err(read_error(&paths.active))?;
        if opened.is_empty() {
            return Err(InspectError::NoSuchTopic {
                topic: topic.to_owned(),
                root: self.root.clone(),
            });
        }
        let mut verification = Verification {
            topic: Topic::from(topic),
            files: Vec::with_capacity(opened.len()),
            offsets: None,
            damaged: Vec::new(),
            torn_tail: None,
        };
        let mut first = None;
        let mut framer = Framer::new(0, self.read_buffer_size, self.max_record_size);
        for (i, open) in opened.iter().enumerate() {
            let path = files::path_of(&paths, open.kind);
            let bytes = open.file.metadata().map_err(read_error(path))?.len();
            let mut report = FileReport {
                path: path.to_path_buf(),
                bytes,
                records: 0,
            };
            // Damage the framer reported up to the end of the file, before a record held
            // back in it was confirmed: it ends where that record starts.
            let mut cut_at_next_record = None;
            loop {
                match framer.next(&open.file).map_err(read_error(path))? {
                    Frame::Record { view, pos, .. } => {
                        if let Some(index) = cut_at_next_record.take() {
                            let damaged: &mut DamagedRange = &mut verification.damaged[index];
                            damaged.to = pos;
                        }
                        if verification
                            .offsets
                            .as_ref()
                            .is_some_and(|o| o.end_offset >= view.offset)
                        {
                            // Read again after a held-back record was confirmed.
                            continue;
                        }
                        for damaged in verification.damaged.iter_mut().rev() {
                            if damaged.before.is_some() {
                                break;
                            }
                            damaged.before = Some(view.offset);
                        }
                        let beginning_offset = *first.get_or_insert(view.offset);
                        verification.offsets = Some(PartitionOffsets {
                            beginning_offset,
                            end_offset: view.offset,
                        });
                        report.records += 1;
                    }
                    Frame::Damaged { from, to } => {
                        push_damage(&mut verification, path, from, to);
                    }
                    Frame::End(tail) => {
                        match (open.kind, tail) {
                            (_, Tail::Clean { .. }) => {}
                            (FileKind::Active, Tail::Torn { at }) => {
                                verification.torn_tail = Some(TornTail {
                                    path: path.to_path_buf(),
                                    at,
                                    len: bytes,
                                });
                            }
                            (FileKind::Active, Tail::Damaged { from, to }) => {
                                push_damage(&mut verification, path, from, to);
                            }
                            // A history is written whole: whatever does not frame to its
                            // end is damage.
                            (_, Tail::Torn { at: from } | Tail::Damaged { from, .. }) => {
                                push_damage(&mut verification, path, from, bytes.max(from));
                            }
                        }
                        if open.kind != FileKind::Active && framer.held_back().is_some() {
                            let next_first = match opened.get(i + 1) {
                                Some(next) => files::first_offset(&next.file, self.max_record_size)
                                    .map_err(read_error(files::path_of(&paths, next.kind)))?,
                                None => None,
                            };
                            if framer.confirm_held_back(next_first) {
                                cut_at_next_record = verification.damaged.len().checked_sub(1);
                                continue;
                            }
                        }
                        break;
                    }
                }
            }
            verification.files.push(report);
            // Offsets rise across files: the next one is framed after this one, as
            // subscribers frame it.
            let before = framer.last();
            framer.reset(0);
            framer.after(before);
        }
        Ok(verification)
    }

    /// A topic at a glance: offsets, records, size on disk and last write. Counting the
    /// records reads every file, as [`Inspector::verify`] does.
    pub fn summary(&self, topic: &str) -> Result<TopicSummary, InspectError> {
        let verification = self.verify(topic)?;
        let paths = self.paths(topic)?;
        let mut bytes_on_disk = 0;
        let mut last_write = None;
        for (path, holds_records) in [
            (&paths.ancient_history, true),
            (&paths.history, true),
            (&paths.active, true),
            (&paths.index, false),
            (&paths.work, false),
        ] {
            let metadata = match fs::metadata(path) {
                Ok(metadata) => metadata,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(InspectError::Read {
                        path: path.clone(),
                        source,
                    })
                }
            };
            bytes_on_disk += metadata.len();
            if holds_records {
                last_write = last_write.max(metadata.modified().ok());
            }
        }
        Ok(TopicSummary {
            topic: verification.topic.clone(),
            offsets: verification.offsets.clone(),
            records: verification.records(),
            bytes_on_disk,
            last_write,
            damaged_regions: verification.damaged.len(),
        })
    }
}

fn push_damage(verification: &mut Verification, path: &Path, from: u64, to: u64) {
    let after = verification.offsets.as_ref().map(|o| o.end_offset);
    verification.damaged.push(DamagedRange {
        path: path.to_path_buf(),
        from,
        to,
        after,
        before: None,
    });
}

#[cfg(test)]
mod tests {
    use std::{
        fs::OpenOptions,
        io::{Seek, SeekFrom, Write},
    };

    use streambed::commit_log::{CommitLog, ProducerRecord};

    use super::*;
    use crate::FileLog;

    fn record(topic: &str, key: u64) -> ProducerRecord {
        streambed_test::records::record(topic, key, format!("value {key}"))
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Writes `count` records to `topic` and answers the position of each.
    fn write(root: &Path, topic: &str, count: u64) -> Vec<u64> {
        runtime().block_on(async {
            let log = FileLog::new(root);
            for key in 0..count {
                log.produce(record(topic, key)).await.unwrap();
            }
        });
        // Every record has the same length here, so positions follow from the file's.
        let len = fs::metadata(root.join(topic)).unwrap().len();
        (0..count).map(|i| i * (len / count)).collect()
    }

    fn overwrite(path: &Path, at: u64, bytes: &[u8]) {
        let mut file = OpenOptions::new().write(true).open(path).unwrap();
        file.seek(SeekFrom::Start(at)).unwrap();
        file.write_all(bytes).unwrap();
    }

    #[test]
    fn an_intact_topic_verifies_with_every_record_counted() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "t", 50);
        let verification = Inspector::new(dir.path()).verify("t").unwrap();
        assert!(verification.is_intact());
        assert_eq!(verification.records(), 50);
        assert_eq!(verification.skipped_records(), 0);
        assert_eq!(verification.torn_tail, None);
        assert_eq!(
            verification.offsets,
            Some(PartitionOffsets {
                beginning_offset: 0,
                end_offset: 49
            })
        );
    }

    #[test]
    fn damage_in_the_middle_is_reported_with_the_records_it_cost() {
        let dir = tempfile::tempdir().unwrap();
        let positions = write(dir.path(), "t", 10);
        let path = dir.path().join("t");
        let before = fs::read(&path).unwrap();
        // Records 3 and 4 become garbage.
        let garbage = vec![0xA5; (positions[5] - positions[3]) as usize];
        overwrite(&path, positions[3], &garbage);

        let verification = Inspector::new(dir.path()).verify("t").unwrap();
        assert!(!verification.is_intact());
        assert_eq!(verification.records(), 8);
        assert_eq!(
            verification.damaged,
            vec![DamagedRange {
                path: path.clone(),
                from: positions[3],
                to: positions[5],
                after: Some(2),
                before: Some(5),
            }]
        );
        assert_eq!(verification.skipped_records(), 2);
        // Read-only: not a byte changed, nothing was cut off.
        let mut expected = before;
        expected[positions[3] as usize..positions[5] as usize].copy_from_slice(&garbage);
        assert_eq!(fs::read(&path).unwrap(), expected);
    }

    #[test]
    fn damage_at_the_end_has_no_known_record_count() {
        let dir = tempfile::tempdir().unwrap();
        let positions = write(dir.path(), "t", 4);
        let path = dir.path().join("t");
        let len = fs::metadata(&path).unwrap().len();
        let garbage = vec![0x5A; (len - positions[2]) as usize];
        overwrite(&path, positions[2], &garbage);

        let verification = Inspector::new(dir.path()).verify("t").unwrap();
        assert_eq!(verification.records(), 2);
        assert_eq!(verification.damaged.len(), 1);
        assert_eq!(verification.damaged[0].after, Some(1));
        assert_eq!(verification.damaged[0].skipped_records(), None);
        assert_eq!(verification.damaged[0].to, len);
    }

    #[test]
    fn a_torn_last_record_is_told_apart_from_damage() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "t", 3);
        let path = dir.path().join("t");
        let len = fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 3).unwrap();

        let verification = Inspector::new(dir.path()).verify("t").unwrap();
        assert!(verification.is_intact());
        assert_eq!(verification.records(), 2);
        let torn = verification.torn_tail.unwrap();
        assert_eq!(torn.len, len - 3);
        assert_eq!(torn.at, (len / 3) * 2);
    }

    #[test]
    fn topics_lists_each_topic_once_and_ignores_other_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b", 1);
        write(dir.path(), "a", 2);
        fs::write(dir.path().join("c.index"), b"").unwrap();
        fs::create_dir(dir.path().join("d..x")).unwrap();
        let inspector = Inspector::new(dir.path());
        assert_eq!(
            inspector.topics().unwrap(),
            vec![Topic::from("a"), Topic::from("b")]
        );
        assert_eq!(
            Inspector::new(dir.path().join("absent")).topics().unwrap(),
            Vec::<Topic>::new()
        );
    }

    #[test]
    fn a_summary_counts_records_bytes_and_the_last_write() {
        let dir = tempfile::tempdir().unwrap();
        let started = SystemTime::now() - std::time::Duration::from_secs(2);
        write(dir.path(), "t", 5);
        let summary = Inspector::new(dir.path()).summary("t").unwrap();
        assert_eq!(summary.records, 5);
        assert!(summary.bytes_on_disk >= fs::metadata(dir.path().join("t")).unwrap().len());
        assert!(summary.last_write.unwrap() >= started);
        assert_eq!(summary.damaged_regions, 0);
        assert_eq!(summary.offsets.unwrap().end_offset, 4);
    }

    #[test]
    fn offsets_and_verify_of_missing_or_invalid_topics() {
        let dir = tempfile::tempdir().unwrap();
        let inspector = Inspector::new(dir.path());
        assert_eq!(inspector.offsets("absent").unwrap(), None);
        assert!(matches!(
            inspector.verify("absent"),
            Err(InspectError::NoSuchTopic { .. })
        ));
        assert!(matches!(
            inspector.verify("../x"),
            Err(InspectError::BadTopic { .. })
        ));
    }
}
