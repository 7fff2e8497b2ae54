//! Delivery authentication over the exact raw body bytes, before anything is parsed. Every
//! comparison is constant-time; each failure names a short reason for the audit log.

use bastion_core::Timestamp;
use bastion_core::crypto::{ct_eq, hmac_sha256};

/// Why a delivery was not accepted as authentic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("signature or secret header missing")]
    Missing,
    #[error("signature header malformed")]
    Malformed,
    #[error("signature or secret does not match")]
    Mismatch,
    #[error("timestamp older than the tolerance")]
    Stale,
    #[error("timestamp newer than the tolerance")]
    Future,
}

impl Rejection {
    /// The reason recorded in the audit event.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Missing => "missing_signature",
            Rejection::Malformed => "malformed_signature",
            Rejection::Mismatch => "bad_signature",
            Rejection::Stale => "stale_timestamp",
            Rejection::Future => "future_timestamp",
        }
    }
}

/// Telegram: the `X-Telegram-Bot-Api-Secret-Token` header equals the configured secret.
pub fn telegram(header: Option<&[u8]>, secret: &[u8]) -> Result<(), Rejection> {
    let header = header.ok_or(Rejection::Missing)?;
    if ct_eq(header, secret) {
        Ok(())
    } else {
        Err(Rejection::Mismatch)
    }
}

/// Meta: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>`.
pub fn facebook(header: Option<&[u8]>, app_secret: &[u8], body: &[u8]) -> Result<(), Rejection> {
    let header = header.ok_or(Rejection::Missing)?;
    let hex_mac = header
        .strip_prefix(b"sha256=")
        .ok_or(Rejection::Malformed)?;
    let given = decode_hex32(hex_mac).ok_or(Rejection::Malformed)?;
    if ct_eq(&given, &hmac_sha256(app_secret, body)) {
        Ok(())
    } else {
        Err(Rejection::Mismatch)
    }
}

/// The longest `Stripe-Signature` header parsed.
pub const MAX_STRIPE_HEADER: usize = 4096;

/// Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`. Accepted when any `v1`
/// equals HMAC-SHA256(secret, "<t>.<body>") for any configured secret and `t` is within
/// `tolerance_secs` of `now` either way. The signature is checked before the timestamp, so
/// an unsigned request learns nothing about the clock.
pub fn stripe(
    header: Option<&[u8]>,
    secrets: &[&[u8]],
    body: &[u8],
    now: Timestamp,
    tolerance_secs: i64,
) -> Result<Timestamp, Rejection> {
    let header = header.ok_or(Rejection::Missing)?;
    // A real header is well under 1 KiB even mid-rotation; parsing stops at the door for
    // anything built to make us split and hex-decode at length.
    if header.len() > MAX_STRIPE_HEADER {
        return Err(Rejection::Malformed);
    }
    let header = std::str::from_utf8(header).map_err(|_| Rejection::Malformed)?;
    let mut timestamp: Option<&str> = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(Rejection::Malformed)?;
        match k {
            "t" if timestamp.is_none() => timestamp = Some(v),
            "t" => return Err(Rejection::Malformed),
            // A handful of v1 entries covers any rotation; more is not a real Stripe header.
            "v1" if signatures.len() < 8 => {
                // Entries that are not 32-byte hex can never match; skip them like Stripe's
                // own libraries do rather than failing the whole header.
                if let Some(sig) = decode_hex32(v.as_bytes()) {
                    signatures.push(sig);
                }
            }
            "v1" => return Err(Rejection::Malformed),
            _ => {}
        }
    }
    let t_raw = timestamp.ok_or(Rejection::Malformed)?;
    let t: i64 = t_raw
        .parse()
        .ok()
        .filter(|t| *t >= 0)
        .ok_or(Rejection::Malformed)?;
    if signatures.is_empty() {
        return Err(Rejection::Malformed);
    }
    let mut signed = Vec::with_capacity(t_raw.len() + 1 + body.len());
    signed.extend_from_slice(t_raw.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    let mut matched = false;
    for secret in secrets {
        let expected = hmac_sha256(secret, &signed);
        for sig in &signatures {
            // No early exit: every pair is compared, so timing says nothing about which
            // secret or entry matched.
            matched |= ct_eq(sig, &expected);
        }
    }
    if !matched {
        return Err(Rejection::Mismatch);
    }
    if t < now.secs().saturating_sub(tolerance_secs) {
        return Err(Rejection::Stale);
    }
    if t > now.secs().saturating_add(tolerance_secs) {
        return Err(Rejection::Future);
    }
    Ok(Timestamp(t))
}

/// Exactly 64 hex digits (either case) to 32 bytes.
fn decode_hex32(hex_mac: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_mac, &mut out).ok()?;
    Some(out)
}

/// `t=…,v1=…` for `body` under `secret` at `t`: what Stripe sends, for tests and benches.
pub fn stripe_signature_header(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    format!("t={t},v1={}", hex::encode(hmac_sha256(secret, &signed)))
}

/// `sha256=…` for `body` under `app_secret`: what Meta sends, for tests and benches.
pub fn facebook_signature_header(app_secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(app_secret, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000);
    const SECRET: &[u8] = b"whsec_test_current";
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;

    #[test]
    fn telegram_requires_the_exact_secret() {
        assert_eq!(telegram(Some(b"s3cret"), b"s3cret"), Ok(()));
        assert_eq!(telegram(None, b"s3cret"), Err(Rejection::Missing));
        assert_eq!(
            telegram(Some(b"s3cre"), b"s3cret"),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            telegram(Some(b"s3cret "), b"s3cret"),
            Err(Rejection::Mismatch)
        );
    }

    #[test]
    fn facebook_checks_the_hmac_of_the_raw_body() {
        let header = facebook_signature_header(b"app", BODY);
        assert_eq!(facebook(Some(header.as_bytes()), b"app", BODY), Ok(()));
        assert_eq!(
            facebook(Some(header.to_uppercase().as_bytes()), b"app", BODY),
            Err(Rejection::Malformed)
        );
        assert_eq!(
            facebook(Some(header.as_bytes()), b"other", BODY),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            facebook(Some(header.as_bytes()), b"app", b"{}"),
            Err(Rejection::Mismatch)
        );
        assert_eq!(facebook(None, b"app", BODY), Err(Rejection::Missing));
        assert_eq!(
            facebook(Some(b"sha1=abcd"), b"app", BODY),
            Err(Rejection::Malformed)
        );
    }

    #[test]
    fn stripe_accepts_any_matching_v1_under_any_secret_within_tolerance() {
        let t = NOW.secs() - 10;
        let good = stripe_signature_header(SECRET, t, BODY);
        let sig = good.split("v1=").nth(1).unwrap();
        let several = format!("t={t},v1={},v1={sig},v0=abc", "0".repeat(64));
        let secrets: [&[u8]; 2] = [b"whsec_new_one", SECRET];
        assert_eq!(
            stripe(Some(several.as_bytes()), &secrets, BODY, NOW, 300),
            Ok(Timestamp(t))
        );
        assert_eq!(
            stripe(Some(good.as_bytes()), &[b"whsec_new_one"], BODY, NOW, 300),
            Err(Rejection::Mismatch)
        );
    }

    #[test]
    fn stripe_rejects_stale_future_and_malformed_headers() {
        let at = |t: i64| stripe_signature_header(SECRET, t, BODY);
        let check = |h: &str| stripe(Some(h.as_bytes()), &[SECRET], BODY, NOW, 300);
        assert_eq!(
            check(&at(NOW.secs() - 300)),
            Ok(Timestamp(NOW.secs() - 300))
        );
        assert_eq!(check(&at(NOW.secs() - 301)), Err(Rejection::Stale));
        assert_eq!(
            check(&at(NOW.secs() + 300)),
            Ok(Timestamp(NOW.secs() + 300))
        );
        assert_eq!(check(&at(NOW.secs() + 301)), Err(Rejection::Future));
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "garbage", "t=1,t=2,v1=00"] {
            assert_eq!(check(bad), Err(Rejection::Malformed), "{bad}");
        }
        assert_eq!(
            stripe(None, &[SECRET], BODY, NOW, 300),
            Err(Rejection::Missing)
        );
    }

    #[test]
    fn stripe_header_edge_cases_spaces_v0_only_uppercase_hex_and_huge_headers() {
        let t = NOW.secs();
        let good = stripe_signature_header(SECRET, t, BODY);
        let sig = good.split("v1=").nth(1).unwrap().to_owned();
        let check = |h: &str| stripe(Some(h.as_bytes()), &[SECRET], BODY, NOW, 300);
        // Spaces around entries are tolerated; the MAC bytes are what count, so uppercase
        // hex is the same signature.
        assert_eq!(check(&format!(" t={t} , v1={sig} ")), Ok(Timestamp(t)));
        assert_eq!(
            check(&format!("t={t},v1={}", sig.to_uppercase())),
            Ok(Timestamp(t))
        );
        // Only a legacy v0 (or v1 entries that are not 32-byte hex) is no signature at all.
        assert_eq!(check(&format!("t={t},v0={sig}")), Err(Rejection::Malformed));
        assert_eq!(
            check(&format!("t={t},v1=zz{sig}")),
            Err(Rejection::Malformed)
        );
        // A second t= even after a valid pair is refused: which one was signed is ambiguous.
        assert_eq!(
            check(&format!("t={t},v1={sig},t={}", t + 1)),
            Err(Rejection::Malformed)
        );
        // Nine v1 entries is no real header.
        let nine = format!("t={t}{}", format!(",v1={sig}").repeat(9));
        assert_eq!(check(&nine), Err(Rejection::Malformed));
        // A huge header is refused before it is parsed, even if it holds the right pair.
        let huge = format!("t={t},v1={sig}{}", ",x=y".repeat(MAX_STRIPE_HEADER));
        assert_eq!(check(&huge), Err(Rejection::Malformed));
        let filler = ",x=y".repeat((MAX_STRIPE_HEADER - good.len()) / 4);
        assert_eq!(check(&format!("{good}{filler}")), Ok(Timestamp(t)));
    }
}
