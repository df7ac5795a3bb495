//! A topic's files on disk: opening them as one consistent sequence, scanning them,
//! answering offsets without a writer, and bringing them to a clean state before writing.
//!
//! A topic is, in reading order, `<topic>.ancient_history` (only while a compaction is
//! pending or under way), `<topic>.history` and `<topic>` (the active file, the only one
//! appended to). Offsets rise strictly from one file to the next. Every read frames
//! records through [`crate::frame`], so damage is skipped the same way everywhere.

use std::{
    fs::{self, File},
    io,
    path::Path,
};

use log::warn;
use streambed::{
    atomic_file,
    commit_log::{Offset, PartitionOffsets},
};

use crate::{
    create::{self, Modes},
    damage::DamageLog,
    frame::{Frame, Framer, Tail, MIN_RECORD_LEN},
    index::{entry_matches, read_at, Entry, IndexReader, IndexWriter},
    record::claimed,
    topic_name::TopicPaths,
};

/// Which of a topic's files a handle reads.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum FileKind {
    AncientHistory,
    History,
    Active,
}

/// An open file of a topic.
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub(crate) kind: FileKind,
    pub(crate) file: File,
}

pub(crate) fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn same_file(file: Option<&File>, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let on_disk = fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let held = file
        .and_then(|f| f.metadata().ok())
        .map(|m| (m.dev(), m.ino()));
    on_disk == held
}

#[cfg(not(unix))]
fn same_file(file: Option<&File>, path: &Path) -> bool {
    file.is_some() == path.exists()
}

/// Whether `file` is still the topic's active file (compaction ages it by renaming).
pub(crate) fn is_active(file: &File, paths: &TopicPaths) -> bool {
    same_file(Some(file), &paths.active)
}

/// Opens the topic's files in reading order. Newer files are opened first so that a file
/// renamed meanwhile (active to history, history to ancient history) is found again under
/// its new name; the result is then checked against the names and opened again if a
/// compaction step changed them in between, so no record can be skipped.
pub(crate) fn open_sequence(paths: &TopicPaths) -> io::Result<Vec<OpenFile>> {
    let mut attempts = 0;
    loop {
        let active = open_existing(&paths.active)?;
        let history = open_existing(&paths.history)?;
        let ancient = open_existing(&paths.ancient_history)?;
        let stable = same_file(ancient.as_ref(), &paths.ancient_history)
            && same_file(history.as_ref(), &paths.history)
            && same_file(active.as_ref(), &paths.active);
        attempts += 1;
        if stable || attempts >= 20 {
            let mut files = Vec::with_capacity(3);
            for (kind, file) in [
                (FileKind::AncientHistory, ancient),
                (FileKind::History, history),
                (FileKind::Active, active),
            ] {
                if let Some(file) = file {
                    files.push(OpenFile { kind, file });
                }
            }
            return Ok(files);
        }
    }
}

/// The path of a topic's file of `kind`, for messages.
pub(crate) fn path_of(paths: &TopicPaths, kind: FileKind) -> &Path {
    match kind {
        FileKind::AncientHistory => &paths.ancient_history,
        FileKind::History => &paths.history,
        FileKind::Active => &paths.active,
    }
}

/// Frames every record of `file` from byte `from` on, calling `on_frame` with each record
/// and damaged region, and answers how the file ends.
pub(crate) fn scan(
    file: &File,
    from: u64,
    buf_size: usize,
    limit: usize,
    mut on_frame: impl FnMut(Frame<'_>),
) -> io::Result<Tail> {
    let mut framer = Framer::new(from, buf_size, limit);
    loop {
        match framer.next(file)? {
            Frame::End(tail) => return Ok(tail),
            frame => on_frame(frame),
        }
    }
}

/// The offset of the first intact record of a file.
pub(crate) fn first_offset(file: &File, limit: usize) -> io::Result<Option<Offset>> {
    Ok(first_record(file, limit)?.0)
}

/// The offset of the first intact record of a file, as found without the offsets of the
/// files before it, and whether damage comes before it (then those offsets may change
/// which record comes first).
pub(crate) fn first_record(file: &File, limit: usize) -> io::Result<(Option<Offset>, bool)> {
    // Room for the largest record allowed, so a large first record is read at once.
    let mut framer = Framer::new(0, limit, limit);
    let mut damaged = false;
    loop {
        match framer.next(file)? {
            Frame::Record { view, .. } => return Ok((Some(view.offset), damaged)),
            Frame::Damaged { .. } => damaged = true,
            Frame::End(_) => return Ok((None, damaged)),
        }
    }
}

/// Where a scan for the end of the active file can start: the last index entry, if it
/// still matches the log.
pub(crate) fn last_index_entry(paths: &TopicPaths, active: &File, limit: usize) -> Option<Entry> {
    IndexReader::open(&paths.index)
        .and_then(|index| index.last())
        .filter(|entry| entry_matches(active, *entry, limit))
}

/// A run of damaged bytes `from..to` at the end of `file`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DamagedEnd<'a> {
    pub(crate) file: &'a File,
    pub(crate) from: u64,
    pub(crate) to: u64,
}

/// Offsets that damaged ends of files after the last intact record `last` may have held:
/// as many as their bytes have room for, or up to the greatest offset the records there
/// still claim if that is further (a compacted history has gaps between offsets). Counted
/// from the topic's `last`, once known, never from a file's own: a file with no intact
/// record does not start its offsets at 0.
fn reserved_by(ends: &[DamagedEnd<'_>], last: Option<Offset>, limit: usize) -> u64 {
    let first = last.map_or(0, |l| l.saturating_add(1));
    let mut by_size = 0u64;
    let mut by_claim = 0;
    for end in ends {
        by_size = by_size.saturating_add((end.to - end.from).div_ceil(MIN_RECORD_LEN));
        let claim = claimed_by(end, limit)
            .filter(|c| *c >= first && c - first <= MAX_CLAIMED_JUMP)
            .map_or(0, |c| c - first + 1);
        by_claim = by_claim.max(claim);
    }
    by_size.max(by_claim)
}

/// The greatest offset that the records of a damaged end claim, if its bytes frame as
/// records (checksums aside) from its start exactly to its end, within `limit` bytes in
/// all: bytes that merely parse as a record somewhere (random bytes can) confirm nothing.
fn claimed_by(end: &DamagedEnd<'_>, limit: usize) -> Option<Offset> {
    let len = usize::try_from(end.to - end.from)
        .ok()
        .filter(|l| *l <= limit)?;
    let mut bytes = vec![0u8; len];
    let n = read_at(end.file, &mut bytes, end.from).ok()?;
    let mut rest = &bytes[..n];
    let mut greatest = None;
    while !rest.is_empty() {
        let (offset, len) = claimed(rest, limit)?;
        greatest = greatest.max(Some(offset));
        rest = &rest[len..];
    }
    greatest.filter(|_| n == len)
}

/// The furthest a damaged record's claimed offset is believed: further than this, the
/// claim is more likely damage than a record.
const MAX_CLAIMED_JUMP: u64 = 1 << 32;

/// Offsets skipped after a torn record is cut off. A torn record is the last bytes of the
/// active file, a prefix of one record with nothing intact after it (an intact record after
/// it would make it damage), so it held at most one offset. Readers may have read that
/// offset: from the page cache, in another process, before a crash tore the write on disk;
/// or before a flipped length or tag made a whole record look cut short. It is never given
/// out again; a clean crash costs a gap of one offset.
const TORN_RESERVES: u64 = 1;

/// What a scan for the end of a file found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileEnd {
    /// The offset of the last intact record.
    pub(crate) last: Option<Offset>,
    /// How the file ends after it; never torn for a history, which is written whole.
    pub(crate) tail: Tail,
    /// Whether damage comes before its first record: what the framer takes for records
    /// after it then depends on the offsets of the files before (see [`Framer::after`]).
    pub(crate) starts_damaged: bool,
}

/// What [`scan_to_end`] found: the last intact offset, how the file ends, and whether
/// damage came before the first record.
struct Scanned {
    last: Option<Offset>,
    tail: Tail,
    starts_damaged: bool,
}

/// Frames `file` from the index entry `start` (or its beginning) to its end, reporting
/// damage: the last intact offset, and how the file ends. `before` is the last offset of
/// the files before this one. `on_record` sees the offset and position of each record.
#[allow(clippy::too_many_arguments)]
fn scan_to_end(
    path: &Path,
    file: &File,
    start: Option<Entry>,
    before: Option<Offset>,
    buf_size: usize,
    limit: usize,
    damage: &DamageLog,
    mut on_record: impl FnMut(Offset, u64),
) -> io::Result<Scanned> {
    let mut last = start.map(|e| e.offset);
    let mut framer = Framer::new(start.map_or(0, |e| e.pos), buf_size, limit);
    framer.after(before);
    let mut starts_damaged = None;
    let tail = loop {
        match framer.next(file)? {
            Frame::Record { view, pos, .. } => {
                starts_damaged.get_or_insert(false);
                last = last.max(Some(view.offset));
                on_record(view.offset, pos);
            }
            Frame::Damaged { from, to } => {
                starts_damaged.get_or_insert(true);
                damage.report(path, file, from, to);
            }
            Frame::End(tail) => break tail,
        }
    };
    if let Tail::Damaged { from, to } = tail {
        starts_damaged.get_or_insert(true);
        damage.report(path, file, from, to);
    }
    Ok(Scanned {
        last,
        tail,
        starts_damaged: starts_damaged.unwrap_or(false),
    })
}

/// How a file ends, using the index for the active file. Damage is reported to `damage`.
/// `before` is the last offset of the files before this one, if known.
pub(crate) fn file_end(
    paths: &TopicPaths,
    file: &OpenFile,
    before: Option<Offset>,
    buf_size: usize,
    limit: usize,
    damage: &DamageLog,
) -> io::Result<FileEnd> {
    let start = if file.kind == FileKind::Active {
        last_index_entry(paths, &file.file, limit)
    } else {
        None
    };
    let path = path_of(paths, file.kind);
    let Scanned {
        last,
        tail,
        starts_damaged,
    } = scan_to_end(
        path,
        &file.file,
        start,
        before,
        buf_size,
        limit,
        damage,
        |_, _| {},
    )?;
    let tail = match tail {
        // Histories are written whole: a record cut short at the end of one is damage,
        // whose offsets subscribers may have read before it was damaged.
        Tail::Torn { at } if file.kind != FileKind::Active => {
            let to = file.file.metadata()?.len();
            damage.report(path, &file.file, at, to);
            Tail::Damaged { from: at, to }
        }
        tail => tail,
    };
    Ok(FileEnd {
        last,
        tail,
        starts_damaged,
    })
}

/// The offset of the last intact record of a file.
pub(crate) fn last_offset(
    paths: &TopicPaths,
    file: &OpenFile,
    buf_size: usize,
    limit: usize,
    damage: &DamageLog,
) -> io::Result<Option<Offset>> {
    Ok(file_end(paths, file, None, buf_size, limit, damage)?.last)
}

/// Answers `offsets()` from the files alone, for topics this process does not write.
pub(crate) fn offsets_from_disk(
    paths: &TopicPaths,
    buf_size: usize,
    limit: usize,
    damage: &DamageLog,
) -> io::Result<Option<PartitionOffsets>> {
    let files = open_sequence(paths)?;
    let mut beginning = None;
    for f in &files {
        if let Some(o) = first_offset(&f.file, limit)? {
            beginning = Some(o);
            break;
        }
    }
    let Some(beginning_offset) = beginning else {
        return Ok(None);
    };
    // Subscribers frame each file after the offsets of the files before it. That changes
    // what a file holds only where damage comes before its first record, so the newest
    // file is framed on its own first, and the files before it only when it starts with
    // damage (or holds no record): then newer files are framed again, in order, after them.
    let mut to_seed = Vec::new();
    let mut end_offset = None;
    for f in files.iter().rev() {
        let end = file_end(paths, f, None, buf_size, limit, damage)?;
        if end.last.is_some() && !end.starts_damaged {
            end_offset = end.last;
            break;
        }
        if end.last.is_some() || !matches!(end.tail, Tail::Clean { .. }) {
            to_seed.push(f);
        }
    }
    for &newer in to_seed.iter().rev() {
        let seeded = file_end(paths, newer, end_offset, buf_size, limit, damage)?;
        end_offset = end_offset.max(seeded.last);
    }
    Ok(end_offset.map(|end_offset| PartitionOffsets {
        beginning_offset,
        end_offset,
    }))
}

/// The active file, ready to append to after recovery.
pub(crate) struct Recovered {
    pub(crate) file: File,
    pub(crate) len: u64,
    pub(crate) index: IndexWriter,
    /// The offset of the last intact record of the topic.
    pub(crate) last: Option<Offset>,
    /// The offset the next record gets: after `last` and any offset damage at the end of
    /// the topic may have held.
    pub(crate) next: Offset,
    /// The offset of the first intact record of the topic.
    pub(crate) beginning: Option<Offset>,
}

/// The last intact offset of the files before the active one (the newest that has one),
/// and the damaged ends of those passed on the way: they come after that offset.
fn history_end<'a>(
    paths: &TopicPaths,
    files: &'a [OpenFile],
    buf_size: usize,
    limit: usize,
    damage: &DamageLog,
) -> io::Result<(Option<Offset>, Vec<DamagedEnd<'a>>)> {
    let mut ends = Vec::new();
    for f in files.iter().rev().filter(|f| f.kind != FileKind::Active) {
        let end = file_end(paths, f, None, buf_size, limit, damage)?;
        if let Tail::Damaged { from, to } = end.tail {
            ends.push(DamagedEnd {
                file: &f.file,
                from,
                to,
            });
        }
        if end.last.is_some() {
            return Ok((end.last, ends));
        }
    }
    Ok((None, ends))
}

/// Opens the active file for appending, cutting off a torn tail first (damage elsewhere
/// stays where it is, to be skipped), and brings the index up to date with the log. The
/// next offset passes every offset readers may have seen: the last intact one, those
/// damaged ends may hold, and a cut torn record's.
pub(crate) fn recover_for_writing(
    paths: &TopicPaths,
    buf_size: usize,
    limit: usize,
    durable: bool,
    modes: Modes,
    damage: &DamageLog,
) -> io::Result<Recovered> {
    create::dir_all(&paths.root, modes)?;
    let created = !paths.active.exists();
    let file = create::options(modes)
        .read(true)
        .append(true)
        .create(true)
        .open(&paths.active)?;
    if created && durable {
        atomic_file::sync_dir(&paths.root)?;
    }
    let files = open_sequence(paths)?;
    let start = last_index_entry(paths, &file, limit);
    // Without an index entry to start from, the active file may begin with damage: the
    // offsets before it say which records after the damage belong to the log.
    let mut history = if start.is_none() && file.metadata()?.len() > 0 {
        Some(history_end(paths, &files, buf_size, limit, damage)?)
    } else {
        None
    };
    let mut index = match start {
        Some(entry) => IndexWriter::append_to(&paths.index, entry, modes)?,
        None => IndexWriter::create(&paths.index, modes)?,
    };
    let Scanned { mut last, tail, .. } = scan_to_end(
        &paths.active,
        &file,
        start,
        history.as_ref().and_then(|h| h.0),
        buf_size,
        limit,
        damage,
        |offset, pos| index.note(offset, pos),
    )?;
    let mut damaged_ends = Vec::new();
    // Offsets a torn record cut off may have held: see `TORN_RESERVES`.
    let mut torn = 0;
    let len = match tail {
        Tail::Clean { at } => at,
        Tail::Torn { at } => {
            let len = file.metadata()?.len();
            warn!(
                "Topic file {:?}: cutting off a torn record of {} bytes at byte {at}; its \
                 offset is not given out again",
                paths.active,
                len - at,
            );
            file.set_len(at)?;
            file.sync_data()?;
            torn = TORN_RESERVES;
            at
        }
        Tail::Damaged { from, to } => {
            // Kept for inspection; readers skip it, and its offsets are never given out
            // again: readers may have seen them before the damage.
            damaged_ends.push(DamagedEnd {
                file: &file,
                from,
                to,
            });
            to
        }
    };
    index.flush()?;
    if last.is_none() {
        let (history_last, ends) = match history.take() {
            Some(found) => found,
            None => history_end(paths, &files, buf_size, limit, damage)?,
        };
        last = history_last;
        damaged_ends.extend(ends);
    }
    let reserved = reserved_by(&damaged_ends, last, limit);
    let mut beginning = None;
    for f in &files {
        beginning = first_offset(&f.file, limit)?;
        if beginning.is_some() {
            break;
        }
    }
    let next = last
        .map_or(0, |l| l.saturating_add(1))
        .saturating_add(reserved)
        .saturating_add(torn);
    drop(damaged_ends);
    Ok(Recovered {
        file,
        len,
        index,
        last,
        next,
        beginning,
    })
}
