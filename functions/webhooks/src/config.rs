//! Webhook configuration. Each platform is optional: an unconfigured one answers 503 (fail
//! closed), but a half-configured one (a secret without the token to answer with) or a
//! malformed value stops start-up, naming the variable.

use bastion_http::config::{bounded, parse_flag};
use bastion_http::{ConfigError, Env};
use secrecy::SecretString;

pub const DEFAULT_TELEGRAM_API_BASE: &str = "https://api.telegram.org";
pub const DEFAULT_FACEBOOK_GRAPH_BASE: &str = "https://graph.facebook.com/v21.0";
pub const DEFAULT_STRIPE_TOLERANCE_SECS: i64 = 300;

#[derive(Debug)]
pub struct TelegramConfig {
    pub webhook_secret: SecretString,
    pub bot_token: SecretString,
    pub api_base: String,
    /// When set, only these chats are answered.
    pub allowed_chat_ids: Option<Vec<i64>>,
}

#[derive(Debug)]
pub struct FacebookConfig {
    /// For the subscription handshake (`GET`); independent of the rest.
    pub verify_token: Option<SecretString>,
    /// For signed deliveries (`POST`) and answering them.
    pub messaging: Option<FacebookMessaging>,
    pub graph_base: String,
}

#[derive(Debug)]
pub struct FacebookMessaging {
    pub app_secret: SecretString,
    pub page_access_token: SecretString,
}

#[derive(Debug)]
pub struct StripeConfig {
    /// Current first, then previous ones still accepted during a rotation.
    pub secrets: Vec<SecretString>,
    pub tolerance_secs: i64,
    pub livemode: bool,
}

#[derive(Debug)]
pub struct WebhooksConfig {
    pub telegram: Option<TelegramConfig>,
    pub facebook: FacebookConfig,
    pub stripe: Option<StripeConfig>,
}

impl WebhooksConfig {
    /// Every variable this function reads.
    pub const VARIABLES: [&'static str; 11] = [
        "TELEGRAM_WEBHOOK_SECRET",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_BASE",
        "TELEGRAM_ALLOWED_CHAT_IDS",
        "FACEBOOK_VERIFY_TOKEN",
        "FACEBOOK_APP_SECRET",
        "FACEBOOK_PAGE_ACCESS_TOKEN",
        "FACEBOOK_GRAPH_BASE",
        "STRIPE_WEBHOOK_SECRETS",
        "STRIPE_TOLERANCE_SECS",
        "STRIPE_LIVEMODE",
    ];

    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            telegram: telegram(env)?,
            facebook: facebook(env)?,
            stripe: stripe(env)?,
        })
    }
}

/// A secret that, when present, must not be blank (blank is a typo, not "off").
fn optional_secret(env: &dyn Env, var: &str) -> Result<Option<SecretString>, ConfigError> {
    match env.get(var) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Err(ConfigError::new(
            var,
            "is set but empty; unset it to disable this platform",
        )),
        Some(v) => Ok(Some(SecretString::from(v.trim().to_owned()))),
    }
}

fn required_with(env: &dyn Env, var: &str, because: &str) -> Result<SecretString, ConfigError> {
    env.non_empty(var)
        .map(|v| SecretString::from(v.trim().to_owned()))
        .ok_or_else(|| ConfigError::new(var, format!("is required when {because} is set")))
}

/// An `http(s)://host[/path]` base without a trailing slash.
fn base_url(env: &dyn Env, var: &str, default: &str) -> Result<String, ConfigError> {
    let raw = env.non_empty(var).unwrap_or_else(|| default.to_owned());
    let trimmed = raw.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        !r.is_empty()
            && !r.starts_with('/')
            && r.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '/' | '_' | '[' | ']')
            })
    });
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(ConfigError::new(
            var,
            "must be an http(s) URL like https://api.example.com (no query)",
        ))
    }
}

fn telegram(env: &dyn Env) -> Result<Option<TelegramConfig>, ConfigError> {
    let Some(webhook_secret) = optional_secret(env, "TELEGRAM_WEBHOOK_SECRET")? else {
        return Ok(None);
    };
    {
        use secrecy::ExposeSecret;
        // Telegram only sends secrets of 1-256 characters from A-Z, a-z, 0-9, _ and -.
        let s = webhook_secret.expose_secret();
        if s.len() > 256
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ConfigError::new(
                "TELEGRAM_WEBHOOK_SECRET",
                "must be 1-256 characters of A-Z, a-z, 0-9, _ and -",
            ));
        }
    }
    let bot_token = required_with(env, "TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET")?;
    let allowed_chat_ids = match env.non_empty("TELEGRAM_ALLOWED_CHAT_IDS") {
        None => None,
        Some(raw) => Some(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    ConfigError::new(
                        "TELEGRAM_ALLOWED_CHAT_IDS",
                        "must be comma-separated chat ids (integers)",
                    )
                })?,
        ),
    };
    Ok(Some(TelegramConfig {
        webhook_secret,
        bot_token,
        api_base: base_url(env, "TELEGRAM_API_BASE", DEFAULT_TELEGRAM_API_BASE)?,
        allowed_chat_ids,
    }))
}

fn facebook(env: &dyn Env) -> Result<FacebookConfig, ConfigError> {
    let messaging = match optional_secret(env, "FACEBOOK_APP_SECRET")? {
        None => None,
        Some(app_secret) => Some(FacebookMessaging {
            app_secret,
            page_access_token: required_with(
                env,
                "FACEBOOK_PAGE_ACCESS_TOKEN",
                "FACEBOOK_APP_SECRET",
            )?,
        }),
    };
    Ok(FacebookConfig {
        verify_token: optional_secret(env, "FACEBOOK_VERIFY_TOKEN")?,
        messaging,
        graph_base: base_url(env, "FACEBOOK_GRAPH_BASE", DEFAULT_FACEBOOK_GRAPH_BASE)?,
    })
}

fn stripe(env: &dyn Env) -> Result<Option<StripeConfig>, ConfigError> {
    const VAR: &str = "STRIPE_WEBHOOK_SECRETS";
    let Some(raw) = env.get(VAR) else {
        return Ok(None);
    };
    let secrets: Vec<SecretString> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| SecretString::from(s.to_owned()))
        .collect();
    {
        use secrecy::ExposeSecret;
        if secrets.is_empty() {
            return Err(ConfigError::new(
                VAR,
                "is set but empty; unset it to disable Stripe",
            ));
        }
        if secrets
            .iter()
            .any(|s| !s.expose_secret().starts_with("whsec_") || s.expose_secret().len() < 16)
        {
            return Err(ConfigError::new(
                VAR,
                "each secret must be a Stripe signing secret (whsec_…), comma-separated, current first",
            ));
        }
    }
    let tolerance_secs = bounded(
        env,
        "STRIPE_TOLERANCE_SECS",
        DEFAULT_STRIPE_TOLERANCE_SECS,
        1..=3600,
    )?;
    let livemode = parse_flag(env, "STRIPE_LIVEMODE")?;
    Ok(Some(StripeConfig {
        secrets,
        tolerance_secs,
        livemode,
    }))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use bastion_http::config::map_env as env;

    use super::*;

    #[test]
    fn nothing_set_means_every_platform_is_off_with_default_bases() {
        let c = WebhooksConfig::from_env(&env(&[])).unwrap();
        assert!(c.telegram.is_none() && c.stripe.is_none());
        assert!(c.facebook.verify_token.is_none() && c.facebook.messaging.is_none());
        assert_eq!(c.facebook.graph_base, DEFAULT_FACEBOOK_GRAPH_BASE);
    }

    #[test]
    fn a_secret_without_the_token_to_answer_with_stops_start_up() {
        let e = WebhooksConfig::from_env(&env(&[("TELEGRAM_WEBHOOK_SECRET", "abc")])).unwrap_err();
        assert_eq!(e.var, "TELEGRAM_BOT_TOKEN");
        let e = WebhooksConfig::from_env(&env(&[("FACEBOOK_APP_SECRET", "abc")])).unwrap_err();
        assert_eq!(e.var, "FACEBOOK_PAGE_ACCESS_TOKEN");
    }

    #[test]
    fn malformed_values_name_their_variable() {
        for (var, value) in [
            ("TELEGRAM_WEBHOOK_SECRET", "has space"),
            ("FACEBOOK_VERIFY_TOKEN", " "),
            ("STRIPE_WEBHOOK_SECRETS", "sk_live_123456789012"),
            ("STRIPE_WEBHOOK_SECRETS", " , "),
            ("FACEBOOK_GRAPH_BASE", "ftp://graph"),
        ] {
            let e = WebhooksConfig::from_env(&env(&[(var, value), ("TELEGRAM_BOT_TOKEN", "t")]))
                .unwrap_err();
            assert_eq!(e.var, var, "{value}");
        }
        let stripe = [("STRIPE_WEBHOOK_SECRETS", "whsec_0123456789abcdef")];
        for (var, value) in [
            ("STRIPE_TOLERANCE_SECS", "0"),
            ("STRIPE_TOLERANCE_SECS", "ten"),
            ("STRIPE_LIVEMODE", "yes"),
        ] {
            let e = WebhooksConfig::from_env(&env(&[stripe[0], (var, value)])).unwrap_err();
            assert_eq!(e.var, var, "{value}");
        }
    }

    #[test]
    fn full_configuration_parses_every_value() {
        let c = WebhooksConfig::from_env(&env(&[
            ("TELEGRAM_WEBHOOK_SECRET", "s3cr3t_-x"),
            ("TELEGRAM_BOT_TOKEN", "123:abc"),
            ("TELEGRAM_API_BASE", "http://127.0.0.1:9/"),
            ("TELEGRAM_ALLOWED_CHAT_IDS", "1, -1002"),
            ("FACEBOOK_VERIFY_TOKEN", "verify"),
            ("FACEBOOK_APP_SECRET", "app"),
            ("FACEBOOK_PAGE_ACCESS_TOKEN", "page"),
            (
                "STRIPE_WEBHOOK_SECRETS",
                "whsec_current0123456,whsec_previous012345",
            ),
            ("STRIPE_TOLERANCE_SECS", "60"),
            ("STRIPE_LIVEMODE", "true"),
        ]))
        .unwrap();
        let t = c.telegram.unwrap();
        assert_eq!(t.api_base, "http://127.0.0.1:9");
        assert_eq!(t.allowed_chat_ids, Some(vec![1, -1002]));
        let s = c.stripe.unwrap();
        assert_eq!(s.secrets.len(), 2);
        assert_eq!(s.secrets[0].expose_secret(), "whsec_current0123456");
        assert_eq!((s.tolerance_secs, s.livemode), (60, true));
        assert!(c.facebook.messaging.is_some());
    }
}
