//! The sparse offset index of a topic's active file: every [`INDEX_INTERVAL`] bytes of log,
//! the offset and byte position of the record that starts there.
//!
//! The file `<topic>.index` holds an 8-byte magic followed by 16-byte entries (offset then
//! position, both u64 little-endian). It is advisory: every entry used is first checked
//! against the log (the record at that position must be intact and carry that offset;
//! offsets are unique within a topic, so a match cannot be a coincidence), and an index
//! that does not match is rebuilt by the appender. Readers that find no usable entry fall
//! back to scanning. Upstream's implementation ignores the file.

use std::{
    fs::File,
    io::{self, Write},
    path::Path,
};

use streambed::commit_log::Offset;

use crate::{
    create::{self, Modes},
    record::{decode, Decoded},
};

/// Bytes of log between two index entries.
pub(crate) const INDEX_INTERVAL: u64 = 4096;
const MAGIC: &[u8; 8] = b"SBLIDX01";
const ENTRY_LEN: u64 = 16;

/// Reads exactly `buf.len()` bytes at `pos`, or fewer at the end of the file.
pub(crate) fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(file, &mut buf[done..], pos + done as u64);
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(file, &mut buf[done..], pos + done as u64);
        match n {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// An index entry: a record's offset and its byte position in the active file.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) struct Entry {
    pub(crate) offset: Offset,
    pub(crate) pos: u64,
}

impl Entry {
    fn to_bytes(self) -> [u8; ENTRY_LEN as usize] {
        let mut bytes = [0u8; ENTRY_LEN as usize];
        bytes[..8].copy_from_slice(&self.offset.to_le_bytes());
        bytes[8..].copy_from_slice(&self.pos.to_le_bytes());
        bytes
    }
}

/// Read access to an index file.
pub(crate) struct IndexReader {
    file: File,
    count: u64,
}

impl IndexReader {
    /// Opens an index, or `None` when it is missing or not an index.
    pub(crate) fn open(path: &Path) -> Option<Self> {
        let file = File::open(path).ok()?;
        let len = file.metadata().ok()?.len();
        let mut magic = [0u8; 8];
        if read_at(&file, &mut magic, 0).ok()? != 8 || &magic != MAGIC {
            return None;
        }
        Some(Self {
            file,
            count: (len - 8) / ENTRY_LEN,
        })
    }

    fn entry(&self, i: u64) -> Option<Entry> {
        let mut bytes = [0u8; ENTRY_LEN as usize];
        let n = read_at(&self.file, &mut bytes, 8 + i * ENTRY_LEN).ok()?;
        (n == bytes.len()).then(|| Entry {
            offset: u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()),
            pos: u64::from_le_bytes(bytes[8..].try_into().unwrap_or_default()),
        })
    }

    /// The last entry.
    pub(crate) fn last(&self) -> Option<Entry> {
        self.count.checked_sub(1).and_then(|i| self.entry(i))
    }

    /// The entry with the greatest offset not above `target`.
    pub(crate) fn floor(&self, target: Offset) -> Option<Entry> {
        let (mut lo, mut hi) = (0u64, self.count);
        let mut found = None;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let entry = self.entry(mid)?;
            if entry.offset <= target {
                found = Some(entry);
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        found
    }
}

/// Whether the record at `entry.pos` of `log` is intact and carries `entry.offset`.
pub(crate) fn entry_matches(log: &File, entry: Entry, limit: usize) -> bool {
    let mut buf = vec![0u8; limit.min(64 * 1024)];
    let Ok(n) = read_at(log, &mut buf, entry.pos) else {
        return false;
    };
    match decode(&buf[..n], limit) {
        Decoded::Record(view, _) => view.offset == entry.offset,
        _ => false,
    }
}

/// The appender's side of the index: appends entries as the log grows.
pub(crate) struct IndexWriter {
    file: File,
    last: Option<Entry>,
    pending: Vec<u8>,
}

impl IndexWriter {
    /// Starts a new, empty index, replacing any file at `path`.
    pub(crate) fn create(path: &Path, modes: Modes) -> io::Result<Self> {
        let mut file = create::options(modes)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.write_all(MAGIC)?;
        Ok(Self {
            file,
            last: None,
            pending: Vec::new(),
        })
    }

    /// Continues an index whose last entry is `last`.
    pub(crate) fn append_to(path: &Path, last: Entry, modes: Modes) -> io::Result<Self> {
        let file = create::options(modes).append(true).open(path)?;
        // A torn entry at the end would shift every later one.
        let len = file.metadata()?.len();
        let whole = 8 + (len.saturating_sub(8) / ENTRY_LEN) * ENTRY_LEN;
        if whole != len {
            file.set_len(whole)?;
        }
        Ok(Self {
            file,
            last: Some(last),
            pending: Vec::new(),
        })
    }

    /// Notes that a record with `offset` starts at `pos`; keeps it when it is far enough
    /// from the previous entry.
    pub(crate) fn note(&mut self, offset: Offset, pos: u64) {
        let far = match self.last {
            Some(last) => pos.saturating_sub(last.pos) >= INDEX_INTERVAL,
            None => true,
        };
        if far {
            self.pending
                .extend_from_slice(&Entry { offset, pos }.to_bytes());
            self.last = Some(Entry { offset, pos });
        }
    }

    /// Writes the entries noted since the last flush.
    /// The last entry noted, so that the index can be continued after its file was closed.
    pub(crate) fn last(&self) -> Option<Entry> {
        self.last
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.file.write_all(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_finds_the_greatest_entry_not_above_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.index");
        let mut writer = IndexWriter::create(&path, Modes::default()).unwrap();
        for i in 0..100u64 {
            writer.note(i * 10, i * INDEX_INTERVAL);
        }
        writer.flush().unwrap();
        let reader = IndexReader::open(&path).unwrap();
        assert_eq!(reader.floor(0).unwrap().offset, 0);
        assert_eq!(
            reader.floor(55).unwrap(),
            Entry {
                offset: 50,
                pos: 5 * INDEX_INTERVAL
            }
        );
        assert_eq!(reader.floor(10_000).unwrap().offset, 990);
        assert_eq!(reader.last().unwrap().offset, 990);
    }

    #[test]
    fn entries_closer_than_the_interval_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.index");
        let mut writer = IndexWriter::create(&path, Modes::default()).unwrap();
        writer.note(0, 0);
        writer.note(1, 100);
        writer.note(2, INDEX_INTERVAL);
        writer.flush().unwrap();
        let reader = IndexReader::open(&path).unwrap();
        assert_eq!(reader.count, 2);
        assert_eq!(reader.last().unwrap().offset, 2);
    }

    #[test]
    fn a_file_without_the_magic_is_no_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.index");
        std::fs::write(&path, b"garbage!garbage!garbage!").unwrap();
        assert!(IndexReader::open(&path).is_none());
    }
}
