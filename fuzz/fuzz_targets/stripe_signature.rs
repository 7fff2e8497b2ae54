//! Fuzzes the `Stripe-Signature` header parser: arbitrary headers never panic, and a header
//! Stripe would send still verifies with any junk entries appended (or is refused as malformed).
#![no_main]

use bastion_core::Timestamp;
use bastion_webhooks::verify::{Rejection, stripe, stripe_signature_header};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"whsec_fuzz_secret_0123456789abcdef";
const TOLERANCE: i64 = 300;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // The body is a prefix of the input so headers and bodies both vary.
    let split = rest.len().min(usize::from(mode >> 2));
    let (body, tail) = rest.split_at(split);
    if mode & 1 == 0 {
        let now = Timestamp(1_800_000_000);
        let result = stripe(Some(tail), &[SECRET], body, now, TOLERANCE);
        // Nobody without the secret produces a matching v1 entry.
        assert!(
            !matches!(result, Ok(_) | Err(Rejection::Stale | Rejection::Future)),
            "unsigned header accepted: {result:?}"
        );
        return;
    }
    let t = i64::from(u32::from_le_bytes([
        body.first().copied().unwrap_or(0),
        body.get(1).copied().unwrap_or(0),
        body.get(2).copied().unwrap_or(0),
        body.get(3).copied().unwrap_or(0),
    ])) * 4;
    let mut header = stripe_signature_header(SECRET, t, body).into_bytes();
    header.push(b',');
    header.extend_from_slice(tail);
    let result = stripe(Some(&header), &[b"other-secret", SECRET], body, Timestamp(t), TOLERANCE);
    assert!(
        matches!(result, Ok(Timestamp(x)) if x == t) || result == Err(Rejection::Malformed),
        "signed header with junk {tail:?}: {result:?}"
    );
    if result.is_ok() {
        let late = stripe(Some(&header), &[SECRET], body, Timestamp(t + TOLERANCE + 1), TOLERANCE);
        assert_eq!(late, Err(Rejection::Stale));
        let early = stripe(Some(&header), &[SECRET], body, Timestamp(t - TOLERANCE - 1), TOLERANCE);
        assert_eq!(early, Err(Rejection::Future));
        assert_eq!(
            stripe(Some(&header), &[b"other-secret"], body, Timestamp(t), TOLERANCE),
            Err(Rejection::Mismatch)
        );
    }
});
