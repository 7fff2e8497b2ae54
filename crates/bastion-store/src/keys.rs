//! Encodings both adapters share, so audit cursors and orderings mean the same thing on each.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bastion_core::audit::AuditEvent;
use bastion_core::{AuditId, Timestamp};

/// Width of the zero-padded timestamp in audit sort keys: `i64::MAX` has 19 digits, so string
/// order equals numeric order for every non-negative second.
const TS_WIDTH: usize = 20;

/// Whose audit partition an event belongs to: the user when known, else the client IP, so
/// events about unknown accounts are still kept.
pub(crate) fn audit_subject(event: &AuditEvent) -> String {
    match &event.user_id {
        Some(user) => user.as_str().to_owned(),
        None => format!("ip:{}", event.ip),
    }
}

/// `<zero-padded ts>#<audit id>`: sorts newest-last as a string, ties broken by id.
pub(crate) fn audit_sort_key(at: Timestamp, id: &AuditId) -> String {
    // Negative instants do not occur; clamping keeps the padding (and so the order) valid.
    format!("{:0width$}#{}", at.secs().max(0), id, width = TS_WIDTH)
}

/// Splits a sort key back into its parts; `None` for anything we did not produce.
pub(crate) fn parse_audit_sort_key(key: &str) -> Option<(Timestamp, AuditId)> {
    let (ts, id) = key.split_once('#')?;
    if ts.len() != TS_WIDTH || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = ts.parse().ok()?;
    let id = AuditId::parse(id).ok()?;
    Some((Timestamp(secs), id))
}

/// The opaque cursor handed to callers: base64url of the last returned sort key.
pub(crate) fn encode_audit_cursor(at: Timestamp, id: &AuditId) -> String {
    URL_SAFE_NO_PAD.encode(audit_sort_key(at, id))
}

/// The position a cursor names, or `None` when it is not one of ours (the caller answers 400).
pub(crate) fn decode_audit_cursor(cursor: &str) -> Option<(Timestamp, AuditId)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let key = String::from_utf8(bytes).ok()?;
    parse_audit_sort_key(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_cursors_round_trip() {
        let id = AuditId::generate();
        let cursor = encode_audit_cursor(Timestamp(1_800_000_000), &id);
        assert_eq!(
            decode_audit_cursor(&cursor),
            Some((Timestamp(1_800_000_000), id))
        );
    }

    #[test]
    fn audit_sort_keys_order_like_their_timestamps() {
        let id = AuditId::generate();
        assert!(audit_sort_key(Timestamp(9), &id) < audit_sort_key(Timestamp(10), &id));
        assert_eq!(audit_sort_key(Timestamp(5), &id).len(), 20 + 1 + 32);
    }

    #[test]
    fn foreign_cursors_decode_to_none() {
        let padded = URL_SAFE_NO_PAD.encode(format!("{:020}#{}", 1, "X".repeat(32)));
        for bad in ["", "!!!", "bm90LWEta2V5", "MTIzI2FiYw", padded.as_str()] {
            assert_eq!(decode_audit_cursor(bad), None, "{bad}");
        }
    }
}
