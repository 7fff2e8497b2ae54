//! Fuzzes the Messenger `X-Hub-Signature-256` check: arbitrary headers never panic and are
//! accepted only when they carry the body's HMAC; the header Meta sends always verifies.
#![no_main]

use bastion_webhooks::verify::{Rejection, facebook, facebook_signature_header};
use libfuzzer_sys::fuzz_target;

const APP_SECRET: &[u8] = b"fuzz-app-secret";

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let (header, body) = rest.split_at(rest.len().min(usize::from(cut)));
    let expected = facebook_signature_header(APP_SECRET, body);
    match facebook(Some(header), APP_SECRET, body) {
        Ok(()) => assert_eq!(header.to_ascii_lowercase(), expected.as_bytes()),
        Err(Rejection::Malformed | Rejection::Mismatch) => {}
        Err(other) => panic!("unexpected rejection {other:?}"),
    }
    assert_eq!(facebook(Some(expected.as_bytes()), APP_SECRET, body), Ok(()));
    assert_eq!(
        facebook(Some(expected.as_bytes()), b"another-secret", body),
        Err(Rejection::Mismatch)
    );
});
