//! Every rate limit the backend enforces, declared once: its name, the counter scope it is kept
//! under, its default and the variable that changes it.

use bastion_core::config::{ConfigError, Env, bounded};
use bastion_core::rate_limit::Policy;

/// A rate limit a handler or the pipeline names; its policy comes from the [`LimitTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Every request, per client IP (the pipeline's).
    DefaultIp,
    /// `/webhooks/*`, per client IP, instead of `DefaultIp`: platforms deliver in bursts from a
    /// few addresses.
    WebhooksIp,
    /// Every authenticated request, per account.
    DefaultAccount,
    LoginIp,
    /// Login attempts per account, keyed on the normalized email so unknown accounts are limited
    /// exactly like real ones.
    LoginAccount,
    /// Login attempts per (account, trusted device): a device token moves the account limit
    /// here, so strangers' failures cannot lock the owner out. Same policy as `LoginAccount`.
    LoginDevice,
    RegisterIp,
    RefreshSession,
    AdminIp,
    /// Per administrator (key name or user id).
    Admin,
    GoogleIp,
    ChatTurn,
    ExecRun,
    /// Password-reset requests and resets, per client IP.
    RecoveryIp,
    /// Password-reset requests per address (normalized), known or not, so unknown addresses are
    /// limited exactly like real ones; also verification mails per account.
    RecoveryEmail,
    /// Second-factor codes per account (enrolment, confirmation, sign-in, turning it off).
    Mfa,
}

/// How a limit's variable is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `<limit>/<seconds>`, both 1..=1,000,000.
    Window,
    /// A count per minute, 1..=10,000.
    PerMinute,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct LimitSpec {
    pub limit: Limit,
    /// The counter key's prefix; changing one resets that limit's counts in a deployment.
    pub scope: &'static str,
    pub default: Policy,
    pub variable: &'static str,
    pub form: Form,
    /// What is counted, for the README table.
    pub counts: &'static str,
}

const fn spec(
    limit: Limit,
    scope: &'static str,
    default: Policy,
    variable: &'static str,
    form: Form,
    counts: &'static str,
) -> LimitSpec {
    LimitSpec {
        limit,
        scope,
        default,
        variable,
        form,
        counts,
    }
}

const fn per_min(n: u32) -> Policy {
    Policy::per_minute(n)
}

const fn window(limit: u32, window_secs: u32) -> Policy {
    Policy { limit, window_secs }
}

use Form::{PerMinute, Window};

/// The table, in [`Limit`] order (a test holds it to that).
#[rustfmt::skip]
pub const LIMITS: [LimitSpec; 16] = [
    spec(Limit::DefaultIp, "ip", per_min(100), "RATE_LIMIT_DEFAULT_IP", Window, "every request, per client IP"),
    spec(Limit::WebhooksIp, "webhooks-ip", per_min(600), "RATE_LIMIT_WEBHOOKS_IP", Window, "`/webhooks/*` requests per client IP (replaces the default per-IP limit there)"),
    spec(Limit::DefaultAccount, "account", per_min(100), "RATE_LIMIT_DEFAULT_ACCOUNT", Window, "every authenticated request, per account"),
    spec(Limit::LoginIp, "login-ip", per_min(20), "RATE_LIMIT_LOGIN_IP", Window, "login attempts per client IP"),
    spec(Limit::LoginAccount, "login-account", per_min(5), "RATE_LIMIT_LOGIN_ACCOUNT", Window, "login attempts per account (normalized email), or per account and trusted device"),
    spec(Limit::LoginDevice, "login-device", per_min(5), "RATE_LIMIT_LOGIN_ACCOUNT", Window, "login attempts per account and trusted device"),
    spec(Limit::RegisterIp, "register-ip", per_min(3), "RATE_LIMIT_REGISTER_IP", Window, "registrations per client IP"),
    spec(Limit::RefreshSession, "refresh-session", per_min(10), "RATE_LIMIT_REFRESH_SESSION", Window, "refreshes per session"),
    spec(Limit::AdminIp, "admin-ip", per_min(30), "RATE_LIMIT_ADMIN_IP", Window, "`/admin/*` requests per client IP"),
    spec(Limit::Admin, "admin", per_min(30), "RATE_LIMIT_ADMIN", Window, "`/admin/*` requests per administrator"),
    spec(Limit::GoogleIp, "google-ip", per_min(30), "RATE_LIMIT_GOOGLE_IP", Window, "Google sign-in and linking requests per client IP"),
    spec(Limit::ChatTurn, "chat-user", per_min(20), "CHAT_RATE_LIMIT", Window, "chat turns per user"),
    spec(Limit::ExecRun, "exec_run", per_min(20), "EXEC_RUNS_PER_MINUTE", PerMinute, "exec runs per user per minute"),
    spec(Limit::RecoveryIp, "recovery-ip", window(10, 3600), "RATE_LIMIT_RECOVERY_IP", Window, "password-reset requests and resets, and email verifications, per client IP"),
    spec(Limit::RecoveryEmail, "recovery-email", window(5, 3600), "RATE_LIMIT_RECOVERY_EMAIL", Window, "password-reset mails per address (known or not) and verification mails per account"),
    spec(Limit::Mfa, "mfa", window(10, 300), "RATE_LIMIT_MFA", Window, "second-factor codes tried per account (sign-in, enrolment, turning it off)"),
];

impl Limit {
    pub fn spec(self) -> &'static LimitSpec {
        &LIMITS[self as usize]
    }
}

const RATE_LIMIT_PREFIX: &str = "RATE_LIMIT_";

/// Every limit's policy as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitTable([Policy; LIMITS.len()]);

impl Default for LimitTable {
    fn default() -> Self {
        Self(LIMITS.map(|s| s.default))
    }
}

impl LimitTable {
    pub fn get(&self, limit: Limit) -> Policy {
        self.0[limit as usize]
    }

    /// The per-IP limit the pipeline applies to a request path.
    pub fn ip_limit_for(path: &str) -> Limit {
        if path.starts_with("/webhooks/") {
            Limit::WebhooksIp
        } else {
            Limit::DefaultIp
        }
    }

    /// Reads every limit's variable. An unknown `RATE_LIMIT_*` name or a malformed value stops
    /// start-up naming the variable: a typo must not leave a limit at its default unnoticed.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        if let Some(unknown) = env
            .keys()
            .into_iter()
            .find(|k| k.starts_with(RATE_LIMIT_PREFIX) && !LIMITS.iter().any(|s| s.variable == k))
        {
            let known: Vec<&str> = LIMITS
                .iter()
                .map(|s| s.variable)
                .filter(|v| v.starts_with(RATE_LIMIT_PREFIX))
                .collect();
            return Err(ConfigError::new(
                unknown,
                format!("unknown rate-limit variable; known: {}", known.join(", ")),
            ));
        }
        let mut table = Self::default();
        for (slot, s) in table.0.iter_mut().zip(LIMITS.iter()) {
            *slot = match s.form {
                Window => match env.get(s.variable) {
                    Some(raw) => parse_window(s.variable, &raw)?,
                    None => s.default,
                },
                PerMinute => {
                    let n = bounded(env, s.variable, u64::from(s.default.limit), 1..=10_000)?;
                    Policy::per_minute(u32::try_from(n).unwrap_or(s.default.limit))
                }
            };
        }
        Ok(table)
    }
}

fn parse_window(var: &str, raw: &str) -> Result<Policy, ConfigError> {
    let bad = || {
        ConfigError::new(
            var,
            "must be <limit>/<seconds>, e.g. 5/60, both 1..=1000000",
        )
    };
    let (limit, window) = raw.trim().split_once('/').ok_or_else(bad)?;
    let limit: u32 = limit.trim().parse().map_err(|_| bad())?;
    let window_secs: u32 = window.trim().parse().map_err(|_| bad())?;
    if !(1..=1_000_000).contains(&limit) || !(1..=1_000_000).contains(&window_secs) {
        return Err(bad());
    }
    Ok(Policy { limit, window_secs })
}

#[cfg(test)]
mod tests {
    use bastion_core::config::map_env as env;

    use super::*;

    #[test]
    fn the_table_is_in_limit_order_and_scopes_are_distinct() {
        for (i, s) in LIMITS.iter().enumerate() {
            assert_eq!(s.limit as usize, i, "{:?}", s.limit);
        }
        let mut scopes: Vec<&str> = LIMITS.iter().map(|s| s.scope).collect();
        scopes.sort_unstable();
        scopes.dedup();
        assert_eq!(scopes.len(), LIMITS.len());
    }

    #[test]
    fn the_device_limit_follows_the_account_limit() {
        let t = LimitTable::from_env(&env(&[("RATE_LIMIT_LOGIN_ACCOUNT", "9/60")])).unwrap();
        assert_eq!(t.get(Limit::LoginAccount), Policy::per_minute(9));
        assert_eq!(t.get(Limit::LoginDevice), Policy::per_minute(9));
    }

    #[test]
    fn admin_and_google_limits_are_configurable() {
        let t = LimitTable::default();
        assert_eq!(t.get(Limit::AdminIp), Policy::per_minute(30));
        assert_eq!(t.get(Limit::Admin), Policy::per_minute(30));
        assert_eq!(t.get(Limit::GoogleIp), Policy::per_minute(30));
        let t = LimitTable::from_env(&env(&[
            ("RATE_LIMIT_ADMIN_IP", "5/10"),
            ("RATE_LIMIT_ADMIN", "6/10"),
            ("RATE_LIMIT_GOOGLE_IP", "7/10"),
        ]))
        .unwrap();
        let p = |limit, window_secs| Policy { limit, window_secs };
        assert_eq!(t.get(Limit::AdminIp), p(5, 10));
        assert_eq!(t.get(Limit::Admin), p(6, 10));
        assert_eq!(t.get(Limit::GoogleIp), p(7, 10));
    }

    #[test]
    fn the_chat_turn_limit_is_a_window_and_a_bare_count_stops_start_up() {
        assert_eq!(
            LimitTable::default().get(Limit::ChatTurn),
            Policy::per_minute(20)
        );
        let e = LimitTable::from_env(&env(&[("CHAT_RATE_LIMIT", "20")])).unwrap_err();
        assert_eq!(e.var, "CHAT_RATE_LIMIT");
        let t = LimitTable::from_env(&env(&[("CHAT_RATE_LIMIT", "3/60")])).unwrap();
        assert_eq!(t.get(Limit::ChatTurn), Policy::per_minute(3));
    }

    #[test]
    fn exec_runs_are_a_count_per_minute_within_bounds() {
        assert_eq!(
            LimitTable::default().get(Limit::ExecRun),
            Policy::per_minute(20)
        );
        let t = LimitTable::from_env(&env(&[("EXEC_RUNS_PER_MINUTE", "7")])).unwrap();
        assert_eq!(t.get(Limit::ExecRun), Policy::per_minute(7));
        for bad in ["0", "10001", "7/60"] {
            let e = LimitTable::from_env(&env(&[("EXEC_RUNS_PER_MINUTE", bad)])).unwrap_err();
            assert_eq!(e.var, "EXEC_RUNS_PER_MINUTE", "{bad}");
        }
    }
}
