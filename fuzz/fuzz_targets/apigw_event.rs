//! Fuzzes the API Gateway event → request conversion as `bastion_http::lambda::serve` runs it:
//! an event the guard (`bastion_http::event_guard`) admits converts in lambda_http without
//! panicking, and our route-path normalisation then gives an absolute path that parses back as
//! a URI path. An event the guard refuses never reaches the conversion (it is answered 400).
//!
//! Before the guard, lambda_http 1.3's own conversion panicked on some events (the inputs in
//! `fuzz/findings/apigw-*`); now any panic here is a hole in the guard. The guard also refuses
//! paths the URL parse would rewrite, so for an admitted event the routed path keeps every
//! segment of the event's path: none removed (`..`, `.`) or split (`\`), only percent-encoded
//! where a URI needs it.
#![no_main]

use bastion_http::event_guard;
use bastion_http::lambda::{normalise, route_path};
use lambda_http::request::LambdaRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = serde_json::from_str::<LambdaRequest>(text) else {
        return;
    };
    if event_guard::check(text, &event).is_err() {
        return;
    }
    let request: lambda_http::Request = event.into();
    let route = route_path(&request);
    let query = request.uri().query().map(str::to_owned);
    let normalised = normalise(request);
    let path = normalised.uri().path();
    if route.is_some() {
        assert!(path.starts_with('/'), "route path {path:?}");
        assert_eq!(normalised.uri().query().map(str::to_owned), query);
        assert!(path.parse::<http::uri::PathAndQuery>().is_ok());
    }
    if let Some(route) = route {
        let absolute = if route.starts_with('/') {
            route.clone()
        } else {
            format!("/{route}")
        };
        assert_eq!(
            percent_decoded(path),
            percent_decoded(&absolute),
            "{route:?} routed as {path:?}"
        );
    }
});

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
