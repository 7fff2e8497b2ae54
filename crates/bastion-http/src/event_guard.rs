//! Refuses, before `lambda_http` converts it, an API Gateway event whose conversion would panic
//! or whose path the conversion would rewrite.
//!
//! `lambda_http` 1.3 builds the request URI from the event with `Url::parse(..).unwrap()` and
//! `.expect("failed to build request")`, decodes a base64 body with `.expect(..)`, and writes
//! the REST query through `query_map`, whose iterator indexes the first value of every
//! parameter. A `Host` or `X-Forwarded-Proto` header that does not make a URL, a path that is
//! not absolute when no host is named, an HTTP API `rawQueryString` holding characters a URI may
//! not, a body flagged base64 that is not, or a query parameter with an empty list of values
//! panics there (found by the `apigw_event` fuzz target). Release builds abort on panic, so one
//! such event would end the instance. The checks below redo the same steps fallibly: an event
//! that passes them converts without panicking, one that fails is answered 400 by
//! [`crate::lambda::serve`] without reaching the router.
//!
//! The conversion (and our route-path normalisation) parses the path as a WHATWG URL, which
//! turns `\` into `/`, drops tabs and line breaks, and removes `.` and `..` segments, `%2e`
//! spellings included. API Gateway and the WAF judged the path before that, so
//! `/admin/..\auth\login` would pass a rule on `/auth/` and still be served as `/auth/login`.
//! A path is therefore admitted only when that parse cannot change it: no backslash, no control
//! character, no `.` or `..` segment, and no `%2e`, `%2f` or `%5c` in any case (an encoded dot
//! is a dot segment to the parser, and an encoded slash or backslash is one to any later decoder
//! such as the exec file routes). Dots inside names (`a.b`, `c..d`, `.env`) are untouched.

use std::collections::HashMap;

use base64::Engine as _;
use http::HeaderMap;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::request::LambdaRequest;
use serde::Deserialize;
use serde_json::Value;

/// Why an event cannot be converted; logged, never sent to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unconvertible {
    #[error("the host, scheme and path do not form a URL")]
    Url,
    #[error("the URL with its query is not a valid request URI")]
    Uri,
    #[error("the body is flagged base64 but is not")]
    Base64Body,
    #[error("a query parameter has an empty list of values")]
    EmptyQueryValues,
    #[error("the path holds a spelling the URL parser would rewrite")]
    PathRewritten,
}

impl Unconvertible {
    /// What the 400 tells the client: the path rule it broke, or that the event was unreadable.
    pub fn client_message(self) -> &'static str {
        match self {
            Unconvertible::PathRewritten => {
                "the path must not hold '.' or '..' segments, backslashes, control characters, or encoded dots, slashes or backslashes"
            }
            _ => "the request could not be read",
        }
    }
}

/// `Ok` when `lambda_http` converts `event`, parsed from `raw`, without panicking.
pub fn check(raw: &str, event: &LambdaRequest) -> Result<(), Unconvertible> {
    match event {
        LambdaRequest::ApiGatewayV1(ag) => {
            canonical_path(ag.path.as_deref().unwrap_or_default())?;
            // First: the URL checks below write the query through the panicking iterator. The
            // document is read again only when there is a query to look at.
            if !(ag.query_string_parameters.is_empty()
                && ag.multi_value_query_string_parameters.is_empty())
            {
                no_empty_query_values(raw)?;
            }
            check_rest(ag)
        }
        LambdaRequest::ApiGatewayV2(ag) => {
            // The raw path still holds a named stage: checked whole, before any stage is cut,
            // so `/{stage}/..` cannot climb out of the stage either.
            canonical_path(ag.raw_path.as_deref().unwrap_or_default())?;
            if !ag.query_string_parameters.is_empty() {
                no_empty_query_values(raw)?;
            }
            check_http(ag)
        }
        // No other event kind is enabled in our build of lambda_http.
        #[allow(unreachable_patterns)]
        _ => Ok(()),
    }
}

fn check_rest(ag: &ApiGatewayProxyRequest) -> Result<(), Unconvertible> {
    let host = host(&ag.headers, ag.request_context.domain_name.as_deref());
    let raw_path = ag.path.as_deref().unwrap_or_default();
    let queries = (
        &ag.multi_value_query_string_parameters,
        &ag.query_string_parameters,
    );
    for path in paths(ag.request_context.stage.as_deref(), raw_path) {
        let mut uri = url(&path, &ag.headers, host)?;
        if let Some(query) = query_string(queries) {
            uri.push('?');
            uri.push_str(&query);
        }
        valid_uri(&uri)?;
    }
    body(ag.is_base64_encoded, ag.body.as_deref())
}

fn check_http(ag: &ApiGatewayV2httpRequest) -> Result<(), Unconvertible> {
    let host = host(&ag.headers, ag.request_context.domain_name.as_deref());
    let raw_path = ag.raw_path.as_deref().unwrap_or_default();
    for path in paths(ag.request_context.stage.as_deref(), raw_path) {
        let mut uri = url(&path, &ag.headers, host)?;
        if let Some(query) = ag.raw_query_string.as_deref().filter(|q| !q.is_empty()) {
            uri.push('?');
            uri.push_str(query);
        }
        valid_uri(&uri)?;
    }
    body(ag.is_base64_encoded, ag.body.as_deref())
}

/// The query maps as the event document holds them. `query_map` keeps no way to list a map's
/// keys that does not go through the panicking iterator, so they are read from the document.
#[derive(Deserialize)]
struct Queries {
    #[serde(rename = "queryStringParameters", default)]
    single: Option<HashMap<String, Value>>,
    #[serde(rename = "multiValueQueryStringParameters", default)]
    multi: Option<HashMap<String, Value>>,
}

fn no_empty_query_values(raw: &str) -> Result<(), Unconvertible> {
    // A document lambda_http parsed but this cannot is refused rather than trusted.
    let queries: Queries =
        serde_json::from_str(raw).map_err(|_| Unconvertible::EmptyQueryValues)?;
    let empty = [queries.single, queries.multi]
        .into_iter()
        .flatten()
        .flat_map(HashMap::into_values)
        .any(|v| v.as_array().is_some_and(Vec::is_empty));
    if empty {
        Err(Unconvertible::EmptyQueryValues)
    } else {
        Ok(())
    }
}

/// `Ok` when parsing `path` as a URL path leaves every segment as it is (see the module doc).
pub fn canonical_path(path: &str) -> Result<(), Unconvertible> {
    let bytes = path.as_bytes();
    if bytes.iter().any(|b| *b == b'\\' || b.is_ascii_control()) {
        return Err(Unconvertible::PathRewritten);
    }
    let encoded = bytes.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_lowercase()),
                (b'2', b'e') | (b'2', b'f') | (b'5', b'c')
            )
    });
    if encoded || path.split('/').any(|s| s == "." || s == "..") {
        return Err(Unconvertible::PathRewritten);
    }
    Ok(())
}

fn host<'a>(headers: &'a HeaderMap, domain_name: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(domain_name)
}

/// The paths lambda_http may build: with the stage prefixed, or as is when
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is set. Both are checked, so the verdict does not
/// depend on that variable.
fn paths(stage: Option<&str>, raw_path: &str) -> Vec<String> {
    let mut paths = vec![raw_path.to_owned()];
    if let Some(stage) = stage.filter(|s| *s != "$default")
        && !raw_path.starts_with(&format!("/{stage}/"))
    {
        paths.push(format!("/{stage}{raw_path}"));
    }
    paths
}

/// lambda_http's URL for `path`: absolute on the event's host and scheme, else the path alone.
fn url(path: &str, headers: &HeaderMap, host: Option<&str>) -> Result<String, Unconvertible> {
    match host {
        None => url::Url::parse(&format!("http://localhost{path}"))
            .map(|u| u.path().to_owned())
            .map_err(|_| Unconvertible::Url),
        Some(host) => {
            let scheme = headers
                .get("x-forwarded-proto")
                .and_then(|s| s.to_str().ok())
                .unwrap_or("https");
            url::Url::parse(&format!("{scheme}://{host}{path}"))
                .map(|u| u.to_string())
                .map_err(|_| Unconvertible::Url)
        }
    }
}

/// The REST event's query as lambda_http appends it: multi-valued parameters when there are
/// any, else the single-valued ones.
fn query_string((multi, single): (&QueryMap, &QueryMap)) -> Option<String> {
    if !multi.is_empty() {
        Some(multi.to_query_string())
    } else if !single.is_empty() {
        Some(single.to_query_string())
    } else {
        None
    }
}

fn valid_uri(uri: &str) -> Result<(), Unconvertible> {
    uri.parse::<http::Uri>()
        .map(|_| ())
        .map_err(|_| Unconvertible::Uri)
}

fn body(base64: bool, body: Option<&str>) -> Result<(), Unconvertible> {
    match body {
        Some(b) if base64 => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(|_| ())
            .map_err(|_| Unconvertible::Base64Body),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "event_guard_tests.rs"]
mod tests;
