//! Admin keys (`ADMIN_KEYS`): names and SHA-256 hashes of `adm_…` keys; unset or empty admits
//! no key, a malformed entry stops start-up naming the variable.

use bastion_core::crypto::ct_eq;
use bastion_http::{ConfigError, Env};

/// Configured admin keys: names and SHA-256 hashes of `adm_…` keys, never the keys.
#[derive(Debug, Clone, Default)]
pub struct AdminKeys {
    keys: Vec<(String, [u8; 32])>,
}

pub const ADMIN_KEY_PREFIX: &str = "adm_";
/// The secret after the prefix: at least 256 bits as base64url (43 characters) or hex (64).
const ADMIN_KEY_MIN_CHARS: usize = 43;
const ADMIN_KEY_MAX_CHARS: usize = 256;

impl AdminKeys {
    /// `ADMIN_KEYS` is `name:sha256hex` pairs, comma-separated; unset or empty admits nobody.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        const VAR: &str = "ADMIN_KEYS";
        let mut keys: Vec<(String, [u8; 32])> = Vec::new();
        for entry in env
            .get(VAR)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (name, hash) = entry
                .split_once(':')
                .ok_or_else(|| ConfigError::new(VAR, "entries must be name:sha256hex"))?;
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !keys.iter().any(|(n, _)| n == name);
            if !name_ok {
                return Err(ConfigError::new(
                    VAR,
                    format!("key name {name:?} is empty, repeated or not [A-Za-z0-9_-]{{1,64}}"),
                ));
            }
            let digest: [u8; 32] = hex::decode(hash)
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| {
                    ConfigError::new(
                        VAR,
                        format!("hash of key {name:?} must be 64 hex characters (SHA-256)"),
                    )
                })?;
            keys.push((name.to_owned(), digest));
        }
        Ok(Self { keys })
    }

    /// The name of the configured key `presented` is, compared in constant time against every
    /// configured hash (no early exit, so timing does not tell how many keys exist or match).
    ///
    /// A presented key shorter than 256 bits is refused before any comparison, so a hash of a
    /// weak key configured by mistake (`adm_`, `adm_admin`) never opens the admin routes.
    pub fn identify(&self, presented: &str) -> Option<&str> {
        let secret = presented.strip_prefix(ADMIN_KEY_PREFIX)?;
        let strong = (ADMIN_KEY_MIN_CHARS..=ADMIN_KEY_MAX_CHARS).contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !strong {
            return None;
        }
        let digest = bastion_core::crypto::sha256(presented.as_bytes());
        let mut found = None;
        for (name, hash) in &self.keys {
            if ct_eq(&digest, hash) {
                found = Some(name.as_str());
            }
        }
        found
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use bastion_http::config::map_env as env;

    use super::*;

    #[test]
    fn missing_or_empty_admin_keys_admit_nobody() {
        for e in [
            env(&[]),
            env(&[("ADMIN_KEYS", "")]),
            env(&[("ADMIN_KEYS", " , ")]),
        ] {
            let keys = AdminKeys::from_env(&e).unwrap();
            assert!(keys.is_empty());
            assert_eq!(keys.identify("adm_"), None);
            assert_eq!(keys.identify(""), None);
        }
    }

    #[test]
    fn admin_keys_identify_by_hash_and_refuse_malformed_entries() {
        let key = "adm_0123456789abcdef0123456789abcdef0123456789a";
        let hash = hex::encode(bastion_core::crypto::sha256(key.as_bytes()));
        let keys = AdminKeys::from_env(&env(&[("ADMIN_KEYS", &format!("ops:{hash}"))])).unwrap();
        assert_eq!(keys.identify(key), Some("ops"));
        assert_eq!(keys.identify(&format!("{key}x")), None);
        for bad in [
            "ops",
            "ops:abc",
            &format!("o p:{hash}"),
            &format!("a:{hash},a:{hash}"),
        ] {
            let e = AdminKeys::from_env(&env(&[("ADMIN_KEYS", bad)])).unwrap_err();
            assert_eq!(e.var, "ADMIN_KEYS", "{bad}");
        }
    }

    #[test]
    fn a_configured_hash_of_a_weak_key_admits_nobody() {
        for weak in [
            "adm_",
            "adm_admin",
            "adm_0123456789abcdef0123456789abcdef012345",
        ] {
            let hash = hex::encode(bastion_core::crypto::sha256(weak.as_bytes()));
            let keys =
                AdminKeys::from_env(&env(&[("ADMIN_KEYS", &format!("ops:{hash}"))])).unwrap();
            assert_eq!(keys.identify(weak), None, "{weak}");
        }
        let spaced = "adm_0123456789abcdef 0123456789abcdef0123456789a";
        let hash = hex::encode(bastion_core::crypto::sha256(spaced.as_bytes()));
        let keys = AdminKeys::from_env(&env(&[("ADMIN_KEYS", &format!("ops:{hash}"))])).unwrap();
        assert_eq!(keys.identify(spaced), None);
        let hex_key = format!("adm_{}", "ab".repeat(32));
        let hash = hex::encode(bastion_core::crypto::sha256(hex_key.as_bytes()));
        let keys = AdminKeys::from_env(&env(&[("ADMIN_KEYS", &format!("ops:{hash}"))])).unwrap();
        assert_eq!(keys.identify(&hex_key), Some("ops"));
    }
}
