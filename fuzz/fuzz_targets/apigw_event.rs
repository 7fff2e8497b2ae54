//! Fuzzes the API Gateway event → request conversion: lambda_http's event deserialisation
//! followed by our route-path normalisation never panics, and the path the routers see is
//! absolute and parses back as a URI path.
//!
//! lambda_http itself panics on some events (see docs/PERFORMANCE.md, fuzzing findings); with
//! `BASTION_FUZZ_SKIP_UPSTREAM_PANICS=1` such inputs are skipped so the run keeps exercising
//! our code. Without it they stop the run like any other crash.
#![no_main]

use std::sync::OnceLock;

use bastion_http::lambda::{normalise, route_path};
use libfuzzer_sys::fuzz_target;

fn skip_upstream_panics() -> bool {
    static SKIP: OnceLock<bool> = OnceLock::new();
    *SKIP.get_or_init(|| std::env::var_os("BASTION_FUZZ_SKIP_UPSTREAM_PANICS").is_some())
}

/// lambda_http's conversion; `None` for an event it refuses, or one it panics on when skipping.
fn convert(text: &str) -> Option<lambda_http::Request> {
    if !skip_upstream_panics() {
        return lambda_http::request::from_str(text).ok();
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let converted = std::panic::catch_unwind(|| lambda_http::request::from_str(text));
    std::panic::set_hook(hook);
    converted.ok()?.ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(request) = convert(text) else {
        return;
    };
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
