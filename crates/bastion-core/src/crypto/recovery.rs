//! Recovery codes: ten single-use lookup secrets shown once when TOTP is turned on. Each has
//! 120 random bits (ASVS 5.0 6.5.2 allows a plain hash from 112 bits up, so SHA-256 without a
//! salt is enough), written as 24 Crockford base32 characters in groups of four.

use secrecy::{ExposeSecret, SecretString};

use super::{TokenHash, random_bytes};

pub const RECOVERY_CODE_COUNT: usize = 10;
const CHARS: usize = 24;
/// Crockford's alphabet: no i, l, o or u, so nothing reads as another character.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a recovery code")]
pub struct RecoveryCodeError;

/// One recovery code, held in its display form (`xxxx-xxxx-…`).
pub struct RecoveryCode {
    display: SecretString,
    normalized: SecretString,
}

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode([REDACTED])")
    }
}

impl RecoveryCode {
    pub fn generate() -> Self {
        let bytes = random_bytes::<15>();
        let (mut acc, mut bits, mut chars) = (0u32, 0u32, String::with_capacity(CHARS));
        for byte in bytes {
            acc = (acc << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                chars.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
            }
            acc &= (1 << bits) - 1;
        }
        Self::from_normalized(chars)
    }

    /// Ten distinct codes.
    pub fn generate_set() -> Vec<Self> {
        let mut codes: Vec<Self> = Vec::with_capacity(RECOVERY_CODE_COUNT);
        while codes.len() < RECOVERY_CODE_COUNT {
            let code = Self::generate();
            if !codes.iter().any(|c| c.hash() == code.hash()) {
                codes.push(code);
            }
        }
        codes
    }

    /// A code as typed: any case, dashes and spaces anywhere, `o` for 0 and `i`/`l` for 1.
    pub fn parse(raw: &str) -> Result<Self, RecoveryCodeError> {
        if raw.len() > 64 {
            return Err(RecoveryCodeError);
        }
        let mut normalized = String::with_capacity(CHARS);
        for c in raw.chars().filter(|c| *c != '-' && *c != ' ') {
            let c = match c.to_ascii_lowercase() {
                'o' => '0',
                'i' | 'l' => '1',
                other => other,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err(RecoveryCodeError);
            }
            normalized.push(c);
        }
        if normalized.len() != CHARS {
            return Err(RecoveryCodeError);
        }
        Ok(Self::from_normalized(normalized))
    }

    fn from_normalized(normalized: String) -> Self {
        let groups: Vec<&str> = (0..CHARS / 4)
            .map(|i| &normalized[i * 4..i * 4 + 4])
            .collect();
        Self {
            display: SecretString::from(groups.join("-")),
            normalized: SecretString::from(normalized),
        }
    }

    /// The display form, shown to the user once.
    pub fn expose(&self) -> &str {
        self.display.expose_secret()
    }

    /// SHA-256 of the normalized code: the only form stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.normalized.expose_secret())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_six_groups_of_four_and_parses_back_to_the_same_hash() {
        let code = RecoveryCode::generate();
        let shown = code.expose();
        assert_eq!(shown.len(), 29);
        assert_eq!(shown.split('-').count(), 6);
        assert!(shown.split('-').all(|g| g.len() == 4));
        let back = RecoveryCode::parse(shown).unwrap();
        assert_eq!(back.hash(), code.hash());
        assert_eq!(back.expose(), shown);
    }

    #[test]
    fn case_dashes_spaces_and_look_alikes_do_not_matter() {
        let code = RecoveryCode::parse("0123-4567-89ab-cdef-ghjk-mnpq").unwrap();
        for typed in [
            "0123456789abcdefghjkmnpq",
            "O123 4567 89AB CDEF GHJK MNPQ",
            "o123-4567-89ab-cdef-ghjk-mnpq",
        ] {
            assert_eq!(
                RecoveryCode::parse(typed).unwrap().hash(),
                code.hash(),
                "{typed}"
            );
        }
        let one = RecoveryCode::parse("1111-1111-1111-1111-1111-1111").unwrap();
        assert_eq!(
            RecoveryCode::parse("iIlL-1111-1111-1111-1111-1111")
                .unwrap()
                .hash(),
            one.hash()
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "0123-4567-89ab-cdef-ghjk-mnp",
            "0123-4567-89ab-cdef-ghjk-mnpqr",
            "0123-4567-89ab-cdef-ghjk-mnpu",
            "0123-4567-89ab-cdef-ghjk-mnp!",
            "é123-4567-89ab-cdef-ghjk-mnpq",
            &"-".repeat(65),
        ] {
            assert_eq!(
                RecoveryCode::parse(bad).map(|_| ()),
                Err(RecoveryCodeError),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_set_is_ten_distinct_codes() {
        let set = RecoveryCode::generate_set();
        assert_eq!(set.len(), RECOVERY_CODE_COUNT);
        let mut hashes: Vec<String> = set.iter().map(|c| c.hash().as_str().to_owned()).collect();
        hashes.sort();
        hashes.dedup();
        assert_eq!(hashes.len(), RECOVERY_CODE_COUNT);
    }
}
