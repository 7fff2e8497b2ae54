//! Password hashing: Argon2id (OWASP: m=19 MiB, t=2, p=1) keyed with a server pepper.
//!
//! The pepper is Argon2's own secret input (`K`), so a stolen table is useless without the
//! pepper held in Secrets Manager. The PHC string records the pepper version in its `keyid`
//! parameter, so peppers can rotate: old hashes verify under their own version and are
//! re-hashed under the current one at the next login. Migrated accounts of the system we
//! replace are stored as `legacy$<salt>$<hex HMAC-SHA256(key, password ‖ salt)>` and verify
//! once, after which login replaces them with Argon2id.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, ParamsBuilder, Version};
use secrecy::{ExposeSecret, SecretBox};

use super::{ct_eq, hmac_sha256, random_bytes};
use crate::types::Password;

const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
const MIN_PEPPER_BYTES: usize = 32;
const LEGACY_PREFIX: &str = "legacy$";

#[derive(Debug, thiserror::Error)]
pub enum PasswordHasherError {
    #[error("pepper version {0} must be between 1 and 255 and unique")]
    BadPepperVersion(u16),
    #[error("pepper must be at least 32 bytes")]
    ShortPepper,
    #[error("legacy password key must not be empty")]
    EmptyLegacyKey,
    #[error("argon2 failure: {0}")]
    Argon2(String),
}

/// One version of the server-side pepper.
pub struct Pepper {
    version: u8,
    key: SecretBox<Vec<u8>>,
}

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pepper(v{}, [REDACTED])", self.version)
    }
}

impl Pepper {
    pub fn new(version: u16, key: Vec<u8>) -> Result<Self, PasswordHasherError> {
        let version = u8::try_from(version)
            .ok()
            .filter(|v| *v != 0)
            .ok_or(PasswordHasherError::BadPepperVersion(version))?;
        if key.len() < MIN_PEPPER_BYTES {
            return Err(PasswordHasherError::ShortPepper);
        }
        Ok(Self {
            version,
            key: SecretBox::new(Box::new(key)),
        })
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Correct; when `needs_rehash`, store a fresh `hash()` of the password.
    Valid {
        needs_rehash: bool,
    },
    Invalid,
}

pub struct PasswordHasher {
    /// Current pepper first; the others only verify.
    peppers: Vec<Pepper>,
    legacy_key: Option<SecretBox<Vec<u8>>>,
    /// A real hash, made on first use, that unknown-account logins verify against so their
    /// timing matches a known account's.
    dummy: OnceLock<String>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("peppers", &self.peppers)
            .field("legacy", &self.legacy_key.is_some())
            .finish()
    }
}

impl PasswordHasher {
    pub fn new(
        current: Pepper,
        previous: Vec<Pepper>,
        legacy_key: Option<Vec<u8>>,
    ) -> Result<Self, PasswordHasherError> {
        let mut peppers = vec![current];
        for p in previous {
            if peppers.iter().any(|q| q.version == p.version) {
                return Err(PasswordHasherError::BadPepperVersion(u16::from(p.version)));
            }
            peppers.push(p);
        }
        let legacy_key = match legacy_key {
            Some(k) if k.is_empty() => return Err(PasswordHasherError::EmptyLegacyKey),
            Some(k) => Some(SecretBox::new(Box::new(k))),
            None => None,
        };
        Ok(Self {
            peppers,
            legacy_key,
            dummy: OnceLock::new(),
        })
    }

    fn params(pepper_version: u8) -> Result<Params, PasswordHasherError> {
        ParamsBuilder::new()
            .m_cost(M_COST_KIB)
            .t_cost(T_COST)
            .p_cost(P_COST)
            .keyid(
                argon2::KeyId::new(&[pepper_version])
                    .map_err(|e| PasswordHasherError::Argon2(e.to_string()))?,
            )
            .build()
            .map_err(|e| PasswordHasherError::Argon2(e.to_string()))
    }

    fn current(&self) -> &Pepper {
        // `new` always stores the current pepper first.
        &self.peppers[0]
    }

    /// A fresh PHC string for `password` under the current pepper.
    pub fn hash(&self, password: &Password) -> Result<String, PasswordHasherError> {
        self.hash_str(password.expose())
    }

    fn hash_str(&self, password: &str) -> Result<String, PasswordHasherError> {
        let pepper = self.current();
        let argon = Argon2::new_with_secret(
            pepper.key.expose_secret(),
            Algorithm::Argon2id,
            Version::V0x13,
            Self::params(pepper.version)?,
        )
        .map_err(|e| PasswordHasherError::Argon2(e.to_string()))?;
        let salt = SaltString::encode_b64(&random_bytes::<16>())
            .map_err(|e| PasswordHasherError::Argon2(e.to_string()))?;
        use argon2::PasswordHasher as _;
        argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordHasherError::Argon2(e.to_string()))
    }

    /// Checks `password` against a stored PHC or legacy string. Anything unparseable, or made
    /// with a pepper version we no longer hold, is `Invalid` (fail closed).
    ///
    /// Every path spends one Argon2 verification: a legacy record, a Google-only account (empty
    /// hash) or an unusable hash would otherwise answer in microseconds, and that timing would
    /// tell such accounts apart from unknown emails, which cost a dummy Argon2 run.
    pub fn verify(&self, password: &Password, stored: &str) -> Verification {
        if let Some(done) = self.verify_argon2(password, stored) {
            return done;
        }
        let verdict = match stored.strip_prefix(LEGACY_PREFIX) {
            Some(rest) => self.verify_legacy(password.expose(), rest),
            None => Verification::Invalid,
        };
        self.spend_dummy_work(password);
        verdict
    }

    /// The Argon2id verdict, or `None` when `stored` is not a usable Argon2id PHC string (no
    /// Argon2 work was spent).
    fn verify_argon2(&self, password: &Password, stored: &str) -> Option<Verification> {
        let parsed = PasswordHash::new(stored).ok()?;
        if parsed.algorithm.as_str() != "argon2id" {
            return None;
        }
        let pepper =
            Self::keyid(&parsed).and_then(|v| self.peppers.iter().find(|p| p.version == v))?;
        let params = Params::try_from(&parsed).ok()?;
        let argon = Argon2::new_with_secret(
            pepper.key.expose_secret(),
            Algorithm::Argon2id,
            Version::V0x13,
            params,
        )
        .ok()?;
        Some(
            match argon.verify_password(password.expose().as_bytes(), &parsed) {
                Ok(()) => Verification::Valid {
                    needs_rehash: self.needs_rehash(stored),
                },
                Err(_) => Verification::Invalid,
            },
        )
    }

    /// One Argon2 verification against a real hash made on first use, result ignored.
    fn spend_dummy_work(&self, password: &Password) {
        let dummy = self.dummy.get_or_init(|| {
            self.hash_str("bastion-dummy-password-for-timing")
                .unwrap_or_default()
        });
        let _ = self.verify_argon2(password, dummy);
    }

    /// Spends the same Argon2 work as a real verification and always fails; used when the
    /// account does not exist so response timing does not reveal registered emails.
    pub fn dummy_verify(&self, password: &Password) -> Verification {
        self.spend_dummy_work(password);
        Verification::Invalid
    }

    /// True when the stored string is legacy, uses another pepper version, or other params.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        if stored.starts_with(LEGACY_PREFIX) {
            return true;
        }
        let Ok(parsed) = PasswordHash::new(stored) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || parsed.version != Some(0x13)
            || params.m_cost() != M_COST_KIB
            || params.t_cost() != T_COST
            || params.p_cost() != P_COST
            || Self::keyid(&parsed) != Some(self.current().version)
    }

    fn keyid(parsed: &PasswordHash<'_>) -> Option<u8> {
        let params = Params::try_from(parsed).ok()?;
        match params.keyid() {
            [v] => Some(*v),
            _ => None,
        }
    }

    fn verify_legacy(&self, password: &str, rest: &str) -> Verification {
        let Some(key) = &self.legacy_key else {
            return Verification::Invalid;
        };
        let Some((salt, digest_hex)) = rest.split_once('$') else {
            return Verification::Invalid;
        };
        let Ok(expected) = hex::decode(digest_hex) else {
            return Verification::Invalid;
        };
        let mut input = Vec::with_capacity(password.len() + salt.len());
        input.extend_from_slice(password.as_bytes());
        input.extend_from_slice(salt.as_bytes());
        let actual = hmac_sha256(key.expose_secret(), &input);
        if ct_eq(&actual, &expected) {
            Verification::Valid { needs_rehash: true }
        } else {
            Verification::Invalid
        }
    }
}

/// Formats a legacy record as stored after migration from the system we replace.
pub fn legacy_record(salt: &str, hex_digest: &str) -> String {
    format!("{LEGACY_PREFIX}{salt}${hex_digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper(v: u16, byte: u8) -> Pepper {
        Pepper::new(v, vec![byte; 32]).unwrap()
    }

    fn pw(s: &str) -> Password {
        Password::parse_existing(s).unwrap()
    }

    #[test]
    fn hash_is_argon2id_at_owasp_parameters_with_pepper_version() {
        let h = PasswordHasher::new(pepper(3, 1), vec![], None).unwrap();
        let phc = h.hash(&pw("correct horse battery")).unwrap();
        assert!(
            phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1,keyid=Aw$"),
            "{phc}"
        );
        assert_eq!(
            h.verify(&pw("correct horse battery"), &phc),
            Verification::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(
            h.verify(&pw("correct horse batterz"), &phc),
            Verification::Invalid
        );
    }

    #[test]
    fn pepper_is_required_to_verify() {
        let a = PasswordHasher::new(pepper(1, 1), vec![], None).unwrap();
        let b = PasswordHasher::new(pepper(1, 2), vec![], None).unwrap();
        let phc = a.hash(&pw("correct horse battery")).unwrap();
        assert_eq!(
            b.verify(&pw("correct horse battery"), &phc),
            Verification::Invalid
        );
    }

    #[test]
    fn rotated_pepper_still_verifies_and_asks_for_rehash() {
        let old = PasswordHasher::new(pepper(1, 1), vec![], None).unwrap();
        let phc = old.hash(&pw("correct horse battery")).unwrap();
        let new = PasswordHasher::new(pepper(2, 9), vec![pepper(1, 1)], None).unwrap();
        assert_eq!(
            new.verify(&pw("correct horse battery"), &phc),
            Verification::Valid { needs_rehash: true }
        );
        let dropped = PasswordHasher::new(pepper(2, 9), vec![], None).unwrap();
        assert_eq!(
            dropped.verify(&pw("correct horse battery"), &phc),
            Verification::Invalid
        );
    }

    #[test]
    fn weaker_parameters_need_rehash() {
        let h = PasswordHasher::new(pepper(1, 1), vec![], None).unwrap();
        let weak = "$argon2id$v=19$m=4096,t=1,p=1,keyid=AQ$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(h.needs_rehash(weak));
        assert!(h.needs_rehash("not a hash"));
    }

    #[test]
    fn legacy_hmac_records_verify_once_and_need_rehash() {
        let key = b"legacy-key".to_vec();
        let h = PasswordHasher::new(pepper(1, 1), vec![], Some(key.clone())).unwrap();
        let digest = hex::encode(hmac_sha256(&key, b"hunter2hunter2s4lt"));
        let stored = legacy_record("s4lt", &digest);
        assert_eq!(
            h.verify(&pw("hunter2hunter2"), &stored),
            Verification::Valid { needs_rehash: true }
        );
        assert_eq!(
            h.verify(&pw("hunter2hunter3"), &stored),
            Verification::Invalid
        );
        let without = PasswordHasher::new(pepper(1, 1), vec![], None).unwrap();
        assert_eq!(
            without.verify(&pw("hunter2hunter2"), &stored),
            Verification::Invalid
        );
    }

    #[test]
    fn empty_legacy_key_and_short_pepper_are_refused() {
        assert!(matches!(
            PasswordHasher::new(pepper(1, 1), vec![], Some(vec![])),
            Err(PasswordHasherError::EmptyLegacyKey)
        ));
        assert!(matches!(
            Pepper::new(1, vec![0; 31]),
            Err(PasswordHasherError::ShortPepper)
        ));
        assert!(matches!(
            Pepper::new(0, vec![0; 32]),
            Err(PasswordHasherError::BadPepperVersion(0))
        ));
    }

    #[test]
    fn dummy_verify_always_fails() {
        let h = PasswordHasher::new(pepper(1, 1), vec![], None).unwrap();
        assert_eq!(
            h.dummy_verify(&pw("bastion-dummy-password-for-timing")),
            Verification::Invalid
        );
    }

    #[test]
    fn accounts_without_a_usable_argon2_hash_still_spend_argon2_work() {
        let key = b"legacy-key".to_vec();
        let digest = hex::encode(hmac_sha256(&key, b"hunter2hunter2s4lt"));
        let legacy = legacy_record("s4lt", &digest);
        // A Google-only account (empty hash), a legacy record (right and wrong password), a
        // hash of a dropped pepper and junk: each must run Argon2 like an unknown email does.
        let dropped = PasswordHasher::new(pepper(9, 9), vec![], None)
            .unwrap()
            .hash(&pw("hunter2hunter2"))
            .unwrap();
        for (stored, password, expected) in [
            ("", "hunter2hunter2", Verification::Invalid),
            (
                legacy.as_str(),
                "hunter2hunter2",
                Verification::Valid { needs_rehash: true },
            ),
            (legacy.as_str(), "hunter2hunter3", Verification::Invalid),
            (dropped.as_str(), "hunter2hunter2", Verification::Invalid),
            ("not a hash", "hunter2hunter2", Verification::Invalid),
        ] {
            let h = PasswordHasher::new(pepper(1, 1), vec![], Some(key.clone())).unwrap();
            assert!(h.dummy.get().is_none());
            assert_eq!(h.verify(&pw(password), stored), expected, "{stored}");
            assert!(
                h.dummy.get().is_some_and(|d| d.starts_with("$argon2id$")),
                "no Argon2 work for {stored:?}"
            );
        }
    }
}
