//! `ContentSealer`: seals and opens content values with per-owner data keys, caching the keys
//! per instance so a returning user's turn on a warm instance costs no key-service call.
//!
//! Key-service calls (KMS in Lambda) per chat turn, counted by the tests below:
//!
//! | instance and owner | calls |
//! |---|---|
//! | warm, owner active here within 5 min | 0 |
//! | cold (or key expired), new conversation | 1 `GenerateDataKey` |
//! | cold, existing conversation | 1 `GenerateDataKey` + 1 `Decrypt` per distinct data key among the title and the context messages read (usually 1; up to 2 when the two reads of a turn miss the cache at the same moment) |
//!
//! Keys live at most `CACHE_MAX_AGE_SECS` from when this instance got them and at most
//! `CACHE_MAX_KEYS` are held; the owner's current key is also the cached key for its own
//! wrapped form, so reading back what this instance wrote needs no call either.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{
    ContentContext, ContentKeys, DataKey, PlainKey, SealError, decode, open_v1, parse_v1, seal_v1,
};
use crate::{Clock, Timestamp};

/// At most this many plaintext data keys are held per instance.
pub const CACHE_MAX_KEYS: usize = 1000;
/// A data key is used and cached for at most this long after this instance got it.
pub const CACHE_MAX_AGE_SECS: i64 = 300;

struct Entry {
    key: Arc<PlainKey>,
    got_at: Timestamp,
    used_at: Timestamp,
}

#[derive(Default)]
struct Cache {
    /// Plaintext keys by context and wrapped form: the context is part of the key so a wrapped
    /// key cached for one owner is never handed to another.
    keys: HashMap<(ContentContext, Vec<u8>), Entry>,
    /// The wrapped form of each context's current key for new writes.
    current: HashMap<ContentContext, Vec<u8>>,
}

impl Cache {
    fn get(
        &mut self,
        ctx: &ContentContext,
        wrapped: &[u8],
        now: Timestamp,
    ) -> Option<Arc<PlainKey>> {
        let id = (ctx.clone(), wrapped.to_vec());
        let fresh = self
            .keys
            .get(&id)
            .is_some_and(|e| now.secs() - e.got_at.secs() < CACHE_MAX_AGE_SECS && e.got_at <= now);
        if !fresh {
            self.keys.remove(&id);
            // An expired key stops being the owner's key for new writes even if a read
            // decrypts it again: write keys never outlive the age bound.
            if self
                .current
                .get(ctx)
                .is_some_and(|w| w.as_slice() == wrapped)
            {
                self.current.remove(ctx);
            }
            return None;
        }
        let entry = self.keys.get_mut(&id)?;
        entry.used_at = now;
        Some(entry.key.clone())
    }

    fn current(
        &mut self,
        ctx: &ContentContext,
        now: Timestamp,
    ) -> Option<(Arc<PlainKey>, Vec<u8>)> {
        let wrapped = self.current.get(ctx)?.clone();
        match self.get(ctx, &wrapped, now) {
            Some(key) => Some((key, wrapped)),
            None => {
                self.current.remove(ctx);
                None
            }
        }
    }

    fn insert(&mut self, ctx: &ContentContext, wrapped: &[u8], key: Arc<PlainKey>, now: Timestamp) {
        if self.keys.len() < CACHE_MAX_KEYS {
            self.put(ctx, wrapped, key, now);
            return;
        }
        self.keys
            .retain(|_, e| now.secs() - e.got_at.secs() < CACHE_MAX_AGE_SECS);
        while self.keys.len() >= CACHE_MAX_KEYS {
            let Some(oldest) = self
                .keys
                .iter()
                .min_by_key(|(_, e)| e.used_at)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            self.keys.remove(&oldest);
        }
        let keys = &self.keys;
        self.current
            .retain(|c, w| keys.contains_key(&(c.clone(), w.clone())));
        self.put(ctx, wrapped, key, now);
    }

    fn put(&mut self, ctx: &ContentContext, wrapped: &[u8], key: Arc<PlainKey>, now: Timestamp) {
        self.keys.insert(
            (ctx.clone(), wrapped.to_vec()),
            Entry {
                key,
                got_at: now,
                used_at: now,
            },
        );
    }
}

/// Seals and opens content for an owner and item, with the instance's data-key cache.
pub struct ContentSealer {
    keys: Arc<dyn ContentKeys>,
    clock: Arc<dyn Clock>,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for ContentSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentSealer")
    }
}

impl ContentSealer {
    pub fn new(keys: Arc<dyn ContentKeys>, clock: Arc<dyn Clock>) -> Self {
        Self {
            keys,
            clock,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn with_cache<T>(&self, f: impl FnOnce(&mut Cache) -> T) -> T {
        // A poisoned lock only means another request panicked mid-update; the map is still a
        // valid cache, so keep using it.
        let mut guard = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Seals `plaintext` for `ctx` and the item named by `item` (e.g. a conversation id and a
    /// message sequence number) under the context's current data key.
    pub async fn seal(
        &self,
        ctx: &ContentContext,
        item: &[&str],
        plaintext: &str,
    ) -> Result<String, SealError> {
        let now = self.clock.now();
        let current = self.with_cache(|c| c.current(ctx, now));
        let (key, wrapped) = match current {
            Some(found) => found,
            None => {
                let DataKey { plaintext, wrapped } = self.keys.generate(ctx).await?;
                let key = Arc::new(plaintext);
                self.with_cache(|c| {
                    c.insert(ctx, &wrapped, key.clone(), now);
                    c.current.insert(ctx.clone(), wrapped.clone());
                });
                (key, wrapped)
            }
        };
        seal_v1(&key, &wrapped, &ctx.aad(item), plaintext.as_bytes())
    }

    /// Opens what `seal` wrote for the same `ctx` and `item`; legacy plaintext (written before
    /// sealing) comes back as it is. A value for another owner, purpose or item is `Corrupt`.
    pub async fn open(
        &self,
        ctx: &ContentContext,
        item: &[&str],
        stored: &str,
    ) -> Result<String, SealError> {
        let Some(bytes) = decode(stored)? else {
            return Ok(stored.to_owned());
        };
        let envelope = parse_v1(&bytes)?;
        let now = self.clock.now();
        let cached = self.with_cache(|c| c.get(ctx, envelope.wrapped, now));
        let key = match cached {
            Some(key) => key,
            None => {
                let key = Arc::new(self.keys.unwrap(envelope.wrapped, ctx).await?);
                self.with_cache(|c| c.insert(ctx, envelope.wrapped, key.clone(), now));
                key
            }
        };
        open_v1(&key, &envelope, &ctx.aad(item))
    }

    /// How many plaintext keys the cache holds now (for tests and metrics).
    pub fn cached_keys(&self) -> usize {
        self.with_cache(|c| c.keys.len())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::super::{KeyError, LocalContentKeys, PURPOSE_CHAT};
    use super::*;
    use crate::ManualClock;
    use async_trait::async_trait;

    /// Counts the calls that would reach KMS.
    struct Counting {
        inner: LocalContentKeys,
        generated: AtomicUsize,
        unwrapped: AtomicUsize,
    }

    #[async_trait]
    impl ContentKeys for Counting {
        async fn generate(&self, c: &ContentContext) -> Result<DataKey, KeyError> {
            self.generated.fetch_add(1, Ordering::SeqCst);
            self.inner.generate(c).await
        }
        async fn unwrap(&self, w: &[u8], c: &ContentContext) -> Result<PlainKey, KeyError> {
            self.unwrapped.fetch_add(1, Ordering::SeqCst);
            self.inner.unwrap(w, c).await
        }
    }

    impl Counting {
        fn calls(&self) -> (usize, usize) {
            (
                self.generated.load(Ordering::SeqCst),
                self.unwrapped.load(Ordering::SeqCst),
            )
        }
    }

    fn setup() -> (Arc<Counting>, ManualClock, ContentSealer) {
        let keys = Arc::new(Counting {
            inner: LocalContentKeys::parse("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
                .unwrap(),
            generated: AtomicUsize::new(0),
            unwrapped: AtomicUsize::new(0),
        });
        let clock = ManualClock::new(Timestamp(1_800_000_000));
        let sealer = ContentSealer::new(keys.clone(), Arc::new(clock.clone()));
        (keys, clock, sealer)
    }

    fn ctx(owner: &str) -> ContentContext {
        ContentContext::new(PURPOSE_CHAT, owner)
    }

    #[tokio::test]
    async fn a_warm_instance_seals_and_reopens_a_returning_owners_content_without_key_calls() {
        let (keys, clock, sealer) = setup();
        let alice = ctx("user#alice");
        let first = sealer.seal(&alice, &["c", "0"], "hi").await.unwrap();
        assert_eq!(keys.calls(), (1, 0));
        clock.advance(CACHE_MAX_AGE_SECS - 1);
        let second = sealer.seal(&alice, &["c", "1"], "again").await.unwrap();
        assert_eq!(
            sealer.open(&alice, &["c", "0"], &first).await.unwrap(),
            "hi"
        );
        assert_eq!(
            sealer.open(&alice, &["c", "1"], &second).await.unwrap(),
            "again"
        );
        assert_eq!(keys.calls(), (1, 0));
    }

    #[tokio::test]
    async fn after_five_minutes_a_new_data_key_is_generated_and_old_values_are_unwrapped_once() {
        let (keys, clock, sealer) = setup();
        let alice = ctx("user#alice");
        let old = sealer.seal(&alice, &["c", "0"], "old").await.unwrap();
        clock.advance(CACHE_MAX_AGE_SECS);
        sealer.seal(&alice, &["c", "1"], "new").await.unwrap();
        assert_eq!(keys.calls(), (2, 0));
        for _ in 0..3 {
            assert_eq!(sealer.open(&alice, &["c", "0"], &old).await.unwrap(), "old");
        }
        assert_eq!(keys.calls(), (2, 1));
    }

    #[tokio::test]
    async fn an_expired_write_key_read_again_is_not_reused_for_new_writes() {
        let (keys, clock, sealer) = setup();
        let alice = ctx("user#alice");
        let old = sealer.seal(&alice, &["c", "0"], "old").await.unwrap();
        clock.advance(CACHE_MAX_AGE_SECS);
        sealer.open(&alice, &["c", "0"], &old).await.unwrap();
        let new = sealer.seal(&alice, &["c", "1"], "new").await.unwrap();
        assert_eq!(keys.calls(), (2, 1));
        let wrapped = |s: &str| {
            parse_v1(&decode(s).unwrap().unwrap())
                .unwrap()
                .wrapped
                .to_vec()
        };
        assert_ne!(wrapped(&old), wrapped(&new));
    }

    #[tokio::test]
    async fn a_cold_instance_unwraps_a_stored_key_once_then_serves_it_from_the_cache() {
        let (_, _, writer) = setup();
        let (keys, _, reader) = setup();
        let alice = ctx("user#alice");
        let a = writer.seal(&alice, &["c", "0"], "one").await.unwrap();
        let b = writer.seal(&alice, &["c", "1"], "two").await.unwrap();
        assert_eq!(reader.open(&alice, &["c", "0"], &a).await.unwrap(), "one");
        assert_eq!(reader.open(&alice, &["c", "1"], &b).await.unwrap(), "two");
        assert_eq!(keys.calls(), (0, 1));
    }

    #[tokio::test]
    async fn a_value_opened_as_another_owner_or_item_is_corrupt_even_with_its_key_cached() {
        let (_, _, sealer) = setup();
        let alice = ctx("user#alice");
        let sealed = sealer.seal(&alice, &["c", "0"], "secret").await.unwrap();
        let as_bob = sealer.open(&ctx("user#bob"), &["c", "0"], &sealed).await;
        assert!(matches!(as_bob, Err(SealError::Corrupt(_))), "{as_bob:?}");
        let other_item = sealer.open(&alice, &["c", "1"], &sealed).await;
        assert!(matches!(other_item, Err(SealError::Corrupt(_))));
        let other_purpose = ContentContext::new("exec-workspace", "user#alice");
        let other = sealer.open(&other_purpose, &["c", "0"], &sealed).await;
        assert!(matches!(other, Err(SealError::Corrupt(_))));
    }

    #[tokio::test]
    async fn legacy_plaintext_opens_as_itself_without_key_calls() {
        let (keys, _, sealer) = setup();
        let legacy = sealer
            .open(&ctx("user#a"), &["c", "0"], "written in 2025")
            .await;
        assert_eq!(legacy.unwrap(), "written in 2025");
        assert_eq!(keys.calls(), (0, 0));
    }

    #[tokio::test]
    async fn the_cache_never_holds_more_than_its_bound_of_keys() {
        let (keys, clock, sealer) = setup();
        for i in 0..CACHE_MAX_KEYS + 20 {
            sealer
                .seal(&ctx(&format!("user#{i}")), &["c"], "x")
                .await
                .unwrap();
            if i % 100 == 0 {
                clock.advance(1);
            }
        }
        assert_eq!(sealer.cached_keys(), CACHE_MAX_KEYS);
        // The most recently used owner is still warm; the least recent was evicted.
        let before = keys.calls();
        let last = ctx(&format!("user#{}", CACHE_MAX_KEYS + 19));
        sealer.seal(&last, &["c"], "y").await.unwrap();
        assert_eq!(keys.calls(), before);
        sealer.seal(&ctx("user#0"), &["c"], "y").await.unwrap();
        assert_eq!(keys.calls(), (before.0 + 1, before.1));
    }
}
