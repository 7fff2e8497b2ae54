//! The guard against lambda_http's conversion panics: every fuzzing finding is refused and does
//! panic unguarded, and nothing in the committed fuzz corpus that the guard admits panics. And
//! the guard against paths the conversion rewrites: every spelling that the URL parser would
//! change is refused, and no path it admits is changed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use lambda_http::request::LambdaRequest;
use serde_json::json;

use super::{Unconvertible, canonical_path, check};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn event(text: &str) -> LambdaRequest {
    serde_json::from_str(text).unwrap()
}

/// Whether lambda_http's own conversion panics on `text` (tests unwind; release aborts).
fn conversion_panics(text: &str) -> bool {
    // The panic hook is process-wide: one test at a time swaps it.
    static HOOK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = HOOK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let request: lambda_http::Request = event(text).into();
        request
    }));
    std::panic::set_hook(hook);
    outcome.is_err()
}

fn rest_event() -> serde_json::Value {
    json!({
        "resource": "/{proxy+}", "path": "/auth/login", "httpMethod": "POST",
        "headers": {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "X-Forwarded-Proto": "https"},
        "multiValueHeaders": {},
        "queryStringParameters": {"a": "1"}, "multiValueQueryStringParameters": {"a": ["1"]},
        "requestContext": {"stage": "Prod", "httpMethod": "POST", "apiId": "abc123",
                           "requestId": "r1", "identity": {"sourceIp": "203.0.113.7"}},
        "body": "{}", "isBase64Encoded": false
    })
}

#[test]
fn every_apigw_fuzzing_finding_panics_unguarded_and_is_refused_by_the_guard() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fuzz_dir().join("findings")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("apigw-") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(conversion_panics(&text), "{name} no longer panics upstream");
        assert!(
            check(&text, &event(&text)).is_err(),
            "{name} passed the guard"
        );
        seen += 1;
    }
    assert_eq!(seen, 5);
}

#[test]
fn an_ordinary_rest_event_passes_and_converts() {
    let text = rest_event().to_string();
    assert_eq!(check(&text, &event(&text)), Ok(()));
    assert!(!conversion_panics(&text));
}

#[test]
fn a_body_flagged_base64_that_is_not_is_refused_and_would_panic() {
    let mut e = rest_event();
    e["body"] = json!("not base64 !");
    e["isBase64Encoded"] = json!(true);
    let text = e.to_string();
    assert_eq!(check(&text, &event(&text)), Err(Unconvertible::Base64Body));
    assert!(conversion_panics(&text));
}

#[test]
fn a_host_header_that_is_no_host_is_refused_and_would_panic() {
    let mut e = rest_event();
    e["headers"]["Host"] = json!("exa mple.com");
    let text = e.to_string();
    assert_eq!(check(&text, &event(&text)), Err(Unconvertible::Url));
    assert!(conversion_panics(&text));
}

#[test]
fn a_raw_query_a_uri_cannot_hold_is_refused_and_would_panic() {
    let text = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/chat/send",
        "rawQueryString": "a=<b>", "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {"http": {"method": "GET", "path": "/chat/send"}, "stage": "$default"},
        "isBase64Encoded": false
    })
    .to_string();
    assert_eq!(check(&text, &event(&text)), Err(Unconvertible::Uri));
    assert!(conversion_panics(&text));
}

#[test]
fn a_query_parameter_with_no_values_is_refused_and_would_panic() {
    for field in ["multiValueQueryStringParameters", "queryStringParameters"] {
        let mut e = rest_event();
        e["multiValueQueryStringParameters"] = json!({});
        e["queryStringParameters"] = json!({});
        e[field] = json!({"a": []});
        let text = e.to_string();
        assert_eq!(
            check(&text, &event(&text)),
            Err(Unconvertible::EmptyQueryValues),
            "{field}"
        );
        assert!(conversion_panics(&text), "{field}");
    }
}

/// The fuzz target's property, replayed on its committed corpus in every test run: whatever
/// the guard admits converts without panicking.
#[test]
fn nothing_in_the_apigw_fuzz_corpus_that_the_guard_admits_panics() {
    let mut admitted = 0;
    for (path, text, _) in admitted_corpus_events() {
        admitted += 1;
        assert!(!conversion_panics(&text), "{}", path.display());
    }
    assert!(
        admitted > 100,
        "only {admitted} corpus events were admitted"
    );
}

fn http_api_event(raw_path: &str) -> serde_json::Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": raw_path, "rawQueryString": "",
        "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {"http": {"method": "GET", "path": raw_path}, "stage": "Prod",
                           "domainName": "abc123.execute-api.us-east-1.amazonaws.com"},
        "isBase64Encoded": false
    })
}

/// What lambda_http's URL parse makes of `path` on the execute-api host.
fn parsed_path(path: &str) -> String {
    url::Url::parse(&format!(
        "https://abc123.execute-api.us-east-1.amazonaws.com{path}"
    ))
    .unwrap()
    .path()
    .to_owned()
}

/// Spellings of `/admin/..\auth\login` and its kin, each of which the URL parser turns into a
/// different path than the one API Gateway and the WAF matched.
const REWRITTEN: [&str; 16] = [
    "/admin/..\\auth\\login",
    "/admin/..%5Cauth%5Clogin",
    "/admin/..%5cauth%5clogin",
    "/admin/%2e%2e/auth/login",
    "/admin/%2E%2E/auth/login",
    "/admin/.%2E/auth/login",
    "/admin/%2e./auth/login",
    "/admin/..%2Fauth%2Flogin",
    "/admin/..%2fauth",
    "/admin/../auth/login",
    "/admin/./../auth/login",
    "/admin/.\t./auth/login",
    "/admin/.\n./auth/login",
    "/auth/login/.",
    "/auth/login/..",
    "/..%2fadmin/x",
];

#[test]
fn every_path_the_url_parser_would_rewrite_is_refused_in_rest_and_http_api_events() {
    for path in REWRITTEN {
        let mut rest = rest_event();
        rest["path"] = json!(path);
        let text = rest.to_string();
        assert_eq!(
            check(&text, &event(&text)),
            Err(Unconvertible::PathRewritten),
            "REST {path:?}"
        );
        // An HTTP API's raw path still holds the stage: checked before the stage is cut.
        let text = http_api_event(&format!("/Prod{path}")).to_string();
        assert_eq!(
            check(&text, &event(&text)),
            Err(Unconvertible::PathRewritten),
            "HTTP API {path:?}"
        );
    }
}

#[test]
fn the_refused_spellings_are_ones_the_url_parser_really_rewrites() {
    let climbs_to_login = REWRITTEN
        .iter()
        .filter(|p| parsed_path(p) == "/auth/login")
        .count();
    assert_eq!(
        climbs_to_login, 9,
        "`\\`, dot segments, %2e and tab/newline"
    );
    // The rest are refused for what a later decoder (the exec file routes) or the stage cut
    // would make of them.
    assert_eq!(parsed_path("/auth/login/."), "/auth/login/");
    assert_eq!(parsed_path("/Prod/auth/login/.."), "/Prod/auth/");
    assert_eq!(parsed_path("/Prod/..%2fadmin/x"), "/Prod/..%2fadmin/x");
}

#[test]
fn dots_inside_names_and_other_escapes_are_admitted() {
    for path in [
        "/exec/files/a.b/c..d",
        "/exec/files/.env",
        "/exec/files/...",
        "/exec/files/..a",
        "/exec/files/a..",
        "/exec/files/notes%20v2.txt",
        "/exec/files/%41bc",
        "/exec/files/%252e%252e/x",
        "/exec/files/%2",
        "/exec/files/100%",
        "/auth/login",
        "/",
        "",
    ] {
        assert_eq!(canonical_path(path), Ok(()), "{path:?}");
        let mut rest = rest_event();
        rest["path"] = json!(path);
        let text = rest.to_string();
        assert_eq!(check(&text, &event(&text)), Ok(()), "{path:?}");
    }
}

/// Every path over a small alphabet that holds the parser's special spellings: whatever the
/// guard admits, the URL parse lambda_http and the route normalisation run leaves unchanged.
#[test]
fn no_admitted_path_is_changed_by_the_url_parser() {
    const ALPHABET: [char; 11] = ['a', '.', '/', '\\', '%', '2', 'e', 'F', '5', 'c', '\t'];
    let mut admitted = 0;
    let mut stack = vec![String::from("/")];
    while let Some(path) = stack.pop() {
        if canonical_path(&path).is_ok() {
            admitted += 1;
            assert_eq!(parsed_path(&path), path, "{path:?}");
            let mut url = url::Url::parse("http://localhost/").unwrap();
            url.set_path(&path);
            assert_eq!(url.path(), path, "{path:?}");
        }
        if path.len() < 6 {
            stack.extend(ALPHABET.iter().map(|c| format!("{path}{c}")));
        }
    }
    assert!(admitted > 10_000, "only {admitted} paths admitted");
}

/// `%XX` escapes decoded, so a path compares equal to its re-encoding.
fn percent_decoded(path: &str) -> Vec<u8> {
    let bytes = path.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let (b'%', Some(h), Some(l)) = (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The fuzz target's path property, replayed on its committed corpus: an admitted event is
/// routed on its own path, only percent-encoded where a URI needs it.
#[test]
fn no_admitted_event_in_the_apigw_fuzz_corpus_is_routed_on_a_rewritten_path() {
    let mut routed = 0;
    for (path, _, parsed) in admitted_corpus_events() {
        let request: lambda_http::Request = parsed.into();
        let Some(route) = crate::lambda::route_path(&request) else {
            continue;
        };
        let normalised = crate::lambda::normalise(request);
        let absolute = if route.starts_with('/') {
            route.clone()
        } else {
            format!("/{route}")
        };
        assert_eq!(
            percent_decoded(normalised.uri().path()),
            percent_decoded(&absolute),
            "{}: {route:?}",
            path.display()
        );
        routed += 1;
    }
    assert!(routed > 100, "only {routed} corpus events were routed");
}

/// The events of the committed `apigw_event` fuzz corpus that parse and that the guard admits.
fn admitted_corpus_events() -> Vec<(std::path::PathBuf, String, LambdaRequest)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fuzz_dir().join("corpus/apigw_event")).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(parsed) = serde_json::from_str::<LambdaRequest>(&text) else {
            continue;
        };
        if check(&text, &parsed).is_ok() {
            out.push((path, text, parsed));
        }
    }
    out
}
