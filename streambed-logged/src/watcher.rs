//! Learning of appends made by other processes. On Linux, one inotify watch on the root
//! folder per `FileLog` wakes the readers of the topic whose file changed; elsewhere, or
//! when inotify is unavailable, readers look at their files every
//! [`POLL_INTERVAL`](crate::cursor::POLL_INTERVAL).

use std::sync::Arc;

use crate::shared::Inner;

/// How long the watcher lets events accumulate between two reads.
#[cfg(target_os = "linux")]
const COALESCE: std::time::Duration = std::time::Duration::from_millis(1);

/// The state of a `FileLog`'s watcher.
#[derive(Default)]
pub(crate) enum Watcher {
    /// No subscription asked for one yet.
    #[default]
    NotStarted,
    /// Events are arriving.
    #[cfg(target_os = "linux")]
    Running(inotify::Watches, inotify::WatchDescriptor),
    /// Cannot watch: readers poll.
    Failed,
}

impl Watcher {
    pub(crate) fn is_live(&self) -> bool {
        !matches!(self, Watcher::NotStarted | Watcher::Failed)
    }

    /// Stops the watch so that the watching thread ends.
    pub(crate) fn stop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Watcher::Running(watches, wd) = std::mem::take(self) {
            let mut watches = watches;
            let _ = watches.remove(wd);
        }
    }
}

/// Starts watching the root folder of `inner` unless that was already tried.
pub(crate) fn ensure_started(inner: &Arc<Inner>) {
    let mut watcher = inner.lock_watcher();
    if matches!(*watcher, Watcher::NotStarted) {
        *watcher = start(inner);
    }
}

#[cfg(not(target_os = "linux"))]
fn start(_inner: &Arc<Inner>) -> Watcher {
    Watcher::Failed
}

#[cfg(target_os = "linux")]
fn start(inner: &Arc<Inner>) -> Watcher {
    use inotify::{EventMask, Inotify, WatchMask};
    use log::warn;

    let _ = crate::create::dir_all(&inner.root, inner.config().modes);
    let started = Inotify::init().and_then(|inotify| {
        let mut watches = inotify.watches();
        let wd = watches.add(
            &inner.root,
            WatchMask::MODIFY
                | WatchMask::CREATE
                | WatchMask::MOVED_TO
                | WatchMask::MOVED_FROM
                | WatchMask::DELETE,
        )?;
        Ok((inotify, watches, wd))
    });
    let (mut inotify, watches, wd) = match started {
        Ok(s) => s,
        Err(e) => {
            warn!("Cannot watch {:?} ({e}); readers will poll", inner.root);
            return Watcher::Failed;
        }
    };
    let weak = Arc::downgrade(inner);
    let spawned = std::thread::Builder::new()
        .name("logged-watch".to_string())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut buffer = [0u8; 4096];
            loop {
                let events = match inotify.read_events_blocking(&mut buffer) {
                    Ok(events) => events,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        warn!("Watching the commit log failed ({e}); readers will poll");
                        break;
                    }
                };
                let Some(inner) = weak.upgrade() else { break };
                let mut stopped = false;
                for event in events {
                    if event.mask.contains(EventMask::IGNORED) {
                        stopped = true;
                    } else if event.mask.contains(EventMask::Q_OVERFLOW) {
                        inner.wake_all();
                    } else if let Some(name) = event.name.and_then(|n| n.to_str()) {
                        inner.wake_remote(crate::topic_name::topic_of_file_name(name));
                    }
                }
                drop(inner);
                if stopped {
                    break;
                }
                // Every append by a writer of this process raises an event too; pausing a
                // moment lets the kernel merge a burst of them into one, bounding the
                // wake-ups to about a thousand a second at the cost of up to 1 ms latency.
                std::thread::sleep(COALESCE);
            }
            if let Some(inner) = weak.upgrade() {
                let mut watcher = inner.lock_watcher();
                *watcher = Watcher::Failed;
                // Readers asleep on a notification must start polling.
                drop(watcher);
                inner.wake_all();
            }
        });
    match spawned {
        Ok(_) => Watcher::Running(watches, wd),
        Err(e) => {
            warn!("Cannot start the commit log watcher ({e}); readers will poll");
            Watcher::Failed
        }
    }
}
