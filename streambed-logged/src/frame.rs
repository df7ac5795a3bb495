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
//! the skipped bytes can hold, [`MIN_RECORD_LEN`] each), or the next bytes after it are an
//! intact record with a greater offset, or the end of the file.
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
    record::{decode, decode_checked, Decoded, RecordView},
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
    /// The greatest offset framed in the files before this one, which every offset in
    /// this one exceeds: what damage before the file's first intact record is judged by.
    floor: Option<Offset>,
    /// Where the damage being skipped began.
    damage: Option<u64>,
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
            floor: None,
            damage: None,
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
        self.floor = None;
        self.damage = None;
        self.rechecked = None;
    }

    /// Starts over at the beginning of the topic's next file, whose offsets all exceed
    /// those framed so far.
    pub(crate) fn next_file(&mut self) {
        let floor = self.last.or(self.floor);
        self.reset(0);
        self.floor = floor;
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
                Step::End(tail) => return Ok(Frame::End(tail)),
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
                return match self.resync(from, at_eof) {
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
                    if let Some(i) = self.resync(self.pos_of(at), true) {
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
                    self.start += 1;
                }
            }
        }
    }

    /// The buffer index where an acceptable record starts, if one is in the buffer; leaves
    /// `start` at the first position that more bytes could still make a record.
    fn resync(&mut self, from: u64, at_eof: bool) -> Option<usize> {
        let mut pending = None;
        // A record followed by a torn tail to the end of the file.
        let mut before_torn = None;
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
                        Decoded::Incomplete if !at_eof => {
                            self.start = i;
                            return None;
                        }
                        // At the end of the file: it stands unless an intact record
                        // follows further on (the torn tail is then cut or waited for as
                        // any torn tail is).
                        Decoded::Incomplete => {
                            before_torn.get_or_insert(i);
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
        if before_torn.is_some() {
            return before_torn;
        }
        self.start = pending.unwrap_or(self.end);
        None
    }

    /// Whether `offset`, found at buffer index `i` after damage from `from`, is no further
    /// from the last intact offset (in this file, or else in the files before it) than the
    /// damaged bytes have room for.
    fn within_reach(&self, offset: Offset, from: u64, i: usize) -> bool {
        let skipped = self.pos_of(i).saturating_sub(from);
        let first = self
            .last
            .or(self.floor)
            .map_or(0, |last| last.saturating_add(1));
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
