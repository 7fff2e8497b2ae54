//! The OpenAPI pieces the edge owns: the error envelope's schema, the security schemes, and the
//! responses the pipeline itself can give on any route (rate limits, body checks, outages).
//!
//! Functions describe their own routes with `#[utoipa::path]` beside each handler; this module
//! adds what every route shares, so the document says what the pipeline really does.

use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, ObjectBuilder, OpenApi, Ref, RefOr, Type};
use utoipa::{Modify, ToSchema};

/// Security scheme: an access token (JWT) of a signed-in session.
pub const BEARER_JWT: &str = "bearer_jwt";
/// Security scheme: an API key (`bst_…`) sent as a Bearer token.
pub const API_KEY: &str = "api_key";
/// Security scheme: an administrator key sent as a Bearer token.
pub const ADMIN_KEY: &str = "admin_key";

/// The body of every failure, from every route: `{"error":{"code","message","request_id"}}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorEnvelope<'a> {
    pub error: ErrorDetail<'a>,
}

/// What failed, in words a client may show; internals are logged, never sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable machine-readable code, e.g. `invalid_email`, `rate_limited`.
    #[schema(value_type = String, min_length = 1, max_length = 64, pattern = "^[a-z][a-z0-9_]*$")]
    pub code: &'a str,
    #[schema(value_type = String)]
    pub message: &'a str,
    /// The `X-Request-Id` of the response: quote it when reporting a problem.
    #[schema(value_type = String, min_length = 1)]
    pub request_id: &'a str,
}

/// Adds the security schemes, the error schema and the pipeline's own responses to every
/// operation: 429 and 500/503 everywhere, 400/413/415 where a body is read, 401 where a
/// credential is required. A handler's own description of a status wins over these.
pub struct EdgeResponses;

impl Modify for EdgeResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert(
            "Error".to_owned(),
            RefOr::T(<ErrorEnvelope<'static> as utoipa::PartialSchema>::schema().into()),
        );
        components.schemas.insert(
            "ErrorDetail".to_owned(),
            <ErrorDetail<'static> as utoipa::PartialSchema>::schema(),
        );
        let bearer = |format: &str, description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.bearer_format = Some(format.to_owned());
            http.description = Some(description.to_owned());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            BEARER_JWT,
            bearer(
                "JWT",
                "Access token from /auth/login, /auth/register or /auth/refresh.",
            ),
        );
        components.add_security_scheme(
            API_KEY,
            bearer(
                "bst_…",
                "API key from POST /auth/api-keys; holds only its scopes.",
            ),
        );
        components.add_security_scheme(
            ADMIN_KEY,
            bearer("adm_…", "Administrator key configured in ADMIN_KEYS."),
        );
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_edge_responses(op);
            }
        }
    }
}

fn add_edge_responses(op: &mut Operation) {
    let has_body = op.request_body.is_some();
    let secured = op
        .security
        .as_ref()
        .is_some_and(|s| s.iter().any(|r| *r != Default::default()));
    let mut add = |status: &str, response: Response| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert(RefOr::T(response));
    };
    if has_body {
        add(
            "400",
            error(
                "The body is not valid JSON for this route (`invalid_request`) or a field is refused (its own code).",
            ),
        );
        add(
            "413",
            error("The body is over the route's size limit (`payload_too_large`)."),
        );
        add(
            "415",
            error("The body is not `application/json` (`unsupported_media_type`)."),
        );
    }
    if secured {
        add(
            "401",
            error(
                "No credential, or an invalid, expired or revoked one (`unauthorized`, `invalid_api_key`).",
            ),
        );
    }
    add("429", rate_limited());
    add(
        "500",
        error("An unexpected failure, logged with the request id (`internal_error`)."),
    );
    add(
        "503",
        error("The store or another dependency is unavailable (`unavailable`)."),
    );
    // A handler describes its own error statuses in words; the body is always the envelope.
    for (status, response) in op.responses.responses.iter_mut() {
        if let RefOr::T(response) = response
            && status.as_str() >= "400"
            && response.content.is_empty()
        {
            response.content = error("").content;
        }
    }
}

/// A response whose body is the error envelope.
pub fn error(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
}

fn rate_limited() -> Response {
    let seconds = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0));
    let mut response =
        error("Too many requests from this client or for this account (`rate_limited`).");
    response.headers.insert(
        "Retry-After".to_owned(),
        HeaderBuilder::new()
            .schema(seconds)
            .description(Some("Seconds until the window resets."))
            .build(),
    );
    response
}

/// The body of every `/…/health` route.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok", pattern = "^ok$")]
    pub status: String,
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi as _;

    use super::*;

    #[derive(serde::Deserialize, ToSchema)]
    #[allow(dead_code)]
    struct Body {
        name: String,
    }

    #[utoipa::path(post, path = "/t/body", request_body = Body, security(("bearer_jwt" = [])),
        responses((status = 204, description = "done"), (status = 400, description = "`invalid_name`.")))]
    #[allow(dead_code)]
    async fn with_body() {}

    #[utoipa::path(get, path = "/t/open", responses((status = 200, description = "ok")))]
    #[allow(dead_code)]
    async fn open() {}

    #[derive(utoipa::OpenApi)]
    #[openapi(paths(with_body, open))]
    struct Doc;

    fn statuses(doc: &OpenApi, path: &str) -> Vec<String> {
        let item = &doc.paths.paths[path];
        let op = item.post.as_ref().or(item.get.as_ref()).unwrap();
        op.responses.responses.keys().cloned().collect()
    }

    #[test]
    fn an_operation_with_a_body_and_a_credential_gets_the_pipelines_statuses() {
        let mut doc = Doc::openapi();
        EdgeResponses.modify(&mut doc);
        assert_eq!(
            statuses(&doc, "/t/body"),
            ["204", "400", "401", "413", "415", "429", "500", "503"]
        );
        assert_eq!(statuses(&doc, "/t/open"), ["200", "429", "500", "503"]);
    }

    #[test]
    fn a_handlers_own_description_of_a_status_wins_and_carries_the_envelope() {
        let mut doc = Doc::openapi();
        EdgeResponses.modify(&mut doc);
        let json = serde_json::to_value(&doc).unwrap();
        let bad = &json["paths"]["/t/body"]["post"]["responses"]["400"];
        assert_eq!(bad["description"], "`invalid_name`.");
        assert_eq!(
            bad["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error"
        );
        let limited = &json["paths"]["/t/open"]["get"]["responses"]["429"];
        assert_eq!(
            limited["headers"]["Retry-After"]["schema"]["type"],
            "integer"
        );
        assert!(json["paths"]["/t/open"]["get"]["responses"]["200"]["content"].is_null());
    }

    #[test]
    fn the_error_schema_names_code_message_and_request_id_as_required() {
        let mut doc = Doc::openapi();
        EdgeResponses.modify(&mut doc);
        let json = serde_json::to_value(&doc).unwrap();
        let detail = &json["components"]["schemas"]["ErrorDetail"];
        assert_eq!(
            detail["required"],
            serde_json::json!(["code", "message", "request_id"])
        );
        assert_eq!(
            json["components"]["schemas"]["Error"]["required"],
            serde_json::json!(["error"])
        );
    }
}
