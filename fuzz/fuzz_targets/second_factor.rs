//! Fuzzes the second-factor parsers of bastion-core (TOTP codes, base32 TOTP secrets, recovery
//! codes): no panic, and what is accepted keeps its shape and re-parses to the same value.
#![no_main]

use bastion_core::Timestamp;
use bastion_core::crypto::recovery::RecoveryCode;
use bastion_core::crypto::totp::{TotpCode, TotpSecret, step_at};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(code) = TotpCode::parse(raw) {
                let s = code.as_str();
                assert!(s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()), "{s:?}");
                assert_eq!(TotpCode::parse(s).as_ref(), Ok(&code));
            }
        }
        1 => {
            if let Ok(secret) = TotpSecret::from_base32(raw) {
                let text = secret.to_base32();
                let again = TotpSecret::from_base32(&text).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(again.to_base32(), text);
                // Any accepted secret computes codes, and a code is found at its own step.
                let now = Timestamp(1_800_000_000);
                let code = TotpCode::parse(&secret.code_at(step_at(now))).unwrap_or_else(|e| panic!("{e}"));
                assert!(secret.matching_step(&code, now, 0).is_some());
            }
        }
        _ => {
            if let Ok(code) = RecoveryCode::parse(raw) {
                let shown = code.expose();
                assert_eq!(shown.len(), 29, "{shown:?}");
                let again = RecoveryCode::parse(shown).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(again.hash(), code.hash());
                assert_eq!(RecoveryCode::parse(&shown.to_uppercase()).map(|c| c.hash()), Ok(code.hash()));
            }
        }
    }
});
