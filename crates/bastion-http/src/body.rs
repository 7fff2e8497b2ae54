//! Request bodies: read under a hard byte cap (413 even without Content-Length), JSON only with
//! `application/json` (415), and parsed strictly into the route's type (400 on unknown fields).

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorKind};

/// The largest body any route accepts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Reads the whole body, refusing more than `limit` bytes whatever the headers claim.
pub async fn read_limited(body: axum::body::Body, limit: usize) -> Result<Bytes, ApiError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(ApiError::invalid(
            "invalid_request",
            "request body could not be read",
        )),
    }
}

/// Whether the request declares a body over the cap; such a request is refused before any
/// route runs, whether or not the route reads its body.
pub fn declares_too_large(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
}

pub(crate) fn too_large() -> ApiError {
    ApiError::new(ErrorKind::PayloadTooLarge, "request body exceeds 1 MiB")
}

/// A JSON body parsed into `T`. Give `T` `#[serde(deny_unknown_fields)]`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

fn is_json(req: &Request) -> bool {
    let Some(ct) = req.headers().get(http::header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(ct) = ct.to_str() else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if declares_too_large(req.headers()) {
            return Err(too_large());
        }
        if !is_json(&req) {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                "Content-Type must be application/json",
            ));
        }
        let bytes = read_limited(req.into_body(), MAX_BODY_BYTES).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Strict JSON parsing with a message that names the problem but never echoes values.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let message = match e.classify() {
            serde_json::error::Category::Data => {
                // serde's data errors name the field ("unknown field `x`", "missing field `y`")
                // without quoting the submitted value, except for type errors, which we reword.
                let text = e.to_string();
                let head = text
                    .split(" at line ")
                    .next()
                    .unwrap_or("invalid body")
                    .to_owned();
                if head.starts_with("unknown field")
                    || head.starts_with("missing field")
                    || head.starts_with("duplicate field")
                {
                    format!("invalid body: {head}")
                } else {
                    "invalid body: a field has the wrong type".to_owned()
                }
            }
            serde_json::error::Category::Eof | serde_json::error::Category::Syntax => {
                "body is not valid JSON".to_owned()
            }
            serde_json::error::Category::Io => "request body could not be read".to_owned(),
        };
        ApiError::invalid("invalid_request", message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        email: String,
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let e = parse_json::<Login>(br#"{"email":"a","admin":true}"#).unwrap_err();
        assert_eq!(
            e.message(),
            "invalid body: unknown field `admin`, expected `email`"
        );
        let e = parse_json::<Login>(br#"{}"#).unwrap_err();
        assert_eq!(e.message(), "invalid body: missing field `email`");
        let e = parse_json::<Login>(br#"{"email":"a","email":"b"}"#).unwrap_err();
        assert_eq!(e.message(), "invalid body: duplicate field `email`");
        let e = parse_json::<Login>(br#"{"email":5}"#).unwrap_err();
        assert_eq!(e.message(), "invalid body: a field has the wrong type");
        let e = parse_json::<Login>(br#"{"email":"#).unwrap_err();
        assert_eq!(e.message(), "body is not valid JSON");
    }
}
