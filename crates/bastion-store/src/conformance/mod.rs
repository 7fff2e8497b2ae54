//! The one behaviour suite every adapter must pass: `pub async fn` bodies that take a `Stores`.
//!
//! Adapters' integration tests call [`conformance_tests!`](crate::conformance_tests) with a
//! fixture, which emits one `#[tokio::test]` per function below under the same name, so a
//! behaviour cannot be tested for one adapter and forgotten for the other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_key_limit;
mod audit;
mod billing;
mod chat;
mod counters;
mod deliveries;
mod leases;
mod mfa;
mod oauth;
mod request_counter;
mod sealed;
mod sessions;
mod users;

pub use api_key_limit::*;
pub use audit::*;
pub use billing::*;
pub use chat::*;
pub use counters::*;
pub use deliveries::*;
pub use leases::*;
pub use mfa::*;
pub use oauth::*;
pub use request_counter::RequestCounter;
pub use sealed::*;
pub use sessions::*;
pub use users::*;

use bastion_core::audit::{AuditEvent, AuditKind, Outcome};
use bastion_core::crypto::TokenHash;
use bastion_core::{AuditId, DisplayName, Email, RequestId, Role, SessionId, Timestamp, UserId};

use crate::{SessionRecord, Stores, UserRecord};

/// A fixed "now" far from the epoch and from day boundaries' edge cases.
pub const T0: Timestamp = Timestamp(1_800_000_000);

/// Emits one `#[tokio::test]` per conformance function. `$fixture` is an `async fn() -> (Stores,
/// G)`; `G` is kept alive until the test ends (e.g. to delete a temporary database).
#[macro_export]
macro_rules! conformance_tests {
    ($fixture:path) => {
        $crate::conformance_tests!(@each $fixture;
            two_concurrent_registrations_of_one_email_exactly_one_succeeds,
            a_created_user_reads_back_by_id_and_by_normalized_email,
            registering_a_taken_email_returns_email_taken_and_keeps_the_first_account,
            set_password_hash_replaces_only_the_expected_hash_and_reports_unknown_users,
            deleting_a_user_removes_profile_guard_and_sessions_and_frees_the_email,
            a_created_session_reads_back_and_its_refresh_hash_points_to_it,
            expired_sessions_and_refresh_lookups_read_as_absent_while_still_stored,
            rotation_replaces_the_hash_and_the_old_hash_then_counts_as_reused,
            two_concurrent_rotations_of_one_hash_yield_one_rotated_and_one_reused,
            rotating_a_revoked_or_unknown_session_reports_session_gone,
            list_sessions_returns_live_sessions_newest_first,
            revoke_session_reports_whether_the_session_existed,
            revoke_all_sessions_keeps_the_named_session_and_counts_the_rest,
            revoking_all_sessions_advances_the_session_epoch_the_login_lookup_reads,
            a_session_is_created_only_under_the_epoch_its_credentials_were_checked_at,
            one_hundred_concurrent_hits_return_exactly_one_to_one_hundred,
            hit_returns_the_previous_windows_count,
            counters_of_different_keys_are_independent,
            audit_events_list_newest_first_with_every_field,
            five_audit_events_in_pages_of_two_come_back_as_two_two_one_without_duplicates,
            expired_audit_events_are_skipped_while_still_stored,
            a_malformed_audit_cursor_yields_none,
            audit_events_are_listed_only_for_their_user,
            a_one_time_record_is_taken_exactly_once_by_twenty_concurrent_callers,
            an_expired_one_time_record_is_absent_and_purposes_do_not_mix,
            a_google_user_is_created_with_its_link_and_found_by_subject,
            linking_refuses_a_taken_subject_a_second_subject_and_a_missing_user,
            deleting_a_linked_user_frees_the_google_subject,
            roles_and_the_disabled_flag_are_replaced_and_unknown_users_reported,
            the_email_lookup_sees_password_role_and_disabled_changes_at_once,
            unlinking_google_frees_the_subject_and_reports_whether_there_was_a_link,
            api_keys_read_back_by_hash_list_newest_first_and_expire,
            an_api_key_is_revoked_only_by_its_owner_and_then_absent,
            revoking_all_keys_or_deleting_the_user_removes_every_key,
            touching_a_key_writes_last_used_at_once_per_interval_even_concurrently,
            thirty_concurrent_mints_under_a_limit_of_twenty_five_create_exactly_twenty_five,
            a_revoked_or_expired_key_gives_its_place_back_and_revoking_all_frees_every_place,
            audit_events_list_by_day_across_users_newest_first_in_pages,
            fifty_concurrent_debits_with_ten_credits_left_take_exactly_ten,
            a_refund_gives_back_one_credit_and_never_goes_below_zero,
            credits_are_counted_per_owner_and_per_day_against_the_given_allowance,
            a_turn_creates_a_conversation_whose_messages_read_back_newest_first,
            a_turn_with_a_stale_count_or_a_duplicate_create_is_a_conflict_and_writes_nothing,
            five_conversations_list_newest_first_in_pages_of_two_without_duplicates,
            messages_page_newest_first_and_a_malformed_cursor_yields_none,
            another_owners_conversation_reads_as_absent_and_cannot_be_deleted,
            deleting_a_conversation_removes_its_messages_and_reports_whether_it_existed,
            deleting_a_user_removes_their_conversations_and_credits_but_no_one_elses,
            a_claimed_delivery_is_in_progress_then_done_for_everyone_else,
            a_released_claim_can_be_claimed_again_but_only_by_its_holder_releasing,
            an_expired_lease_lets_another_request_take_over,
            done_records_expire_after_the_retention_while_still_stored,
            twenty_concurrent_claims_of_one_delivery_yield_exactly_one_claimed,
            a_held_lease_refuses_others_until_its_holder_releases_it,
            an_expired_lease_still_stored_is_taken_over_and_not_released_by_its_old_holder,
            twenty_concurrent_acquisitions_of_one_lease_yield_exactly_one_holder,
            a_user_with_nothing_recorded_is_on_the_free_plan,
            a_linked_customer_resolves_to_its_user_and_cannot_be_taken_by_another,
            billing_updates_apply_in_created_order_and_older_ones_are_stale,
            a_same_second_event_never_moves_a_subscription_back_along_its_life,
            the_plan_lapses_when_the_paid_period_and_its_grace_run_out,
            deleting_a_user_removes_their_billing_state_and_customer_link,
            a_reset_token_is_taken_once_before_it_expires_and_a_wrong_hash_burns_nothing,
            a_newer_reset_token_voids_the_older_one,
            twenty_concurrent_takes_of_one_reset_token_yield_exactly_one,
            an_address_is_verified_only_while_the_account_still_has_it,
            a_pending_secret_is_replaced_until_one_is_confirmed,
            accepted_steps_only_increase_and_one_step_is_accepted_once,
            a_recovery_code_is_used_once_even_concurrently,
            deleting_the_factor_or_the_account_removes_it_and_the_reset_token,
        );
    };
    (@each $fixture:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (stores, _guard) = $fixture().await;
                $crate::conformance::$name(stores).await;
            }
        )+
    };
}

/// A valid account with a fresh id.
pub fn user(email: &str) -> UserRecord {
    UserRecord {
        id: UserId::generate(),
        email: Email::parse(email).unwrap(),
        display_name: Some(DisplayName::parse("Alice Example").unwrap()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        roles: vec![Role::User],
        created_at: T0,
        disabled: false,
        session_epoch: 0,
        email_verified: false,
    }
}

/// A refresh-token hash that no other call produces.
pub fn fresh_hash() -> TokenHash {
    TokenHash::of(SessionId::generate().as_str())
}

/// A session of `user` created at `created_at` that ends `lifetime` seconds later.
pub fn session(user: &UserId, created_at: Timestamp, lifetime: i64) -> SessionRecord {
    SessionRecord {
        id: SessionId::generate(),
        user_id: user.clone(),
        refresh_hash: fresh_hash(),
        created_at,
        last_used_at: created_at,
        expires_at: created_at.plus_secs(lifetime),
        ip: "203.0.113.7".to_owned(),
        user_agent: "conformance/1.0".to_owned(),
    }
}

/// An audit event about `user` (or about an unknown account when `None`).
pub fn event(user: Option<&UserId>, at: Timestamp, kind: AuditKind) -> AuditEvent {
    AuditEvent {
        id: AuditId::generate(),
        at,
        kind,
        outcome: Outcome::Success,
        user_id: user.cloned(),
        ip: "198.51.100.23".to_owned(),
        user_agent: "conformance/1.0".to_owned(),
        request_id: RequestId::generate(),
        detail: None,
    }
}

/// Creates `user` and fails the test if that does not succeed.
pub async fn created(stores: &Stores, user: UserRecord) -> UserRecord {
    stores.users.create_user(&user).await.unwrap();
    user
}
