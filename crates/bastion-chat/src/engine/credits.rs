//! The credits a turn has debited and not yet settled: each model call takes one before it is
//! made; a call that produced nothing gives its own back at once, and the rest stay spent when
//! the turn is stored or all go back when it is not, also when the turn's future is dropped
//! (client gone, caller's timeout) or unwinds from a panic.

use std::sync::Arc;

use bastion_core::{Owner, RequestId};
use bastion_store::CreditStore;

pub(super) struct HeldCredits {
    credits: Arc<dyn CreditStore>,
    owner: Owner,
    day: i64,
    request_id: RequestId,
    held: u32,
}

impl HeldCredits {
    pub(super) fn new(
        credits: Arc<dyn CreditStore>,
        owner: &Owner,
        day: i64,
        request_id: &RequestId,
    ) -> Self {
        Self {
            credits,
            owner: owner.clone(),
            day,
            request_id: request_id.clone(),
            held: 0,
        }
    }

    /// A credit was just debited for a model call.
    pub(super) fn add(&mut self) {
        self.held += 1;
    }

    /// The last call produced nothing: its credit goes back now.
    pub(super) async fn give_back_one(&mut self) {
        if self.held == 0 {
            return;
        }
        self.held -= 1;
        refund(self.parts(), 1).await;
    }

    /// The turn was stored: every held credit stays spent.
    pub(super) fn keep(mut self) {
        self.held = 0;
    }

    /// The turn failed: every held credit goes back now.
    pub(super) async fn refund_all(mut self) {
        let n = std::mem::take(&mut self.held);
        refund(self.parts(), n).await;
    }

    fn parts(&self) -> Parts {
        (
            self.credits.clone(),
            self.owner.clone(),
            self.day,
            self.request_id.clone(),
        )
    }
}

type Parts = (Arc<dyn CreditStore>, Owner, i64, RequestId);

impl Drop for HeldCredits {
    fn drop(&mut self) {
        if self.held == 0 {
            return;
        }
        let n = self.held;
        let parts = self.parts();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                tracing::warn!(request_id = %parts.3, owner = %parts.1.key(), credits = n, "chat turn abandoned after its debits; refunding the credits");
                runtime.spawn(refund(parts, n));
            }
            Err(_) => {
                tracing::error!(request_id = %parts.3, owner = %parts.1.key(), credits = n, "chat turn abandoned outside a runtime; its credits stay spent");
            }
        }
    }
}

async fn refund((credits, owner, day, request_id): Parts, n: u32) {
    for _ in 0..n {
        if let Err(e) = credits.refund(&owner, day).await {
            tracing::error!(%request_id, owner = %owner.key(), error = %e, "chat credit refund failed");
        }
    }
}
