//! The forwarder's position: per source topic and partition, the offset of the last
//! record the destination acknowledged. It is what makes a restart resume rather than
//! start over, so it is written atomically and flushed to disk (`streambed::atomic_file`)
//! after every acknowledged batch, and a file that cannot be read is an error, never
//! taken for "nothing forwarded yet".
//!
//! The file is text, one line per partition after a first line naming the format:
//! `<offset> <partition> <topic>`.

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
};

use streambed::{
    atomic_file::{self, FileMode},
    commit_log::{ConsumerOffset, Partition, Topic},
};

use crate::error::ForwardError;

const FORMAT_LINE: &str = "streambed-forward positions 1";

/// Where forwarding of each partition has got to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions {
    last: BTreeMap<(Topic, Partition), u64>,
}

impl Positions {
    /// Records that the destination holds everything up to `offset` of a partition.
    pub fn advance(&mut self, topic: &Topic, partition: Partition, offset: u64) {
        self.last.insert((topic.clone(), partition), offset);
    }

    /// The offset of the last record forwarded from a partition, if any.
    pub fn last(&self, topic: &Topic, partition: Partition) -> Option<u64> {
        self.last.get(&(topic.clone(), partition)).copied()
    }

    /// The positions as the offsets a subscription resumes after.
    pub fn consumer_offsets(&self) -> Vec<ConsumerOffset> {
        self.last
            .iter()
            .map(|((topic, partition), offset)| ConsumerOffset {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect()
    }

    fn render(&self) -> String {
        let mut text = format!("{FORMAT_LINE}\n");
        for ((topic, partition), offset) in &self.last {
            text.push_str(&format!("{offset} {partition} {topic}\n"));
        }
        text
    }

    fn parse(text: &str, path: &Path) -> Result<Self, ForwardError> {
        let bad = |line: usize, reason: &str| ForwardError::BadPositions {
            path: path.to_owned(),
            line,
            reason: reason.to_owned(),
        };
        let mut lines = text.lines();
        if lines.next() != Some(FORMAT_LINE) {
            return Err(bad(1, "the first line does not name the positions format"));
        }
        let mut positions = Positions::default();
        for (index, line) in lines.enumerate() {
            let number = index + 2;
            let mut fields = line.splitn(3, ' ');
            let (Some(offset), Some(partition), Some(topic)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad(number, "expected `<offset> <partition> <topic>`"));
            };
            let offset = offset
                .parse()
                .map_err(|_| bad(number, "the offset is not a number"))?;
            let partition = partition
                .parse()
                .map_err(|_| bad(number, "the partition is not a number"))?;
            positions.advance(&Topic::from(topic), partition, offset);
        }
        Ok(positions)
    }
}

/// The file holding a forwarder's positions.
#[derive(Clone, Debug)]
pub struct PositionFile {
    path: PathBuf,
}

impl PositionFile {
    /// The positions kept at `path` (created on the first save; its directory must exist).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where the positions are kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The positions stored, or none when no file is there yet.
    pub fn load(&self) -> Result<Positions, ForwardError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Positions::parse(&text, &self.path),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Positions::default()),
            Err(source) => Err(ForwardError::ReadPositions {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Replaces the stored positions, durably: once this returns, a power cut keeps them.
    pub fn save(&self, positions: &Positions) -> Result<(), ForwardError> {
        atomic_file::replace(&self.path, positions.render().as_bytes(), FileMode::Default)
            .map_err(ForwardError::WritePositions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_survive_a_save_and_a_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = PositionFile::new(dir.path().join("positions"));
        assert_eq!(file.load().unwrap(), Positions::default());
        let mut positions = Positions::default();
        positions.advance(&Topic::from("farm:readings"), 0, 41);
        positions.advance(&Topic::from("alerts"), 3, 7);
        positions.advance(&Topic::from("farm:readings"), 0, 42);
        file.save(&positions).unwrap();
        let loaded = file.load().unwrap();
        assert_eq!(loaded, positions);
        assert_eq!(loaded.last(&Topic::from("farm:readings"), 0), Some(42));
        assert_eq!(loaded.consumer_offsets().len(), 2);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_its_line_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("positions");
        std::fs::write(&path, format!("{FORMAT_LINE}\n12 0 a\nx 0 b\n")).unwrap();
        let error = PositionFile::new(&path).load().unwrap_err();
        assert!(
            matches!(&error, ForwardError::BadPositions { line: 3, .. }),
            "{error}"
        );
        std::fs::write(&path, "").unwrap();
        assert!(PositionFile::new(&path).load().is_err());
    }
}
