//! Fuzzes the API Gateway event → request conversion as `bastion_http::lambda::serve` runs it:
//! an event the guard (`bastion_http::event_guard`) admits converts in lambda_http without
//! panicking, and our route-path normalisation then gives an absolute path that parses back as
//! a URI path. An event the guard refuses never reaches the conversion (it is answered 400).
//!
//! Before the guard, lambda_http 1.3's own conversion panicked on some events (the inputs in
//! `fuzz/findings/apigw-*`); now any panic here is a hole in the guard.
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
});
