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
//! record's value, say). It is *confirmed* when:
//! * its offset is within reach of the last intact one (no more records than the skipped
//!   bytes can hold, [`MIN_RECORD_LEN`] each; the last one is that of the files before when
//!   the file starts with damage, see [`Framer::after`]), or
//! * the next bytes after it are an intact record with a greater offset, or the end of the
//!   file (or, after damage, a torn record that ends it).
//!
//! A candidate that is neither (its offset jumps, as a compacted history's do, and more
//! damage follows it) is held back rather than dropped: it is read once a later candidate
//! has a greater offset (its order is then confirmed; in a history, the next file's first
//! record counts, see [`Framer::confirm_held_back`]), or at the end of the file when nothing
//! intact comes before it. A later candidate with a lower offset disproves it. The offset
//! a damaged record still claims is never trusted for this: its bytes may be anything.
//! After a resynchronisation, offsets must rise: a record that does not is damage too.
//!
//! Known limits of the format (a record has no marker that bytes inside a value cannot
//! hold):
//! * a record whose value is itself an encoded record, with an offset that fits the log,
//!   can be read in place of the outer record when damage hits the outer record's start
//!   and the inner one is confirmed as above;
//! * a record whose offset jumps, followed only by damage up to the end of the file, with
//!   intact records before the damage, is taken for part of that damage until a record
//!   after it confirms its order (it may equally be a record inside a damaged value).
//!
//! Cost: a record starts with its version, a 0 byte, so only 0 bytes are tried; each try
//! decodes at most `max_record_size` bytes. Memory stays within a few records.
//!
//! A file that ends inside a record (a *torn* tail, from a crash during a write, or a
//! write still under way) is told apart from damage: its last bytes are a prefix of a
//! record and no intact record follows them (not even one held back: a writer cuts a torn
//! tail off, and must never cut an intact record with it).

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
    /// Where the damage being skipped began.
    damage: Option<u64>,
    /// A record found in the damage being skipped that nothing confirmed yet: its position
    /// and offset.
    unconfirmed: Option<(u64, Offset)>,
    /// The position of a confirmed record met again after going back to an unconfirmed
    /// one before it.
    confirmed_at: Option<u64>,
    /// Whether a resynchronisation happened in this file: offsets must rise from there.
    resynced: bool,
    /// Where to read again after the end, when that is before what is buffered.
    resume: Option<u64>,
    /// Where a record that looked torn began, when an intact record after it made it
    /// damage: a writer may still be writing it, so it is framed afresh next time.
    undecided: Option<u64>,
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
            unconfirmed: None,
            confirmed_at: None,
            resynced: false,
            resume: None,
            undecided: None,
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
        self.unconfirmed = None;
        self.confirmed_at = None;
        self.resynced = false;
        self.resume = None;
        self.undecided = None;
        self.rechecked = None;
    }

    /// Tells the framer that `last` is the greatest offset of the files before this one (or
    /// of what was read before `from`): offsets rise strictly across files, so a record
    /// found after damage must be above it, and is within reach when near it.
    pub(crate) fn after(&mut self, last: Option<Offset>) {
        self.last = self.last.max(last);
    }

    /// At the end of a file that will not grow (a history), whose damage up to the end
    /// holds a record nothing confirmed yet: confirms it if the first record of the next
    /// file, `next_first`, has a greater offset (its order is confirmed then, as by a
    /// record after it in the same file). Answers whether it did: the framer then goes on
    /// in this file from that record.
    pub(crate) fn confirm_held_back(&mut self, next_first: Option<Offset>) -> bool {
        match self.unconfirmed {
            Some((pos, offset)) if next_first.is_some_and(|first| first > offset) => {
                self.confirmed_at = Some(pos);
                self.resume = None;
                self.base = pos;
                self.start = 0;
                self.end = 0;
                true
            }
            _ => false,
        }
    }

    /// The offset of a record held back at the end of the file, if any.
    pub(crate) fn held_back(&self) -> Option<Offset> {
        self.unconfirmed.map(|(_, offset)| offset)
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
                    // cut a torn tail and write a shorter record over it, or append the
                    // record that confirms one held back.
                    self.base = self.resume.take().unwrap_or(self.pos_of(self.start));
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
                    Some(to) => {
                        self.damage = None;
                        self.undecided = None;
                        self.resynced = true;
                        self.go_to(to);
                        Step::Damaged { from, to }
                    }
                    None if at_eof => {
                        // A record held back is looked at again once the file grows: what
                        // is appended may confirm it (or the next file's first record, see
                        // `confirm_held_back`).
                        if let Some((pos, _)) = self.unconfirmed {
                            self.resume = Some(pos);
                        }
                        if let Some(at) = self.undecided.take() {
                            self.damage = None;
                            self.unconfirmed = None;
                            self.resume = Some(at);
                        }
                        Step::End(Tail::Damaged {
                            from,
                            to: self.pos_of(self.end),
                        })
                    }
                    None => Step::Read,
                };
            }
            let why = match decode(&self.buf[self.start..self.end], self.limit) {
                Decoded::Record(view, len) => {
                    if self.resynced && self.last.is_some_and(|last| view.offset <= last) {
                        // Offsets rise in a log: after damage, a record that does not rise
                        // is inside damaged bytes, or what the resynchronisation took for a
                        // record was.
                        None
                    } else {
                        self.last = self.last.max(Some(view.offset));
                        return Step::Record(len);
                    }
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
                    let from = self.pos_of(at);
                    self.start += 1;
                    if let Some(to) = self.resync(from, true, false) {
                        self.resynced = true;
                        self.go_to(to);
                        return Step::Damaged { from, to };
                    }
                    if self.unconfirmed.is_some() {
                        // An intact record follows, in no confirmed order: these bytes are
                        // damage rather than a torn write, which would be cut off with it.
                        self.damage = Some(from);
                        self.undecided = Some(from);
                        self.go_to(from + 1);
                        continue;
                    }
                    self.start = at;
                    return Step::End(Tail::Torn { at: from });
                }
                Decoded::Corrupt(why) => Some(why),
            };
            let at = self.pos_of(self.start);
            if self.rechecked != Some(at) {
                // Bytes buffered while a writer was cutting a torn tail and writing again
                // may be stale: read them again before calling them damage.
                self.rechecked = Some(at);
                self.base = at;
                self.start = 0;
                self.end = 0;
                return Step::Read;
            }
            debug!("No record at byte {at} ({why:?}; none: out of order); resynchronising");
            self.damage = Some(at);
            self.start += 1;
        }
    }

    /// Goes on at file position `pos`: in the buffer, or read again when that is behind it
    /// (a record held back).
    fn go_to(&mut self, pos: u64) {
        match pos.checked_sub(self.base).map(usize::try_from) {
            Some(Ok(i)) if i <= self.end => self.start = i,
            _ => {
                self.base = pos;
                self.start = 0;
                self.end = 0;
            }
        }
    }

    /// The position where an acceptable record starts, if one is in the buffer (or was held
    /// back before it); leaves `start` at the first position that more bytes could still
    /// make a record. `after_damage`: the bytes from `from` are damage, not possibly a torn
    /// record.
    fn resync(&mut self, from: u64, at_eof: bool, after_damage: bool) -> Option<u64> {
        let mut pending = None;
        let mut i = self.start;
        while i < self.end {
            if self.buf[i] != 0 {
                i += 1;
                continue;
            }
            match decode(&self.buf[i..self.end], self.limit) {
                Decoded::Record(view, len) if self.last.is_none_or(|last| view.offset > last) => {
                    let (offset, pos) = (view.offset, self.pos_of(i));
                    if self.confirmed_at == Some(pos) || self.within_reach(offset, from, i) {
                        return Some(self.confirmed(pos, offset));
                    }
                    let after = i + len;
                    match decode(&self.buf[after..self.end], self.limit) {
                        Decoded::Record(next, _) if next.offset > offset => {
                            return Some(self.confirmed(pos, offset))
                        }
                        // It ends the file.
                        Decoded::Incomplete if at_eof && after == self.end => {
                            return Some(self.confirmed(pos, offset))
                        }
                        // After damage, only a torn record follows it: the appender cuts
                        // that, and this record must not become damage then. (Inside what
                        // may be a torn record, it is held back instead.)
                        Decoded::Incomplete if at_eof && after_damage => {
                            return Some(self.confirmed(pos, offset))
                        }
                        Decoded::Incomplete if !at_eof => {
                            self.start = i;
                            return None;
                        }
                        // More damage after it (or, inside what may be a torn record, a
                        // torn record): its order is not known yet.
                        _ => {
                            if let Some(held) = self.hold_back(pos, offset) {
                                return Some(held);
                            }
                        }
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
        if at_eof && after_damage && self.last.is_none() {
            // Nothing intact before it or after it says otherwise.
            return self.unconfirmed.take().map(|(pos, _)| pos);
        }
        None
    }

    /// Where to go on now that the record at `pos` with `offset` is confirmed: at the
    /// record held back before it if that one has a lower offset (its order is confirmed
    /// too; `pos` is then confirmed already when met again), or at `pos`.
    fn confirmed(&mut self, pos: u64, offset: Offset) -> u64 {
        match self.unconfirmed.take() {
            Some((held, held_offset)) if held_offset < offset => {
                self.confirmed_at = Some(pos);
                held
            }
            _ => {
                self.confirmed_at = None;
                pos
            }
        }
    }

    /// Keeps the record at `pos` with `offset` until something confirms or disproves it.
    /// Of two, the lower offset: the one before cannot be in order with it. A greater
    /// offset confirms the order of the record held back: answers where that one starts.
    fn hold_back(&mut self, pos: u64, offset: Offset) -> Option<u64> {
        match self.unconfirmed {
            Some((held, held_offset)) if held_offset < offset => {
                self.unconfirmed = None;
                self.confirmed_at = None;
                Some(held)
            }
            // The same record, met again after reading on (or an equal offset: the first).
            Some((_, held_offset)) if held_offset == offset => None,
            _ => {
                self.unconfirmed = Some((pos, offset));
                None
            }
        }
    }

    /// Whether `offset`, found at buffer index `i` after damage from `from`, is no further
    /// from the last intact offset (or, with none known, from 0) than the damaged bytes
    /// have room for.
    fn within_reach(&self, offset: Offset, from: u64, i: usize) -> bool {
        let skipped = self.pos_of(i).saturating_sub(from);
        let first = self.last.map_or(0, |last| last.saturating_add(1));
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

    /// Records 1000 (unreadable, not even the offset it claims) and 1002 damaged, 1001
    /// intact between them: the file's bytes and where 1001 starts.
    fn damage_around_1001(dir: &std::path::Path) -> (std::path::PathBuf, usize) {
        let mut first = record(1000, 90);
        first[0] ^= 0x5a;
        let second = record(1001, 90);
        let mut third = record(1002, 90);
        third[50] ^= 0x5a;
        let path = dir.join("t");
        std::fs::write(&path, [first.clone(), second, third].concat()).unwrap();
        (path, first.len())
    }

    #[test]
    fn a_record_between_damage_is_read_when_nothing_before_it_contradicts_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, a) = damage_around_1001(dir.path());
        let file = File::open(&path).unwrap();
        // Nothing known before: held back, then read at the end of the file.
        let mut framer = Framer::new(0, 64, 4096);
        assert!(frames(&mut framer, &file).contains(&format!("1001 at {a}")));
        // Within reach of the offsets of the files before.
        framer.reset(0);
        framer.after(Some(999));
        assert!(frames(&mut framer, &file).contains(&format!("1001 at {a}")));
    }

    #[test]
    fn a_record_held_back_before_damage_at_the_end_is_read_once_a_later_one_confirms_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, a) = damage_around_1001(dir.path());
        let file = File::open(&path).unwrap();
        // Far from the offsets before it, with damage up to the end: it may be a record
        // inside a damaged value.
        let mut framer = Framer::new(0, 64, 4096);
        framer.after(Some(500));
        let seen = frames(&mut framer, &file);
        assert!(!seen.contains(&format!("1001 at {a}")), "{seen:?}");
        // A writer appends a record with a greater offset: it confirms 1001's order, for
        // this framer (a live subscriber) as for a new one.
        let len = file.metadata().unwrap().len();
        let writer = OpenOptions::new().append(true).open(&path).unwrap();
        (&writer).write_all(&record(1003, 90)).unwrap();
        let seen = frames(&mut framer, &file);
        assert!(seen.contains(&format!("1001 at {a}")), "{seen:?}");
        assert!(seen.contains(&format!("1003 at {len}")), "{seen:?}");
        framer.reset(0);
        framer.after(Some(500));
        let seen = frames(&mut framer, &file);
        assert!(seen.contains(&format!("1001 at {a}")), "{seen:?}");
    }

    #[test]
    fn a_record_out_of_order_after_damage_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let mut first = record(10, 20);
        first[0] ^= 0x5a;
        let bytes = [first.clone(), record(11, 20), record(5, 20), record(12, 20)].concat();
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        let b = first.len() + record(11, 20).len();
        // 11 is within reach of the 9 before the file.
        let mut framer = Framer::new(0, 64, 4096);
        framer.after(Some(9));
        let seen = frames(&mut framer, &file);
        assert!(seen.contains(&format!("11 at {}", first.len())), "{seen:?}");
        assert!(!seen.iter().any(|f| f.starts_with("5 at")), "{seen:?}");
        assert!(seen.contains(&format!("damage {b}..{}", b + record(5, 20).len())));
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

    #[test]
    fn a_record_being_written_whose_value_holds_a_record_is_read_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let first = record(0, 10);
        let mut inner = Vec::new();
        encode(&mut inner, &[], None, 1, b"inner", 5);
        let mut value = inner.clone();
        value.extend_from_slice(&[b'w'; 40]);
        let mut second = Vec::new();
        encode(&mut second, &[], None, 1, &value, 1);
        // A reader in another process sees the write half done: the inner record and
        // some of the bytes after it.
        let half = second.len() - 20;
        std::fs::write(&path, [&first[..], &second[..half]].concat()).unwrap();
        let file = File::open(&path).unwrap();
        let mut framer = Framer::new(0, 64, 4096);
        let seen = frames(&mut framer, &file);
        assert_eq!(seen[0], "0 at 0");
        assert!(!seen.iter().any(|f| f.starts_with("5 at")), "{seen:?}");
        let writer = OpenOptions::new().append(true).open(&path).unwrap();
        (&writer).write_all(&second[half..]).unwrap();
        let at = first.len();
        assert_eq!(
            frames(&mut framer, &file),
            [
                format!("1 at {at}"),
                format!("Clean {{ at: {} }}", at + second.len())
            ]
        );
    }

    mod damaged_files {
        //! Files of records whose offsets rise with gaps (as a compacted history's do), with
        //! a few damaged records: every other record is framed, in order, and nothing else.

        use proptest::prelude::*;

        use super::*;

        #[derive(Debug, Clone)]
        struct Case {
            /// Offset gap before each record and its value's length and seed.
            records: Vec<(u64, usize, u8)>,
            /// (record, byte within it as a fraction of 256, mask) to flip.
            flips: Vec<(usize, u8, u8)>,
            buf_size: usize,
        }

        fn case() -> impl Strategy<Value = Case> {
            (
                prop::collection::vec(
                    (
                        prop_oneof![Just(1u64), 1..5u64, 1..2000u64],
                        0..300usize,
                        any::<u8>(),
                    ),
                    1..40,
                ),
                prop::collection::vec((any::<usize>(), any::<u8>(), 1..=255u8), 1..4),
                64..512usize,
            )
                .prop_map(|(records, flips, buf_size)| Case {
                    records,
                    flips,
                    buf_size,
                })
        }

        fn value(len: usize, seed: u8) -> Vec<u8> {
            let mut x = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x >> 24) as u8
                })
                .collect()
        }

        fn check(case: &Case) {
            let mut bytes = Vec::new();
            let mut records = Vec::new();
            let mut offset = 0u64;
            for &(gap, len, seed) in &case.records {
                offset += gap;
                let start = bytes.len();
                encode(&mut bytes, &[], None, offset, &value(len, seed), offset);
                records.push((offset, start, bytes.len()));
            }
            let original = bytes.clone();
            for &(which, at, mask) in &case.flips {
                let (_, from, to) = records[which % records.len()];
                let pos = from + (to - from) * usize::from(at) / 256;
                bytes[pos] ^= mask;
            }
            // Damaged: a byte differs. Two flips of one byte with one mask cancel out.
            let damaged: Vec<bool> = records
                .iter()
                .map(|&(_, from, to)| bytes[from..to] != original[from..to])
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t");
            std::fs::write(&path, &bytes).unwrap();
            let file = File::open(&path).unwrap();
            let mut framer = Framer::new(0, case.buf_size, 4096);
            let mut framed = Vec::new();
            loop {
                match framer.next(&file).unwrap() {
                    Frame::Record { view, pos, .. } => framed.push((view.offset, pos)),
                    Frame::Damaged { .. } => {}
                    Frame::End(_) => break,
                }
            }
            let intact: Vec<(u64, u64)> = records
                .iter()
                .zip(&damaged)
                .filter(|(_, d)| !**d)
                .map(|((o, from, _), _)| (*o, *from as u64))
                .collect();
            // Nothing but intact records, at their places, in order.
            for f in &framed {
                assert!(intact.contains(f), "framed {f:?}, not an intact record");
            }
            assert!(framed.windows(2).all(|w| w[0].0 < w[1].0), "{framed:?}");
            // Every intact record, but (a known limit) the last intact one when damage
            // follows it up to the end and its offset jumps from an intact one before.
            let last_intact = records.iter().zip(&damaged).rposition(|(_, d)| !*d);
            let damage_follows = last_intact.is_some_and(|i| i + 1 < records.len());
            for (i, (rec, d)) in records.iter().zip(&damaged).enumerate() {
                if *d || framed.contains(&(rec.0, rec.1 as u64)) {
                    continue;
                }
                let limit =
                    Some(i) == last_intact && damage_follows && framed.iter().any(|f| f.0 < rec.0);
                assert!(
                    limit,
                    "intact record {rec:?} not framed: {framed:?}, damaged {damaged:?}"
                );
            }
        }

        /// Found by the property below once in a few thousand cases: the model had called
        /// a record damaged that two flips of the same byte with the same mask left intact.
        #[test]
        fn flips_that_cancel_out_leave_the_record_intact_and_framed() {
            check(&Case {
                records: vec![(1, 10, 7), (1, 10, 9)],
                flips: vec![(0, 40, 0x10), (0, 40, 0x10)],
                buf_size: 64,
            });
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn every_intact_record_of_a_file_with_gaps_and_damage_is_framed_in_order(case in case()) {
                check(&case);
            }
        }
    }
}
