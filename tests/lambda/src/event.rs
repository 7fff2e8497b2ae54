//! API Gateway REST API (v1) proxy events as the `Prod` stage of the execute-api endpoint sends
//! them, and the responses a function gives back (buffered proxy documents, or streamed).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use crate::runtime::Outcome;
use crate::stream::Collected;

pub const STAGE: &str = "Prod";
pub const API_HOST: &str = "abc123defg.execute-api.us-east-1.amazonaws.com";

/// One REST proxy request; headers and query parameters may repeat.
#[derive(Debug, Clone)]
pub struct RestEvent {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    base64: bool,
    source_ip: String,
}

impl RestEvent {
    /// A request from `203.0.113.10` carrying a spoofed `X-Forwarded-For`, as a client can.
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: vec![
                ("Host".to_owned(), API_HOST.to_owned()),
                ("X-Forwarded-Proto".to_owned(), "https".to_owned()),
                ("X-Forwarded-For".to_owned(), "198.51.100.77".to_owned()),
                ("User-Agent".to_owned(), "lambda-suite/1".to_owned()),
            ],
            query: Vec::new(),
            body: None,
            base64: false,
            source_ip: "203.0.113.10".to_owned(),
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub fn post_json(path: &str, body: &Value) -> Self {
        Self::new("POST", path)
            .header("Content-Type", "application/json")
            .body(body.to_string().into_bytes())
    }

    /// Adds a header value (a second value for the same name goes to `multiValueHeaders`).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replaces every value of a header.
    pub fn set_header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.header(name, value)
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    /// Sends the body base64-encoded with `isBase64Encoded: true`, as API Gateway does for
    /// binary media types.
    pub fn base64(mut self) -> Self {
        self.base64 = true;
        self
    }

    pub fn source_ip(mut self, ip: &str) -> Self {
        self.source_ip = ip.to_owned();
        self
    }

    pub fn to_json(&self) -> Value {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let request_id = format!("gw-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let (single_headers, multi_headers) = split_multi(&self.headers);
        let (single_query, multi_query) = split_multi(&self.query);
        let nothing_if_empty = |m: Map<String, Value>| {
            if m.is_empty() {
                Value::Null
            } else {
                Value::Object(m)
            }
        };
        let body = self.body.as_ref().map(|b| {
            if self.base64 {
                B64.encode(b)
            } else {
                String::from_utf8_lossy(b).into_owned()
            }
        });
        json!({
            "resource": "/{proxy+}",
            "path": self.path,
            "httpMethod": self.method,
            "headers": single_headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": nothing_if_empty(single_query),
            "multiValueQueryStringParameters": nothing_if_empty(multi_query),
            "pathParameters": {"proxy": self.path.trim_start_matches('/')},
            "stageVariables": null,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123defg",
                "domainName": API_HOST,
                "domainPrefix": "abc123defg",
                "extendedRequestId": request_id,
                "httpMethod": self.method,
                "identity": {
                    "sourceIp": self.source_ip,
                    "userAgent": "lambda-suite/1"
                },
                "path": format!("/{STAGE}{}", self.path),
                "protocol": "HTTP/1.1",
                "requestId": request_id,
                "requestTime": "02/Dec/2026:02:00:00 +0000",
                "requestTimeEpoch": 1_796_176_800_000_u64,
                "resourceId": "proxy1",
                "resourcePath": "/{proxy+}",
                "stage": STAGE
            },
            "body": body,
            "isBase64Encoded": self.base64
        })
    }
}

/// The last value per name (what `headers` holds) and every value (`multiValueHeaders`).
fn split_multi(pairs: &[(String, String)]) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in pairs {
        single.insert(name.clone(), Value::String(value.clone()));
        match multi.get_mut(name).and_then(Value::as_array_mut) {
            Some(values) => values.push(Value::String(value.clone())),
            None => {
                multi.insert(name.clone(), json!([value]));
            }
        }
    }
    (single, multi)
}

/// A REST proxy response: status, headers (lower-cased names, every value) and body bytes.
#[derive(Debug, Clone)]
pub struct GatewayResponse {
    pub status: u16,
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: Vec<u8>,
    /// Whether the function streamed it (and the body was read to its end).
    pub streamed: bool,
}

impl GatewayResponse {
    /// Reads a response out of an invocation outcome, a streamed one to its end, failing on an
    /// invocation error, a fault or a mid-stream error.
    pub async fn read(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Streamed(streamed) => Self::from_collected(streamed.collect().await),
            other => Self::from_outcome(other),
        }
    }

    /// A streamed answer read to its end, as a client of API Gateway sees it, failing on a
    /// mid-stream error.
    pub fn from_collected(collected: Collected) -> Self {
        if let Some(e) = &collected.error {
            panic!("the stream broke off: {e:?}");
        }
        Self {
            status: collected.status,
            body: collected.body(),
            headers: collected.headers,
            streamed: true,
        }
    }

    /// Reads a buffered proxy response out of an invocation outcome, failing on anything else.
    pub fn from_outcome(outcome: Outcome) -> Self {
        let value = match outcome {
            Outcome::Response(v) => v,
            Outcome::Error(e) => panic!("the invocation failed: {e}"),
            Outcome::Fault(why) => panic!("API Gateway could not pass the stream on: {why}"),
            Outcome::Streamed(s) => panic!("a streamed answer (read it with `read`): {s:?}"),
        };
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(multi) = value["multiValueHeaders"].as_object() {
            for (name, values) in multi {
                let entry = headers.entry(name.to_ascii_lowercase()).or_default();
                for v in values.as_array().into_iter().flatten() {
                    entry.push(v.as_str().unwrap_or_default().to_owned());
                }
            }
        }
        if let Some(single) = value["headers"].as_object() {
            for (name, v) in single {
                let entry = headers.entry(name.to_ascii_lowercase()).or_default();
                let v = v.as_str().unwrap_or_default().to_owned();
                if !entry.contains(&v) {
                    entry.push(v);
                }
            }
        }
        let raw = value["body"].as_str().unwrap_or_default();
        let body = if value["isBase64Encoded"].as_bool().unwrap_or(false) {
            B64.decode(raw).expect("a base64 body")
        } else {
            raw.as_bytes().to_vec()
        };
        Self {
            status: value["statusCode"].as_u64().expect("a statusCode") as u16,
            headers,
            body,
            streamed: false,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts the exact error envelope; its request id must be the `X-Request-Id` header.
    pub fn assert_error(&self, status: u16, code: &str, message: &str) {
        assert_eq!(self.status, status, "body: {}", self.text());
        let request_id = self.header("x-request-id").expect("an X-Request-Id header");
        assert_eq!(
            self.json(),
            json!({"error": {"code": code, "message": message, "request_id": request_id}})
        );
    }
}
