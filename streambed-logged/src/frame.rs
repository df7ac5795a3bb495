//! The one place where the bytes of a topic file become records. Recovery, subscribers,
//! compaction and `offsets()` all read through a [`Framer`], so they agree on which bytes
//! are records and which are damage, and on the highest offset.
//!
//! Damage costs only the records it touches. When the bytes at a record boundary do not
//! decode (bad framing or checksum), the framer *resynchronises*: it looks at every later
//! byte for a position where an intact record starts (valid CRC32C) whose offset is greater
//! than the last intact one, and goes on from there. The bytes in between are reported as a
//! damaged region and left where they are. A candidate must also look like part of the
//! log rather than a record-shaped value inside damaged bytes (a record stored in another
//! record's value, say): its offset is within reach of the last one (no more records than
//! the skipped bytes can hold, [`MIN_RECORD_LEN`] each; the last one is that of the files
//! before when the file starts with damage, or the offset the damaged record still claims
//! in a topic's first file), or the next bytes after it are an intact record with a
//! greater offset, or the end of the file (or a torn record that ends it).
//!
//! Cost: a record starts with its version, a 0 byte, so only 0 bytes are tried; each try
//! decodes at most `max_record_size` bytes. Memory stays within a few records.
//!
//! A file that ends inside a record (a *torn* tail, from a crash during a write, or a
//! write still under way) is told apart from damage: its last bytes are a prefix of a
//! record and no intact record follows them.

use std::{fs::File, io};

use log::debug;
use streambed::commit_log::Offset;

use crate::{
    index::read_at,
    record::{claimed_offset, decode, decode_checked, Decoded, RecordView},
};

/// The smallest encoded record: version, header count, timestamp tag, key, value length
/// and offset take a byte each at least, the CRC four.
pub(crate) const MIN_RECORD_LEN: u64 = 10;

/// What a framer found next.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// An intact record, its position in the file and its bytes.
    Record {
        view: RecordView<'a>,
        pos: u64,
        raw: &'a [u8],
    },
    /// Bytes `from..to` are not records; an intact record starts at `to`.
    Damaged { from: u64, to: u64 },
    /// Nothing more to frame in the file as it is now.
    End(Tail),
}

/// How the bytes of a file end, as far as they have been read.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Tail {
    /// After the last record, at `at`.
    Clean { at: u64 },
    /// Inside a record that starts at `at`: a torn write, or one still under way.
    Torn { at: u64 },
    /// In bytes from `from` to `to` (the end) that are not records.
    Damaged { from: u64, to: u64 },
}

enum Step {
    Record(usize),
    Damaged { from: u64, to: u64 },
    Read,
    End(Tail),
}

/// Frames the records of one file from a position on, with a buffer it reuses.
pub(crate) struct Framer {
    buf: Vec<u8>,
    size: usize,
    limit: usize,
    /// File position of `buf[0]`.
    base: u64,
    /// What is not framed yet: `buf[start..end]`.
    start: usize,
    end: usize,
    /// The greatest offset framed in this file.
    last: Option<Offset>,
    /// Where the damage being skipped began.
    damage: Option<u64>,
    /// The offset the damaged record there still claims, when nothing before it is known.
    claimed: Option<Offset>,
    /// The position last read again from the file before being called damaged.
    rechecked: Option<u64>,
}

impl Framer {
    /// A framer of records from byte `from`, reading `buf_size` bytes at a time, where no
    /// record is longer than `limit`.
    pub(crate) fn new(from: u64, buf_size: usize, limit: usize) -> Self {
        let size = buf_size.max(64);
        Self {
            buf: vec![0u8; size],
            size,
            limit,
            base: from,
            start: 0,
            end: 0,
            last: None,
            damage: None,
            claimed: None,
            rechecked: None,
        }
    }

    /// Starts over at byte `from` of another (or the same) file, keeping the buffer.
    pub(crate) fn reset(&mut self, from: u64) {
        if self.buf.len() > self.size {
            self.buf.truncate(self.size);
            self.buf.shrink_to_fit();
        }
        self.base = from;
        self.start = 0;
        self.end = 0;
        self.last = None;
        self.damage = None;
        self.claimed = None;
        self.rechecked = None;
    }

    /// Tells the framer that `last` is the greatest offset of the files before this one (or
    /// of what was read before `from`): offsets rise strictly across files, so a record
    /// found after damage must be above it, and is within reach when near it.
    pub(crate) fn after(&mut self, last: Option<Offset>) {
        self.last = self.last.max(last);
    }

    /// The greatest offset framed so far (or given to [`Framer::after`]).
    pub(crate) fn last(&self) -> Option<Offset> {
        self.last
    }

    /// The next record, damaged region or end of `file`.
    pub(crate) fn next(&mut self, file: &File) -> io::Result<Frame<'_>> {
        let mut at_eof = false;
        loop {
            match self.step(at_eof) {
                Step::Record(len) => {
                    let at = self.start;
                    self.start += len;
                    let raw = &self.buf[at..at + len];
                    let view = decode_checked(raw, self.limit).ok_or_else(|| {
                        io::Error::other("a record decoded once does not decode again")
                    })?;
                    let pos = self.base + at as u64;
                    return Ok(Frame::Record { view, pos, raw });
                }
                Step::Damaged { from, to } => return Ok(Frame::Damaged { from, to }),
                Step::End(tail) => {
                    // What is undecided at the end is read again next time: a writer may
                    // cut a torn tail and write a shorter record over it.
                    self.base = self.pos_of(self.start);
                    self.start = 0;
                    self.end = 0;
                    return Ok(Frame::End(tail));
                }
                Step::Read => at_eof = self.read(file)? == 0,
            }
        }
    }

    fn pos_of(&self, i: usize) -> u64 {
        self.base + i as u64
    }

    fn step(&mut self, at_eof: bool) -> Step {
        loop {
            if let Some(from) = self.damage {
                return match self.resync(from, at_eof, true) {
                    Some(i) => {
                        self.damage = None;
                        self.start = i;
                        Step::Damaged {
                            from,
                            to: self.pos_of(i),
                        }
                    }
                    None if at_eof => Step::End(Tail::Damaged {
                        from,
                        to: self.pos_of(self.end),
                    }),
                    None => Step::Read,
                };
            }
            match decode(&self.buf[self.start..self.end], self.limit) {
                Decoded::Record(view, len) => {
                    self.last = self.last.max(Some(view.offset));
                    return Step::Record(len);
                }
                Decoded::Incomplete if !at_eof => return Step::Read,
                Decoded::Incomplete if self.start == self.end => {
                    return Step::End(Tail::Clean {
                        at: self.pos_of(self.start),
                    })
                }
                Decoded::Incomplete => {
                    // Torn only if no intact record follows: a damaged length can make a
                    // record in the middle claim more bytes than the file has.
                    let at = self.start;
                    self.start += 1;
                    if let Some(i) = self.resync(self.pos_of(at), true, false) {
                        self.start = i;
                        return Step::Damaged {
                            from: self.pos_of(at),
                            to: self.pos_of(i),
                        };
                    }
                    self.start = at;
                    return Step::End(Tail::Torn {
                        at: self.pos_of(at),
                    });
                }
                Decoded::Corrupt(why) => {
                    let at = self.pos_of(self.start);
                    if self.rechecked != Some(at) {
                        // Bytes buffered while a writer was cutting a torn tail and writing
                        // again may be stale: read them again before calling them damage.
                        self.rechecked = Some(at);
                        self.base = at;
                        self.start = 0;
                        self.end = 0;
                        return Step::Read;
                    }
                    debug!("No record at byte {at}: {why:?}; resynchronising");
                    self.damage = Some(at);
                    // At the start of a topic's first file, nothing else says where its
                    // offsets begin (a compacted history's need not begin at 0).
                    self.claimed = match self.last {
                        None => claimed_offset(&self.buf[self.start..self.end], self.limit),
                        Some(_) => None,
                    };
                    self.start += 1;
                }
            }
        }
    }

    /// The buffer index where an acceptable record starts, if one is in the buffer; leaves
    /// `start` at the first position that more bytes could still make a record.
    /// `after_damage`: the bytes from `from` are damage, not possibly a torn record.
    fn resync(&mut self, from: u64, at_eof: bool, after_damage: bool) -> Option<usize> {
        let mut pending = None;
        let mut i = self.start;
        while i < self.end {
            if self.buf[i] != 0 {
                i += 1;
                continue;
            }
            match decode(&self.buf[i..self.end], self.limit) {
                Decoded::Record(view, len) if self.last.is_none_or(|last| view.offset > last) => {
                    let offset = view.offset;
                    if self.within_reach(offset, from, i) {
                        return Some(i);
                    }
                    let after = i + len;
                    match decode(&self.buf[after..self.end], self.limit) {
                        Decoded::Record(next, _) if next.offset > offset => return Some(i),
                        // It ends the file.
                        Decoded::Incomplete if at_eof && after == self.end => return Some(i),
                        // After damage, only a torn record follows it: the writer cuts
                        // that, and this record must not become damage then. (Inside a
                        // torn record, it is more likely part of that record's value.)
                        Decoded::Incomplete if at_eof && after_damage => return Some(i),
                        Decoded::Incomplete if !at_eof => {
                            self.start = i;
                            return None;
                        }
                        // Decided once the bytes after it are complete.
                        Decoded::Incomplete => {
                            pending.get_or_insert(i);
                        }
                        _ => {}
                    }
                }
                Decoded::Incomplete if !at_eof => {
                    self.start = i;
                    return None;
                }
                Decoded::Incomplete => {
                    pending.get_or_insert(i);
                }
                _ => {}
            }
            i += 1;
        }
        self.start = pending.unwrap_or(self.end);
        None
    }

    /// Whether `offset`, found at buffer index `i` after damage from `from`, is no further
    /// from the last intact offset (or, with none known, the offset the first damaged
    /// record claims) than the damaged bytes have room for.
    fn within_reach(&self, offset: Offset, from: u64, i: usize) -> bool {
        let skipped = self.pos_of(i).saturating_sub(from);
        let first = match (self.last, self.claimed) {
            (Some(last), _) => last.saturating_add(1),
            (None, Some(claimed)) => claimed,
            (None, None) => 0,
        };
        offset <= first.saturating_add(skipped.div_ceil(MIN_RECORD_LEN))
    }

    /// Reads more of `file` behind what is buffered; 0 at its end.
    fn read(&mut self, file: &File) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A record (or a record and the one after it, while resynchronising) larger
            // than the buffer but within the limit: grow.
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        } else if self.buf.len() > self.size && self.end <= self.size / 2 {
            self.buf.truncate(self.size);
            self.buf.shrink_to_fit();
        }
        let at = self.pos_of(self.end);
        let n = read_at(file, &mut self.buf[self.end..], at)?;
        self.end += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::{fs::OpenOptions, io::Write};

    use super::*;
    use crate::record::encode;

    fn record(offset: Offset, value_len: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode(
            &mut bytes,
            &[],
            None,
            offset,
            &vec![b'v'; value_len],
            offset,
        );
        bytes
    }

    /// Positions of records, damage and the end, as the framer reports them.
    fn frames(framer: &mut Framer, file: &File) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match framer.next(file).unwrap() {
                Frame::Record { view, pos, .. } => seen.push(format!("{} at {pos}", view.offset)),
                Frame::Damaged { from, to } => seen.push(format!("damage {from}..{to}")),
                Frame::End(tail) => {
                    seen.push(format!("{tail:?}"));
                    return seen;
                }
            }
        }
    }

    #[test]
    fn a_record_between_damage_and_a_torn_tail_is_a_record_and_the_tail_torn() {
        let mut first = record(1000, 90);
        first[50] ^= 0x5a;
        let second = record(1001, 90);
        let torn = record(1002, 90);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let mut bytes = [first.clone(), second.clone()].concat();
        bytes.extend_from_slice(&torn[..torn.len() / 2]);
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        let (a, b) = (first.len() as u64, (first.len() + second.len()) as u64);
        // Far from offset 0, with nothing known before: not within reach of anything.
        assert_eq!(
            frames(&mut Framer::new(0, 64, 4096), &file),
            [
                format!("damage 0..{a}"),
                format!("1001 at {a}"),
                format!("Torn {{ at: {b} }}")
            ]
        );
    }

    #[test]
    fn a_record_after_damage_is_within_reach_of_the_offsets_before_the_file() {
        let mut first = record(1000, 90);
        // Not even the offset it claims can be read.
        first[0] ^= 0x5a;
        let second = record(1001, 90);
        let mut third = record(1002, 90);
        third[50] ^= 0x5a;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, [first.clone(), second, third].concat()).unwrap();
        let file = File::open(&path).unwrap();
        let a = first.len();
        let mut framer = Framer::new(0, 64, 4096);
        assert!(!frames(&mut framer, &file).contains(&format!("1001 at {a}")));
        framer.reset(0);
        framer.after(Some(999));
        assert!(frames(&mut framer, &file).contains(&format!("1001 at {a}")));
    }

    #[test]
    fn a_torn_tail_cut_and_written_over_with_a_shorter_record_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let first = record(0, 10);
        let torn = record(1, 2000);
        std::fs::write(&path, [&first[..], &torn[..1500]].concat()).unwrap();
        let file = File::open(&path).unwrap();
        let mut framer = Framer::new(0, 4096, 4096);
        let at = first.len() as u64;
        assert_eq!(
            frames(&mut framer, &file),
            ["0 at 0".to_string(), format!("Torn {{ at: {at} }}")]
        );
        // What a writer does on recovery: cut the torn record, append a shorter one.
        let writer = OpenOptions::new().append(true).open(&path).unwrap();
        writer.set_len(at).unwrap();
        (&writer).write_all(&record(1, 10)).unwrap();
        assert_eq!(
            frames(&mut framer, &file),
            [
                format!("1 at {at}"),
                "Clean { at: 44 }".replace("44", &(2 * at).to_string())
            ]
        );
    }
}
