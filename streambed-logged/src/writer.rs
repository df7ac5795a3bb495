//! The one writer task of a topic: it owns the active file, assigns offsets, batches every
//! queued request into one write (and, in fsync mode, one `fdatasync`: group commit), and
//! publishes the new end of the topic to subscribers once the bytes are in the file.

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
use tokio::sync::{mpsc, oneshot};

use crate::{
    compaction,
    config::{Config, Durability},
    create,
    error::ProduceError,
    files::{self, Recovered},
    index::IndexWriter,
    record,
    shared::{lock, TopicShared},
};

/// How long the writer waits for a compaction before checking its registration again.
const BACK_PRESSURE_RECHECK: Duration = Duration::from_millis(100);

/// What a writer task is asked to do.
pub(crate) enum WriterMsg {
    /// Append a record and answer its offset.
    Produce(
        ProducerRecord,
        oneshot::Sender<Result<Offset, ProduceError>>,
    ),
}

struct Writer {
    shared: Arc<TopicShared>,
    config: Config,
    file: Arc<File>,
    len: u64,
    index: IndexWriter,
    next_offset: Offset,
    /// The offset of the last intact record: what `offsets()` answers as the end.
    last: Option<Offset>,
    beginning: Option<Offset>,
    buf: Vec<u8>,
    replies: Vec<(oneshot::Sender<Result<Offset, ProduceError>>, Offset)>,
}

/// Runs the writer of `shared` until every sender of `rx` is gone or a write fails.
pub(crate) async fn run(
    shared: Arc<TopicShared>,
    config: Config,
    mut rx: mpsc::Receiver<WriterMsg>,
) {
    // A writer that was closed may still be finishing; never let two append at once.
    let _exclusive = shared.writer_lock.clone().lock_owned().await;
    let durable = config.durability == Durability::Fsync;
    let for_recovery = shared.clone();
    let modes = config.modes;
    let (read_buffer_size, limit) = (config.read_buffer_size, config.max_record_size);
    // Files a compaction is working on are the compactor's to resolve.
    let repair_history = !lock(&shared.compaction).busy;
    let recovered = tokio::task::spawn_blocking(move || {
        let (paths, damage) = (&for_recovery.paths, &for_recovery.damage);
        if repair_history {
            compaction::recover_history(paths, read_buffer_size, limit, damage)?;
        }
        files::recover_for_writing(paths, read_buffer_size, limit, durable, modes, damage)
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
    let Recovered {
        file,
        len,
        index,
        last,
        next,
        beginning,
    } = match recovered {
        Ok(r) => r,
        Err(e) => {
            let error = ProduceError::io(&shared.topic, "recovering the topic's files", e);
            warn!("{error}");
            rx.close();
            while let Some(msg) = rx.recv().await {
                fail(msg, &error);
            }
            return;
        }
    };
    let mut writer = Writer {
        buf: Vec::with_capacity(config.write_buffer_size),
        shared,
        config,
        file: Arc::new(file),
        len,
        index,
        next_offset: next,
        last,
        beginning,
        replies: Vec::new(),
    };
    writer.publish(true);
    while let Some(msg) = rx.recv().await {
        let mut next = Some(msg);
        while let Some(msg) = next.take() {
            let WriterMsg::Produce(record, reply) = msg;
            writer.accept(record, reply);
            if writer.buf.len() < writer.config.write_buffer_size {
                next = rx.try_recv().ok();
            }
        }
        if let Err(error) = writer.commit().await {
            // Refuse new requests before answering: a producer told of this failure that
            // produces again must reach a new writer, which recovers the file, not this one.
            rx.close();
            for (reply, _) in writer.replies.drain(..) {
                let _ = reply.send(Err(error.clone()));
            }
            while let Some(msg) = rx.recv().await {
                fail(msg, &error);
            }
            break;
        }
        writer.age_when_due().await;
    }
    writer.publish(false);
}

fn fail(msg: WriterMsg, error: &ProduceError) {
    let WriterMsg::Produce(_, reply) = msg;
    let _ = reply.send(Err(error.clone()));
}

impl Writer {
    fn accept(
        &mut self,
        record: ProducerRecord,
        reply: oneshot::Sender<Result<Offset, ProduceError>>,
    ) {
        let start = self.buf.len();
        record::encode(
            &mut self.buf,
            &record.headers,
            record.timestamp.as_ref(),
            record.key,
            &record.value,
            self.next_offset,
        );
        let size = self.buf.len() - start;
        if size > self.config.max_record_size {
            self.buf.truncate(start);
            let _ = reply.send(Err(ProduceError::RecordTooLarge {
                topic: record.topic,
                size,
                max: self.config.max_record_size,
            }));
            return;
        }
        self.index.note(self.next_offset, self.len + start as u64);
        self.replies.push((reply, self.next_offset));
        self.next_offset = self.next_offset.wrapping_add(1);
    }

    /// Writes the batch, syncs it in fsync mode, publishes it, then answers its producers.
    /// On failure the batch is cut off again and its producers are left for the caller to
    /// answer.
    async fn commit(&mut self) -> Result<(), ProduceError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut result = (&*self.file).write_all(&self.buf);
        if result.is_ok() && self.config.durability == Durability::Fsync {
            let file = self.file.clone();
            result = tokio::task::spawn_blocking(move || file.sync_data())
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
        }
        if let Err(e) = result {
            // Leave no partial record behind; if even that fails, recovery will cut it.
            let _ = self.file.set_len(self.len);
            let error = ProduceError::io(&self.shared.topic, "appending to the topic file", e);
            warn!("{error}");
            self.buf.clear();
            return Err(error);
        }
        if let Err(e) = self.index.flush() {
            warn!(
                "Cannot extend the offset index of topic {}: {e}",
                self.shared.topic
            );
        }
        self.len += self.buf.len() as u64;
        self.buf.clear();
        if self.beginning.is_none() {
            self.beginning = self.replies.first().map(|(_, o)| *o);
        }
        if let Some((_, o)) = self.replies.last() {
            self.last = Some(*o);
        }
        self.publish(true);
        for (reply, offset) in self.replies.drain(..) {
            let _ = reply.send(Ok(offset));
        }
        Ok(())
    }

    /// Tells subscribers and `offsets()` where the topic ends now.
    fn publish(&self, local_writer: bool) {
        let last = self.last.filter(|_| local_writer);
        self.shared.tail.send_modify(|tail| {
            tail.version = tail.version.wrapping_add(1);
            tail.local_writer = local_writer;
            // A compaction may have moved the beginning since this writer started.
            let beginning = tail.ends.map(|(b, _)| b).or(self.beginning);
            tail.ends = beginning.zip(last);
        });
    }

    /// With compaction registered, ages the active file once it passed the threshold.
    /// While the previous compaction still runs, takes no more records until it is done:
    /// compaction is then more than one threshold behind (back-pressure).
    async fn age_when_due(&mut self) {
        loop {
            if self.len < self.config.compaction_threshold_size {
                return;
            }
            let trigger = {
                let mut state = lock(&self.shared.compaction);
                if state.backing_off() {
                    // A failed compaction must not stop producers.
                    return;
                }
                let busy = state.busy;
                match state.handle.as_ref().map(|h| h.trigger.clone()) {
                    None => return,
                    Some(trigger) if !busy => {
                        state.busy = true;
                        Some(trigger)
                    }
                    Some(_) => None,
                }
            };
            match trigger {
                Some(trigger) => {
                    if let Err(e) = self.age() {
                        // Whatever is aged already still gets compacted.
                        warn!(
                            "Cannot age the active file of topic {}: {e}",
                            self.shared.topic
                        );
                    }
                    trigger.notify_one();
                    return;
                }
                None => {
                    let idle = self.shared.compaction_idle.notified();
                    let _ = tokio::time::timeout(BACK_PRESSURE_RECHECK, idle).await;
                }
            }
        }
    }

    /// Renames the active file into history, pushing an existing history to ancient
    /// history first. Refused while an ancient history still awaits compaction.
    fn age(&mut self) -> io::Result<u64> {
        let paths = &self.shared.paths;
        if self.len == 0 {
            return Ok(0);
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
            // The renames are made; only their durability is in doubt, and the writer
            // must move on to the new active file either way.
            warn!("Topic {}: {e}", self.shared.topic);
        }
        let file = create::options(self.config.modes)
            .read(true)
            .append(true)
            .create(true)
            .open(&paths.active)?;
        let aged = self.len;
        self.file = Arc::new(file);
        self.index = IndexWriter::create(&paths.index, self.config.modes)?;
        self.len = 0;
        self.publish(true);
        Ok(aged)
    }
}
