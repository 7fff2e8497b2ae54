//! DynamoDB `UserStore`: `USER#<id>`/`PROFILE` plus the `EMAIL#<email>`/`USER` guard.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use bastion_core::{DisplayName, Email, Role, Timestamp, UserId};

use super::item::{
    Item, PK, SK, TWIN_PK, TWIN_SK, corrupt, get_bool, get_n, get_opt_s, get_s, get_string_list,
    key, n, s,
};
use super::{DynamoStore, TRANSACT_MAX, build_error, sdk_error};
use crate::{CreateUserError, StoreError, UserRecord, UserStore};

pub(super) fn user_pk(id: &UserId) -> String {
    format!("USER#{id}")
}

pub(super) const PROFILE_SK: &str = "PROFILE";

/// Advanced on the profile and on the login copy by `revoke_all_sessions`.
pub(super) const SESSION_EPOCH: &str = "session_epoch";

/// Absent on accounts created before verification existed: not verified.
const EMAIL_VERIFIED: &str = "email_verified";

/// Marks an email guard that carries a copy of the profile, kept in step by `update_profile`.
const LOGIN_COPY: &str = "login_copy";

fn email_key(email: &str) -> Item {
    key(format!("EMAIL#{email}"), "USER")
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), CreateUserError> {
        let (profile, guard) = profile_and_guard(user);
        let put = |item: Item| put_new(&self.table, item);
        let items = vec![put(profile)?, put(guard)?];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(f) if f.condition_failed_at(1) => Err(CreateUserError::EmailTaken),
            Err(f) => Err(f.into_store_error("create_user").into()),
        }
    }

    async fn get_user(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(id), PROFILE_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        out.item.as_ref().map(parse_profile).transpose()
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<UserRecord>, StoreError> {
        // One GetItem whether or not the email is known: the guard carries the login copy of
        // the profile, so a known email costs no second round trip an observer could time.
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(email_key(email.as_str())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        let Some(guard) = out.item else {
            return Ok(None);
        };
        if guard.contains_key(LOGIN_COPY) {
            let user = parse_profile(&guard)?;
            if &user.email != email || user.id.as_str() != get_s(&guard, "user_id")? {
                return Err(corrupt(
                    "email guard",
                    "its login copy names another account",
                ));
            }
            return Ok(Some(user));
        }
        // A guard written before it carried the login copy: read the profile it points at.
        let id = UserId::parse(get_s(&guard, "user_id")?)
            .map_err(|e| corrupt("email guard user id", e.message))?;
        let user = self.get_user(&id).await?;
        match user {
            Some(user) if &user.email != email => Err(corrupt(
                "email guard",
                format!("points at user {id} whose email differs"),
            )),
            other => Ok(other),
        }
    }

    async fn set_password_hash(
        &self,
        id: &UserId,
        expected: &str,
        hash: &str,
    ) -> Result<bool, StoreError> {
        self.update_profile_if(
            id,
            "SET #v = :v",
            "password_hash",
            s(hash),
            Some(s(expected)),
        )
        .await
    }

    async fn set_email_verified(&self, id: &UserId, email: &Email) -> Result<bool, StoreError> {
        // Addresses never change in place, so a profile read naming this address is still
        // the one the verification was for when the update lands.
        match self.get_user(id).await? {
            Some(user) if &user.email == email => {}
            _ => return Ok(false),
        }
        self.update_profile(id, EMAIL_VERIFIED, AttributeValue::Bool(true))
            .await
    }

    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError> {
        // Every item of the partition goes: sessions, the second factor (`MFA`), a reset token.
        let pk = user_pk(id);
        let mut others = Vec::new();
        let mut email = None;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&pk))
                .projection_expression("pk, sk, email, twin_pk, twin_sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("Query", &e))?;
            for item in out.items.unwrap_or_default() {
                let sk = get_s(&item, SK)?;
                if sk == PROFILE_SK {
                    email = Some(get_s(&item, "email")?.to_owned());
                } else {
                    others.push(key(get_s(&item, PK)?, sk));
                    // Items that index this user from another partition (an API key's hash
                    // lookup, a Google subject guard) name their twin, which goes too.
                    if let (Some(tpk), Some(tsk)) =
                        (get_opt_s(&item, TWIN_PK)?, get_opt_s(&item, TWIN_SK)?)
                    {
                        others.push(key(tpk, tsk));
                    }
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }

        let Some(email) = email else {
            // No profile: only leftovers (e.g. a session written during an earlier delete).
            return self.batch_delete(others).await;
        };
        // Profile and guard leave together, last, so a failure part-way can be retried and
        // never strands a guard that blocks the email for good.
        if others.len() + 2 > TRANSACT_MAX {
            self.batch_delete(std::mem::take(&mut others)).await?;
        }
        let mut actions = Vec::with_capacity(others.len() + 2);
        for k in others {
            actions.push(delete_action(&self.table, k, None)?);
        }
        actions.push(delete_action(&self.table, key(&pk, PROFILE_SK), None)?);
        actions.push(delete_action(
            &self.table,
            email_key(&email),
            Some(("attribute_not_exists(pk) OR user_id = :id", id)),
        )?);
        self.transact(actions)
            .await
            .map_err(|f| f.into_store_error("delete_user"))
    }
}

/// The profile item and the email-uniqueness guard of a new account.
pub(super) fn profile_and_guard(user: &UserRecord) -> (Item, Item) {
    let mut profile = key(user_pk(&user.id), PROFILE_SK);
    profile.insert("id".into(), s(user.id.as_str()));
    profile.insert("email".into(), s(user.email.as_str()));
    if let Some(name) = &user.display_name {
        profile.insert("display_name".into(), s(name.as_str()));
    }
    profile.insert("password_hash".into(), s(&user.password_hash));
    profile.insert("roles".into(), roles_value(&user.roles));
    profile.insert("created_at".into(), n(user.created_at.secs()));
    profile.insert("disabled".into(), AttributeValue::Bool(user.disabled));
    profile.insert(
        SESSION_EPOCH.into(),
        n(i64::try_from(user.session_epoch).unwrap_or(i64::MAX)),
    );
    profile.insert(
        EMAIL_VERIFIED.into(),
        AttributeValue::Bool(user.email_verified),
    );

    let mut guard = profile.clone();
    guard.extend(email_key(user.email.as_str()));
    guard.insert("user_id".into(), s(user.id.as_str()));
    guard.insert(LOGIN_COPY.into(), AttributeValue::Bool(true));
    (profile, guard)
}

pub(super) fn roles_value(roles: &[Role]) -> AttributeValue {
    AttributeValue::L(roles.iter().map(|r| s(r.as_str())).collect())
}

impl DynamoStore {
    /// Sets one profile attribute on the profile and on the email guard's login copy, in one
    /// transaction so a login never reads a copy that disagrees with the profile (a disabled
    /// account, a replaced hash). False when there is no such user.
    pub(super) async fn update_profile(
        &self,
        user: &UserId,
        attr: &str,
        value: AttributeValue,
    ) -> Result<bool, StoreError> {
        self.update_profile_if(user, "SET #v = :v", attr, value, None)
            .await
    }

    /// `update_profile` with another update expression over `#v` and `:v` (e.g. an `ADD`),
    /// and when `expected` is given only if the attribute still holds it (false otherwise).
    pub(super) async fn update_profile_if(
        &self,
        user: &UserId,
        expression: &str,
        attr: &str,
        value: AttributeValue,
        expected: Option<AttributeValue>,
    ) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), PROFILE_SK)))
            .projection_expression("email")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        let Some(profile) = out.item else {
            return Ok(false);
        };
        let email = get_s(&profile, "email")?;
        let mut on_profile = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), PROFILE_SK)))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#v", attr)
            .expression_attribute_values(":v", value.clone());
        if let Some(old) = expected {
            on_profile = on_profile
                .condition_expression("attribute_exists(pk) AND #v = :old")
                .expression_attribute_values(":old", old);
        }
        let on_profile = on_profile.build().map_err(build_error)?;
        let on_guard = Update::builder()
            .table_name(&self.table)
            .set_key(Some(email_key(email)))
            .update_expression(expression)
            .condition_expression("user_id = :id")
            .expression_attribute_names("#v", attr)
            .expression_attribute_values(":v", value)
            .expression_attribute_values(":id", s(user.as_str()))
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().update(on_profile).build(),
            TransactWriteItem::builder().update(on_guard).build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            // Deleted between the read and the write, or no longer the expected value.
            Err(f) if f.condition_failed_at(0) => Ok(false),
            Err(f) => Err(f.into_store_error("update_profile")),
        }
    }
}

/// A transaction Put that fails its condition when the item already exists.
pub(super) fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn delete_action(
    table: &str,
    key: Item,
    condition: Option<(&str, &UserId)>,
) -> Result<TransactWriteItem, StoreError> {
    let mut delete = Delete::builder().table_name(table).set_key(Some(key));
    if let Some((expr, id)) = condition {
        delete = delete
            .condition_expression(expr)
            .expression_attribute_values(":id", s(id.as_str()));
    }
    Ok(TransactWriteItem::builder()
        .delete(delete.build().map_err(build_error)?)
        .build())
}

pub(super) fn parse_profile(item: &Item) -> Result<UserRecord, StoreError> {
    let roles = get_string_list(item, "roles")?
        .into_iter()
        .map(|r| Role::parse(r).map_err(|e| corrupt("user role", e.message)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UserRecord {
        id: UserId::parse(get_s(item, "id")?).map_err(|e| corrupt("user id", e.message))?,
        email: Email::parse(get_s(item, "email")?).map_err(|e| corrupt("user email", e.message))?,
        display_name: get_opt_s(item, "display_name")?
            .map(DisplayName::parse)
            .transpose()
            .map_err(|e| corrupt("display name", e.message))?,
        password_hash: get_s(item, "password_hash")?.to_owned(),
        roles,
        created_at: Timestamp(get_n(item, "created_at")?),
        disabled: get_bool(item, "disabled")?,
        // Absent on accounts created before the epoch existed: none of their sessions was
        // ever revoked under it.
        session_epoch: if item.contains_key(SESSION_EPOCH) {
            u64::try_from(get_n(item, SESSION_EPOCH)?).map_err(|e| corrupt("session epoch", e))?
        } else {
            0
        },
        email_verified: item.contains_key(EMAIL_VERIFIED) && get_bool(item, EMAIL_VERIFIED)?,
    })
}
