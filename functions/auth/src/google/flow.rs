//! The Google routes: `GET /auth/google/start`, `GET /auth/google/callback`,
//! `POST /auth/google/exchange`, `POST /auth/google/link` and `POST /auth/google/reauth`.
//!
//! The state, PKCE verifier, nonce and return URL live server-side under the state's hash for
//! ten minutes and are consumed once. The browser that started the flow holds a `__Host-`
//! cookie whose hash is stored with them, so a state carried to another browser is refused.
//! The callback never puts a token in a URL: it sends a one-time login code (60 s) in the
//! fragment, exchanged by the frontend for the usual token response. The code is bound to the
//! same cookie: the exchange must come from the browser that started the flow (the frontend
//! calls it with `credentials: 'include'`, from a site same-site with the API).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::token::looks_like_token;
use bastion_core::crypto::{OpaqueToken, TokenHash, sha256};
use bastion_core::{SessionId, Timestamp, UserId};
use bastion_http::{ApiError, ErrorKind, JsonBody, Limit, Limits, RequestMeta, SessionOnly};
use bastion_store::UserRecord;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use super::config::GoogleConfig;
use super::oidc::GoogleClient;
use super::reauth::{self, PendingReauth};
use super::resolve;
use super::verdict::{Stop, is_upstream, redirect_code, same_browser, verified_claims};
use crate::AuthState;
use crate::account::{RECENT_SIGN_IN_SECS, confirm_password, current_user};
use crate::audit::{self, record};
use crate::reauth::ReauthAction;
use crate::tokens::open_session;

const STATE_PURPOSE: &str = "oauth_state";
const CODE_PURPOSE: &str = "login_code";
const STATE_TTL_SECS: i64 = 600;
const LOGIN_CODE_TTL_SECS: i64 = 60;
pub const BINDING_COOKIE: &str = "__Host-bastion_oauth";

/// What the server remembers about one started sign-in.
#[derive(Serialize, Deserialize)]
struct Pending {
    verifier: String,
    nonce: String,
    return_to: String,
    binding: String,
    #[serde(default)]
    link_user: Option<String>,
    /// The session that started a link: it must still be alive when Google calls back.
    #[serde(default)]
    link_session: Option<String>,
    /// Set when the signed-in user re-authenticates for one action: the callback then ends in
    /// a grant for it, never in a sign-in or a link.
    #[serde(default)]
    reauth: Option<PendingReauth>,
}

/// Who a started flow is for: anyone signing in, or the signed-in user linking Google or
/// re-authenticating for one action.
enum Intent<'a> {
    SignIn,
    Link(&'a UserId, &'a SessionId),
    Reauth(PendingReauth),
}

#[derive(Serialize, Deserialize)]
struct CodePayload {
    user_id: String,
    /// Hash of the binding cookie of the browser that started the flow: only that browser
    /// may exchange the code (an attacker's code planted in a victim's frontend is refused).
    #[serde(default)]
    binding: Option<String>,
}

fn not_configured() -> ApiError {
    ApiError::new(ErrorKind::Unavailable, "Google sign-in is not configured")
        .with_code("google_not_configured")
}

fn invalid_state() -> ApiError {
    ApiError::invalid(
        "invalid_state",
        "sign-in state is unknown, expired, already used or from another browser",
    )
}

fn invalid_login_code() -> ApiError {
    ApiError::invalid(
        "invalid_login_code",
        "login code is unknown, expired or already used",
    )
}

fn google(ext: &AuthState) -> Result<Arc<GoogleClient>, ApiError> {
    ext.extras.load().google.clone().ok_or_else(not_configured)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// Where the frontend wants the user back; must be under an allowed origin.
    #[serde(default)]
    return_to: Option<String>,
}

/// Stores a fresh pending sign-in and returns Google's authorize URL and the binding cookie.
async fn begin(
    ext: &AuthState,
    client: &GoogleClient,
    return_to: Option<&str>,
    intent: Intent<'_>,
) -> Result<(String, HeaderValue), ApiError> {
    let config = &client.config;
    let return_to = return_to
        .filter(|r| config.return_to.iter().any(|allowed| allowed == r))
        .ok_or_else(|| {
            ApiError::invalid(
                "invalid_return_to",
                "return_to must be one of the configured frontend URLs",
            )
        })?;
    let state = OpaqueToken::generate();
    let nonce = OpaqueToken::generate();
    let verifier = OpaqueToken::generate();
    let binding = OpaqueToken::generate();
    let challenge = URL_SAFE_NO_PAD.encode(sha256(verifier.expose().as_bytes()));
    let link = match &intent {
        Intent::Link(user, session) => Some((*user, *session)),
        Intent::SignIn | Intent::Reauth(_) => None,
    };
    // A re-authentication must be a login at Google now, not a session Google already holds.
    let fresh_login = matches!(intent, Intent::Reauth(_));
    let pending = Pending {
        verifier: verifier.expose().to_owned(),
        nonce: nonce.expose().to_owned(),
        return_to: return_to.to_owned(),
        binding: binding.hash().as_str().to_owned(),
        link_user: link.map(|(u, _)| u.as_str().to_owned()),
        link_session: link.map(|(_, s)| s.as_str().to_owned()),
        reauth: match intent {
            Intent::Reauth(reauth) => Some(reauth),
            Intent::SignIn | Intent::Link(..) => None,
        },
    };
    let payload = serde_json::to_string(&pending).map_err(|e| ApiError::internal(&e))?;
    let now = ext.edge.clock.now();
    ext.edge
        .stores
        .one_time
        .put_one_time(
            STATE_PURPOSE,
            &state.hash(),
            &payload,
            now.plus_secs(STATE_TTL_SECS),
        )
        .await?;
    let url = authorize_url(config, &state, &nonce, &challenge, fresh_login)?;
    let cookie = HeaderValue::from_str(&format!(
        "{BINDING_COOKIE}={}; Path=/; Max-Age={STATE_TTL_SECS}; Secure; HttpOnly; SameSite=Lax",
        binding.expose()
    ))
    .map_err(|e| ApiError::internal(&e))?;
    Ok((url, cookie))
}

/// Google's authorize URL for one started flow; `fresh_login` asks for a login now
/// (`prompt=login`) no older than `max_age`, whose `auth_time` the callback then checks.
fn authorize_url(
    config: &GoogleConfig,
    state: &OpaqueToken,
    nonce: &OpaqueToken,
    challenge: &str,
    fresh_login: bool,
) -> Result<String, ApiError> {
    let max_age = reauth::MAX_AGE_SECS.to_string();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", config.client_id.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
        ("scope", "openid email profile"),
        ("state", state.expose()),
        ("nonce", nonce.expose()),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    if fresh_login {
        params.extend([("prompt", "login"), ("max_age", max_age.as_str())]);
    }
    let url = reqwest::Url::parse_with_params(&config.auth_url, &params)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(url.to_string())
}

#[utoipa::path(
    get, path = "/auth/google/start", tag = "google", operation_id = "google_start",
    params(StartQuery),
    responses((status = 302, description = "Redirect to Google, with the browser-binding cookie."),
        (status = 400, description = "`invalid_return_to`: the return URL is not an allowed origin."),
        (status = 503, description = "`google_not_configured`, `unavailable`."))
)]
pub async fn start(
    State(ext): State<AuthState>,
    meta: RequestMeta,
    limits: Limits,
    Query(q): Query<StartQuery>,
) -> Result<Response, ApiError> {
    let client = google(&ext)?.clone();
    limits.enforce(Limit::GoogleIp, &meta.ip.0).await?;
    let (url, cookie) = begin(&ext, &client, q.return_to.as_deref(), Intent::SignIn).await?;
    let mut res = found(&url)?;
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(res)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    return_to: String,
    /// The account's password; required when it has one, ignored (and may be omitted) for an
    /// account created by Google sign-in, which has none.
    #[serde(default)]
    #[schema(max_length = 128, format = Password)]
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LinkResponse {
    authorize_url: String,
}

/// Starts the same flow bound to the signed-in user: its callback links, never signs in.
///
/// From a session opened in the last ten minutes; an account with a password confirms the
/// link with it (wrong ones count against the login's per-account limit).
#[utoipa::path(
    post, path = "/auth/google/link", tag = "google", operation_id = "google_link", security(("bearer_jwt" = [])),
    request_body = LinkRequest,
    responses((status = 200, description = "Google's authorize URL for a link flow.", body = LinkResponse),
        (status = 400, description = "`invalid_return_to`, `invalid_request`."),
        (status = 401, description = "`unauthorized`: no valid session, or the account is gone or disabled; `invalid_password`: the account has a password and it is missing or wrong."),
        (status = 403, description = "`session_required`, `reauthentication_required`: the session was not opened in the last 10 minutes."),
        (status = 503, description = "`google_not_configured`, `unavailable`."))
)]
pub async fn link(
    State(ext): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    limits: Limits,
    JsonBody(body): JsonBody<LinkRequest>,
) -> Result<Response, ApiError> {
    let client = google(&ext)?.clone();
    limits.enforce(Limit::GoogleIp, &meta.ip.0).await?;
    // A linked Google identity signs in for good and survives a password change, so a stolen
    // access token or refresh token of an older session must not be enough to plant one.
    let now = ext.edge.clock.now();
    let session = ext
        .edge
        .stores
        .sessions
        .get_session(&auth.user_id, &auth.session_id, now)
        .await?;
    let recent = session.is_some_and(|s| now.secs() - s.created_at.secs() <= RECENT_SIGN_IN_SECS);
    if !recent {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "sign in again, then link Google within 10 minutes",
        )
        .with_code("reauthentication_required"));
    }
    // A fresh session is also what a freshly stolen access token has: the password proves the
    // owner, as for unlinking or deleting. An account created by Google has no password to ask
    // for and already holds its one Google identity (the callback refuses a second); it links
    // only after unlinking, when that fresh session is all it has left to sign in with.
    let user = current_user(&ext, &auth.user_id).await?;
    if !user.password_hash.is_empty() {
        let kind = AuditKind::GoogleLinked;
        confirm_password(&ext, &meta, &limits, &user, &body.password, kind).await?;
    }
    let intent = Intent::Link(&auth.user_id, &auth.session_id);
    let (url, cookie) = begin(&ext, &client, Some(&body.return_to), intent).await?;
    let mut res = Json(LinkResponse { authorize_url: url }).into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(res)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthRequest {
    action: ReauthAction,
    return_to: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReauthResponse {
    authorize_url: String,
}

fn password_confirms() -> ApiError {
    ApiError::new(
        ErrorKind::Conflict,
        "this account has a password: confirm the action with it",
    )
    .with_code("password_confirms")
}

/// Starts the same flow as a fresh login at Google bound to the signed-in, password-less user,
/// its session and one action: its callback ends in a grant for that action (`reauth`), never
/// in a sign-in or a link. The session's age does not matter: the login at Google is the proof.
#[utoipa::path(
    post, path = "/auth/google/reauth", tag = "google", operation_id = "google_reauth", security(("bearer_jwt" = [])),
    request_body = ReauthRequest,
    responses((status = 200, description = "Google's authorize URL (`prompt=login`, `max_age=300`) and the binding cookie; the callback sends the browser back with `#reauth=<grant>` (5 minutes, single use, only for this action, user and session).", body = ReauthResponse),
        (status = 400, description = "`invalid_return_to`, `invalid_request`."),
        (status = 401, description = "`unauthorized`: no valid session, or the account is gone or disabled."),
        (status = 403, description = "`session_required`."),
        (status = 409, description = "`password_confirms`: the account has a password, which confirms these actions instead."),
        (status = 503, description = "`google_not_configured`, `unavailable`."))
)]
pub async fn reauth(
    State(ext): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    limits: Limits,
    JsonBody(body): JsonBody<ReauthRequest>,
) -> Result<Response, ApiError> {
    let client = google(&ext)?.clone();
    limits.enforce(Limit::GoogleIp, &meta.ip.0).await?;
    let user = current_user(&ext, &auth.user_id).await?;
    if !user.password_hash.is_empty() {
        return Err(password_confirms());
    }
    let pending = PendingReauth::new(&auth.user_id, &auth.session_id, body.action);
    let intent = Intent::Reauth(pending);
    let (url, cookie) = begin(&ext, &client, Some(&body.return_to), intent).await?;
    let mut res = Json(ReauthResponse { authorize_url: url }).into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(res)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn binding_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == BINDING_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// A 302 to `url`.
fn found(url: &str) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(url).map_err(|e| ApiError::internal(&e))?;
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}

const CLEAR_BINDING: &str =
    "__Host-bastion_oauth=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax";

/// A redirect to the frontend with `fragment`, clearing the binding cookie.
fn back_to(return_to: &str, fragment: &str) -> Response {
    let mut res = match found(&format!("{return_to}#{fragment}")) {
        Ok(res) => res,
        Err(e) => return e.into_response(),
    };
    res.headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static(CLEAR_BINDING));
    res
}

#[utoipa::path(
    get, path = "/auth/google/callback", tag = "google", operation_id = "google_callback",
    params(CallbackQuery),
    responses((status = 302, description = "Redirect back to the frontend with a one-time login code (`#code=`), a re-authentication grant (`#reauth=`), or an error."),
        (status = 400, description = "`invalid_state`, `invalid_login_code`, `invalid_request`."),
        (status = 502, description = "`upstream_error`: Google refused the code or its token did not verify."),
        (status = 503, description = "`google_not_configured`, `unavailable`."))
)]
pub async fn callback(
    State(ext): State<AuthState>,
    meta: RequestMeta,
    limits: Limits,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let client = google(&ext)?.clone();
    limits.enforce(Limit::GoogleIp, &meta.ip.0).await?;
    let state = &ext;
    let raw_state = q
        .state
        .as_deref()
        .filter(|s| looks_like_token(s))
        .ok_or_else(invalid_state)?;
    let now = state.edge.clock.now();
    let payload = state
        .edge
        .stores
        .one_time
        .take_one_time(STATE_PURPOSE, &TokenHash::of(raw_state), now)
        .await?
        .ok_or_else(invalid_state)?;
    let pending: Pending = serde_json::from_str(&payload).map_err(|e| ApiError::internal(&e))?;
    if !same_browser(binding_cookie(&headers).as_deref(), Some(&pending.binding)) {
        record(
            state,
            &meta,
            AuditKind::GoogleLoginFailed,
            Outcome::Failure,
            None,
            Some("foreign_browser"),
        )
        .await?;
        return Err(invalid_state());
    }
    let back = match conclude(state, &meta, &client, &q, &pending, now).await {
        Ok(user) => return issue_login_code(state, &pending, &user, now).await,
        Err(Stop::Back(back)) => back,
        Err(Stop::Error(e)) => return Err(e),
    };
    if let Some(a) = back.audit {
        record(state, &meta, a.kind, a.outcome, a.user.as_ref(), a.reason).await?;
    }
    Ok(back_to(&pending.return_to, &back.fragment))
}

/// Redeems Google's code and verifies its ID token, then links or signs in: the account a
/// login code is issued for, or how the callback ends without one (a link flow always ends
/// back at the frontend, linked or not).
async fn conclude(
    state: &AuthState,
    meta: &RequestMeta,
    client: &GoogleClient,
    q: &CallbackQuery,
    pending: &Pending,
    now: Timestamp,
) -> Result<UserRecord, Stop> {
    let code = redirect_code(q.error.as_deref(), q.code.as_deref())?;
    let claims = match client.exchange_code(code, &pending.verifier).await {
        Ok(id_token) => client.verify_id_token(&id_token, &pending.nonce, now).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &claims
        && is_upstream(e)
    {
        tracing::warn!(request_id = %meta.request_id, error = %e, "Google token exchange failed");
    }
    let claims = verified_claims(claims)?;
    if let Some(reauth) = &pending.reauth {
        return Err(reauth::finish(state, reauth, &claims, now).await?.into());
    }
    if let Some(link_user) = pending.link_user.as_deref() {
        let link_session = pending.link_session.as_deref();
        let back = resolve::link(state, link_user, link_session, &claims.sub, now).await?;
        return Err(back.into());
    }
    resolve::sign_in(state, meta, &claims, now).await
}

/// Stores a one-time login code for `user`, bound to the browser that started the flow, and
/// sends it back in the fragment.
async fn issue_login_code(
    state: &AuthState,
    pending: &Pending,
    user: &UserRecord,
    now: Timestamp,
) -> Result<Response, ApiError> {
    let login_code = OpaqueToken::generate();
    let payload = serde_json::to_string(&CodePayload {
        user_id: user.id.to_string(),
        binding: Some(pending.binding.clone()),
    })
    .map_err(|e| ApiError::internal(&e))?;
    state
        .edge
        .stores
        .one_time
        .put_one_time(
            CODE_PURPOSE,
            &login_code.hash(),
            &payload,
            now.plus_secs(LOGIN_CODE_TTL_SECS),
        )
        .await?;
    // The binding cookie stays (it lives as long as the state did): the exchange needs it.
    found(&format!(
        "{}#code={}",
        pending.return_to,
        login_code.expose()
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRequest {
    code: String,
}

#[utoipa::path(
    post, path = "/auth/google/exchange", tag = "google", operation_id = "google_exchange",
    request_body = ExchangeRequest,
    responses((status = 200, description = "Signed in; or, with a second factor on, `mfa_required` with an `mfa_token` for POST /auth/mfa/verify and no tokens.", body = crate::dto::LoginResponse),
        (status = 400, description = "`invalid_login_code`, `invalid_request`."),
        (status = 401, description = "`sessions_revoked`: every session was revoked during this sign-in."),
        (status = 503, description = "`google_not_configured`, `unavailable`."))
)]
pub async fn exchange(
    State(ext): State<AuthState>,
    meta: RequestMeta,
    limits: Limits,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ExchangeRequest>,
) -> Result<Response, ApiError> {
    google(&ext)?;
    limits.enforce(Limit::GoogleIp, &meta.ip.0).await?;
    let state = &ext;
    if !looks_like_token(&body.code) {
        return Err(invalid_login_code());
    }
    let now = state.edge.clock.now();
    let payload = state
        .edge
        .stores
        .one_time
        .take_one_time(CODE_PURPOSE, &TokenHash::of(&body.code), now)
        .await?;
    let Some(payload) = payload else {
        // Unknown, expired and already used codes are one case to the store.
        return exchange_refused(state, &meta, None, "unknown_expired_or_used_code").await;
    };
    let payload: CodePayload =
        serde_json::from_str(&payload).map_err(|e| ApiError::internal(&e))?;
    let user_id = UserId::parse(&payload.user_id).map_err(|e| ApiError::internal(&e))?;
    if !same_browser(
        binding_cookie(&headers).as_deref(),
        payload.binding.as_deref(),
    ) {
        // A code finished by one browser and carried to another (login CSRF): the code is
        // spent either way, so the attacker cannot retry it elsewhere.
        return exchange_refused(state, &meta, Some(&user_id), "foreign_browser").await;
    }
    let user = state.edge.stores.users.get_user(&user_id).await?;
    let Some(user) = user.filter(|u| !u.disabled) else {
        return exchange_refused(state, &meta, Some(&user_id), "user_disabled_or_gone").await;
    };
    record(
        state,
        &meta,
        AuditKind::GoogleLogin,
        Outcome::Success,
        Some(&user.id),
        None,
    )
    .await?;
    let mut res = match crate::mfa_verify::challenge(state, &user).await? {
        Some(second) => Json(crate::dto::LoginResponse::MfaRequired(second)).into_response(),
        None => Json(open_session(state, &meta, &user).await?).into_response(),
    };
    res.headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static(CLEAR_BINDING));
    Ok(res)
}

/// Audits a refused exchange with its reason, then answers the one refusal every case shares.
async fn exchange_refused<T>(
    state: &AuthState,
    meta: &RequestMeta,
    user: Option<&UserId>,
    reason: &str,
) -> Result<T, ApiError> {
    let kind = AuditKind::GoogleExchangeRefused;
    audit::refused(state, meta, kind, user, reason, invalid_login_code()).await
}
