//! SQLite `ApiKeyStore`: one row per key, keyed by id, unique on the key's hash.

use async_trait::async_trait;
use bastion_core::crypto::TokenHash;
use bastion_core::{ApiKeyId, Scope, Timestamp, UserId};
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, corrupt, db_error};
use crate::{ApiKeyRecord, ApiKeyStore, KeyMint, StoreError};

const COLUMNS: &str =
    "id, user_id, hash, name, prefix, scopes, created_at, expires_at, last_used_at";

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn create_api_key(
        &self,
        key: &ApiKeyRecord,
        max_live: u32,
    ) -> Result<KeyMint, StoreError> {
        let k = key.clone();
        let scopes = encode_scopes(&k.scopes)?;
        self.run(move |conn| {
            // Count and insert under one write lock: no other mint can slip in between.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let live: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM api_keys WHERE user_id = ?1 AND expires_at > ?2",
                    params![k.user_id.as_str(), k.created_at.secs()],
                    |row| row.get(0),
                )
                .map_err(db_error)?;
            if live >= i64::from(max_live) {
                return Ok(KeyMint::LimitReached);
            }
            tx.execute(
                &format!(
                    "INSERT INTO api_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    k.id.as_str(),
                    k.user_id.as_str(),
                    k.hash.as_str(),
                    k.name,
                    k.prefix,
                    scopes,
                    k.created_at.secs(),
                    k.expires_at.secs(),
                    k.last_used_at.map(Timestamp::secs),
                ],
            )
            .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok(KeyMint::Created)
        })
        .await
    }

    async fn find_api_key(
        &self,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let hash = hash.as_str().to_owned();
        self.run(move |conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM api_keys WHERE hash = ?1 AND expires_at > ?2"),
                params![hash, now.secs()],
                raw_key,
            )
            .optional()
            .map_err(db_error)?
            .map(RawKey::into_record)
            .transpose()
        })
        .await
    }

    async fn list_api_keys(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM api_keys WHERE user_id = ?1 AND expires_at > ?2
                     ORDER BY created_at DESC, id DESC"
                ))
                .map_err(db_error)?;
            let rows = stmt
                .query_map(params![user, now.secs()], raw_key)
                .map_err(db_error)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(db_error)?.into_record()?);
            }
            Ok(out)
        })
        .await
    }

    async fn revoke_api_key(&self, user: &UserId, id: &ApiKeyId) -> Result<bool, StoreError> {
        let (user, id) = (user.as_str().to_owned(), id.as_str().to_owned());
        self.run(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM api_keys WHERE id = ?1 AND user_id = ?2",
                    params![id, user],
                )
                .map_err(db_error)?;
            Ok(n == 1)
        })
        .await
    }

    async fn revoke_all_api_keys(&self, user: &UserId) -> Result<u32, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |conn| {
            let n = conn
                .execute("DELETE FROM api_keys WHERE user_id = ?1", [user])
                .map_err(db_error)?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn touch_api_key(
        &self,
        key: &ApiKeyRecord,
        now: Timestamp,
        min_interval_secs: i64,
    ) -> Result<bool, StoreError> {
        let id = key.id.as_str().to_owned();
        self.run(move |conn| {
            let n = conn
                .execute(
                    "UPDATE api_keys SET last_used_at = ?2
                     WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
                    params![id, now.secs(), now.secs() - min_interval_secs],
                )
                .map_err(db_error)?;
            Ok(n == 1)
        })
        .await
    }
}

fn encode_scopes(scopes: &[Scope]) -> Result<String, StoreError> {
    serde_json::to_string(scopes).map_err(|e| StoreError::Corrupt(format!("scopes: {e}")))
}

struct RawKey {
    id: String,
    user_id: String,
    hash: String,
    name: String,
    prefix: String,
    scopes: String,
    created_at: i64,
    expires_at: i64,
    last_used_at: Option<i64>,
}

fn raw_key(row: &Row<'_>) -> rusqlite::Result<RawKey> {
    Ok(RawKey {
        id: row.get(0)?,
        user_id: row.get(1)?,
        hash: row.get(2)?,
        name: row.get(3)?,
        prefix: row.get(4)?,
        scopes: row.get(5)?,
        created_at: row.get(6)?,
        expires_at: row.get(7)?,
        last_used_at: row.get(8)?,
    })
}

impl RawKey {
    fn into_record(self) -> Result<ApiKeyRecord, StoreError> {
        Ok(ApiKeyRecord {
            id: ApiKeyId::parse(&self.id).map_err(|e| corrupt("api key id", e.message))?,
            user_id: UserId::parse(&self.user_id)
                .map_err(|e| corrupt("api key user", e.message))?,
            hash: TokenHash::from_stored(self.hash),
            name: self.name,
            prefix: self.prefix,
            scopes: serde_json::from_str(&self.scopes).map_err(|e| corrupt("api key scopes", e))?,
            created_at: Timestamp(self.created_at),
            expires_at: Timestamp(self.expires_at),
            last_used_at: self.last_used_at.map(Timestamp),
        })
    }
}
