//! A conversation's turn, claimed before any credit is debited or the provider is called: a
//! conditional write (a `DeliveryStore` lease under `chat-turn#<owner>#<conversation>`) that
//! exactly one of several concurrent turns wins. The losers stop before spending anything, so
//! N parallel turns on one conversation cost one provider call, not N.

use std::sync::Arc;

use bastion_core::{Owner, RequestId, Timestamp};
use bastion_store::{ClaimOutcome, ConversationId, DeliveryStore, StoreError};

/// Longer than a turn can take (the provider's deadline with its retries, plus the write), so
/// a lease only lapses when its holder died without releasing it.
pub const TURN_LEASE_SECS: i64 = 120;

/// A held claim, released exactly once: explicitly at the end of the turn, or from `Drop`
/// when the turn's future is cancelled or unwinds.
pub struct TurnClaim {
    deliveries: Arc<dyn DeliveryStore>,
    key: String,
    holder: RequestId,
    armed: bool,
}

impl TurnClaim {
    /// Claims the turn of `conversation`; `None` when another turn holds it.
    pub async fn take(
        deliveries: Arc<dyn DeliveryStore>,
        owner: &Owner,
        conversation: &ConversationId,
        holder: &RequestId,
        now: Timestamp,
    ) -> Result<Option<Self>, StoreError> {
        let key = format!("chat-turn#{}#{conversation}", owner.key());
        match deliveries
            .claim_delivery(&key, holder, now, TURN_LEASE_SECS)
            .await?
        {
            ClaimOutcome::Claimed => Ok(Some(Self {
                deliveries,
                key,
                holder: holder.clone(),
                armed: true,
            })),
            ClaimOutcome::InProgress | ClaimOutcome::Done => Ok(None),
        }
    }

    /// Lets the next turn in; a failure is logged (the lease then lapses on its own).
    pub async fn release(mut self) {
        self.armed = false;
        release(
            self.deliveries.clone(),
            self.key.clone(),
            self.holder.clone(),
        )
        .await;
    }
}

impl Drop for TurnClaim {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (deliveries, key, holder) = (
            self.deliveries.clone(),
            self.key.clone(),
            self.holder.clone(),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(release(deliveries, key, holder));
        } else {
            tracing::error!(request_id = %holder, "chat turn claim abandoned outside a runtime; it lapses with its lease");
        }
    }
}

async fn release(deliveries: Arc<dyn DeliveryStore>, key: String, holder: RequestId) {
    if let Err(e) = deliveries.release_delivery(&key, &holder).await {
        tracing::error!(request_id = %holder, error = %e, "chat turn claim release failed; it lapses with its lease");
    }
}
