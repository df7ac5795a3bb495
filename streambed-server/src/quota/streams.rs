//! Consumer streams open per client.
//!
//! Each open stream holds a connection slot, a task and a subscription; without a cap one
//! client could take every slot of `max_connections` and lock every other client out. A
//! stream's place is held by a [`StreamPermit`] that the stream's task owns, so it is given
//! back however the stream ends: the log ends it, the client disconnects, the write timeout
//! cuts a client that stopped reading, or the server shuts down.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::client::ClientKey;

/// The counts of open streams, by client; a client without any has no entry, so the table
/// never holds more entries than there are open streams.
#[derive(Debug)]
pub(crate) struct StreamCounts {
    max: usize,
    open: Arc<Mutex<HashMap<ClientKey, usize>>>,
}

/// A client's place among the open streams, given back when dropped.
#[derive(Debug)]
pub(crate) struct StreamPermit {
    client: ClientKey,
    open: Arc<Mutex<HashMap<ClientKey, usize>>>,
}

impl StreamCounts {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// A permit for one more stream of `client`, or `None` when it already has the most.
    pub(crate) fn open(&self, client: &ClientKey) -> Option<StreamPermit> {
        let mut open = super::lock(&self.open);
        let count = open.entry(client.clone()).or_insert(0);
        if *count >= self.max {
            if *count == 0 {
                open.remove(client);
            }
            return None;
        }
        *count += 1;
        Some(StreamPermit {
            client: client.clone(),
            open: self.open.clone(),
        })
    }

    /// The most streams a client may have open.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// How many streams `client` has open.
    #[cfg(test)]
    pub(crate) fn open_by(&self, client: &ClientKey) -> usize {
        super::lock(&self.open).get(client).copied().unwrap_or(0)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = super::lock(&self.open);
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_may_hold_at_most_max_streams_and_gets_each_back_when_it_ends() {
        let counts = StreamCounts::new(2);
        let alice = ClientKey::Principal(crate::principal::Principal::new("alice"));
        let bob = ClientKey::Principal(crate::principal::Principal::new("bob"));
        let first = counts.open(&alice).unwrap();
        let _second = counts.open(&alice).unwrap();
        assert!(counts.open(&alice).is_none());
        assert!(
            counts.open(&bob).is_some(),
            "one client's streams do not count for another"
        );
        drop(first);
        assert_eq!(counts.open_by(&alice), 1);
        assert!(counts.open(&alice).is_some());
    }

    #[test]
    fn clients_without_streams_leave_no_entry() {
        let counts = StreamCounts::new(1);
        let client = ClientKey::Address("192.0.2.1".parse().unwrap());
        drop(counts.open(&client).unwrap());
        assert!(super::super::lock(&counts.open).is_empty());
        let none = StreamCounts::new(0);
        assert!(none.open(&client).is_none());
        assert!(super::super::lock(&none.open).is_empty());
    }
}
