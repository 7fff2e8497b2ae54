//! Fuzzes the identity field parsers of bastion-core (email, password, display name): no
//! panic, a parsed value re-parses to itself, and the bounds hold on what is accepted.
#![no_main]

use bastion_core::{DisplayName, Email, Password};
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
            if let Ok(email) = Email::parse(raw) {
                let s = email.as_str();
                assert_eq!(Email::parse(s).as_ref(), Ok(&email));
                assert!(s.len() <= 254 && s.is_ascii() && s.matches('@').count() == 1);
                assert_eq!(s, s.to_lowercase());
                assert_eq!(Email::parse(&s.to_uppercase()).as_ref(), Ok(&email));
            }
        }
        1 => {
            let n = raw.chars().count();
            let existing = Password::parse_existing(raw);
            assert_eq!(existing.is_ok(), (8..=128).contains(&n), "length {n}");
            if let Ok(p) = Password::parse_new(raw, &["ada@example.com", "Ada"]) {
                assert!(existing.is_ok());
                assert_eq!(p.expose(), raw);
                // Exact: the password can be a substring of the redaction marker itself.
                assert_eq!(format!("{p:?}"), "Password([REDACTED])");
            }
        }
        _ => {
            if let Ok(name) = DisplayName::parse(raw) {
                let s = name.as_str();
                assert_eq!(DisplayName::parse(s).as_ref(), Ok(&name));
                assert!((1..=64).contains(&s.chars().count()));
                assert!(!s.chars().any(char::is_control));
                assert_eq!(s, s.trim());
            }
        }
    }
});
