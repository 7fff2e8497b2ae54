//! SQLite `AuditStore`: rows keyed like the DynamoDB items, so cursors work the same way.

use async_trait::async_trait;
use bastion_core::audit::{AuditEvent, AuditKind, Outcome};
use bastion_core::{AuditId, RequestId, Timestamp, UserId};
use rusqlite::{Row, params};

use super::{SqliteStore, corrupt, db_error};
use crate::keys::{audit_subject, decode_audit_cursor, encode_audit_cursor};
use crate::{AuditStore, Page, StoreError};

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let e = event.clone();
        let subject = audit_subject(&e);
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO audit (subject, at, id, kind, outcome, user_id, ip, user_agent, request_id, detail, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    subject,
                    e.at.secs(),
                    e.id.as_str(),
                    e.kind.as_str(),
                    e.outcome.as_str(),
                    e.user_id.as_ref().map(UserId::as_str),
                    e.ip,
                    e.user_agent,
                    e.request_id.as_str(),
                    e.detail,
                    e.expires_at().secs(),
                ],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn list_for_user(
        &self,
        user: &UserId,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Option<Page<AuditEvent>>, StoreError> {
        let after = match cursor {
            Some(raw) => match decode_audit_cursor(raw) {
                Some(position) => Some(position),
                None => return Ok(None),
            },
            None => None,
        };
        if limit == 0 {
            return Ok(Some(Page {
                items: Vec::new(),
                next_cursor: None,
            }));
        }
        let subject = user.as_str().to_owned();
        // One row past the page tells whether another page exists.
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        let (after_at, after_id) = match &after {
            Some((at, id)) => (Some(at.secs()), Some(id.as_str().to_owned())),
            None => (None, None),
        };
        self.run(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT at, id, kind, outcome, user_id, ip, user_agent, request_id, detail
                     FROM audit
                     WHERE subject = ?1 AND expires_at > ?2
                       AND (?3 IS NULL OR (at, id) < (?3, ?4))
                     ORDER BY at DESC, id DESC
                     LIMIT ?5",
                )
                .map_err(db_error)?;
            let rows = stmt
                .query_map(
                    params![subject, now.secs(), after_at, after_id, fetch],
                    raw_event,
                )
                .map_err(db_error)?;
            audit_page(rows, limit).map(Some)
        })
        .await
    }
}

/// The first `limit` events of a query that fetched `limit + 1`, with a cursor after the last
/// one when there were more.
pub(super) fn audit_page(
    rows: impl Iterator<Item = rusqlite::Result<RawEvent>>,
    limit: usize,
) -> Result<Page<AuditEvent>, StoreError> {
    let mut items = Vec::new();
    for row in rows {
        items.push(row.map_err(db_error)?.into_event()?);
    }
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|e| encode_audit_cursor(e.at, &e.id))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

pub(super) struct RawEvent {
    at: i64,
    id: String,
    kind: String,
    outcome: String,
    user_id: Option<String>,
    ip: String,
    user_agent: String,
    request_id: String,
    detail: Option<String>,
}

pub(super) fn raw_event(row: &Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok(RawEvent {
        at: row.get(0)?,
        id: row.get(1)?,
        kind: row.get(2)?,
        outcome: row.get(3)?,
        user_id: row.get(4)?,
        ip: row.get(5)?,
        user_agent: row.get(6)?,
        request_id: row.get(7)?,
        detail: row.get(8)?,
    })
}

impl RawEvent {
    pub(super) fn into_event(self) -> Result<AuditEvent, StoreError> {
        Ok(AuditEvent {
            id: AuditId::parse(&self.id).map_err(|e| corrupt("audit id", e.message))?,
            at: Timestamp(self.at),
            kind: AuditKind::parse(&self.kind).ok_or_else(|| corrupt("audit kind", &self.kind))?,
            outcome: Outcome::parse(&self.outcome)
                .ok_or_else(|| corrupt("audit outcome", &self.outcome))?,
            user_id: self
                .user_id
                .as_deref()
                .map(UserId::parse)
                .transpose()
                .map_err(|e| corrupt("audit user", e.message))?,
            ip: self.ip,
            user_agent: self.user_agent,
            request_id: RequestId::parse(&self.request_id)
                .map_err(|e| corrupt("audit request id", e.message))?,
            detail: self.detail,
        })
    }
}
