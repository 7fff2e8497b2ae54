//! Fuzzes the API Gateway event → request conversion: lambda_http's event deserialisation
//! followed by our route-path normalisation never panics, and the path the routers see is
//! absolute and parses back as a URI path.
#![no_main]

use bastion_http::lambda::{normalise, route_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(request) = lambda_http::request::from_str(text) else {
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
