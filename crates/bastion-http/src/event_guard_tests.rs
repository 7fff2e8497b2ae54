//! The guard against lambda_http's conversion panics: every fuzzing finding is refused and does
//! panic unguarded, and nothing in the committed fuzz corpus that the guard admits panics.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use lambda_http::request::LambdaRequest;
use serde_json::json;

use super::{Unconvertible, check};

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
    for entry in std::fs::read_dir(fuzz_dir().join("corpus/apigw_event")).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(parsed) = serde_json::from_str::<LambdaRequest>(&text) else {
            continue;
        };
        if check(&text, &parsed).is_ok() {
            admitted += 1;
            assert!(!conversion_panics(&text), "{}", path.display());
        }
    }
    assert!(
        admitted > 100,
        "only {admitted} corpus events were admitted"
    );
}
