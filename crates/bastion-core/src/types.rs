//! Newtypes that validate on parse: once a value exists, it is known to be well-formed.

use secrecy::{ExposeSecret, SecretString};

use crate::error::ValidationError;

const EMAIL_MAX: usize = 254;
const EMAIL_LOCAL_MAX: usize = 64;
const DOMAIN_LABEL_MAX: usize = 63;
const LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~.-";

/// A normalized (trimmed, lowercased) email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = |why: &str| ValidationError::new("invalid_email", format!("email {why}"));
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(invalid("is required"));
        }
        if s.chars().count() > EMAIL_MAX {
            return Err(invalid("is longer than 254 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains whitespace or control characters"));
        }
        let mut parts = s.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid("must contain exactly one @"));
        };
        if local.is_empty() || local.len() > EMAIL_LOCAL_MAX {
            return Err(invalid("local part must be 1 to 64 characters"));
        }
        if !local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(invalid(
                "local part has characters or dots that are not allowed",
            ));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid("domain must have at least two labels"));
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= DOMAIN_LABEL_MAX
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(invalid("domain has an invalid label"));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(invalid("domain must not end in a numeric label"));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

const PASSWORD_MIN: usize = 8;
const PASSWORD_MAX: usize = 128;
/// zxcvbn scores 0..=4; below 3 is guessable with an offline attack budget.
const PASSWORD_MIN_SCORE: u8 = 3;

/// A password that met the length and strength policy. Debug is redacted; never serialized.
#[derive(Clone)]
pub struct Password(SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

impl Password {
    /// Policy for new passwords: 8..=128 Unicode scalar values, never truncated, and not
    /// guessable (zxcvbn score ≥ 3, with the user's own email and name as hints).
    pub fn parse_new(raw: &str, user_inputs: &[&str]) -> Result<Self, ValidationError> {
        Self::check_length(raw)?;
        let estimate = zxcvbn::zxcvbn(raw, user_inputs);
        let score = u8::from(estimate.score());
        if score < PASSWORD_MIN_SCORE {
            let why = estimate
                .feedback()
                .and_then(|f| f.warning())
                .map(|w| w.to_string().trim_end_matches('.').to_owned())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "it would be guessed quickly".to_owned());
            return Err(ValidationError::new(
                "weak_password",
                format!(
                    "password is too easy to guess: {why}. Use a longer passphrase of unrelated words."
                ),
            ));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// For login and confirmation: only the length bounds, so an old weak password can still
    /// be checked (and then changed) but an oversized input never reaches the hasher.
    pub fn parse_existing(raw: &str) -> Result<Self, ValidationError> {
        Self::check_length(raw)?;
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    fn check_length(raw: &str) -> Result<(), ValidationError> {
        let n = raw.chars().count();
        if n < PASSWORD_MIN {
            return Err(ValidationError::new(
                "invalid_password",
                "password must be at least 8 characters",
            ));
        }
        if n > PASSWORD_MAX {
            return Err(ValidationError::new(
                "invalid_password",
                "password must be at most 128 characters",
            ));
        }
        Ok(())
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

const DISPLAY_NAME_MAX: usize = 64;

/// A user-chosen name: trimmed, 1..=64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ValidationError::new(
                "invalid_display_name",
                "display name must not be empty",
            ));
        }
        if s.chars().count() > DISPLAY_NAME_MAX {
            return Err(ValidationError::new(
                "invalid_display_name",
                "display name must be at most 64 characters",
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "invalid_display_name",
                "display name must not contain control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an account may do. Admin routes re-read roles from the store on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            _ => Err(ValidationError::new(
                "invalid_role",
                "role must be user or admin",
            )),
        }
    }
}

/// What a credential may be used for. Session access tokens carry every scope; API keys carry
/// the subset they were created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Chat,
    Exec,
    Read,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Chat => "chat",
            Scope::Exec => "exec",
            Scope::Read => "read",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "chat" => Ok(Scope::Chat),
            "exec" => Ok(Scope::Exec),
            "read" => Ok(Scope::Read),
            _ => Err(ValidationError::new(
                "invalid_scope",
                "scope must be chat, exec or read",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn email_is_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn email_rejects_malformed_addresses() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.com", "b.".repeat(130));
        for bad in [
            "",
            "plain",
            "a@@b.com",
            "a@b@c.com",
            "a b@c.com",
            "a@b",
            "@b.com",
            "a@.com",
            "a@-b.com",
            "a@b-.com",
            "a..b@c.com",
            ".a@c.com",
            "a@b.123",
            "a\u{0}@b.com",
            "a@exa_mple.com",
            long_local.as_str(),
            long_total.as_str(),
        ] {
            assert!(Email::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn email_accepts_plus_addressing_and_subdomains() {
        assert!(Email::parse("a.b+tag@mail.example.co.uk").is_ok());
    }

    #[test]
    fn password_counts_unicode_scalar_values_not_bytes() {
        // 128 four-byte characters pass the length rule, 129 do not.
        assert!(Password::parse_existing(&"🔐".repeat(128)).is_ok());
        let err = Password::parse_existing(&"🔐".repeat(129)).unwrap_err();
        assert_eq!(err.message, "password must be at most 128 characters");
        assert_eq!(
            Password::parse_existing("short").unwrap_err().code,
            "invalid_password"
        );
    }

    #[test]
    fn common_passwords_are_rejected_with_a_reason() {
        for weak in [
            "password1",
            "qwertyuiop",
            "iloveyou123",
            "alice@example.com",
        ] {
            let err = Password::parse_new(weak, &["alice@example.com"]).unwrap_err();
            assert_eq!(err.code, "weak_password", "{weak}");
            assert!(err.message.starts_with("password is too easy to guess"));
            assert!(!err.message.contains(".."), "{}", err.message);
        }
    }

    #[test]
    fn a_long_random_passphrase_is_accepted() {
        assert!(Password::parse_new("correct horse battery staple 42!", &[]).is_ok());
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::parse_existing("hunter2hunter2").unwrap();
        assert_eq!(format!("{p:?}"), "Password([REDACTED])");
    }

    #[test]
    fn display_name_bounds() {
        assert_eq!(DisplayName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert!(DisplayName::parse(&"é".repeat(64)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(65)).is_err());
        assert!(DisplayName::parse("a\nb").is_err());
        assert!(DisplayName::parse("   ").is_err());
    }

    proptest! {
        #[test]
        fn email_parse_never_panics_and_output_is_normalized(s in "\\PC{0,300}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(e.as_str(), e.as_str().trim().to_lowercase());
                prop_assert!(e.as_str().len() <= 254);
                prop_assert_eq!(e.as_str().matches('@').count(), 1);
            }
        }

        #[test]
        fn parsed_email_reparses_to_itself(local in "[a-z0-9]{1,20}", domain in "[a-z]{1,20}\\.[a-z]{2,6}") {
            let e = Email::parse(&format!("{local}@{domain}")).unwrap();
            prop_assert_eq!(Email::parse(e.as_str()).unwrap(), e);
        }

        #[test]
        fn display_name_never_keeps_control_chars(s in "\\PC{0,80}") {
            if let Ok(n) = DisplayName::parse(&s) {
                prop_assert!(!n.as_str().chars().any(char::is_control));
                prop_assert!(n.as_str().chars().count() <= 64);
            }
        }
    }
}
