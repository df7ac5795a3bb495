//! Bringing a topic's history files to a consistent state after a compaction was
//! interrupted at any step. Its own module: it is the one place that knows how every
//! intermediate state of a compaction is to be resolved.

use std::{fs, io};

use log::{info, warn};
use streambed::atomic_file;

use crate::{
    damage::DamageLog,
    files::{file_end, first_offset, last_offset, open_existing, FileKind, OpenFile},
    frame::Tail,
    topic_name::TopicPaths,
};

/// Brings the history files to a state that reads correctly after a compaction was
/// interrupted at any step (see [`crate::compaction`] for the steps):
/// * a work file is unfinished or unused: it goes, and the compaction runs again;
/// * an ancient history beside a history that starts after it: aged, not yet compacted;
///   both stay and read in order, and the compaction runs again;
/// * a history that starts inside the ancient history but ends after it: the history is
///   the compacted result, which begins with what the ancient history kept; the ancient
///   history goes;
/// * an ancient history that reaches the end of the history: it is the compacted result
///   (a compaction always keeps the last record of its input) as earlier versions
///   committed it, and replaces the history;
/// * a file that is not empty but holds no intact record (damage, or records over a since
///   lowered `max_record_size`) is never deleted or replaced: nothing proves its offsets
///   covered.
pub(crate) fn recover_history(
    paths: &TopicPaths,
    buf_size: usize,
    limit: usize,
    damage: &DamageLog,
) -> io::Result<()> {
    let mut changed = false;
    match fs::remove_file(&paths.work) {
        Ok(()) => {
            info!("Removed the unfinished compaction file {:?}", paths.work);
            changed = true;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(ancient) = open_existing(&paths.ancient_history)? {
        let ancient = OpenFile {
            kind: FileKind::AncientHistory,
            file: ancient,
        };
        let ancient_empty = ancient.file.metadata()?.len() == 0;
        let ancient_last = last_offset(paths, &ancient, buf_size, limit, damage)?;
        let history = open_existing(&paths.history)?.map(|file| OpenFile {
            kind: FileKind::History,
            file,
        });
        let (history_first, history_end) = match &history {
            Some(history) => (
                first_offset(&history.file, limit)?,
                Some(file_end(paths, history, None, buf_size, limit, damage)?),
            ),
            None => (None, None),
        };
        let history_last = history_end.and_then(|end| end.last);
        let history_empty = match &history {
            Some(history) => history.file.metadata()?.len() == 0,
            None => true,
        };
        // Replaceable by the ancient history: empty, or every offset it may hold is at
        // most `a` (no bytes after its last record that could hold more).
        let history_covered = |a| {
            history_empty
                || history_end.is_some_and(|end| {
                    end.last.is_some_and(|h| h <= a) && matches!(end.tail, Tail::Clean { .. })
                })
        };
        match (ancient_last, history_first) {
            (None, _) if ancient_empty => {
                fs::remove_file(&paths.ancient_history)?;
                changed = true;
            }
            (None, _) => {
                // Damaged bytes, or records over a since lowered `max_record_size`: nothing
                // proves them covered, so they stay, read (or skipped) before the history.
                warn!(
                    "Topic files {:?}: no intact record in the ancient history; keeping it",
                    paths.ancient_history
                );
            }
            (Some(a), Some(h)) if a < h => {
                info!(
                    "Topic files {:?}: aged, compaction pending",
                    paths.ancient_history
                );
            }
            (Some(a), Some(_)) if history_last > Some(a) => {
                info!(
                    "Topic files {:?}: removing the ancient history a committed compaction \
                     replaced",
                    paths.ancient_history
                );
                fs::remove_file(&paths.ancient_history)?;
                changed = true;
            }
            (Some(a), _) if history_covered(a) => {
                info!(
                    "Topic files {:?}: completing a committed compaction",
                    paths.history
                );
                fs::rename(&paths.ancient_history, &paths.history)?;
                changed = true;
            }
            _ => {
                // The history holds records beyond the ancient history, or bytes that
                // cannot be read: keep both rather than guess. Readers skip offsets they
                // have already seen, so nothing is read twice.
                warn!(
                    "Topic files {:?}: cannot tell what the history holds; keeping it and \
                     the ancient history",
                    paths.history
                );
            }
        }
    }
    if changed {
        atomic_file::sync_dir(&paths.root)?;
    }
    Ok(())
}
