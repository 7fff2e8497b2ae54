//! DynamoDB `ApiKeyStore`: the record twice, as `APIKEY#<hash>`/`KEY` (the lookup a request
//! authenticates with: one GetItem) and as `USER#<id>`/`APIKEY#<key id>` (listing and
//! revocation by id), written, touched and deleted together in transactions.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use bastion_core::crypto::TokenHash;
use bastion_core::{ApiKeyId, Scope, Timestamp, UserId};

use super::api_key_count::Recount;
use super::item::{
    Item, PK, SK, TTL, TWIN_PK, TWIN_SK, corrupt, get_n, get_s, get_string_list, is_live, key, n, s,
};
use super::users::{put_new, user_pk};
use super::{DynamoStore, build_error, sdk_error};
use crate::{ApiKeyRecord, ApiKeyStore, KeyMint, StoreError};

/// Mint attempts; each lost one means another writer changed this user's key count.
const MINT_ATTEMPTS: u32 = 4;

const LOOKUP_SK: &str = "KEY";

fn lookup_pk(hash: &TokenHash) -> String {
    format!("APIKEY#{}", hash.as_str())
}

fn owner_sk(id: &ApiKeyId) -> String {
    format!("APIKEY#{id}")
}

fn record_attrs(item: &mut Item, k: &ApiKeyRecord) {
    item.insert("id".into(), s(k.id.as_str()));
    item.insert("user_id".into(), s(k.user_id.as_str()));
    item.insert("hash".into(), s(k.hash.as_str()));
    item.insert("name".into(), s(&k.name));
    item.insert("prefix".into(), s(&k.prefix));
    item.insert(
        "scopes".into(),
        AttributeValue::L(k.scopes.iter().map(|sc| s(sc.as_str())).collect()),
    );
    item.insert("created_at".into(), n(k.created_at.secs()));
    item.insert("expires_at".into(), n(k.expires_at.secs()));
    item.insert(TTL.into(), n(k.expires_at.secs()));
    if let Some(t) = k.last_used_at {
        item.insert("last_used_at".into(), n(t.secs()));
    }
}

fn parse_key(item: &Item) -> Result<ApiKeyRecord, StoreError> {
    let scopes = get_string_list(item, "scopes")?
        .into_iter()
        .map(|sc| Scope::parse(sc).map_err(|e| corrupt("api key scope", e.message)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ApiKeyRecord {
        id: ApiKeyId::parse(get_s(item, "id")?).map_err(|e| corrupt("api key id", e.message))?,
        user_id: UserId::parse(get_s(item, "user_id")?)
            .map_err(|e| corrupt("api key user", e.message))?,
        hash: TokenHash::from_stored(get_s(item, "hash")?.to_owned()),
        name: get_s(item, "name")?.to_owned(),
        prefix: get_s(item, "prefix")?.to_owned(),
        scopes,
        created_at: Timestamp(get_n(item, "created_at")?),
        expires_at: Timestamp(get_n(item, "expires_at")?),
        last_used_at: if item.contains_key("last_used_at") {
            Some(Timestamp(get_n(item, "last_used_at")?))
        } else {
            None
        },
    })
}

fn delete(table: &str, k: Item, must_exist: bool) -> Result<TransactWriteItem, StoreError> {
    let mut d = Delete::builder().table_name(table).set_key(Some(k));
    if must_exist {
        d = d.condition_expression("attribute_exists(pk)");
    }
    Ok(TransactWriteItem::builder()
        .delete(d.build().map_err(build_error)?)
        .build())
}

impl DynamoStore {
    pub(super) async fn owner_items(&self, user: &UserId) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(user_pk(user)))
                .expression_attribute_values(":p", s("APIKEY#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("Query", &e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

#[async_trait]
impl ApiKeyStore for DynamoStore {
    async fn create_api_key(&self, k: &ApiKeyRecord, max_live: u32) -> Result<KeyMint, StoreError> {
        let mut lookup = key(lookup_pk(&k.hash), LOOKUP_SK);
        record_attrs(&mut lookup, k);
        let mut owner = key(user_pk(&k.user_id), owner_sk(&k.id));
        record_attrs(&mut owner, k);
        owner.insert(TWIN_PK.into(), s(lookup_pk(&k.hash)));
        owner.insert(TWIN_SK.into(), s(LOOKUP_SK));
        for _ in 0..MINT_ATTEMPTS {
            let items = vec![
                put_new(&self.table, lookup.clone())?,
                put_new(&self.table, owner.clone())?,
                self.take_key_place(&k.user_id, max_live)?,
            ];
            match self.transact(items).await {
                Ok(()) => return Ok(KeyMint::Created),
                // Full, counting expired keys, or not counted yet: make the count exact, then
                // decide again.
                Err(f) if f.condition_failed_at(2) => {
                    match self.recount_api_keys(&k.user_id, k.created_at).await? {
                        Recount::Exact(live) if live >= u64::from(max_live) => {
                            return Ok(KeyMint::LimitReached);
                        }
                        Recount::Exact(_) | Recount::Raced => {}
                    }
                }
                Err(f) => return Err(f.into_store_error("create_api_key")),
            }
        }
        // Every attempt lost to other writers of this user's keys: refuse rather than guess.
        Err(StoreError::Unavailable(
            "dynamodb create_api_key: the key count kept changing".into(),
        ))
    }

    async fn find_api_key(
        &self,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(lookup_pk(hash), LOOKUP_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        match out.item {
            Some(item) if is_live(&item, now)? => Ok(Some(parse_key(&item)?)),
            _ => Ok(None),
        }
    }

    async fn list_api_keys(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut keys = Vec::new();
        for item in self.owner_items(user).await? {
            if is_live(&item, now)? {
                keys.push(parse_key(&item)?);
            }
        }
        keys.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(keys)
    }

    async fn revoke_api_key(&self, user: &UserId, id: &ApiKeyId) -> Result<bool, StoreError> {
        let owner_key = key(user_pk(user), owner_sk(id));
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(owner_key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        let Some(item) = out.item else {
            return Ok(false);
        };
        let lookup = key(get_s(&item, TWIN_PK)?, get_s(&item, TWIN_SK)?);
        let deletes = || -> Result<Vec<TransactWriteItem>, StoreError> {
            Ok(vec![
                delete(&self.table, owner_key.clone(), true)?,
                delete(&self.table, lookup.clone(), false)?,
            ])
        };
        let mut counted = deletes()?;
        counted.push(self.give_key_place(user)?);
        match self.transact(counted).await {
            Ok(()) => Ok(true),
            Err(f) if f.condition_failed_at(0) => Ok(false),
            // No count to lower (keys from before it): the next recount sees the key gone.
            Err(f) if f.condition_failed_at(2) => match self.transact(deletes()?).await {
                Ok(()) => Ok(true),
                Err(f) if f.condition_failed_at(0) => Ok(false),
                Err(f) => Err(f.into_store_error("revoke_api_key")),
            },
            Err(f) => Err(f.into_store_error("revoke_api_key")),
        }
    }

    async fn revoke_all_api_keys(&self, user: &UserId) -> Result<u32, StoreError> {
        let items = self.owner_items(user).await?;
        let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let mut keys = Vec::with_capacity(items.len() * 2);
        for item in &items {
            keys.push(key(get_s(item, PK)?, get_s(item, SK)?));
            keys.push(key(get_s(item, TWIN_PK)?, get_s(item, TWIN_SK)?));
        }
        self.batch_delete(keys).await?;
        // Left high by the deletes, which is safe; lowered now so the next mint need not.
        self.settle_api_key_count(user, Timestamp(i64::MIN)).await?;
        Ok(count)
    }

    async fn touch_api_key(
        &self,
        k: &ApiKeyRecord,
        now: Timestamp,
        min_interval_secs: i64,
    ) -> Result<bool, StoreError> {
        let update = |item_key: Item| -> Result<TransactWriteItem, StoreError> {
            let u = Update::builder()
                .table_name(&self.table)
                .set_key(Some(item_key))
                .update_expression("SET last_used_at = :now")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(last_used_at) OR last_used_at <= :cutoff)",
                )
                .expression_attribute_values(":now", n(now.secs()))
                .expression_attribute_values(":cutoff", n(now.secs() - min_interval_secs))
                .build()
                .map_err(build_error)?;
            Ok(TransactWriteItem::builder().update(u).build())
        };
        match self
            .transact(vec![
                update(key(lookup_pk(&k.hash), LOOKUP_SK))?,
                update(key(user_pk(&k.user_id), owner_sk(&k.id)))?,
            ])
            .await
        {
            Ok(()) => Ok(true),
            Err(f) if f.condition_failed_at(0) || f.condition_failed_at(1) => Ok(false),
            Err(f) => Err(f.into_store_error("touch_api_key")),
        }
    }
}
