//! A streaming function whose body breaks after its first chunk, served through
//! `bastion_http::lambda_stream` like chat: the Lambda suite reads lambda_runtime's own report
//! of a mid-stream error through the Runtime API stand-in.

use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::get;

/// One chunk, then an error the body cannot get past.
async fn broken() -> Body {
    let chunks = futures_util::stream::iter([
        Ok::<_, std::io::Error>(Bytes::from_static(b"part one\n")),
        Err(std::io::Error::other("the source went away")),
    ]);
    Body::from_stream(chunks)
}

async fn whole() -> Result<&'static str, Infallible> {
    Ok("whole")
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let router = Router::new()
        .route("/broken", get(broken))
        .route("/whole", get(whole));
    bastion_http::lambda_stream::serve_streaming(router).await
}
