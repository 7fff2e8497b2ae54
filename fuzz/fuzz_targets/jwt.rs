//! Fuzzes JWT parsing and verification: arbitrary tokens never panic nor verify, and tokens
//! our own key signs over arbitrary claims are accepted only inside the documented lifetime.
#![no_main]

use std::sync::OnceLock;

use bastion_core::Timestamp;
use bastion_core::crypto::JwtKeys;
use bastion_core::crypto::jwt::{ACCESS_TOKEN_TTL_SECS, public_key_of};
use bastion_core::crypto::jwt::device::DEVICE_TOKEN_TTL_SECS;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;

/// Our Ed25519 signing key (a seed).
const SEED: [u8; 32] = [7; 32];
/// RFC 8410's PKCS#8 v1 prefix of an Ed25519 private key; the 32-byte seed follows.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// A wall-clock second in 2027: the Clock never reads outside a sane range.
const NOW: i64 = 1_800_000_000;

fn keys() -> &'static JwtKeys {
    static KEYS: OnceLock<JwtKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let public = public_key_of("k1", &SEED).unwrap_or_else(|e| panic!("keys: {e}"));
        JwtKeys::signer(
            "bastion",
            "bastion-api",
            vec![("k1".into(), SEED.to_vec())],
            vec![("k1".into(), public.to_vec())],
        )
        .unwrap_or_else(|e| panic!("keys: {e}"))
    })
}

fn int(bytes: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    for (i, slot) in b.iter_mut().enumerate() {
        *slot = bytes.get(at + i).copied().unwrap_or(0);
    }
    i64::from_le_bytes(b)
}

/// Signs `claims` with our key and kid as a token of type `typ`.
fn sign(typ: &str, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(typ.to_owned());
    header.kid = Some("k1".to_owned());
    let pkcs8 = [PKCS8_PREFIX.as_slice(), SEED.as_slice()].concat();
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&pkcs8))
        .unwrap_or_else(|e| panic!("sign: {e}"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let token = String::from_utf8_lossy(rest);
        assert!(keys().verify(&token, Timestamp(NOW)).is_err());
        assert!(keys().verify_device(&token, Timestamp(NOW)).is_err());
        return;
    }
    // Our key over attacker-shaped numbers: what a bug in issuing (or a stolen old key) yields.
    let (iat, nbf, exp) = (int(rest, 0), int(rest, 8), int(rest, 16));
    let id = "0123456789abcdef0123456789abcdef";
    let access = serde_json::json!({
        "iss": "bastion", "aud": "bastion-api", "sub": id, "sid": id, "roles": ["user"],
        "jti": "j", "iat": iat, "nbf": nbf, "exp": exp,
    });
    if let Ok(c) = keys().verify(&sign("at+jwt", &access), Timestamp(NOW)) {
        assert!(c.exp > NOW && c.nbf <= NOW + 5 && c.iat <= NOW + 5, "{c:?}");
        assert!(i128::from(c.exp) - i128::from(c.iat) <= i128::from(ACCESS_TOKEN_TTL_SECS), "{c:?}");
    }
    let device = serde_json::json!({
        "iss": "bastion", "aud": "bastion-api", "sub": id, "did": id, "eml": "e", "pwv": "p",
        "iat": iat, "exp": exp,
    });
    if let Ok(c) = keys().verify_device(&sign("device+jwt", &device), Timestamp(NOW)) {
        assert!(c.exp > NOW && c.iat <= NOW + 5, "{c:?}");
        assert!(i128::from(c.exp) - i128::from(c.iat) <= i128::from(DEVICE_TOKEN_TTL_SECS), "{c:?}");
    }
});
