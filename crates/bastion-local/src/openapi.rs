//! The OpenAPI 3.1 document of all four functions, assembled from the routes each function
//! describes beside its handlers plus what the shared edge adds; served at `GET /openapi.json`
//! and committed as `docs/openapi.json` (the test below fails when the two drift apart).

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, RefOr};
use utoipa::{Modify, OpenApi as _};

/// The whole document.
pub fn document() -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Bastion")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Auth, webhooks, chat and exec functions of Bastion. Every failure is \
                     `{\"error\":{\"code\",\"message\",\"request_id\"}}`; each response's \
                     description lists the codes it can carry.",
                ))
                .build(),
        )
        .build();
    doc.merge(bastion_auth::openapi::AuthApi::openapi());
    doc.merge(bastion_webhooks::openapi::WebhooksApi::openapi());
    doc.merge(bastion_chat_fn::openapi::ChatApi::openapi());
    doc.merge(bastion_exec::openapi::ExecApi::openapi());
    bastion_http::openapi::EdgeResponses.modify(&mut doc);
    add_links(&mut doc);
    doc
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn document_json() -> String {
    let mut value = serde_json::to_value(document()).unwrap_or_default();
    spec_link_names(&mut value);
    let mut json = serde_json::to_string_pretty(&value).unwrap_or_default();
    json.push('\n');
    json
}

/// utoipa 5.5 writes a Link's `operationId` and `requestBody` in snake case; OpenAPI (and
/// schemathesis) read only the spec's names.
fn spec_link_names(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (from, to) in [
            ("operation_id", "operationId"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(from) {
                link.insert(to.to_owned(), v);
            }
        }
    }
}

/// `GET /openapi.json`, rendered once.
pub fn routes() -> Router {
    let body = document_json();
    Router::new().route(
        "/openapi.json",
        get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body).into_response() }
        }),
    )
}

/// Links that let a client (and schemathesis' stateful mode) follow register → login → me.
fn add_links(doc: &mut OpenApi) {
    let bearer = || serde_json::Value::from("Bearer {$response.body#/access_token}".to_owned());
    let login = LinkBuilder::new()
        .operation_id("login")
        .description("Sign in with the credentials just registered.")
        .request_body(Some(serde_json::json!({
            "email": "$request.body#/email",
            "password": "$request.body#/password",
        })))
        .build();
    let me = LinkBuilder::new()
        .operation_id("me")
        .description("The access token reads the signed-in user.")
        .parameter("header.Authorization", bearer())
        .build();
    let sessions = LinkBuilder::new()
        .operation_id("list_sessions")
        .description("The access token lists the account's sessions.")
        .parameter("header.Authorization", bearer())
        .build();
    let refresh = LinkBuilder::new()
        .operation_id("refresh")
        .description("The refresh token buys a new access token.")
        .request_body(Some(serde_json::json!({
            "refresh_token": "$response.body#/refresh_token",
        })))
        .build();
    let links = [
        (
            "/auth/register",
            "201",
            vec![("login", login), ("me", me.clone())],
        ),
        (
            "/auth/login",
            "200",
            vec![
                ("me", me.clone()),
                ("sessions", sessions),
                ("refresh", refresh),
            ],
        ),
        ("/auth/refresh", "200", vec![("me", me)]),
    ];
    for (path, status, targets) in links {
        let Some(op) = doc.paths.paths.get_mut(path).and_then(|p| p.post.as_mut()) else {
            continue;
        };
        if let Some(RefOr::T(response)) = op.responses.responses.get_mut(status) {
            for (name, link) in targets {
                response.links.insert(name.to_owned(), RefOr::T(link));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

    /// Regenerate with `BASTION_UPDATE_OPENAPI=1 cargo test -p bastion-local openapi`.
    #[test]
    fn the_committed_openapi_document_is_what_the_code_generates() {
        let generated = document_json();
        if std::env::var_os("BASTION_UPDATE_OPENAPI").is_some() {
            std::fs::write(COMMITTED, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is stale: run `BASTION_UPDATE_OPENAPI=1 cargo test -p bastion-local openapi` and commit it"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_and_covers_every_route_of_the_four_functions() {
        let doc: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        for (path, method) in ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} is not documented"
            );
        }
        let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(
            operations,
            ROUTES.len(),
            "an undocumented or unknown operation"
        );
    }

    #[test]
    fn every_operation_documents_429_and_every_error_response_is_the_envelope() {
        let doc: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("429"), "{method} {path} lacks 429");
                for (status, response) in responses {
                    if status.as_str() >= "400" {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/Error",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn register_links_to_login_and_me_with_the_spec_field_names() {
        let doc: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let links = &doc["paths"]["/auth/register"]["post"]["responses"]["201"]["links"];
        assert_eq!(links["login"]["operationId"], "login");
        assert_eq!(
            links["login"]["requestBody"],
            serde_json::json!({"email": "$request.body#/email", "password": "$request.body#/password"})
        );
        assert_eq!(
            links["me"]["parameters"]["header.Authorization"],
            "Bearer {$response.body#/access_token}"
        );
        assert!(!document_json().contains("\"operation_id\""));
    }

    #[test]
    fn the_served_document_is_the_generated_one() {
        let app = routes();
        let (status, content_type, body) = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async {
                use tower::ServiceExt;
                let res = app
                    .oneshot(
                        http::Request::get("/openapi.json")
                            .body(axum::body::Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let status = res.status();
                let content_type = res.headers()[header::CONTENT_TYPE].clone();
                let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (status, content_type, body)
            });
        assert_eq!(status, 200);
        assert_eq!(content_type, "application/json");
        assert_eq!(body, document_json().as_bytes());
    }

    /// Every route the four routers register (read from their `routes` functions).
    const ROUTES: &[(&str, &str)] = &[
        ("/auth/health", "get"),
        ("/auth/register", "post"),
        ("/auth/login", "post"),
        ("/auth/refresh", "post"),
        ("/auth/logout", "post"),
        ("/auth/logout-all", "post"),
        ("/auth/me", "get"),
        ("/auth/sessions", "get"),
        ("/auth/sessions/{id}", "delete"),
        ("/auth/password", "post"),
        ("/auth/password/set", "post"),
        ("/auth/account", "delete"),
        ("/auth/api-keys", "post"),
        ("/auth/api-keys", "get"),
        ("/auth/api-keys/{id}", "delete"),
        ("/auth/google/start", "get"),
        ("/auth/google/callback", "get"),
        ("/auth/google/exchange", "post"),
        ("/auth/google/reauth", "post"),
        ("/auth/google/link", "post"),
        ("/auth/google/link", "delete"),
        ("/admin/audit", "get"),
        ("/admin/users/{id}", "get"),
        ("/admin/users/{id}/disable", "post"),
        ("/admin/users/{id}/enable", "post"),
        ("/admin/users/{id}/revoke-sessions", "post"),
        ("/admin/users/{id}/roles", "put"),
        ("/admin/users/{id}/mfa", "delete"),
        ("/auth/password/forgot", "post"),
        ("/auth/password/reset", "post"),
        ("/auth/email/verify", "post"),
        ("/auth/email/verify/send", "post"),
        ("/auth/mfa/totp", "post"),
        ("/auth/mfa/totp", "delete"),
        ("/auth/mfa/totp/confirm", "post"),
        ("/auth/mfa/verify", "post"),
        ("/webhooks/health", "get"),
        ("/webhooks/telegram", "post"),
        ("/webhooks/facebook", "get"),
        ("/webhooks/facebook", "post"),
        ("/webhooks/stripe", "post"),
        ("/chat", "post"),
        ("/chat/health", "get"),
        ("/chat/conversations", "get"),
        ("/chat/conversations/{id}", "get"),
        ("/chat/conversations/{id}", "delete"),
        ("/exec/health", "get"),
        ("/exec/run", "post"),
        ("/exec/files", "get"),
        ("/exec/files/{path}", "get"),
        ("/exec/files/{path}", "put"),
        ("/exec/files/{path}", "delete"),
    ];
}
