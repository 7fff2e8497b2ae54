//! DynamoDB `AuditStore`: `AUDIT#<subject>`/`<ts>#<id>` items, also indexed by day on `gsi1`.

use async_trait::async_trait;
use bastion_core::audit::{AuditEvent, AuditKind, Outcome};
use bastion_core::{AuditId, RequestId, Timestamp, UserId};

use super::item::{Item, TTL, corrupt, get_n, get_opt_s, get_s, key, n, s};
use super::{DynamoStore, sdk_error};
use crate::keys::{audit_sort_key, audit_subject, decode_audit_cursor, encode_audit_cursor};
use crate::{AuditStore, Page, StoreError};

fn audit_pk(subject: &str) -> String {
    format!("AUDIT#{subject}")
}

#[async_trait]
impl AuditStore for DynamoStore {
    async fn append(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let sort_key = audit_sort_key(event.at, &event.id);
        let mut item = key(audit_pk(&audit_subject(event)), sort_key.clone());
        item.insert("gsi1pk".into(), s(format!("AUDITDAY#{}", event.at.day())));
        item.insert("gsi1sk".into(), s(sort_key));
        item.insert(TTL.into(), n(event.expires_at().secs()));
        item.insert("id".into(), s(event.id.as_str()));
        item.insert("at".into(), n(event.at.secs()));
        item.insert("kind".into(), s(event.kind.as_str()));
        item.insert("outcome".into(), s(event.outcome.as_str()));
        if let Some(user) = &event.user_id {
            item.insert("user_id".into(), s(user.as_str()));
        }
        item.insert("ip".into(), s(&event.ip));
        item.insert("user_agent".into(), s(&event.user_agent));
        item.insert("request_id".into(), s(event.request_id.as_str()));
        if let Some(detail) = &event.detail {
            item.insert("detail".into(), s(detail));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", &e))?;
        Ok(())
    }

    async fn list_for_user(
        &self,
        user: &UserId,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Option<Page<AuditEvent>>, StoreError> {
        let pk = audit_pk(user.as_str());
        let mut start = match cursor {
            Some(raw) => match decode_audit_cursor(raw) {
                Some((at, id)) => Some(key(&pk, audit_sort_key(at, &id))),
                None => return Ok(None),
            },
            None => None,
        };
        let mut items = Vec::new();
        // One item past the page tells whether another page exists.
        let wanted = limit.saturating_add(1);
        while limit > 0 && items.len() < wanted {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":now", n(now.secs()))
                .scan_index_forward(false)
                .limit(i32::try_from(wanted - items.len()).unwrap_or(i32::MAX))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("Query", &e))?;
            let page = out.items.unwrap_or_default();
            let filtered_out = usize::try_from(out.scanned_count).unwrap_or(0) > page.len();
            for item in &page {
                items.push(parse_event(item)?);
            }
            start = out.last_evaluated_key;
            // `ttl` is `at` plus a fixed retention, so walking newest-first, the first expired
            // item means every later one is expired too: stop instead of paging through them.
            if start.is_none() || filtered_out {
                break;
            }
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|e| encode_audit_cursor(e.at, &e.id))
        } else {
            None
        };
        Ok(Some(Page { items, next_cursor }))
    }
}

pub(super) fn parse_event(item: &Item) -> Result<AuditEvent, StoreError> {
    let kind = get_s(item, "kind")?;
    let outcome = get_s(item, "outcome")?;
    Ok(AuditEvent {
        id: AuditId::parse(get_s(item, "id")?).map_err(|e| corrupt("audit id", e.message))?,
        at: Timestamp(get_n(item, "at")?),
        kind: AuditKind::parse(kind).ok_or_else(|| corrupt("audit kind", kind))?,
        outcome: Outcome::parse(outcome).ok_or_else(|| corrupt("audit outcome", outcome))?,
        user_id: get_opt_s(item, "user_id")?
            .map(UserId::parse)
            .transpose()
            .map_err(|e| corrupt("audit user", e.message))?,
        ip: get_s(item, "ip")?.to_owned(),
        user_agent: get_s(item, "user_agent")?.to_owned(),
        request_id: RequestId::parse(get_s(item, "request_id")?)
            .map_err(|e| corrupt("audit request id", e.message))?,
        detail: get_opt_s(item, "detail")?.map(str::to_owned),
    })
}
