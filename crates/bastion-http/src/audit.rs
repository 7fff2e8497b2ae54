//! Recording an audit event about the request being served, stamped by the edge's clock with
//! the request's id, client IP and user agent. Callers await it before answering and decide
//! what a failed write means for them; none may ignore it (an unrecorded action fails).

use bastion_core::audit::{AuditEvent, AuditKind, Outcome};
use bastion_core::{AuditId, UserId};
use bastion_store::StoreError;

use crate::client::RequestMeta;
use crate::pipeline::Edge;

impl Edge {
    /// Appends one audit event for `meta`'s request.
    pub async fn record_audit(
        &self,
        meta: &RequestMeta,
        kind: AuditKind,
        outcome: Outcome,
        user: Option<&UserId>,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        let event = AuditEvent {
            id: AuditId::generate_ordered(self.clock.as_ref()),
            at: self.clock.now(),
            kind,
            outcome,
            user_id: user.cloned(),
            ip: meta.ip.0.clone(),
            user_agent: meta.user_agent.0.clone(),
            request_id: meta.request_id.clone(),
            detail,
        };
        // One log line per event, so CloudWatch metric filters (failed logins, refresh-token
        // reuse) can count what the table stores; the kind and outcome only, no identity.
        tracing::info!(
            request_id = %meta.request_id,
            audit = event.kind.as_str(),
            outcome = event.outcome.as_str(),
            "audit event"
        );
        self.stores.audit.append(&event).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use bastion_core::{ManualClock, RequestId, Timestamp};
    use bastion_store::sqlite::SqliteStore;
    use bastion_store::{AuditStore, Page, Stores};

    use super::*;
    use crate::client::{ClientIp, UserAgent};
    use crate::config::{EdgeConfig, map_env};

    /// Keeps what is appended, or refuses every write when `down`.
    struct Recorder {
        events: Mutex<Vec<AuditEvent>>,
        down: bool,
    }

    #[async_trait]
    impl AuditStore for Recorder {
        async fn append(&self, event: &AuditEvent) -> Result<(), StoreError> {
            if self.down {
                return Err(StoreError::Unavailable("audit table is down".to_owned()));
            }
            self.events.lock().unwrap().push(event.clone());
            Ok(())
        }

        async fn list_for_user(
            &self,
            _: &UserId,
            _: Option<&str>,
            _: usize,
            _: Timestamp,
        ) -> Result<Option<Page<AuditEvent>>, StoreError> {
            Ok(None)
        }
    }

    fn edge(recorder: Arc<Recorder>) -> Edge {
        let mut stores = Stores::from_adapter(Arc::new(SqliteStore::open_in_memory().unwrap()));
        stores.audit = recorder;
        let env = map_env(&[(
            "JWT_VERIFY_KEYS",
            "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
        )]);
        let clock = Arc::new(ManualClock::new(Timestamp(1_700_000_000)));
        Edge::new(EdgeConfig::from_env(&env).unwrap(), stores, clock)
    }

    fn meta() -> RequestMeta {
        RequestMeta {
            ip: ClientIp("203.0.113.7".to_owned()),
            user_agent: UserAgent("curl/8".to_owned()),
            request_id: RequestId::generate(),
        }
    }

    #[tokio::test]
    async fn the_event_carries_the_request_metadata_and_the_edge_clock() {
        let recorder = Arc::new(Recorder {
            events: Mutex::new(Vec::new()),
            down: false,
        });
        let edge = edge(recorder.clone());
        let meta = meta();
        let user = UserId::generate();
        edge.record_audit(
            &meta,
            AuditKind::ExecRun,
            Outcome::Failure,
            Some(&user),
            Some("refused:rm".to_owned()),
        )
        .await
        .unwrap();
        let events = recorder.events.lock().unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.at, Timestamp(1_700_000_000));
        assert_eq!(e.kind, AuditKind::ExecRun);
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.user_id, Some(user));
        assert_eq!(e.ip, "203.0.113.7");
        assert_eq!(e.user_agent, "curl/8");
        assert_eq!(e.request_id, meta.request_id);
        assert_eq!(e.detail.as_deref(), Some("refused:rm"));
    }

    #[tokio::test]
    async fn a_failed_write_is_returned_to_the_caller() {
        let edge = edge(Arc::new(Recorder {
            events: Mutex::new(Vec::new()),
            down: true,
        }));
        let err = edge
            .record_audit(&meta(), AuditKind::ExecRun, Outcome::Success, None, None)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "store unavailable: audit table is down");
    }
}
