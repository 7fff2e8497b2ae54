//! Tests of access tokens: rotation by kid, exact expiry, and every way a token not signed by
//! auth's private key (another key, HS256, `alg: none`, a public key used as an HMAC secret) is
//! refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};

use super::*;

/// `(kid, seed)` pairs; the public halves are derived, as auth's configuration lists them.
pub(crate) fn signer_of(issuer: &str, audience: &str, seeds: &[(&str, u8)]) -> JwtKeys {
    let signing: Vec<(String, Vec<u8>)> = seeds
        .iter()
        .map(|(kid, b)| ((*kid).to_owned(), vec![*b; 32]))
        .collect();
    let public = signing
        .iter()
        .map(|(kid, seed)| (kid.clone(), public_key_of(kid, seed).unwrap().to_vec()))
        .collect();
    JwtKeys::signer(issuer, audience, signing, public).unwrap()
}

/// The verify-only keys a function other than auth holds for `signer`.
pub(crate) fn verifier_for(signer: &JwtKeys) -> JwtKeys {
    let public = signer
        .public_keys()
        .into_iter()
        .map(|(kid, k)| (kid, k.to_vec()))
        .collect();
    JwtKeys::verifier(signer.issuer.clone(), signer.audience.clone(), public).unwrap()
}

fn keys() -> JwtKeys {
    signer_of("bastion", "bastion-api", &[("k2", 2), ("k1", 1)])
}

fn mint(k: &JwtKeys, now: i64) -> (String, AccessClaims) {
    k.issue(
        &UserId::generate(),
        &SessionId::generate(),
        &["user".into()],
        Timestamp(now),
    )
    .unwrap()
}

fn claims_at(now: i64) -> AccessClaims {
    AccessClaims {
        iss: "bastion".into(),
        aud: "bastion-api".into(),
        sub: UserId::generate().to_string(),
        sid: SessionId::generate().to_string(),
        roles: vec!["admin".into()],
        jti: "j".into(),
        iat: now,
        nbf: now,
        exp: now + 600,
    }
}

/// An HS256 access token naming `kid`, MACed with `secret`.
fn hs256(kid: &str, secret: &[u8], claims: &AccessClaims) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some(ACCESS_TOKEN_TYP.into());
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

#[test]
fn issued_token_verifies_with_all_claims() {
    let k = keys();
    let (t, c) = mint(&k, 1_000);
    assert_eq!(k.verify(&t, Timestamp(1_000)), Ok(c.clone()));
    assert_eq!(c.exp - c.iat, 900);
    assert_eq!(c.roles, vec!["user".to_owned()]);
    let header = jsonwebtoken::decode_header(&t).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some("k2"));
}

#[test]
fn a_verifier_holding_only_public_keys_accepts_auths_tokens_and_cannot_mint_one() {
    let auth = keys();
    let verifier = verifier_for(&auth);
    let (t, c) = mint(&auth, 1_000);
    assert_eq!(verifier.verify(&t, Timestamp(1_000)), Ok(c));
    assert!(auth.can_sign());
    assert!(!verifier.can_sign());
    assert_eq!(
        verifier
            .issue(
                &UserId::generate(),
                &SessionId::generate(),
                &[],
                Timestamp(1_000)
            )
            .unwrap_err(),
        JwtError::VerifyOnly
    );
    assert_eq!(
        verifier
            .issue_device(&UserId::generate(), "a@b.co", "h", 0, Timestamp(1_000))
            .unwrap_err(),
        JwtError::VerifyOnly
    );
}

#[test]
fn expiry_is_exact_and_follows_the_clock() {
    let k = keys();
    let (t, _) = mint(&k, 1_000);
    assert!(k.verify(&t, Timestamp(1_899)).is_ok());
    assert_eq!(k.verify(&t, Timestamp(1_900)), Err(JwtError::Expired));
    assert_eq!(k.verify(&t, Timestamp(990)), Err(JwtError::NotYetValid));
}

#[test]
fn previous_key_still_verifies_and_unknown_kid_fails() {
    let old = signer_of("bastion", "bastion-api", &[("k1", 1)]);
    let (t, _) = mint(&old, 1_000);
    assert!(verifier_for(&keys()).verify(&t, Timestamp(1_000)).is_ok());
    let rotated_out = signer_of("bastion", "bastion-api", &[("k3", 3)]);
    assert_eq!(
        verifier_for(&rotated_out).verify(&t, Timestamp(1_000)),
        Err(JwtError::BadHeader)
    );
}

#[test]
fn a_second_signing_key_waits_and_the_first_one_signs() {
    // After `--rotate`: the new key is listed second everywhere and signs nothing yet.
    let k = signer_of("bastion", "bastion-api", &[("k1", 1), ("k2", 2)]);
    let (t, _) = mint(&k, 1_000);
    let header = jsonwebtoken::decode_header(&t).unwrap();
    assert_eq!(header.kid.as_deref(), Some("k1"));
}

#[test]
fn same_kid_with_another_private_key_is_a_bad_signature() {
    let forger = signer_of("bastion", "bastion-api", &[("k2", 9)]);
    let (t, _) = mint(&forger, 1_000);
    assert_eq!(
        verifier_for(&keys()).verify(&t, Timestamp(1_000)),
        Err(JwtError::BadSignature)
    );
}

/// Found by fuzzing (`fuzz/fuzz_targets/jwt.rs`): `exp - iat` overflowed (a panic with
/// overflow checks, a wrapped and accepted lifetime without them).
#[test]
fn a_signed_token_whose_lifetime_overflows_is_refused_not_wrapped() {
    let k = keys();
    for (iat, exp) in [(-1_000, i64::MAX), (i64::MIN, 2_000), (i64::MIN, i64::MAX)] {
        let claims = AccessClaims {
            iat,
            nbf: 0,
            exp,
            ..claims_at(0)
        };
        let token = k
            .sign(k.current().unwrap(), ACCESS_TOKEN_TYP, &claims)
            .unwrap();
        assert_eq!(
            k.verify(&token, Timestamp(1_000)),
            Err(JwtError::BadClaims),
            "{iat} {exp}"
        );
    }
}

#[test]
fn wrong_audience_or_issuer_is_refused() {
    let other = signer_of("bastion", "other-api", &[("k2", 2)]);
    let (t, _) = mint(&other, 1_000);
    assert_eq!(
        keys().verify(&t, Timestamp(1_000)),
        Err(JwtError::WrongParty)
    );
    let other = signer_of("evil", "bastion-api", &[("k2", 2)]);
    let (t, _) = mint(&other, 1_000);
    assert_eq!(
        keys().verify(&t, Timestamp(1_000)),
        Err(JwtError::WrongParty)
    );
}

#[test]
fn alg_none_and_wrong_typ_are_refused() {
    let k = keys();
    let (t, _) = mint(&k, 1_000);
    let payload = t.split('.').nth(1).unwrap();
    let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt","kid":"k2"}"#);
    assert!(
        k.verify(&format!("{none}.{payload}."), Timestamp(1_000))
            .is_err()
    );
    let jwt_typ = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"JWT","kid":"k2"}"#);
    let sig = t.split('.').nth(2).unwrap();
    assert_eq!(
        k.verify(&format!("{jwt_typ}.{payload}.{sig}"), Timestamp(1_000)),
        Err(JwtError::BadHeader)
    );
    assert_eq!(
        k.verify("not.a.jwt", Timestamp(1_000)),
        Err(JwtError::Malformed)
    );
}

#[test]
fn an_hs256_token_is_refused_whatever_its_key() {
    let k = verifier_for(&keys());
    for secret in [[2u8; 32], [1u8; 32], [0u8; 32]] {
        let t = hs256("k2", &secret, &claims_at(1_000));
        assert_eq!(k.verify(&t, Timestamp(1_000)), Err(JwtError::BadHeader));
    }
}

/// Algorithm confusion: the verify keys are public, so an HS256 token MACed with a public key's
/// bytes (raw or base64, as they appear in configuration) must not verify.
#[test]
fn an_hs256_token_macd_with_a_public_key_is_refused() {
    let k = verifier_for(&keys());
    for (kid, public) in k.public_keys() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(public);
        for secret in [public.to_vec(), b64.into_bytes()] {
            let t = hs256(&kid, &secret, &claims_at(1_000));
            assert_eq!(k.verify(&t, Timestamp(1_000)), Err(JwtError::BadHeader));
            // The same MAC under a header that claims EdDSA is no Ed25519 signature.
            let (_, rest) = t.split_once('.').unwrap();
            let eddsa = URL_SAFE_NO_PAD
                .encode(format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}"}}"#));
            assert_eq!(
                k.verify(&format!("{eddsa}.{rest}"), Timestamp(1_000)),
                Err(JwtError::BadSignature)
            );
        }
    }
}

#[test]
fn a_signing_key_whose_public_half_is_not_listed_under_its_kid_is_refused_at_start() {
    let seed = vec![1u8; 32];
    let public = public_key_of("k1", &seed).unwrap().to_vec();
    let other = public_key_of("k1", &[2u8; 32]).unwrap().to_vec();
    let signer = |public: Vec<(String, Vec<u8>)>| {
        JwtKeys::signer("i", "a", vec![("k1".into(), seed.clone())], public).unwrap_err()
    };
    assert_eq!(
        signer(vec![("k1".into(), other)]),
        JwtError::UnlistedSigningKey("k1".into())
    );
    assert_eq!(
        signer(vec![("k0".into(), public)]),
        JwtError::UnlistedSigningKey("k1".into())
    );
}

#[test]
fn wrong_lengths_and_bad_kids_are_refused_at_start() {
    assert_eq!(
        JwtKeys::verifier("i", "a", vec![("k".into(), vec![1; 31])]).unwrap_err(),
        JwtError::KeyLength("k".into())
    );
    assert_eq!(
        JwtKeys::verifier("i", "a", vec![("k".into(), vec![1; 33])]).unwrap_err(),
        JwtError::KeyLength("k".into())
    );
    assert_eq!(
        JwtKeys::verifier("i", "a", vec![("k k".into(), vec![1; 32])]).unwrap_err(),
        JwtError::BadKid("k k".into())
    );
    assert_eq!(
        JwtKeys::verifier(
            "i",
            "a",
            vec![("k".into(), vec![1; 32]), ("k".into(), vec![2; 32])]
        )
        .unwrap_err(),
        JwtError::BadKid("k".into())
    );
    assert_eq!(
        JwtKeys::verifier("i", "a", vec![]).unwrap_err(),
        JwtError::NoKeys
    );
    assert_eq!(
        JwtKeys::signer("i", "a", vec![], vec![("k".into(), vec![1; 32])]).unwrap_err(),
        JwtError::NoKeys
    );
    assert_eq!(
        public_key_of("k", &[1; 16]),
        Err(JwtError::KeyLength("k".into()))
    );
}
