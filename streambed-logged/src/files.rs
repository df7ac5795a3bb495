//! A topic's files on disk: opening them as one consistent sequence, scanning them,
//! answering offsets without a writer, and bringing them to a clean state before writing.
//!
//! A topic is, in reading order, `<topic>.ancient_history` (only while a compaction is
//! pending or under way), `<topic>.history` and `<topic>` (the active file, the only one
//! appended to). Offsets rise strictly from one file to the next.

use std::{
    fs::{self, File, OpenOptions},
    io,
    path::Path,
};

use log::warn;
use streambed::commit_log::{Offset, PartitionOffsets};

use crate::{
    index::{entry_matches, read_at, Entry, IndexReader, IndexWriter},
    record::{decode, Corruption, Decoded, RecordView},
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

/// Why a scan stopped before the end of the file.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Stop {
    /// The file ends inside a record.
    Torn,
    /// The bytes at the end position are not a record.
    Corrupt(Corruption),
}

/// The result of a scan: the position after the last intact record, and why it stopped
/// there if that is not the end of the file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scan {
    pub(crate) end: u64,
    pub(crate) stopped: Option<Stop>,
}

/// Decodes every record of `file` from byte `from` on, calling `on_record` with each and
/// its position.
pub(crate) fn scan(
    file: &File,
    from: u64,
    buf_size: usize,
    limit: usize,
    mut on_record: impl FnMut(&RecordView<'_>, u64, &[u8]),
) -> io::Result<Scan> {
    let mut buf = vec![0u8; buf_size.max(64)];
    let mut base = from; // file position of buf[0]
    let mut filled = 0;
    loop {
        let space = buf.len() - filled;
        let n = read_at(file, &mut buf[filled..], base + filled as u64)?;
        filled += n;
        let at_eof = n < space;
        let mut consumed = 0;
        loop {
            match decode(&buf[consumed..filled], limit) {
                Decoded::Record(view, len) => {
                    on_record(
                        &view,
                        base + consumed as u64,
                        &buf[consumed..consumed + len],
                    );
                    consumed += len;
                }
                Decoded::Incomplete => break,
                Decoded::Corrupt(c) => {
                    return Ok(Scan {
                        end: base + consumed as u64,
                        stopped: Some(Stop::Corrupt(c)),
                    })
                }
            }
        }
        if at_eof {
            return Ok(Scan {
                end: base + consumed as u64,
                stopped: (consumed < filled).then_some(Stop::Torn),
            });
        }
        buf.copy_within(consumed..filled, 0);
        base += consumed as u64;
        filled -= consumed;
        if filled == buf.len() {
            // A record larger than the buffer (but within the limit): grow.
            buf.resize(buf.len() * 2, 0);
        }
    }
}

/// The offset of the first record of a file.
pub(crate) fn first_offset(file: &File, limit: usize) -> io::Result<Option<Offset>> {
    // Room for the largest record allowed, so a large first record is never mistaken for
    // a damaged one (recovery decides what to keep from this).
    let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; len.min(limit)];
    let n = read_at(file, &mut buf, 0)?;
    Ok(match decode(&buf[..n], limit) {
        Decoded::Record(view, _) => Some(view.offset),
        _ => None,
    })
}

/// Where a scan for the end of the active file can start: the last index entry, if it
/// still matches the log.
pub(crate) fn last_index_entry(paths: &TopicPaths, active: &File, limit: usize) -> Option<Entry> {
    IndexReader::open(&paths.index)
        .and_then(|index| index.last())
        .filter(|entry| entry_matches(active, *entry, limit))
}

/// The offset of the last intact record of a file, using the index for the active file.
pub(crate) fn last_offset(
    paths: &TopicPaths,
    file: &OpenFile,
    buf_size: usize,
    limit: usize,
) -> io::Result<Option<Offset>> {
    let start = if file.kind == FileKind::Active {
        last_index_entry(paths, &file.file, limit)
    } else {
        None
    };
    let mut last = start.map(|e| e.offset);
    scan(
        &file.file,
        start.map_or(0, |e| e.pos),
        buf_size,
        limit,
        |r, _, _| last = Some(r.offset),
    )?;
    Ok(last)
}

/// Answers `offsets()` from the files alone, for topics this process does not write.
pub(crate) fn offsets_from_disk(
    paths: &TopicPaths,
    buf_size: usize,
    limit: usize,
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
    for f in files.iter().rev() {
        if let Some(end_offset) = last_offset(paths, f, buf_size, limit)? {
            return Ok(Some(PartitionOffsets {
                beginning_offset,
                end_offset,
            }));
        }
    }
    Ok(None)
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The active file, ready to append to after recovery.
pub(crate) struct Recovered {
    pub(crate) file: File,
    pub(crate) len: u64,
    pub(crate) index: IndexWriter,
    /// The offset of the last record of the topic.
    pub(crate) last: Option<Offset>,
    /// The offset of the first record of the topic.
    pub(crate) beginning: Option<Offset>,
}

/// Opens the active file for appending, cutting off a torn or corrupt tail first, and
/// brings the index up to date with the log.
pub(crate) fn recover_for_writing(
    paths: &TopicPaths,
    buf_size: usize,
    limit: usize,
    durable: bool,
) -> io::Result<Recovered> {
    fs::create_dir_all(&paths.root)?;
    let created = !paths.active.exists();
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&paths.active)?;
    if created && durable {
        sync_dir(&paths.root)?;
    }
    let start = last_index_entry(paths, &file, limit);
    let mut index = match start {
        Some(entry) => IndexWriter::append_to(&paths.index, entry)?,
        None => IndexWriter::create(&paths.index)?,
    };
    let mut last = start.map(|e| e.offset);
    let scanned = scan(
        &file,
        start.map_or(0, |e| e.pos),
        buf_size,
        limit,
        |r, pos, _| {
            last = Some(r.offset);
            index.note(r.offset, pos);
        },
    )?;
    let len = file.metadata()?.len();
    if len > scanned.end {
        warn!(
            "Topic file {:?}: cutting off {} bytes after byte {} ({:?})",
            paths.active,
            len - scanned.end,
            scanned.end,
            scanned.stopped
        );
        file.set_len(scanned.end)?;
        file.sync_data()?;
    }
    index.flush()?;
    let history = open_sequence(paths)?;
    if last.is_none() {
        for f in history.iter().rev().filter(|f| f.kind != FileKind::Active) {
            last = last_offset(paths, f, buf_size, limit)?;
            if last.is_some() {
                break;
            }
        }
    }
    let mut beginning = None;
    for f in &history {
        beginning = first_offset(&f.file, limit)?;
        if beginning.is_some() {
            break;
        }
    }
    Ok(Recovered {
        file,
        len: scanned.end,
        index,
        last,
        beginning,
    })
}
