//! An open appender: the topic's active file and index, the offsets it gives out, and the
//! records encoded but not yet written. Every method runs under the topic's appender lock;
//! only the bytes of a taken batch are written without it (by the producer leading, see
//! the parent module).

use std::{
    fs::{self, File},
    io::{self, Write},
    sync::Arc,
    time::Duration,
};

use log::warn;
use streambed::{
    atomic_file,
    commit_log::{Offset, ProducerRecord},
};

use super::batch::Batch;
use crate::{
    compaction,
    config::{Config, Durability},
    create,
    error::ProduceError,
    files::{self, Recovered},
    index::{Entry, IndexWriter},
    record,
    shared::{lock, TopicShared},
};

/// Records encoded in order, not yet written, with where each starts (for the index).
#[derive(Default)]
pub(super) struct Pending {
    pub(super) bytes: Vec<u8>,
    /// Offset and position in `bytes` of each record.
    marks: Vec<(Offset, usize)>,
}

impl Pending {
    pub(super) fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// The number of records.
    pub(super) fn len(&self) -> usize {
        self.marks.len()
    }

    fn last(&self) -> Option<Offset> {
        self.marks.last().map(|(o, _)| *o)
    }

    fn first(&self) -> Option<Offset> {
        self.marks.first().map(|(o, _)| *o)
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.marks.clear();
    }
}

/// A batch taken to be written by the producer leading: the file to append it to and
/// what its producers wait on.
pub(super) struct Taken {
    pub(super) file: Arc<File>,
    pub(super) records: Pending,
    pub(super) batch: Option<Arc<Batch>>,
    pub(super) sync: bool,
}

/// What a closed appender remembers so that reopening costs no scan: valid while the
/// active file is still the one it wrote, with the length it left.
#[derive(Clone, Copy, Debug)]
pub(super) struct Resume {
    len: u64,
    next: Offset,
    acked: Option<Offset>,
    beginning: Option<Offset>,
    index_last: Option<Entry>,
    identity: Option<(u64, u64)>,
}

pub(super) struct Open {
    pub(super) file: Arc<File>,
    /// Bytes of the active file written and committed.
    pub(super) len: u64,
    index: IndexWriter,
    /// The offset the next record gets.
    next: Offset,
    /// The last offset acknowledged: written, or (`InProcess`) encoded.
    acked: Option<Offset>,
    beginning: Option<Offset>,
    pub(super) pending: Pending,
    /// A written batch's buffers, kept for the next batch so that steady producing does
    /// not allocate.
    spare: Pending,
    /// What the producers of `pending` wait on, if any waits.
    pub(super) batch: Option<Arc<Batch>>,
    /// The configuration of the latest produce: how the next batch is written.
    pub(super) config: Config,
    /// The flusher has been asked to write `pending` out (`InProcess`).
    pub(super) flush_queued: bool,
    /// Producers waited for the last batch taken: others are likely to come again.
    pub(super) contended: bool,
    /// Batches led so far (wrapping), to pace the leader's probes for company.
    pub(super) leads: u32,
    /// The syncer gathers a batch until it holds this many records (the last batch's).
    pub(super) sync_target: usize,
    /// The syncer waits for `sync_target` records: the producer reaching it wakes it.
    pub(super) syncer_waiting: bool,
    /// How long the syncer gathers at most: a quarter of the last sync.
    pub(super) gather_time: Duration,
}

#[cfg(unix)]
fn identity(file: &File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_file: &File) -> Option<(u64, u64)> {
    None
}

impl Open {
    /// Opens the topic for appending: from what a closed appender remembers when the file
    /// is as it left it, otherwise by recovering the files (cutting a torn tail, resolving
    /// what an interrupted compaction left, bringing the index up to date). The next offset
    /// is at least `next_at_least`.
    pub(super) fn start(
        shared: &TopicShared,
        config: Config,
        resume: Option<Resume>,
        next_at_least: Offset,
    ) -> io::Result<Self> {
        if let Some(open) = resume.and_then(|r| Self::resume(shared, config, r)) {
            return Ok(open);
        }
        let (paths, damage) = (&shared.paths, &shared.damage);
        let (buf, limit) = (config.read_buffer_size, config.max_record_size);
        // Files a compaction is working on are the compactor's to resolve.
        if !lock(&shared.compaction).busy {
            compaction::recover_history(paths, buf, limit, damage)?;
        }
        let durable = config.durability == Durability::Fsync;
        let Recovered {
            file,
            len,
            index,
            last,
            next,
            beginning,
        } = files::recover_for_writing(paths, buf, limit, durable, config.modes, damage)?;
        Ok(Self::with(
            config,
            Arc::new(file),
            len,
            index,
            next.max(next_at_least),
            last,
            beginning,
        ))
    }

    fn with(
        config: Config,
        file: Arc<File>,
        len: u64,
        index: IndexWriter,
        next: Offset,
        acked: Option<Offset>,
        beginning: Option<Offset>,
    ) -> Self {
        Self {
            file,
            len,
            index,
            next,
            acked,
            beginning,
            pending: Pending::default(),
            spare: Pending::default(),
            batch: None,
            config,
            flush_queued: false,
            contended: false,
            leads: 0,
            sync_target: 0,
            syncer_waiting: false,
            gather_time: Duration::ZERO,
        }
    }

    fn resume(shared: &TopicShared, config: Config, r: Resume) -> Option<Self> {
        let paths = &shared.paths;
        // An aging interrupted since, or a compaction's leftovers, need a full recovery.
        if paths.ancient_history.exists() || paths.work.exists() {
            return None;
        }
        let file = create::options(config.modes)
            .read(true)
            .append(true)
            .open(&paths.active)
            .ok()?;
        let len = file.metadata().ok()?.len();
        if r.identity.is_none() || identity(&file) != r.identity || len != r.len {
            return None;
        }
        let index = match r.index_last {
            Some(entry) => IndexWriter::append_to(&paths.index, entry, config.modes),
            None => IndexWriter::create(&paths.index, config.modes),
        }
        .ok()?;
        Some(Self::with(
            config,
            Arc::new(file),
            len,
            index,
            r.next,
            r.acked,
            r.beginning,
        ))
    }

    /// What reopening needs, once nothing is pending.
    pub(super) fn resume_point(&self) -> Resume {
        Resume {
            len: self.len,
            next: self.next,
            acked: self.acked,
            beginning: self.beginning,
            index_last: self.index.last(),
            identity: identity(&self.file),
        }
    }

    /// The offset the next record gets, for a reopening after a failure.
    pub(super) fn next_offset(&self) -> Offset {
        self.next
    }

    /// Encodes `record` after the pending ones and gives it the next offset.
    fn encode(&mut self, record: &ProducerRecord, max: usize) -> Result<Offset, ProduceError> {
        let bytes = &mut self.pending.bytes;
        let start = bytes.len();
        record::encode(
            bytes,
            &record.headers,
            record.timestamp.as_ref(),
            record.key,
            &record.value,
            self.next,
        );
        let size = bytes.len() - start;
        if size > max {
            bytes.truncate(start);
            return Err(ProduceError::RecordTooLarge {
                topic: record.topic.clone(),
                size,
                max,
            });
        }
        let offset = self.next;
        self.pending.marks.push((offset, start));
        self.next = self.next.wrapping_add(1);
        Ok(offset)
    }

    /// Encodes `records` after the pending ones, all or none, and answers the first one's
    /// offset: a record too large leaves the pending batch as it was.
    pub(super) fn encode_all(
        &mut self,
        records: &[ProducerRecord],
        max: usize,
    ) -> Result<Offset, ProduceError> {
        let (first, bytes, marks) = (
            self.next,
            self.pending.bytes.len(),
            self.pending.marks.len(),
        );
        for record in records {
            if let Err(e) = self.encode(record, max) {
                self.pending.bytes.truncate(bytes);
                self.pending.marks.truncate(marks);
                self.next = first;
                return Err(e);
            }
        }
        Ok(first)
    }

    /// Acknowledges the records just encoded before they are written (`InProcess`).
    pub(super) fn ack_encoded(&mut self, shared: &TopicShared) {
        let Some(last) = self.pending.last() else {
            return;
        };
        self.acked = Some(last);
        if self.beginning.is_none() {
            self.beginning = self.pending.first();
        }
        self.publish(shared);
    }

    /// Whether the leader pauses before writing so that others join its batch: when
    /// producers joined the last batch, and now and then to find out whether they would.
    pub(super) fn gathers(&mut self) -> bool {
        self.leads = self.leads.wrapping_add(1);
        self.contended || self.leads.is_multiple_of(super::PROBE_EVERY)
    }

    /// Takes the pending records to be written, leaving empty buffers in their place.
    pub(super) fn take(&mut self) -> Taken {
        let records = std::mem::replace(&mut self.pending, std::mem::take(&mut self.spare));
        self.flush_queued = false;
        self.contended = self.batch.is_some();
        self.sync_target = records.len();
        Taken {
            file: self.file.clone(),
            records,
            batch: self.batch.take(),
            sync: self.config.durability == Durability::Fsync,
        }
    }

    /// Accounts for a batch written to the end of the file: the index, the new end (now
    /// visible to readers), and the buffers, kept for the next batch.
    pub(super) fn commit(&mut self, shared: &TopicShared, mut records: Pending) {
        for &(offset, start) in &records.marks {
            self.index.note(offset, self.len + start as u64);
        }
        if let Err(e) = self.index.flush() {
            warn!(
                "Cannot extend the offset index of topic {}: {e}",
                shared.topic
            );
        }
        self.len += records.bytes.len() as u64;
        shared
            .telemetry
            .produced(records.len(), records.bytes.len());
        self.acked = self.acked.max(records.last());
        if self.beginning.is_none() {
            self.beginning = records.first();
        }
        self.publish(shared);
        records.clear();
        // Keep the larger buffers, within what a batch usually takes.
        if records.bytes.capacity() > self.spare.bytes.capacity()
            && records.bytes.capacity() <= self.config.write_buffer_size.max(MAX_KEPT_BUFFER)
        {
            self.spare = records;
        }
    }

    /// The records the syncer gathers a batch for: most of the last batch's producers, not
    /// all (stragglers join the next one).
    pub(super) fn gather_target(&self) -> usize {
        self.sync_target - self.sync_target / 8
    }

    /// Notes how long syncing a batch took, to bound how long the next is gathered.
    pub(super) fn synced_in(&mut self, took: Duration) {
        self.gather_time = (took / 4).min(MAX_GATHER);
    }

    /// After a failed write: cuts the file back to what was committed, so no partial
    /// record stays behind (recovery cuts it otherwise).
    pub(super) fn cut_back(&self) {
        let _ = self.file.set_len(self.len);
    }

    /// Tells subscribers and `offsets()` where the topic ends now.
    pub(super) fn publish(&self, shared: &TopicShared) {
        publish(shared, true, self.beginning, self.acked);
    }

    /// With compaction registered, ages the active file once it passed the threshold and
    /// no compaction runs (producers wait before appending more while one does: see the
    /// parent module's back-pressure).
    pub(super) fn age_when_due(&mut self, shared: &TopicShared) {
        if self.len < self.config.compaction_threshold_size {
            return;
        }
        let trigger = {
            let mut state = lock(&shared.compaction);
            if state.busy || state.backing_off() {
                return;
            }
            let Some(trigger) = state.handle.as_ref().map(|h| h.trigger.clone()) else {
                return;
            };
            state.busy = true;
            trigger
        };
        if let Err(e) = self.age(shared) {
            // Whatever is aged already still gets compacted.
            warn!("Cannot age the active file of topic {}: {e}", shared.topic);
        }
        trigger.notify_one();
    }

    /// Renames the active file into history, pushing an existing history to ancient
    /// history first. Refused while an ancient history still awaits compaction.
    fn age(&mut self, shared: &TopicShared) -> io::Result<()> {
        let paths = &shared.paths;
        if self.len == 0 {
            return Ok(());
        }
        if paths.ancient_history.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the previous compaction has not finished",
            ));
        }
        if paths.history.exists() {
            fs::rename(&paths.history, &paths.ancient_history)?;
        }
        fs::rename(&paths.active, &paths.history)?;
        let _ = fs::remove_file(&paths.index);
        if let Err(e) = atomic_file::sync_dir(&paths.root) {
            // The renames are made; only their durability is in doubt, and the appender
            // must move on to the new active file either way.
            warn!("Topic {}: {e}", shared.topic);
        }
        let file = create::options(self.config.modes)
            .read(true)
            .append(true)
            .create(true)
            .open(&paths.active)?;
        self.file = Arc::new(file);
        self.index = IndexWriter::create(&paths.index, self.config.modes)?;
        self.len = 0;
        self.publish(shared);
        Ok(())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        // Records acknowledged `InProcess` must reach the file when the log lets go of it.
        if !self.pending.is_empty() {
            if let Err(e) = (&*self.file).write_all(&self.pending.bytes) {
                warn!("Cannot write the last buffered records of a topic: {e}");
                self.cut_back();
            }
        }
    }
}

/// The syncer never gathers a batch for longer than this.
const MAX_GATHER: Duration = Duration::from_millis(2);

/// Buffers of at least this size are kept between batches even when the configured write
/// buffer is smaller: a batch of many concurrent producers' records reuses it.
const MAX_KEPT_BUFFER: usize = 256 * 1024;

/// Tells subscribers and `offsets()` where the topic ends: from `beginning` to `acked`
/// while this process appends to it (`local`); once it stopped, nothing: they ask the files.
pub(super) fn publish(
    shared: &TopicShared,
    local: bool,
    beginning: Option<Offset>,
    acked: Option<Offset>,
) {
    let acked = acked.filter(|_| local);
    shared.tail.send_if_modified(|tail| {
        tail.version = tail.version.wrapping_add(1);
        tail.local_writer = local;
        // A compaction may have moved the beginning since the appender opened.
        let beginning = tail.ends.map(|(b, _)| b).or(beginning);
        tail.ends = beginning.zip(acked);
        // Waking costs more than appending a small record: only subscribers need it.
        // One subscribing now reads the value after this change (under the same lock).
        shared.tail.receiver_count() > 0
    });
}
