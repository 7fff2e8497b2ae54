//! Conformance of the recovery ports: reset tokens (one live per account, single use, a wrong
//! hash burns nothing), the verified address, and the TOTP factor (pending until confirmed,
//! strictly increasing accepted steps, single-use recovery codes, gone with the account).

use std::sync::Arc;

use bastion_core::crypto::TokenHash;
use bastion_core::envelope::ContentSealer;
use bastion_core::{Email, UserId};

use super::sealed::RawDump;
use super::{T0, created, fresh_hash, user};
use crate::{Stores, TotpRecord};

fn pending(id: &str, secret: &str) -> TotpRecord {
    TotpRecord {
        id: id.to_owned(),
        secret: secret.to_owned(),
        confirmed: false,
        last_step: 0,
        recovery_codes: Vec::new(),
        created_at: T0,
    }
}

fn codes(n: usize) -> Vec<TokenHash> {
    let mut codes: Vec<TokenHash> = (0..n).map(|_| fresh_hash()).collect();
    codes.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    codes
}

/// A user with a confirmed TOTP factor `id` at step 100 and `codes`.
async fn with_totp(stores: &Stores, codes: &[TokenHash]) -> UserId {
    let u = created(stores, user(&format!("{}@example.com", UserId::generate()))).await;
    assert!(
        stores
            .mfa
            .put_pending_totp(&u.id, &pending("f1", "S1"))
            .await
            .unwrap()
    );
    assert!(
        stores
            .mfa
            .confirm_totp(&u.id, "f1", 100, codes)
            .await
            .unwrap()
    );
    u.id
}

pub async fn a_reset_token_is_taken_once_before_it_expires_and_a_wrong_hash_burns_nothing(
    stores: Stores,
) {
    let u = created(&stores, user("reset@example.com")).await;
    let (token, other) = (fresh_hash(), fresh_hash());
    let r = &stores.recovery;
    r.put_reset(&u.id, &token, T0.plus_secs(1800))
        .await
        .unwrap();
    assert!(!r.take_reset(&u.id, &other, T0).await.unwrap());
    assert!(!r.take_reset(&UserId::generate(), &token, T0).await.unwrap());
    assert!(
        r.take_reset(&u.id, &token, T0.plus_secs(1799))
            .await
            .unwrap()
    );
    assert!(!r.take_reset(&u.id, &token, T0).await.unwrap(), "used");

    r.put_reset(&u.id, &token, T0.plus_secs(1800))
        .await
        .unwrap();
    assert!(
        !r.take_reset(&u.id, &token, T0.plus_secs(1800))
            .await
            .unwrap(),
        "expired"
    );
}

pub async fn a_newer_reset_token_voids_the_older_one(stores: Stores) {
    let u = created(&stores, user("newer@example.com")).await;
    let (first, second) = (fresh_hash(), fresh_hash());
    let r = &stores.recovery;
    r.put_reset(&u.id, &first, T0.plus_secs(1800))
        .await
        .unwrap();
    r.put_reset(&u.id, &second, T0.plus_secs(1900))
        .await
        .unwrap();
    assert!(!r.take_reset(&u.id, &first, T0).await.unwrap());
    assert!(r.take_reset(&u.id, &second, T0).await.unwrap());
}

pub async fn twenty_concurrent_takes_of_one_reset_token_yield_exactly_one(stores: Stores) {
    let u = created(&stores, user("race-reset@example.com")).await;
    let token = fresh_hash();
    stores
        .recovery
        .put_reset(&u.id, &token, T0.plus_secs(1800))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (s, id, t) = (stores.clone(), u.id.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            s.recovery.take_reset(&id, &t, T0).await.unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
}

pub async fn an_address_is_verified_only_while_the_account_still_has_it(stores: Stores) {
    let u = created(&stores, user("mark@example.com")).await;
    let other = Email::parse("other@example.com").unwrap();
    assert!(
        !stores
            .users
            .set_email_verified(&u.id, &other)
            .await
            .unwrap()
    );
    assert!(
        !stores
            .users
            .get_user(&u.id)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    assert!(
        !stores
            .users
            .set_email_verified(&UserId::generate(), &u.email)
            .await
            .unwrap()
    );
    assert!(
        stores
            .users
            .set_email_verified(&u.id, &u.email)
            .await
            .unwrap()
    );
    assert!(
        stores
            .users
            .get_user(&u.id)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    let by_email = stores
        .users
        .find_user_by_email(&u.email)
        .await
        .unwrap()
        .unwrap();
    assert!(by_email.email_verified, "the login lookup sees it too");
}

pub async fn a_pending_secret_is_replaced_until_one_is_confirmed(stores: Stores) {
    let u = created(&stores, user("pending@example.com")).await;
    let m = &stores.mfa;
    assert_eq!(m.get_totp(&u.id).await.unwrap(), None);
    assert!(
        m.put_pending_totp(&u.id, &pending("a", "SA"))
            .await
            .unwrap()
    );
    assert!(
        m.put_pending_totp(&u.id, &pending("b", "SB"))
            .await
            .unwrap()
    );
    assert!(
        !m.confirm_totp(&u.id, "a", 5, &codes(2)).await.unwrap(),
        "a stale id"
    );
    assert!(
        !m.accept_totp_step(&u.id, "b", 5).await.unwrap(),
        "not confirmed yet"
    );
    let wanted = codes(10);
    assert!(m.confirm_totp(&u.id, "b", 5, &wanted).await.unwrap());
    assert!(
        !m.confirm_totp(&u.id, "b", 6, &wanted).await.unwrap(),
        "confirmed already"
    );
    assert!(
        !m.put_pending_totp(&u.id, &pending("c", "SC"))
            .await
            .unwrap()
    );
    let stored = m.get_totp(&u.id).await.unwrap().unwrap();
    assert_eq!(
        stored,
        TotpRecord {
            id: "b".into(),
            secret: stored.secret.clone(),
            confirmed: true,
            last_step: 5,
            recovery_codes: wanted,
            created_at: T0,
        }
    );
}

pub async fn accepted_steps_only_increase_and_one_step_is_accepted_once(stores: Stores) {
    let id = with_totp(&stores, &codes(1)).await;
    let m = &stores.mfa;
    assert!(
        !m.accept_totp_step(&id, "f1", 100).await.unwrap(),
        "the confirming step"
    );
    assert!(!m.accept_totp_step(&id, "f1", 99).await.unwrap());
    assert!(!m.accept_totp_step(&id, "other", 101).await.unwrap());
    assert!(m.accept_totp_step(&id, "f1", 101).await.unwrap());
    assert!(
        !m.accept_totp_step(&id, "f1", 101).await.unwrap(),
        "a replay"
    );
    assert_eq!(m.get_totp(&id).await.unwrap().unwrap().last_step, 101);

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (s, u) = (stores.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            s.mfa.accept_totp_step(&u, "f1", 102).await.unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
}

pub async fn a_recovery_code_is_used_once_even_concurrently(stores: Stores) {
    let all = codes(3);
    let id = with_totp(&stores, &all).await;
    let m = &stores.mfa;
    assert!(!m.use_recovery_code(&id, &fresh_hash()).await.unwrap());
    assert!(m.use_recovery_code(&id, &all[0]).await.unwrap());
    assert!(!m.use_recovery_code(&id, &all[0]).await.unwrap());
    assert_eq!(
        m.get_totp(&id).await.unwrap().unwrap().recovery_codes,
        all[1..].to_vec()
    );

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (s, u, c) = (stores.clone(), id.clone(), all[1].clone());
        tasks.push(tokio::spawn(async move {
            s.mfa.use_recovery_code(&u, &c).await.unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    assert!(
        m.use_recovery_code(&id, &all[2]).await.unwrap(),
        "the last one"
    );
    assert_eq!(
        m.get_totp(&id).await.unwrap().unwrap().recovery_codes,
        Vec::<TokenHash>::new()
    );
    assert!(!m.use_recovery_code(&id, &all[2]).await.unwrap());
}

pub async fn deleting_the_factor_or_the_account_removes_it_and_the_reset_token(stores: Stores) {
    let id = with_totp(&stores, &codes(2)).await;
    assert!(stores.mfa.delete_totp(&id).await.unwrap());
    assert!(!stores.mfa.delete_totp(&id).await.unwrap());
    assert_eq!(stores.mfa.get_totp(&id).await.unwrap(), None);

    let id = with_totp(&stores, &codes(2)).await;
    let token = fresh_hash();
    stores
        .recovery
        .put_reset(&id, &token, T0.plus_secs(1800))
        .await
        .unwrap();
    stores.users.delete_user(&id).await.unwrap();
    assert_eq!(stores.mfa.get_totp(&id).await.unwrap(), None);
    assert!(!stores.recovery.take_reset(&id, &token, T0).await.unwrap());
}

/// Through the sealing stores: the secret opens back, and the adapter holds only its seal.
pub async fn totp_secrets_never_reach_the_store_as_plaintext(
    plain: Stores,
    sealer: Arc<ContentSealer>,
    raw: &dyn RawDump,
) {
    let stores = plain.clone().with_content_sealing(sealer);
    let u = created(&stores, user("sealed-totp@example.com")).await;
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    assert!(
        stores
            .mfa
            .put_pending_totp(&u.id, &pending("s1", secret))
            .await
            .unwrap()
    );
    assert_eq!(
        stores.mfa.get_totp(&u.id).await.unwrap().unwrap().secret,
        secret
    );
    let stored = plain.mfa.get_totp(&u.id).await.unwrap().unwrap().secret;
    assert!(stored.starts_with("bastion-sealed:v1:"), "{stored}");
    let dump = raw.dump().await;
    assert!(
        dump.contains(u.id.as_str()),
        "the dump must cover the account"
    );
    assert!(
        !dump.contains(secret),
        "the TOTP secret is stored in plaintext"
    );
    // A plaintext secret written around the decorator is refused, never used.
    let other = created(&stores, user("planted@example.com")).await;
    assert!(
        plain
            .mfa
            .put_pending_totp(&other.id, &pending("p", secret))
            .await
            .unwrap()
    );
    assert!(matches!(
        stores.mfa.get_totp(&other.id).await,
        Err(crate::StoreError::Corrupt(_))
    ));
}
