//! Topics created per client and in total.
//!
//! A produce to a topic without records creates it, and every topic costs the log files
//! and memory for as long as it exists, so one client could otherwise fill a router's disk
//! with empty-ish topics. The server remembers the topics it has seen produced to (which
//! is also what lets a produce to a known topic skip asking the log), at most the total
//! quota of them, and the number each client created since the server started.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use streambed::commit_log::Topic;

use crate::client::ClientKey;

/// Why a topic was not created.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub(crate) enum TopicRefused {
    #[error("{client} may create at most {max} topics and has; topic {topic} does not exist")]
    ByClient {
        client: ClientKey,
        max: usize,
        topic: Topic,
    },
    #[error("the server holds its maximum of {max} topics; topic {topic} does not exist")]
    Total { max: usize, topic: Topic },
}

#[derive(Debug, Default)]
struct Known {
    topics: HashSet<Topic>,
    created_by: HashMap<ClientKey, usize>,
}

/// The topics the server knows of and who created them.
#[derive(Debug)]
pub(crate) struct TopicCounts {
    per_client: Option<usize>,
    total: Option<usize>,
    known: Arc<Mutex<Known>>,
}

/// A topic counted as created by a client, which the produce that created it gives back
/// (with [`Creation::cancel`]) if it appended nothing after all.
#[derive(Debug)]
pub(crate) struct Creation {
    topic: Topic,
    client: ClientKey,
    known: Arc<Mutex<Known>>,
}

impl TopicCounts {
    pub(crate) fn new(per_client: Option<usize>, total: Option<usize>) -> Self {
        Self {
            per_client,
            total,
            known: Arc::default(),
        }
    }

    /// Whether topics need counting at all.
    pub(crate) fn enabled(&self) -> bool {
        self.per_client.is_some() || self.total.is_some()
    }

    pub(crate) fn is_known(&self, topic: &Topic) -> bool {
        super::lock(&self.known).topics.contains(topic)
    }

    /// Remembers a topic the log already holds, while there is room: the set never grows
    /// beyond the total quota, and a topic not remembered is only asked about again.
    pub(crate) fn existing(&self, topic: &Topic) {
        let mut known = super::lock(&self.known);
        if self.total.is_none_or(|max| known.topics.len() < max) {
            known.topics.insert(topic.clone());
        }
    }

    /// Counts `topic`, which the log does not hold, as created by `client`; `Ok(None)` when
    /// another request created it meanwhile.
    pub(crate) fn create(
        &self,
        topic: &Topic,
        client: &ClientKey,
    ) -> Result<Option<Creation>, TopicRefused> {
        let mut known = super::lock(&self.known);
        if known.topics.contains(topic) {
            return Ok(None);
        }
        if let Some(max) = self.total.filter(|max| known.topics.len() >= *max) {
            return Err(TopicRefused::Total {
                max,
                topic: topic.clone(),
            });
        }
        let created = known.created_by.get(client).copied().unwrap_or(0);
        if let Some(max) = self.per_client.filter(|max| created >= *max) {
            return Err(TopicRefused::ByClient {
                client: client.clone(),
                max,
                topic: topic.clone(),
            });
        }
        known.topics.insert(topic.clone());
        *known.created_by.entry(client.clone()).or_insert(0) += 1;
        Ok(Some(Creation {
            topic: topic.clone(),
            client: client.clone(),
            known: self.known.clone(),
        }))
    }

    /// How many topics the server remembers.
    #[cfg(test)]
    pub(crate) fn known(&self) -> usize {
        super::lock(&self.known).topics.len()
    }
}

impl Creation {
    /// Forgets the creation: the produce that made it appended no record.
    pub(crate) fn cancel(self) {
        let mut known = super::lock(&self.known);
        known.topics.remove(&self.topic);
        if let Some(count) = known.created_by.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                known.created_by.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str) -> ClientKey {
        ClientKey::Principal(crate::principal::Principal::new(name))
    }

    #[test]
    fn a_client_may_create_at_most_its_quota_of_topics() {
        let counts = TopicCounts::new(Some(2), None);
        let alice = client("alice");
        assert!(counts.create(&Topic::from("a"), &alice).unwrap().is_some());
        assert!(counts.create(&Topic::from("b"), &alice).unwrap().is_some());
        assert!(matches!(
            counts.create(&Topic::from("c"), &alice),
            Err(TopicRefused::ByClient { max: 2, .. })
        ));
        // A topic that exists costs nothing, and another client has its own quota.
        assert!(counts.create(&Topic::from("a"), &alice).unwrap().is_none());
        assert!(counts
            .create(&Topic::from("c"), &client("bob"))
            .unwrap()
            .is_some());
    }

    #[test]
    fn the_total_caps_creations_and_the_topics_remembered() {
        let counts = TopicCounts::new(None, Some(2));
        counts.existing(&Topic::from("old"));
        assert!(counts
            .create(&Topic::from("a"), &client("x"))
            .unwrap()
            .is_some());
        assert!(matches!(
            counts.create(&Topic::from("b"), &client("y")),
            Err(TopicRefused::Total { max: 2, .. })
        ));
        counts.existing(&Topic::from("older"));
        assert_eq!(counts.known(), 2);
    }

    #[test]
    fn a_cancelled_creation_gives_its_place_back() {
        let counts = TopicCounts::new(Some(1), Some(1));
        let alice = client("alice");
        counts
            .create(&Topic::from("a"), &alice)
            .unwrap()
            .unwrap()
            .cancel();
        assert!(!counts.is_known(&Topic::from("a")));
        assert!(counts.create(&Topic::from("b"), &alice).unwrap().is_some());
    }
}
