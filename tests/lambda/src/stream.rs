//! A streamed response as the Runtime API stand-in receives it and as API Gateway REST with
//! `responseTransferMode: STREAM` hands it to a client: the function posts
//! `Lambda-Runtime-Function-Response-Mode: streaming` with a chunked body of type
//! `application/vnd.awslambda.http-integration-response`, the JSON prelude (`statusCode`,
//! `headers`, `multiValueHeaders`, `cookies`), eight NUL bytes, then the body. The client gets
//! the status and headers once the prelude is in, then each chunk as the function writes it.
//!
//! What API Gateway would refuse (it answers 502) is a [`Fault`](crate::Outcome::Fault) here: no
//! delimiter within the first 16 KiB, a prelude that is not a JSON object with a status, a header
//! value that is not a string. An error the function reports mid-stream arrives as the last item
//! of the stream, whether sent as HTTP trailers (the Runtime API's documented way) or, as
//! lambda_runtime 1.5 sends it, as a last body chunk holding the same two header lines.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use tokio::sync::mpsc;

pub const RESPONSE_MODE_HEADER: &str = "lambda-runtime-function-response-mode";
pub const HTTP_INTEGRATION_RESPONSE: &str = "application/vnd.awslambda.http-integration-response";
pub const ERROR_TYPE_HEADER: &str = "lambda-runtime-function-error-type";
pub const ERROR_BODY_HEADER: &str = "lambda-runtime-function-error-body";
/// Where API Gateway stops looking for the delimiter.
pub const MAX_PRELUDE_BYTES: usize = 16 * 1024;
const DELIMITER: [u8; 8] = [0; 8];
/// How a mid-stream error written into the body by lambda_runtime begins.
const ERROR_MARK: &[u8] = b"Lambda-Runtime-Function-Error-Type:";
/// Chunks the stand-in holds for a slow reader before it stops reading the function.
const CHUNKS_IN_FLIGHT: usize = 64;

/// How the function reported an error after the prelude.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Trailers,
    LastChunk,
}

/// An error the function reported mid-stream: its type and its decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub error_type: String,
    pub body: String,
    pub via: Via,
}

/// A streamed answer: status, headers (lower-cased names; cookies also as `set-cookie`) and
/// cookies from the prelude, then the body chunk by chunk.
#[derive(Debug)]
pub struct Streamed {
    pub status: u16,
    pub headers: BTreeMap<String, Vec<String>>,
    pub cookies: Vec<String>,
    chunks: mpsc::Receiver<Result<Bytes, StreamError>>,
}

/// A streamed answer read to its end.
#[derive(Debug, Clone)]
pub struct Collected {
    pub status: u16,
    pub headers: BTreeMap<String, Vec<String>>,
    pub cookies: Vec<String>,
    /// The body chunks in arrival order.
    pub chunks: Vec<Bytes>,
    pub error: Option<StreamError>,
}

impl Streamed {
    pub fn header(&self, name: &str) -> Option<&str> {
        first(&self.headers, name)
    }

    /// The next chunk as it arrives, the mid-stream error, or `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, StreamError>> {
        self.chunks.recv().await
    }

    /// [`next_chunk`](Self::next_chunk), failing the test after `timeout`.
    pub async fn next_chunk_within(
        &mut self,
        timeout: Duration,
    ) -> Option<Result<Bytes, StreamError>> {
        tokio::time::timeout(timeout, self.next_chunk())
            .await
            .unwrap_or_else(|_| panic!("no chunk and no end of stream within {timeout:?}"))
    }

    /// Reads every chunk up to the end of the stream (or the mid-stream error).
    pub async fn collect(mut self) -> Collected {
        let mut chunks = Vec::new();
        let mut error = None;
        while let Some(item) = self.next_chunk_within(Duration::from_secs(60)).await {
            match item {
                Ok(chunk) => chunks.push(chunk),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        Collected {
            status: self.status,
            headers: self.headers,
            cookies: self.cookies,
            chunks,
            error,
        }
    }
}

impl Collected {
    pub fn body(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

fn first<'a>(headers: &'a BTreeMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
    headers
        .get(&name.to_ascii_lowercase())
        .and_then(|v| v.first())
        .map(String::as_str)
}

/// Whether a `/response` post is a streamed one.
pub fn is_streaming(headers: &HeaderMap) -> bool {
    headers
        .get(RESPONSE_MODE_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"streaming"))
}

/// Reads a streamed `/response` post: `deliver` gets the answer as soon as the prelude is in
/// (or the fault API Gateway would answer 502 for), then the body is forwarded to it chunk by
/// chunk. Returns `false` when the reader went away before the end.
pub async fn receive(
    headers: &HeaderMap,
    mut body: Body,
    deliver: impl FnOnce(Result<Streamed, String>),
) -> bool {
    if let Err(fault) = check_request(headers) {
        deliver(Err(fault));
        return true;
    }
    let (prelude, rest) = match read_prelude(&mut body).await {
        Ok(read) => read,
        Err(fault) => {
            deliver(Err(fault));
            return true;
        }
    };
    let (tx, chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (status, headers, cookies) = prelude;
    deliver(Ok(Streamed {
        status,
        headers,
        cookies,
        chunks,
    }));
    forward(body, rest, tx).await
}

fn check_request(headers: &HeaderMap) -> Result<(), String> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != HTTP_INTEGRATION_RESPONSE {
        return Err(format!(
            "a streamed response of type {content_type:?}, not {HTTP_INTEGRATION_RESPONSE}"
        ));
    }
    let chunked = headers
        .get("transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if !chunked {
        return Err("a streamed response that is not chunked".to_owned());
    }
    Ok(())
}

type Prelude = (u16, BTreeMap<String, Vec<String>>, Vec<String>);

enum Frame {
    Data(Bytes),
    Trailers(HeaderMap),
}

async fn next_frame(body: &mut Body) -> Option<Result<Frame, String>> {
    let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
    Some(match frame {
        Ok(frame) => match frame.into_data() {
            Ok(data) => Ok(Frame::Data(data)),
            Err(frame) => Ok(Frame::Trailers(frame.into_trailers().unwrap_or_default())),
        },
        Err(e) => Err(format!("the response body broke: {e}")),
    })
}

/// Reads up to the delimiter; the prelude and whatever body bytes came after it.
async fn read_prelude(body: &mut Body) -> Result<(Prelude, Vec<u8>), String> {
    let mut head: Vec<u8> = Vec::new();
    loop {
        match next_frame(body).await {
            Some(Ok(Frame::Data(data))) => head.extend_from_slice(&data),
            Some(Ok(Frame::Trailers(_))) | None => {
                return Err("the stream ended before the prelude's delimiter".to_owned());
            }
            Some(Err(e)) => return Err(e),
        }
        if let Some(at) = head.windows(DELIMITER.len()).position(|w| w == DELIMITER) {
            let rest = head.split_off(at + DELIMITER.len());
            head.truncate(at);
            return Ok((parse_prelude(&head)?, rest));
        }
        if head.len() > MAX_PRELUDE_BYTES + DELIMITER.len() {
            return Err(format!(
                "no prelude delimiter in the first {MAX_PRELUDE_BYTES} bytes"
            ));
        }
    }
}

/// The prelude as API Gateway reads it: an object with a numeric `statusCode`, `headers` of
/// string values, `multiValueHeaders` of string lists, `cookies` a list of strings.
pub fn parse_prelude(raw: &[u8]) -> Result<Prelude, String> {
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| format!("the prelude is not JSON: {e}"))?;
    let status = value["statusCode"]
        .as_u64()
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| format!("the prelude has no valid statusCode: {value}"))?;
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, v) in value["headers"].as_object().into_iter().flatten() {
        let v = v
            .as_str()
            .ok_or_else(|| format!("the prelude's header {name} is not a string: {v}"))?;
        headers
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(v.to_owned());
    }
    for (name, values) in value["multiValueHeaders"].as_object().into_iter().flatten() {
        let entry = headers.entry(name.to_ascii_lowercase()).or_default();
        for v in values.as_array().into_iter().flatten() {
            let v = v
                .as_str()
                .ok_or_else(|| format!("the prelude's header {name} holds a non-string: {v}"))?;
            if !entry.iter().any(|e| e == v) {
                entry.push(v.to_owned());
            }
        }
    }
    let mut cookies = Vec::new();
    for c in value["cookies"].as_array().into_iter().flatten() {
        let c = c
            .as_str()
            .ok_or_else(|| format!("a prelude cookie is not a string: {c}"))?;
        cookies.push(c.to_owned());
    }
    if !cookies.is_empty() {
        headers
            .entry("set-cookie".to_owned())
            .or_default()
            .extend(cookies.iter().cloned());
    }
    Ok((status as u16, headers, cookies))
}

/// Forwards the body after the prelude; `false` when the reader is gone.
async fn forward(
    mut body: Body,
    rest: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, StreamError>>,
) -> bool {
    let mut split = ErrorSplit::default();
    let mut pending = Some(rest);
    loop {
        let data = match pending.take() {
            Some(rest) => rest,
            None => match next_frame(&mut body).await {
                Some(Ok(Frame::Data(data))) => data.to_vec(),
                Some(Ok(Frame::Trailers(trailers))) => {
                    let error = from_trailers(&trailers);
                    return match error {
                        Some(e) => tx.send(Err(e)).await.is_ok(),
                        None => true,
                    };
                }
                Some(Err(e)) => {
                    let broke = StreamError {
                        error_type: "Stand-in.BodyBroken".to_owned(),
                        body: e,
                        via: Via::LastChunk,
                    };
                    return tx.send(Err(broke)).await.is_ok();
                }
                None => break,
            },
        };
        if let Some(chunk) = split.push(&data)
            && tx.send(Ok(chunk)).await.is_err()
        {
            return false;
        }
    }
    let (leftover, error) = split.finish();
    if let Some(chunk) = leftover
        && tx.send(Ok(chunk)).await.is_err()
    {
        return false;
    }
    match error {
        Some(e) => tx.send(Err(e)).await.is_ok(),
        None => true,
    }
}

fn from_trailers(trailers: &HeaderMap) -> Option<StreamError> {
    let error_type = trailers.get(ERROR_TYPE_HEADER)?.to_str().ok()?.to_owned();
    let body = trailers
        .get(ERROR_BODY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(decode)
        .unwrap_or_default();
    Some(StreamError {
        error_type,
        body,
        via: Via::Trailers,
    })
}

fn decode(b64: &str) -> String {
    B64.decode(b64.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|_| format!("(not base64) {b64}"))
}

/// Tells body chunks from lambda_runtime's in-body error report, which may arrive split: a
/// chunk that could be the start of the report is held until the next one says otherwise.
#[derive(Default)]
pub struct ErrorSplit {
    held: Vec<u8>,
    report: Option<Vec<u8>>,
}

impl ErrorSplit {
    /// What to forward now, if anything.
    pub fn push(&mut self, data: &[u8]) -> Option<Bytes> {
        if let Some(report) = &mut self.report {
            report.extend_from_slice(data);
            return None;
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(data);
        if buf.starts_with(ERROR_MARK) {
            self.report = Some(buf);
            None
        } else if !buf.is_empty() && ERROR_MARK.starts_with(&buf) {
            self.held = buf;
            None
        } else if buf.is_empty() {
            None
        } else {
            Some(Bytes::from(buf))
        }
    }

    /// At the end of the body: bytes still held, and the error report if there was one.
    pub fn finish(self) -> (Option<Bytes>, Option<StreamError>) {
        let leftover = (!self.held.is_empty()).then(|| Bytes::from(self.held));
        let error = self.report.map(|report| {
            let text = String::from_utf8_lossy(&report).into_owned();
            let mut error_type = String::new();
            let mut body = String::new();
            for line in text.split("\r\n") {
                if let Some((name, value)) = line.split_once(':') {
                    match name.trim().to_ascii_lowercase().as_str() {
                        ERROR_TYPE_HEADER => value.trim().clone_into(&mut error_type),
                        ERROR_BODY_HEADER => body = decode(value),
                        _ => {}
                    }
                }
            }
            StreamError {
                error_type,
                body,
                via: Via::LastChunk,
            }
        });
        (leftover, error)
    }
}
