//! Typed views of commit log topics: events of one Rust type, encoded (and optionally
//! encrypted) on the way in and decoded on the way out.
//!
//! [`CommitLogExt::adapt`] turns any [`CommitLog`] into a [`LogAdapter`] for one topic and
//! one event type, given a [`Codec`]:
//! - [`Cbor`] writes events as CBOR;
//! - [`CborEncrypted`] writes them as CBOR sealed with AES-CTR under a key from a secret
//!   store (salt followed by ciphertext, as [`streambed::encrypt_struct`] does).
//!
//! [`LogAdapter::history`] replays the events present when it is called, which is how an
//! event-sourced service rebuilds its state at start-up.
//!
//! ```
//! # use std::{collections::HashMap, os::unix::fs::PermissionsExt, time::Duration};
//! use futures_util::StreamExt;
//! use serde::{Deserialize, Serialize};
//! use streambed::secret_store::{SecretData, SecretStore};
//! use streambed_codec::{CborEncrypted, CommitLogExt};
//! use streambed_confidant::FileSecretStore;
//! use streambed_logged::FileLog;
//!
//! #[derive(Debug, Deserialize, PartialEq, Serialize)]
//! enum Event {
//!     Reading { celsius: f32 },
//!     Reset,
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! # let dir = tempfile::tempdir().unwrap();
//! # let secrets = dir.path().join("secrets");
//! # std::fs::create_dir(&secrets).unwrap();
//! # std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700)).unwrap();
//! // Any secret store holds the key: 32 hex characters in the "value" field.
//! let ss = FileSecretStore::new(&secrets, &[7; 16], Duration::from_secs(60), 10, None);
//! let key = HashMap::from([("value".to_string(), "000102030405060708090a0b0c0d0e0f".to_string())]);
//! ss.create_secret("default/secrets.events.key", SecretData { data: key }).await.unwrap();
//!
//! let codec = CborEncrypted::new(&ss, "default/secrets.events.key").await.unwrap();
//! let events = FileLog::new(dir.path().join("log")).adapt::<Event>("events", codec);
//! events.produce(Event::Reading { celsius: 21.5 }).await.unwrap();
//! events.produce(Event::Reset).await.unwrap();
//!
//! // At start-up a service replays what is there to rebuild its state.
//! let replayed: Vec<Event> = events.history().await.collect().await;
//! assert_eq!(replayed, vec![Event::Reading { celsius: 21.5 }, Event::Reset]);
//! # });
//! ```

#![warn(missing_docs)]

use std::{marker::PhantomData, pin::Pin};

use futures_util::{stream, Stream, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use streambed::{
    commit_log::{Offset, ProducerRecord, Subscription, Topic},
    crypto::SALT_SIZE,
    seal,
    secret_store::SecretStore,
};

pub use streambed::commit_log::{CommitLog, ProducerError};

/// Encodes values of type `A` to bytes and back.
pub trait Codec<A> {
    /// Encodes a value; `None` when it cannot be encoded.
    fn encode(&self, item: A) -> Option<Vec<u8>>;
    /// Decodes a value, possibly transforming `bytes` in place (decryption does); `None`
    /// when the bytes are not a valid encoding.
    fn decode(&self, bytes: &mut [u8]) -> Option<A>;
}

/// Plain CBOR.
///
/// ```
/// use streambed_codec::{Cbor, Codec};
///
/// let mut bytes = Codec::<Vec<u8>>::encode(&Cbor, vec![1, 2, 3]).unwrap();
/// let back: Option<Vec<u8>> = Cbor.decode(&mut bytes);
/// assert_eq!(back, Some(vec![1, 2, 3]));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Cbor;

impl<A> Codec<A> for Cbor
where
    A: Serialize + DeserializeOwned + Send,
{
    fn encode(&self, item: A) -> Option<Vec<u8>> {
        to_cbor(&item)
    }

    fn decode(&self, bytes: &mut [u8]) -> Option<A> {
        ciborium::from_reader(&bytes[..]).ok()
    }
}

fn to_cbor<A: Serialize>(item: &A) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    ciborium::into_writer(item, &mut bytes).ok()?;
    Some(bytes)
}

/// CBOR encrypted with AES-128-CTR under a key kept in a secret store.
///
/// Each value is [sealed](streambed::seal): a fresh random salt followed by the
/// ciphertext. The key is read once, when the codec is made: make a new codec after
/// rotating the key. `Debug` never shows the key.
#[derive(Clone, Debug)]
pub struct CborEncrypted {
    key: seal::Key,
}

impl CborEncrypted {
    /// Makes a codec with the key in the `"value"` field of the secret at `secret_path`
    /// (32 hex characters). `None` when the secret is absent, unreadable, or not such a key.
    ///
    /// ```
    /// use streambed::secret_store::SecretStore;
    /// use streambed_codec::CborEncrypted;
    ///
    /// async fn codec(ss: &impl SecretStore) -> Option<CborEncrypted> {
    ///     CborEncrypted::new(ss, "default/secrets.events.key").await
    /// }
    /// ```
    pub async fn new<S>(secret_store: &S, secret_path: &str) -> Option<Self>
    where
        S: SecretStore,
    {
        let secret = streambed::get_secret_value(secret_store, secret_path).await?;
        let key = seal::Key::from_hex(&secret).ok()?;
        Some(Self { key })
    }
}

impl<A> Codec<A> for CborEncrypted
where
    A: Serialize + DeserializeOwned + Send,
{
    fn encode(&self, item: A) -> Option<Vec<u8>> {
        // Serialize after room for the salt, so the value is sealed in place in the one
        // buffer that is returned.
        let mut bytes = vec![0; SALT_SIZE];
        ciborium::into_writer(&item, &mut bytes).ok()?;
        self.key
            .seal_in_place(&mut bytes, &mut rand::thread_rng())
            .ok()?;
        Some(bytes)
    }

    fn decode(&self, bytes: &mut [u8]) -> Option<A> {
        let plain = self.key.open(bytes).ok()?;
        ciborium::from_reader(&plain[..]).ok()
    }
}

/// A commit log seen as a topic of values of type `A`.
#[derive(Debug)]
pub struct LogAdapter<L, C, A> {
    commit_log: L,
    codec: C,
    topic: Topic,
    marker: PhantomData<fn() -> A>,
}

/// Adds [`adapt`](CommitLogExt::adapt) to every [`CommitLog`].
pub trait CommitLogExt
where
    Self: CommitLog + Sized,
{
    /// Views `topic` of this log as values of type `A`, encoded with `codec`.
    ///
    /// ```
    /// use streambed::commit_log::CommitLog;
    /// use streambed_codec::{Cbor, CommitLogExt};
    ///
    /// async fn record_reading<L: CommitLog>(log: L, celsius: f32) -> bool {
    ///     let readings = log.adapt::<f32>("readings", Cbor);
    ///     readings.produce(celsius).await.is_ok()
    /// }
    /// ```
    fn adapt<A>(
        self,
        topic: impl Into<Topic>,
        codec: impl Codec<A>,
    ) -> LogAdapter<Self, impl Codec<A>, A> {
        LogAdapter {
            commit_log: self,
            codec,
            topic: topic.into(),
            marker: PhantomData,
        }
    }
}

impl<L> CommitLogExt for L where L: CommitLog {}

impl<L, C, A> LogAdapter<L, C, A>
where
    L: CommitLog,
    C: Codec<A>,
    A: 'static,
{
    /// Encodes `item` and appends it to the topic with key 0, answering its offset.
    /// A value the codec cannot encode is [`ProducerError::CannotProduce`].
    pub async fn produce(&self, item: A) -> Result<Offset, ProducerError> {
        let value = self
            .codec
            .encode(item)
            .ok_or(ProducerError::CannotProduce)?;
        let record = ProducerRecord {
            topic: self.topic.clone(),
            headers: Vec::new(),
            timestamp: None,
            key: 0,
            value,
            partition: 0,
        };
        self.commit_log
            .produce(record)
            .await
            .map(|produced| produced.offset)
    }

    /// The values of the topic from its beginning up to its end at the time of the call;
    /// values appended afterwards are not included, so the stream ends. Records that do not
    /// decode are skipped.
    pub async fn history(&self) -> Pin<Box<impl Stream<Item = A> + '_>> {
        let end = self
            .commit_log
            .offsets(self.topic.clone(), 0)
            .await
            .map(|offsets| offsets.end_offset);
        let records = end.map(|_| {
            let subscriptions = vec![Subscription {
                topic: self.topic.clone(),
            }];
            self.commit_log
                .scoped_subscribe("history", Vec::new(), subscriptions, None)
        });
        let codec = &self.codec;
        Box::pin(stream::unfold(records, move |records| async move {
            let mut records = records?;
            let end = end?;
            while let Some(mut record) = records.next().await {
                if record.offset > end {
                    return None;
                }
                let last = record.offset == end;
                if let Some(item) = codec.decode(&mut record.value) {
                    return Some((item, (!last).then_some(records)));
                }
                if last {
                    return None;
                }
            }
            None
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f";

    fn codec() -> CborEncrypted {
        CborEncrypted {
            key: seal::Key::from_hex(KEY_HEX).unwrap(),
        }
    }

    #[test]
    fn a_value_sealed_by_encrypt_struct_decodes() {
        let mut sealed = streambed::encrypt_struct_with_secret(
            KEY_HEX.to_string(),
            |item: &(u32, String)| to_cbor(item).ok_or(()),
            rand::thread_rng,
            &(7, "on".to_string()),
        )
        .unwrap();
        assert_eq!(codec().decode(&mut sealed), Some((7u32, "on".to_string())));
    }

    #[test]
    fn an_encoded_value_opens_with_decrypt_buf() {
        let mut sealed = Codec::<u32>::encode(&codec(), 21).unwrap();
        let opened = streambed::decrypt_buf_with_secret(KEY_HEX.to_string(), &mut sealed, |b| {
            ciborium::from_reader::<u32, _>(b)
        });
        assert_eq!(opened, Some(21));
    }

    #[test]
    fn input_shorter_than_a_salt_decodes_to_none() {
        for len in 0..SALT_SIZE {
            assert_eq!(Codec::<u32>::decode(&codec(), &mut vec![0; len]), None);
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", codec());
        assert!(!shown.contains("0102"), "{shown}");
    }
}
