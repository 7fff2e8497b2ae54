//! Who a conversation and its credits belong to, and the billing plan that sizes the credits.
//!
//! Shared by the chat engine (which keys history and quotas by `Owner`) and the webhooks
//! function (which answers Telegram and Messenger users as channel owners, and sets plans from
//! Stripe), so the two agree on one spelling of each.

use crate::error::ValidationError;
use crate::ids::UserId;

/// The verified identity a conversation and its daily credits are keyed by. Channel owners come
/// only from a verified delivery (the platform's own user id), never from message text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A Bastion account, from a verified access token or API key.
    User(UserId),
    /// A Telegram user, by the `from.id` of a delivery whose secret header was verified.
    Telegram(i64),
    /// A Messenger user, by the page-scoped id (PSID) of a signature-verified delivery.
    Messenger(String),
}

impl Owner {
    /// A stable storage key: `user#<id>`, `telegram#<id>`, `messenger#<psid>`.
    pub fn key(&self) -> String {
        match self {
            Owner::User(id) => format!("user#{id}"),
            Owner::Telegram(id) => format!("telegram#{id}"),
            Owner::Messenger(psid) => format!("messenger#{psid}"),
        }
    }

    /// Parses what `key` wrote.
    pub fn parse_key(s: &str) -> Result<Self, ValidationError> {
        let bad = || ValidationError::new("invalid_owner", "not a valid owner key");
        let (kind, rest) = s.split_once('#').ok_or_else(bad)?;
        match kind {
            "user" => UserId::parse(rest).map(Owner::User).map_err(|_| bad()),
            "telegram" => rest.parse().map(Owner::Telegram).map_err(|_| bad()),
            "messenger"
                if !rest.is_empty()
                    && rest.len() <= 64
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                Ok(Owner::Messenger(rest.to_owned()))
            }
            _ => Err(bad()),
        }
    }

    /// The account, when the owner is one.
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Owner::User(id) => Some(id),
            _ => None,
        }
    }
}

/// A billing plan. Every owner is `Free` until Stripe says otherwise; channel owners are always
/// `Free`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    #[default]
    Free,
    Pro,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "free" => Ok(Plan::Free),
            "pro" => Ok(Plan::Pro),
            _ => Err(ValidationError::new(
                "invalid_plan",
                "plan must be free or pro",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_keys_round_trip() {
        let user = UserId::generate();
        for owner in [
            Owner::User(user.clone()),
            Owner::Telegram(-1_001_234),
            Owner::Messenger("1234567890".into()),
        ] {
            assert_eq!(Owner::parse_key(&owner.key()).unwrap(), owner);
        }
        assert_eq!(Owner::User(user.clone()).user_id(), Some(&user));
        assert_eq!(Owner::Telegram(1).user_id(), None);
    }

    #[test]
    fn owner_keys_reject_garbage() {
        for bad in [
            "",
            "user#",
            "user#xyz",
            "telegram#abc",
            "messenger#",
            "messenger#a#b",
            "x#1",
        ] {
            assert_eq!(
                Owner::parse_key(bad).unwrap_err().code,
                "invalid_owner",
                "{bad}"
            );
        }
    }

    #[test]
    fn plans_parse_only_known_names() {
        assert_eq!(Plan::parse("pro").unwrap(), Plan::Pro);
        assert_eq!(Plan::default(), Plan::Free);
        assert_eq!(Plan::parse("gold").unwrap_err().code, "invalid_plan");
    }
}
