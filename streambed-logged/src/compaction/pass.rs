//! One compaction of a topic's aged files: the analysis passes (split by key hash when the
//! strategy's key limit is reached) and the rewrite that commits each pass's result.

use std::{
    collections::VecDeque,
    fs::{self, File},
    io::{self, BufWriter, Write},
    sync::Arc,
};

use log::info;
use streambed::{
    atomic_file,
    commit_log::{ConsumerRecord, Key, Offset},
};

use super::{CompactionMap, CompactionStrategy};
use crate::{
    config::Config,
    create,
    files::{self, FileKind},
    frame::{Frame, Tail},
    index::read_at,
    shared::{lock, TopicShared},
};

/// Which of `parts` hash classes a key falls in (`parts` is a power of two).
fn class_of(key: Key, parts: u64) -> u64 {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) & (parts - 1)
}

/// Passes beyond which a strategy that accepts (almost) no keys is given up on.
const MAX_PARTS: u64 = 1 << 16;

/// Compacts the aged files of a topic, in as many passes as the strategy's key limit needs.
pub(crate) async fn compact<CS>(
    shared: &Arc<TopicShared>,
    config: Config,
    strategy: &CS,
) -> io::Result<()>
where
    CS: CompactionStrategy + Send + Sync + 'static,
{
    let started = std::time::Instant::now();
    let size = |path: &std::path::Path| fs::metadata(path).map_or(0, |m| m.len());
    let paths = &shared.paths;
    let bytes_in = size(&paths.ancient_history) + size(&paths.history);
    let mut key_state = strategy.key_init();
    let mut pending = VecDeque::from([(1u64, 0u64)]);
    let mut passes = 0;
    while let Some((parts, class)) = pending.pop_front() {
        if parts > MAX_PARTS {
            return Err(io::Error::other(
                "the strategy takes too few keys to make progress",
            ));
        }
        let state = strategy.init().await;
        let paths_shared = shared.clone();
        let ks = key_state.clone();
        let (ks, map) =
            blocking(move || analyse::<CS>(&paths_shared, config, ks, state, parts, class)).await?;
        key_state = ks;
        let Some(map) = map else {
            pending.push_front((parts * 2, class + parts));
            pending.push_front((parts * 2, class));
            continue;
        };
        let paths_shared = shared.clone();
        key_state =
            blocking(move || rewrite::<CS>(&paths_shared, config, key_state, &map, parts, class))
                .await?;
        passes += 1;
    }
    let time = started.elapsed();
    let bytes_out = size(&paths.history);
    info!(
        "Compacted topic {} from {bytes_in} to {bytes_out} bytes in {passes} pass(es), {:.1} ms",
        shared.topic,
        time.as_secs_f64() * 1e3
    );
    shared.telemetry.compacted(time);
    let mut state = lock(&shared.compaction);
    state.stats.compactions += 1;
    state.stats.passes += passes;
    state.stats.bytes_in += bytes_in;
    state.stats.bytes_out += bytes_out;
    state.stats.time += time;
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
}

/// What [`for_each_aged`] hands over.
enum Aged<'a> {
    /// The next record, decoded and as stored.
    Record(ConsumerRecord, &'a [u8]),
    /// Bytes `from..to` of `file` are damage, to be carried over as they are.
    Damaged { file: &'a File, from: u64, to: u64 },
    /// Every record of the ancient history has been handed over; `last` is its last offset.
    EndOfAncientHistory { last: Option<Offset> },
}

/// Reads every record of the aged files in order, each offset once: after an interrupted
/// commit the history can repeat records of the ancient history, which readers skip too.
fn for_each_aged(
    shared: &TopicShared,
    config: Config,
    mut f: impl FnMut(Aged<'_>) -> bool,
) -> io::Result<bool> {
    let inputs = files::open_sequence(&shared.paths)?;
    let mut last: Option<Offset> = None;
    for input in inputs.iter().filter(|f| f.kind != FileKind::Active) {
        let mut go_on = true;
        let path = files::path_of(&shared.paths, input.kind);
        let file = &input.file;
        let tail = files::scan(
            file,
            0,
            config.read_buffer_size,
            config.max_record_size,
            |frame| match frame {
                Frame::Record { view, raw, .. } if go_on && last < Some(view.offset) => {
                    last = Some(view.offset);
                    go_on = f(Aged::Record(view.to_consumer_record(&shared.topic), raw));
                }
                Frame::Damaged { from, to } if go_on => {
                    shared.damage.report(path, file, from, to);
                    go_on = f(Aged::Damaged { file, from, to });
                }
                _ => {}
            },
        )?;
        // History files are complete: a torn record at the end is damage too.
        if let (true, Tail::Torn { at: from } | Tail::Damaged { from, .. }) = (go_on, tail) {
            let to = file.metadata()?.len();
            shared.damage.report(path, file, from, to);
            go_on = f(Aged::Damaged { file, from, to });
        }
        if go_on && input.kind == FileKind::AncientHistory {
            go_on = f(Aged::EndOfAncientHistory { last });
        }
        if !go_on {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Copies bytes `from..to` of `file` to `out`.
fn copy_range(file: &File, from: u64, to: u64, out: &mut impl Write) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut pos = from;
    while pos < to {
        let want = usize::try_from(to - pos).map_or(buf.len(), |left| left.min(buf.len()));
        let n = read_at(file, &mut buf[..want], pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a damaged region ends before the file",
            ));
        }
        out.write_all(&buf[..n])?;
        pos += n as u64;
    }
    Ok(())
}

type Analysis<CS> = (<CS as CompactionStrategy>::KS, Option<CompactionMap>);

fn analyse<CS: CompactionStrategy>(
    shared: &TopicShared,
    config: Config,
    mut key_state: CS::KS,
    mut state: CS::S,
    parts: u64,
    class: u64,
) -> io::Result<Analysis<CS>> {
    let complete = for_each_aged(shared, config, |aged| match aged {
        Aged::Record(record, _) => match CS::key(&mut key_state, &record) {
            Some(key) if class_of(key, parts) == class => !CS::reduce(&mut state, key, record).0,
            _ => true,
        },
        Aged::Damaged { .. } | Aged::EndOfAncientHistory { .. } => true,
    })?;
    Ok((key_state, complete.then(|| CS::collect(state))))
}

/// Writes the records `map` keeps to the work file and makes it the history.
///
/// The ancient history goes as soon as it is known to hold nothing to keep (a compaction
/// that follows an earlier one usually finds every record of it superseded), so that it
/// does not take space while the work file is written. Otherwise it goes after the commit.
/// Every state in between reads correctly and is resolved by `compaction::recover_history`.
fn rewrite<CS: CompactionStrategy>(
    shared: &TopicShared,
    config: Config,
    mut key_state: CS::KS,
    map: &CompactionMap,
    parts: u64,
    class: u64,
) -> io::Result<CS::KS> {
    let paths = &shared.paths;
    if !paths.ancient_history.exists() && !paths.history.exists() {
        return Ok(key_state);
    }
    // The ancient history may only go early if the history holds records after it: the
    // last record of the topic must stay somewhere.
    let history_first = match File::open(&paths.history) {
        Ok(history) => files::first_offset(&history, config.max_record_size)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut work = BufWriter::with_capacity(
        config.compaction_write_buffer_size,
        create::options(config.modes)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&paths.work)?,
    );
    // The last record is always kept (it carries the topic's end offset), so each record
    // is written only once the next one shows it was not the last.
    let mut held: Vec<u8> = Vec::new();
    let mut held_keep = false;
    let mut after_damage = false;
    let mut written = 0u64;
    let mut failure = None;
    for_each_aged(shared, config, |aged| match aged {
        Aged::Record(record, raw) => {
            if held_keep {
                if let Err(e) = work.write_all(&held) {
                    failure = Some(e);
                    return false;
                }
                written += 1;
            }
            held_keep = match CS::key(&mut key_state, &record) {
                Some(key) if class_of(key, parts) == class => match map.get(&key) {
                    Some(earliest) => record.offset >= *earliest,
                    None => true,
                },
                _ => true,
            };
            // Readers resynchronise on the first record after damage, judging its offset
            // by the record before the damage: another record there may not pass.
            held_keep |= std::mem::take(&mut after_damage);
            held.clear();
            held.extend_from_slice(raw);
            true
        }
        Aged::Damaged { file, from, to } => {
            // Carried over as it is, never destroyed. The record before it stays too, so
            // the offsets the damage may hold stay after the last intact record.
            let copied = work
                .write_all(&held)
                .and_then(|()| copy_range(file, from, to, &mut work));
            held.clear();
            held_keep = false;
            after_damage = true;
            written += 1;
            if let Err(e) = copied {
                failure = Some(e);
                return false;
            }
            true
        }
        Aged::EndOfAncientHistory { last } => {
            let nothing_kept = written == 0 && !held_keep;
            if nothing_kept && last.is_some() && history_first > last {
                // Every record of it is superseded by one in the history: reading the
                // history alone now gives the compacted ancient history. A crash from
                // here on leaves the history and an unfinished work file. The history is
                // the aged active file, which buffered mode never synced: make it durable
                // first, or a power loss could keep the deletion and lose the records
                // that superseded the deleted ones.
                let removed = File::open(&paths.history)
                    .and_then(|history| history.sync_all())
                    .and_then(|()| atomic_file::sync_dir(&paths.root).map_err(io::Error::from))
                    .and_then(|()| fs::remove_file(&paths.ancient_history));
                if let Err(e) = removed {
                    failure = Some(e);
                    return false;
                }
                held.clear();
            }
            true
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    work.write_all(&held)?;
    let work = work.into_inner().map_err(|e| e.into_error())?;
    work.sync_all()?;
    drop(work);
    // One rename commits: readers that still find the ancient history read it, then skip
    // the copies of its kept records at the start of the new history.
    fs::rename(&paths.work, &paths.history)?;
    atomic_file::sync_dir(&paths.root)?;
    // Covered by the history now (recovery removes it too, should this not last).
    match fs::remove_file(&paths.ancient_history) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(key_state)
}
