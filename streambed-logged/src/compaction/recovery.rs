//! Bringing a topic's history files to a consistent state after a compaction was
//! interrupted at any step. Its own module: it is the one place that knows how every
//! intermediate state of a compaction is to be resolved.

use std::{fs, io};

use log::{info, warn};

use crate::{
    damage::DamageLog,
    files::{first_offset, last_offset, open_existing, sync_dir, FileKind, OpenFile},
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
///   committed it, and replaces the history.
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
        let ancient_last = last_offset(paths, &ancient, buf_size, limit, damage)?;
        let history = open_existing(&paths.history)?.map(|file| OpenFile {
            kind: FileKind::History,
            file,
        });
        let (history_first, history_last) = match &history {
            Some(history) => (
                first_offset(&history.file, limit)?,
                last_offset(paths, history, buf_size, limit, damage)?,
            ),
            None => (None, None),
        };
        match (ancient_last, history_first) {
            (None, _) => {
                fs::remove_file(&paths.ancient_history)?;
                changed = true;
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
            (Some(a), _) if history_last.is_none_or(|h| h <= a) => {
                info!(
                    "Topic files {:?}: completing a committed compaction",
                    paths.history
                );
                fs::rename(&paths.ancient_history, &paths.history)?;
                changed = true;
            }
            _ => {
                // The history holds records beyond the ancient history but its start
                // cannot be read: keep both rather than guess. Readers skip offsets they
                // have already seen, so nothing is read twice.
                warn!(
                    "Topic files {:?}: cannot read the start of the history; keeping it and \
                     the ancient history",
                    paths.history
                );
            }
        }
    }
    if changed {
        sync_dir(&paths.root)?;
    }
    Ok(())
}
