//! Attribute-map helpers: key shapes and typed reads that report bad items as `Corrupt`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use bastion_core::Timestamp;

use crate::StoreError;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) const PK: &str = "pk";
pub(super) const SK: &str = "sk";
pub(super) const TTL: &str = "ttl";
/// On an item in a user's partition: the key of its twin in another partition, deleted with it.
pub(super) const TWIN_PK: &str = "twin_pk";
pub(super) const TWIN_SK: &str = "twin_sk";

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// Whether the item is still alive at `now`: DynamoDB deletes expired items up to days late
/// (moto never), so an item with `ttl <= now` counts as absent. Items without `ttl` never expire.
pub(super) fn is_live(item: &Item, now: Timestamp) -> Result<bool, StoreError> {
    match item.get(TTL) {
        None => Ok(true),
        Some(_) => Ok(get_n(item, TTL)? > now.secs()),
    }
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(missing(name, "a string")),
    }
}

pub(super) fn get_opt_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        Some(_) => Err(missing(name, "a string")),
    }
}

pub(super) fn get_n(item: &Item, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| missing(name, "an integer")),
        _ => Err(missing(name, "a number")),
    }
}

pub(super) fn get_bool(item: &Item, name: &str) -> Result<bool, StoreError> {
    match item.get(name) {
        Some(AttributeValue::Bool(v)) => Ok(*v),
        _ => Err(missing(name, "a boolean")),
    }
}

pub(super) fn get_string_list<'a>(item: &'a Item, name: &str) -> Result<Vec<&'a str>, StoreError> {
    match item.get(name) {
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| match v {
                AttributeValue::S(s) => Ok(s.as_str()),
                _ => Err(missing(name, "a list of strings")),
            })
            .collect(),
        _ => Err(missing(name, "a list")),
    }
}

fn missing(name: &str, what: &str) -> StoreError {
    StoreError::Corrupt(format!("dynamodb item attribute `{name}` is not {what}"))
}

/// Maps a domain-type parse failure on a stored value to `Corrupt`.
pub(super) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("dynamodb {what}: {detail}"))
}
