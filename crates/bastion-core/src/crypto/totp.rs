//! TOTP (RFC 6238 over RFC 4226): HMAC-SHA-1, 6 digits, 30-second steps, the form every
//! authenticator app reads from an `otpauth://` URI. SHA-1 is what those apps compute; as an
//! HMAC it is not weakened by SHA-1's collision attacks.

use aws_lc_rs::hmac;
use secrecy::zeroize::Zeroizing;

use super::{ct_eq, random_bytes};
use crate::clock::Timestamp;

pub const TOTP_STEP_SECS: i64 = 30;
pub const TOTP_DIGITS: usize = 6;
/// 160 bits, the HMAC-SHA-1 block's natural key size (RFC 4226 §4 asks for at least 128).
const SECRET_BYTES: usize = 20;
/// Longest secret accepted from storage (base32 of 64 bytes).
const MAX_SECRET_CHARS: usize = 104;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("a code is 6 digits")]
    InvalidCode,
    #[error("not a base32 TOTP secret")]
    InvalidSecret,
}

/// A shared TOTP secret; never printed.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([REDACTED])")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        Self(Zeroizing::new(random_bytes::<SECRET_BYTES>().to_vec()))
    }

    /// RFC 4648 base32, any case, `=` padding optional, spaces ignored.
    pub fn from_base32(raw: &str) -> Result<Self, TotpError> {
        if raw.len() > MAX_SECRET_CHARS * 2 {
            return Err(TotpError::InvalidSecret);
        }
        let mut bytes = Vec::with_capacity(raw.len() * 5 / 8);
        let (mut acc, mut bits) = (0u32, 0u32);
        let mut chars = 0usize;
        for c in raw.trim_end_matches('=').bytes().filter(|c| *c != b' ') {
            let value = BASE32
                .iter()
                .position(|b| *b == c.to_ascii_uppercase())
                .ok_or(TotpError::InvalidSecret)?;
            acc = (acc << 5) | value as u32;
            bits += 5;
            chars += 1;
            if bits >= 8 {
                bits -= 8;
                bytes.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        // Fewer than 16 bytes is no secret worth the name; more than 64 is not one we wrote.
        if chars > MAX_SECRET_CHARS || bytes.len() < 16 {
            return Err(TotpError::InvalidSecret);
        }
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// Uppercase RFC 4648 base32 without padding (what authenticator apps expect).
    pub fn to_base32(&self) -> String {
        let mut out = String::with_capacity(self.0.len().div_ceil(5) * 8);
        let (mut acc, mut bits) = (0u32, 0u32);
        for byte in self.0.iter() {
            acc = (acc << 8) | u32::from(*byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
            }
            acc &= (1 << bits) - 1;
        }
        if bits > 0 {
            out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
        }
        out
    }

    /// The 6-digit code of time step `step` (RFC 4226 dynamic truncation).
    pub fn code_at(&self, step: u64) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        let tag = hmac::sign(&key, &step.to_be_bytes());
        let mac = tag.as_ref();
        let offset = usize::from(mac[mac.len() - 1] & 0x0f);
        let binary = u32::from_be_bytes([
            mac[offset] & 0x7f,
            mac[offset + 1],
            mac[offset + 2],
            mac[offset + 3],
        ]);
        format!("{:06}", binary % 1_000_000)
    }

    /// The step among the previous, current and next one at `now` whose code is `code` and
    /// which is later than `after` (the last step accepted: 0 for none). The caller stores the
    /// step it gets, so no code is accepted twice.
    pub fn matching_step(&self, code: &TotpCode, now: Timestamp, after: u64) -> Option<u64> {
        let current = step_at(now);
        let mut found = None;
        // Every candidate is computed and compared, so timing says nothing about which matched.
        for step in [current.saturating_sub(1), current, current + 1] {
            let matches = ct_eq(self.code_at(step).as_bytes(), code.as_str().as_bytes());
            if matches && step > after && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

/// The RFC 6238 time step containing `now`.
pub fn step_at(now: Timestamp) -> u64 {
    u64::try_from(now.secs().div_euclid(TOTP_STEP_SECS)).unwrap_or(0)
}

/// A code as typed: exactly 6 ASCII digits once spaces are removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpCode(String);

impl TotpCode {
    pub fn parse(raw: &str) -> Result<Self, TotpError> {
        if raw.len() > 16 {
            return Err(TotpError::InvalidCode);
        }
        let digits: String = raw.chars().filter(|c| *c != ' ').collect();
        if digits.len() == TOTP_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(TotpError::InvalidCode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `otpauth://` URI authenticator apps read (usually from a QR code).
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> String {
    let (issuer, account) = (percent(issuer), percent(account));
    format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}",
        secret.to_base32()
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 seed, "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret(Zeroizing::new(b"12345678901234567890".to_vec()))
    }

    #[test]
    fn codes_match_rfc_6238_appendix_b_sha1() {
        // The 8-digit values of the RFC, reduced to 6 digits (the same truncated integer mod 10^6).
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (t, eight) in vectors {
            let step = step_at(Timestamp(t));
            assert_eq!(rfc_secret().code_at(step), eight[2..], "t = {t}");
        }
    }

    #[test]
    fn one_step_of_drift_either_way_is_accepted_and_two_are_not() {
        let secret = rfc_secret();
        let now = Timestamp(1_800_000_015);
        let step = step_at(now);
        for (delta, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let s = step.checked_add_signed(delta).unwrap();
            let code = TotpCode::parse(&secret.code_at(s)).unwrap();
            let got = secret.matching_step(&code, now, 0);
            assert_eq!(got, accepted.then_some(s), "delta {delta}");
        }
    }

    #[test]
    fn a_code_of_the_last_accepted_step_or_an_earlier_one_is_refused() {
        let secret = rfc_secret();
        let now = Timestamp(1_800_000_015);
        let step = step_at(now);
        let current = TotpCode::parse(&secret.code_at(step)).unwrap();
        let previous = TotpCode::parse(&secret.code_at(step - 1)).unwrap();
        assert_eq!(secret.matching_step(&current, now, step - 1), Some(step));
        assert_eq!(secret.matching_step(&current, now, step), None);
        assert_eq!(secret.matching_step(&previous, now, step), None);
        assert_eq!(secret.matching_step(&previous, now, step - 1), None);
        let next = TotpCode::parse(&secret.code_at(step + 1)).unwrap();
        assert_eq!(secret.matching_step(&next, now, step), Some(step + 1));
    }

    #[test]
    fn codes_parse_only_as_six_digits() {
        assert_eq!(TotpCode::parse("123 456").unwrap().as_str(), "123456");
        for bad in [
            "12345",
            "1234567",
            "12345a",
            "",
            "１２３４５６",
            "123456789012345678",
        ] {
            assert_eq!(TotpCode::parse(bad), Err(TotpError::InvalidCode), "{bad:?}");
        }
    }

    #[test]
    fn base32_round_trips_and_refuses_junk() {
        let secret = TotpSecret::generate();
        let text = secret.to_base32();
        assert_eq!(text.len(), 32);
        let back = TotpSecret::from_base32(&text.to_lowercase()).unwrap();
        assert_eq!(back.to_base32(), text);
        assert_eq!(
            TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
                .unwrap()
                .0
                .as_slice(),
            b"12345678901234567890"
        );
        for bad in ["GEZDGNBV1", "", "GEZDGNBV", "!!!!"] {
            assert!(TotpSecret::from_base32(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_uri_names_issuer_account_and_parameters_percent_encoded() {
        let uri = otpauth_uri(&rfc_secret(), "Bastion", "ada+1@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Bastion:ada%2B1%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Bastion&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        assert_eq!(format!("{:?}", rfc_secret()), "TotpSecret([REDACTED])");
    }
}
