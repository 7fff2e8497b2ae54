//! Chat configuration from the environment: the provider (and its optional fallback), models,
//! system prompt, context budget, plan allowances and the per-user turn limit. Anything
//! malformed stops start-up.

use std::sync::Arc;
use std::time::Duration;

use bastion_core::config::bounded;
use bastion_core::config::{ConfigError, Env};
use bastion_core::{Clock, Plan, SystemClock};
use reqwest::Url;
use secrecy::SecretString;

use crate::agent::AgentConfig;
use crate::message::ModelName;
use crate::provider::anthropic::DEFAULT_MAX_TOKENS;
use crate::provider::breaker::Breaker;
use bastion_core::metrics::{LineSink, Stdout};

use crate::provider::failover_metric::FailoverMetric;
use crate::provider::{
    AnthropicProvider, ApiKey, EchoProvider, FailoverProvider, OpenAiProvider, Provider,
    ProviderError, ProviderSettings,
};

/// Where the binary runs: Lambda never gets the echo provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeMode {
    Lambda,
    Local,
}

pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant.";
/// The model name the echo provider reports when `LLM_MODEL` is unset.
pub const ECHO_MODEL: &str = "echo";
/// API Gateway gives up at 29 s; the provider must be done well before.
const MAX_DEADLINE_SECS: u64 = 28;
/// The metrics namespace when `METRICS_NAMESPACE` is unset (the template sets `Bastion/<env>`).
const DEFAULT_METRICS_NAMESPACE: &str = "Bastion/local";
const MAX_NAMESPACE_CHARS: usize = 255;

/// Everything the engine reads from configuration.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    pub default_model: ModelName,
    pub allowed_models: Vec<ModelName>,
    pub system_prompt: String,
    /// Characters of system prompt + history + new message sent per turn (the new message is
    /// always sent; history is cut from the oldest end to fit).
    pub context_budget_chars: usize,
    /// The most history messages read per turn.
    pub context_max_messages: usize,
    pub free_daily_credits: u64,
    pub pro_daily_credits: u64,
    /// The agent's tools, step cap and deadline.
    pub agent: AgentConfig,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            default_model: ModelName(ECHO_MODEL.to_owned()),
            allowed_models: vec![ModelName(ECHO_MODEL.to_owned())],
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_owned(),
            context_budget_chars: 48_000,
            context_max_messages: 40,
            free_daily_credits: 50,
            pro_daily_credits: 2_000,
            agent: AgentConfig::default(),
        }
    }
}

impl ChatConfig {
    /// The daily allowance of a plan.
    pub fn allowance(&self, plan: Plan) -> u64 {
        match plan {
            Plan::Free => self.free_daily_credits,
            Plan::Pro => self.pro_daily_credits,
        }
    }

    /// The requested model if allowed, else the default.
    pub fn resolve_model(&self, requested: Option<&str>) -> Option<ModelName> {
        match requested {
            None => Some(self.default_model.clone()),
            Some(name) => self
                .allowed_models
                .iter()
                .find(|m| m.as_str() == name)
                .cloned(),
        }
    }
}

/// The configured provider and the engine configuration.
pub struct ChatSetup {
    pub config: ChatConfig,
    pub provider: Arc<dyn Provider>,
    /// The provider's key, whichever format it speaks (unused by the echo provider): a secret
    /// refresh stores the re-read `LLM_API_KEY` here (see [`api_key`]).
    pub api_key: ApiKey,
    /// The fallback's key when a fallback is configured: a secret refresh stores the re-read
    /// `LLM_FALLBACK_API_KEY` here (see [`ProviderKeys`]).
    pub fallback_api_key: Option<ApiKey>,
}

impl ChatSetup {
    /// Reads every chat variable. With no `LLM_BASE_URL`, `Local` gets the echo provider and
    /// `Lambda` refuses to start. A fallback's circuit breaker runs on the system clock and
    /// its failover metric goes to stdout.
    pub fn from_env(env: &dyn Env, mode: RuntimeMode) -> Result<Self, ConfigError> {
        Self::from_env_with(env, mode, Arc::new(SystemClock), Arc::new(Stdout))
    }

    /// [`Self::from_env`] with the clock the fallback's circuit breaker reads and where its
    /// metric lines go.
    pub fn from_env_with(
        env: &dyn Env,
        mode: RuntimeMode,
        clock: Arc<dyn Clock>,
        metric_lines: Arc<dyn LineSink>,
    ) -> Result<Self, ConfigError> {
        let (provider, default_model, api_key, fallback_api_key) =
            provider(env, mode, clock, metric_lines)?;
        let config = ChatConfig {
            allowed_models: allowed_models(env, &default_model)?,
            default_model,
            system_prompt: system_prompt(env)?,
            context_budget_chars: to_usize(bounded(
                env,
                "LLM_CONTEXT_BUDGET_CHARS",
                48_000,
                1_000..=1_000_000,
            )?),
            context_max_messages: to_usize(bounded(env, "LLM_CONTEXT_MAX_MESSAGES", 40, 0..=200)?),
            free_daily_credits: bounded(env, "PLAN_FREE_DAILY_CREDITS", 50, 0..=1_000_000)?,
            pro_daily_credits: bounded(env, "PLAN_PRO_DAILY_CREDITS", 2_000, 0..=1_000_000)?,
            agent: AgentConfig::from_env(env)?,
        };
        Ok(Self {
            config,
            provider,
            api_key,
            fallback_api_key,
        })
    }

    /// The key handles a secret refresh swaps.
    pub fn keys(&self) -> ProviderKeys {
        ProviderKeys {
            primary: self.api_key.clone(),
            fallback: self.fallback_api_key.clone(),
        }
    }
}

/// The provider keys a secret refresh swaps: `LLM_API_KEY` and, with a fallback configured,
/// `LLM_FALLBACK_API_KEY`.
#[derive(Debug, Clone, Default)]
pub struct ProviderKeys {
    pub primary: ApiKey,
    pub fallback: Option<ApiKey>,
}

/// Both keys as a refreshed document holds them, parsed before either is stored.
#[derive(Debug)]
pub struct FreshKeys {
    primary: Option<SecretString>,
    fallback: Option<SecretString>,
}

impl ProviderKeys {
    /// Parses both keys from `env` under the start-up rules; nothing is stored.
    pub fn read(env: &dyn Env) -> Result<FreshKeys, ConfigError> {
        Ok(FreshKeys {
            primary: api_key(env)?,
            fallback: fallback_api_key(env)?,
        })
    }

    /// Stores keys [`Self::read`] parsed, for every later request.
    pub fn store(&self, fresh: FreshKeys) {
        self.primary.store(fresh.primary);
        if let Some(fallback) = &self.fallback {
            fallback.store(fresh.fallback);
        }
    }
}

/// Which wire format `LLM_BASE_URL` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI-compatible Chat Completions (the default).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

/// `LLM_PROVIDER`: `openai` (also when unset) or `anthropic`. Written as one `match` on the
/// variable so infra/params.py reads the accepted values for the template's AllowedValues.
pub fn provider_kind(env: &dyn Env) -> Result<ProviderKind, ConfigError> {
    match env.non_empty("LLM_PROVIDER").as_deref().map(str::trim) {
        None | Some("openai") => Ok(ProviderKind::OpenAi),
        Some("anthropic") => Ok(ProviderKind::Anthropic),
        Some(_) => Err(ConfigError::new(
            "LLM_PROVIDER",
            "must be openai or anthropic",
        )),
    }
}

/// `LLM_FALLBACK_PROVIDER`, the fallback's wire format: the same values and default as
/// [`provider_kind`], written as its own `match` for infra/params.py.
pub fn fallback_provider_kind(env: &dyn Env) -> Result<ProviderKind, ConfigError> {
    match env
        .non_empty("LLM_FALLBACK_PROVIDER")
        .as_deref()
        .map(str::trim)
    {
        None | Some("openai") => Ok(ProviderKind::OpenAi),
        Some("anthropic") => Ok(ProviderKind::Anthropic),
        Some(_) => Err(ConfigError::new(
            "LLM_FALLBACK_PROVIDER",
            "must be openai or anthropic",
        )),
    }
}

/// The provider, its default model, the handle a secret refresh swaps its key through, and the
/// fallback's key handle when a fallback wraps it.
type Built = (Arc<dyn Provider>, ModelName, ApiKey, Option<ApiKey>);

fn provider(
    env: &dyn Env,
    mode: RuntimeMode,
    clock: Arc<dyn Clock>,
    metric_lines: Arc<dyn LineSink>,
) -> Result<Built, ConfigError> {
    let kind = provider_kind(env)?;
    let fallback_kind = fallback_provider_kind(env)?;
    // Checked in both modes, so a half-configured fallback never hides behind the echo provider.
    fallback_api_key(env)?;
    let fallback_url = env.non_empty(FALLBACK_BASE_URL);
    if fallback_url.is_none() && env.non_empty("LLM_FALLBACK_MODEL").is_some() {
        return Err(ConfigError::new(
            "LLM_FALLBACK_MODEL",
            "is set without LLM_FALLBACK_BASE_URL",
        ));
    }
    let Some(raw) = env.non_empty("LLM_BASE_URL") else {
        return echo(env, mode, fallback_url.is_some());
    };
    let settings = ProviderSettings {
        base_url: base_url(BASE_URL, &raw, kind)?,
        api_key: api_key(env)?,
        deadline: Duration::from_secs(bounded(env, "LLM_TIMEOUT_SECS", 25, 1..=MAX_DEADLINE_SECS)?),
        backoff: Duration::from_millis(250),
        max_tokens: max_tokens(env)?,
        stream_idle: Duration::from_secs(bounded(env, "LLM_STREAM_IDLE_SECS", 20, 1..=120)?),
    };
    let m = env.required("LLM_MODEL")?;
    let default_model = model("LLM_MODEL", &m)?;
    let Some(fallback_raw) = fallback_url else {
        let (primary, key) = http_provider(BASE_URL, kind, settings)?;
        return Ok((primary, default_model, key, None));
    };
    let fallback_settings = ProviderSettings {
        base_url: base_url(FALLBACK_BASE_URL, &fallback_raw, fallback_kind)?,
        api_key: fallback_api_key(env)?,
        ..settings.clone()
    };
    let fallback_model = model("LLM_FALLBACK_MODEL", &env.required("LLM_FALLBACK_MODEL")?)?;
    let (primary, key) = http_provider(BASE_URL, kind, settings)?;
    let (fallback, fallback_key) =
        http_provider(FALLBACK_BASE_URL, fallback_kind, fallback_settings)?;
    let metric = FailoverMetric::new(metrics_namespace(env)?, clock.clone(), metric_lines);
    let wrapped = FailoverProvider::new(
        primary,
        fallback,
        fallback_model.as_str(),
        Breaker::new(clock),
        metric,
    );
    Ok((Arc::new(wrapped), default_model, key, Some(fallback_key)))
}

const BASE_URL: &str = "LLM_BASE_URL";
const FALLBACK_BASE_URL: &str = "LLM_FALLBACK_BASE_URL";

/// No `LLM_BASE_URL`: the echo provider, in `Local` only and never with a fallback.
fn echo(env: &dyn Env, mode: RuntimeMode, fallback: bool) -> Result<Built, ConfigError> {
    if mode == RuntimeMode::Lambda {
        return Err(ConfigError::new(
            BASE_URL,
            "is required in AWS Lambda; the echo provider is for bastion-local only",
        ));
    }
    if fallback {
        return Err(ConfigError::new(
            FALLBACK_BASE_URL,
            "needs LLM_BASE_URL: the echo provider has no fallback",
        ));
    }
    let model = match env.non_empty("LLM_MODEL") {
        Some(m) => model("LLM_MODEL", &m)?,
        None => ModelName(ECHO_MODEL.to_owned()),
    };
    Ok((
        Arc::new(EchoProvider::new(env)?),
        model,
        ApiKey::default(),
        None,
    ))
}

/// One HTTP adapter of `kind` and its key handle; a failure names the base URL's variable.
fn http_provider(
    var: &str,
    kind: ProviderKind,
    settings: ProviderSettings,
) -> Result<(Arc<dyn Provider>, ApiKey), ConfigError> {
    let built = |e: ProviderError| ConfigError::new(var, e.to_string());
    Ok(match kind {
        ProviderKind::OpenAi => {
            let p = OpenAiProvider::new(settings).map_err(built)?;
            let key = p.api_key();
            (Arc::new(p), key)
        }
        ProviderKind::Anthropic => {
            let p = AnthropicProvider::new(settings).map_err(built)?;
            let key = p.api_key();
            (Arc::new(p), key)
        }
    })
}

/// `METRICS_NAMESPACE`, where the failover metric goes.
fn metrics_namespace(env: &dyn Env) -> Result<String, ConfigError> {
    match env.non_empty("METRICS_NAMESPACE") {
        None => Ok(DEFAULT_METRICS_NAMESPACE.to_owned()),
        Some(n) if n.chars().count() <= MAX_NAMESPACE_CHARS => Ok(n),
        Some(_) => Err(ConfigError::new(
            "METRICS_NAMESPACE",
            format!("must be at most {MAX_NAMESPACE_CHARS} characters"),
        )),
    }
}

/// `LLM_MAX_TOKENS` (1..=64000) when set. Anthropic requires the field and sends
/// [`DEFAULT_MAX_TOKENS`] without it; the OpenAI format sends it only when set.
fn max_tokens(env: &dyn Env) -> Result<Option<u32>, ConfigError> {
    match env.non_empty("LLM_MAX_TOKENS") {
        None => Ok(None),
        Some(_) => bounded(env, "LLM_MAX_TOKENS", DEFAULT_MAX_TOKENS, 1..=64_000).map(Some),
    }
}

/// `LLM_ALLOWED_MODELS`, which must include the default model; unset, the default alone.
fn allowed_models(env: &dyn Env, default_model: &ModelName) -> Result<Vec<ModelName>, ConfigError> {
    let Some(list) = env.non_empty("LLM_ALLOWED_MODELS") else {
        return Ok(vec![default_model.clone()]);
    };
    let models = list
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| model("LLM_ALLOWED_MODELS", m))
        .collect::<Result<Vec<_>, _>>()?;
    if !models.contains(default_model) {
        return Err(ConfigError::new(
            "LLM_ALLOWED_MODELS",
            "must include LLM_MODEL",
        ));
    }
    Ok(models)
}

fn system_prompt(env: &dyn Env) -> Result<String, ConfigError> {
    match env.get("LLM_SYSTEM_PROMPT") {
        None => Ok(DEFAULT_SYSTEM_PROMPT.to_owned()),
        Some(p) if p.chars().count() > 8_000 => Err(ConfigError::new(
            "LLM_SYSTEM_PROMPT",
            "must be at most 8000 characters",
        )),
        Some(p) => Ok(p),
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn model(var: &str, raw: &str) -> Result<ModelName, ConfigError> {
    ModelName::parse(raw).map_err(|_| ConfigError::new(var, "not a valid model name"))
}

/// HTTPS, or plain HTTP only to a loopback host (a local Ollama or vLLM). Anthropic's base is
/// the API's root: `/v1/messages` is appended, so a base ending in `/v1` would double it.
fn base_url(var: &str, raw: &str, kind: ProviderKind) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|_| ConfigError::new(var, "is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        let key = if var == FALLBACK_BASE_URL {
            "LLM_FALLBACK_API_KEY"
        } else {
            "LLM_API_KEY"
        };
        return Err(ConfigError::new(
            var,
            format!("must not carry credentials; use {key}"),
        ));
    }
    let host = url.host_str().unwrap_or("");
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if kind == ProviderKind::Anthropic && url.path().trim_end_matches('/').ends_with("/v1") {
        return Err(ConfigError::new(
            var,
            "must not end in /v1 with an anthropic provider (/v1/messages is appended)",
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(ConfigError::new(
            var,
            "must be https:// (http:// only to a loopback host)",
        )),
    }
}

/// `LLM_API_KEY`: unset for providers that need no key, never set but blank.
pub fn api_key(env: &dyn Env) -> Result<Option<SecretString>, ConfigError> {
    key(env, "LLM_API_KEY")
}

/// `LLM_FALLBACK_API_KEY`, under the same rules, and only beside `LLM_FALLBACK_BASE_URL`: a
/// key with nowhere to go is a mistake in the secret document.
pub fn fallback_api_key(env: &dyn Env) -> Result<Option<SecretString>, ConfigError> {
    let key = key(env, "LLM_FALLBACK_API_KEY")?;
    if key.is_some() && env.non_empty(FALLBACK_BASE_URL).is_none() {
        return Err(ConfigError::new(
            "LLM_FALLBACK_API_KEY",
            "is set without LLM_FALLBACK_BASE_URL",
        ));
    }
    Ok(key)
}

fn key(env: &dyn Env, var: &str) -> Result<Option<SecretString>, ConfigError> {
    match env.get(var) {
        None => Ok(None),
        Some(k) if k.trim().is_empty() => Err(ConfigError::new(
            var,
            "is set but empty; unset it for providers that need no key",
        )),
        Some(k) => Ok(Some(SecretString::from(k.trim().to_owned()))),
    }
}

#[cfg(test)]
mod tests {
    use bastion_core::config::map_env as env;

    use super::*;

    #[test]
    fn lambda_mode_without_a_base_url_refuses_to_start() {
        let err = ChatSetup::from_env(&env(&[]), RuntimeMode::Lambda)
            .err()
            .unwrap();
        assert_eq!(err.var, "LLM_BASE_URL");
    }

    #[test]
    fn local_mode_without_a_base_url_uses_the_echo_provider_and_defaults() {
        let setup = ChatSetup::from_env(&env(&[]), RuntimeMode::Local).unwrap();
        assert_eq!(setup.provider.name(), "echo");
        assert_eq!(setup.config.default_model.as_str(), "echo");
        assert_eq!(setup.config.free_daily_credits, 50);
        assert_eq!(setup.config.pro_daily_credits, 2_000);
    }

    #[test]
    fn a_base_url_needs_a_model_and_https_unless_loopback() {
        let e = ChatSetup::from_env(
            &env(&[("LLM_BASE_URL", "https://api.example.com/v1")]),
            RuntimeMode::Lambda,
        )
        .err()
        .unwrap();
        assert_eq!(e.var, "LLM_MODEL");
        for bad in [
            "http://api.example.com/v1",
            "ftp://x",
            "not a url",
            "https://user:pw@api.example.com/v1",
        ] {
            let e = ChatSetup::from_env(
                &env(&[("LLM_BASE_URL", bad), ("LLM_MODEL", "m")]),
                RuntimeMode::Lambda,
            )
            .err()
            .unwrap();
            assert_eq!(e.var, "LLM_BASE_URL", "{bad}");
        }
        let ok = ChatSetup::from_env(
            &env(&[
                ("LLM_BASE_URL", "http://127.0.0.1:11434/v1"),
                ("LLM_MODEL", "llama3"),
                ("LLM_ALLOWED_MODELS", "llama3, qwen2:7b"),
                ("PLAN_FREE_DAILY_CREDITS", "3"),
            ]),
            RuntimeMode::Lambda,
        )
        .unwrap();
        assert_eq!(ok.provider.name(), "openai-compatible");
        assert_eq!(
            ok.config.resolve_model(Some("qwen2:7b")).unwrap().as_str(),
            "qwen2:7b"
        );
        assert_eq!(ok.config.resolve_model(Some("gpt-4")), None);
        assert_eq!(ok.config.free_daily_credits, 3);
    }

    #[test]
    fn malformed_numbers_lists_and_keys_name_their_variable() {
        for (var, value) in [
            ("PLAN_FREE_DAILY_CREDITS", "-1"),
            ("PLAN_PRO_DAILY_CREDITS", "lots"),
            ("LLM_TIMEOUT_SECS", "29"),
            ("LLM_CONTEXT_BUDGET_CHARS", "10"),
            ("LLM_ALLOWED_MODELS", "other"),
            ("LLM_API_KEY", " "),
        ] {
            let e = ChatSetup::from_env(
                &env(&[
                    ("LLM_BASE_URL", "https://api.example.com/v1"),
                    ("LLM_MODEL", "m"),
                    (var, value),
                ]),
                RuntimeMode::Lambda,
            )
            .err()
            .unwrap();
            assert_eq!(e.var, var, "{value}");
        }
    }

    #[test]
    fn llm_provider_picks_the_wire_format_and_anything_else_names_the_variable() {
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = vec![
                ("LLM_BASE_URL", "https://api.example.com"),
                ("LLM_MODEL", "m"),
            ];
            pairs.extend_from_slice(extra);
            ChatSetup::from_env(&env(&pairs), RuntimeMode::Lambda)
        };
        assert_eq!(with(&[]).unwrap().provider.name(), "openai-compatible");
        assert_eq!(
            with(&[("LLM_PROVIDER", "openai")]).unwrap().provider.name(),
            "openai-compatible"
        );
        assert_eq!(
            with(&[("LLM_PROVIDER", "anthropic")])
                .unwrap()
                .provider
                .name(),
            "anthropic"
        );
        for bad in ["Anthropic", "gemini", "echo", "openai,anthropic"] {
            let e = with(&[("LLM_PROVIDER", bad)]).err().unwrap();
            assert_eq!(e.var, "LLM_PROVIDER", "{bad}");
        }
        // Checked even where no URL is set, so a typo never hides behind the echo provider.
        let local = ChatSetup::from_env(&env(&[("LLM_PROVIDER", "claude")]), RuntimeMode::Local);
        assert_eq!(local.err().unwrap().var, "LLM_PROVIDER");
        let echo = ChatSetup::from_env(&env(&[("LLM_PROVIDER", "anthropic")]), RuntimeMode::Local);
        assert_eq!(echo.unwrap().provider.name(), "echo");
    }

    #[test]
    fn llm_max_tokens_is_bounded_and_anthropic_bases_must_not_end_in_v1() {
        for (provider, value) in [
            ("openai", "0"),
            ("anthropic", "64001"),
            ("anthropic", "many"),
            ("openai", "-5"),
        ] {
            let e = ChatSetup::from_env(
                &env(&[
                    ("LLM_PROVIDER", provider),
                    ("LLM_BASE_URL", "https://api.example.com"),
                    ("LLM_MODEL", "m"),
                    ("LLM_MAX_TOKENS", value),
                ]),
                RuntimeMode::Lambda,
            )
            .err()
            .unwrap();
            assert_eq!(e.var, "LLM_MAX_TOKENS", "{value}");
        }
        assert_eq!(max_tokens(&env(&[])).unwrap(), None);
        assert_eq!(
            max_tokens(&env(&[("LLM_MAX_TOKENS", "64000")])).unwrap(),
            Some(64_000)
        );
        assert_eq!(
            max_tokens(&env(&[("LLM_MAX_TOKENS", "1")])).unwrap(),
            Some(1)
        );
        for base in [
            "https://api.anthropic.com/v1",
            "https://gw.example.com/x/v1/",
        ] {
            let e = ChatSetup::from_env(
                &env(&[
                    ("LLM_PROVIDER", "anthropic"),
                    ("LLM_BASE_URL", base),
                    ("LLM_MODEL", "m"),
                ]),
                RuntimeMode::Lambda,
            )
            .err()
            .unwrap();
            assert_eq!(e.var, "LLM_BASE_URL", "{base}");
        }
        let ok = ChatSetup::from_env(
            &env(&[
                ("LLM_PROVIDER", "anthropic"),
                ("LLM_BASE_URL", "https://gw.example.com/anthropic"),
                ("LLM_MODEL", "m"),
            ]),
            RuntimeMode::Lambda,
        );
        assert_eq!(ok.unwrap().provider.name(), "anthropic");
    }
}
