//! The Runtime API stand-in on hand-made streamed responses, written chunk by chunk over a raw
//! HTTP/1.1 connection the way a runtime writes them: the prelude split across chunks and the
//! NULs in a chunk of their own, each body chunk reaching the test before the next is written,
//! a mid-stream error as HTTP trailers and as lambda_runtime's last body chunk (hand-made, and
//! from the real runtime under a function whose body breaks), what API Gateway would refuse,
//! and a reader that goes away.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bastion_lambda_tests::{
    Function, GatewayResponse, LambdaEnv, Outcome, RestEvent, RuntimeApi, StreamError, Streamed,
    Via, binary,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(10);

/// A function speaking to the stand-in by hand: one invocation taken from `next`, its response
/// posted as a chunked stream.
struct HandFunction {
    conn: TcpStream,
}

impl HandFunction {
    /// Queues an invocation, takes it from `next`, and starts the streamed `/response` post
    /// (with the headers given, or lambda_runtime's); returns the invocation's outcome handle.
    async fn start(api: &RuntimeApi, headers: &[(&str, &str)]) -> (Self, JoinHandle<Outcome>) {
        let invoker = api.clone();
        let outcome = tokio::spawn(async move { invoker.invoke(json!({"hand": true})).await });
        let id = next_invocation(api).await;
        let mut conn = TcpStream::connect(api.addr).await.unwrap();
        let mut head = format!(
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: {}\r\n",
            api.addr
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes()).await.unwrap();
        (Self { conn }, outcome)
    }

    async fn streaming(api: &RuntimeApi) -> (Self, JoinHandle<Outcome>) {
        Self::start(api, &STREAMING).await
    }

    async fn chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
        framed.extend_from_slice(data);
        framed.extend_from_slice(b"\r\n");
        self.conn.write_all(&framed).await?;
        self.conn.flush().await
    }

    /// Ends the body, with these trailers.
    async fn end(&mut self, trailers: &[(&str, &str)]) {
        let mut last = "0\r\n".to_owned();
        for (name, value) in trailers {
            last.push_str(&format!("{name}: {value}\r\n"));
        }
        last.push_str("\r\n");
        self.conn.write_all(last.as_bytes()).await.unwrap();
    }

    /// The stand-in's answer to the post, read to the end of the connection or of its head.
    async fn answer(&mut self) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(WAIT, self.conn.read(&mut buf))
                .await
                .expect("an answer")
                .unwrap();
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    }
}

/// The headers lambda_runtime sends on a streamed response.
const STREAMING: [(&str, &str); 4] = [
    ("Lambda-Runtime-Function-Response-Mode", "streaming"),
    (
        "Content-Type",
        "application/vnd.awslambda.http-integration-response",
    ),
    ("Transfer-Encoding", "chunked"),
    (
        "Trailer",
        "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
    ),
];

/// The id of the next invocation, taken from `next` over a connection of its own.
async fn next_invocation(api: &RuntimeApi) -> String {
    let mut conn = TcpStream::connect(api.addr).await.unwrap();
    let request = format!(
        "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {}\r\n\r\n",
        api.addr
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await.unwrap();
        assert_ne!(n, 0, "next closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&seen).into_owned();
    head.lines()
        .find_map(|l| l.strip_prefix("lambda-runtime-aws-request-id: "))
        .expect("a request id")
        .trim()
        .to_owned()
}

async fn streamed(outcome: JoinHandle<Outcome>) -> Streamed {
    match tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap() {
        Outcome::Streamed(s) => s,
        other => panic!("not streamed: {other:?}"),
    }
}

async fn fault(outcome: JoinHandle<Outcome>) -> String {
    match tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap() {
        Outcome::Fault(why) => why,
        other => panic!("not a fault: {other:?}"),
    }
}

async fn next_data(s: &mut Streamed) -> Vec<u8> {
    match s.next_chunk_within(WAIT).await {
        Some(Ok(chunk)) => chunk.to_vec(),
        other => panic!("not a chunk: {other:?}"),
    }
}

#[tokio::test]
async fn a_prelude_split_across_chunks_with_its_nuls_alone_gives_status_headers_and_cookies() {
    let api = RuntimeApi::start().await;
    let (mut f, outcome) = HandFunction::streaming(&api).await;
    f.chunk(br#"{"statusCode":201,"head"#).await.unwrap();
    f.chunk(br#"ers":{"Content-Type":"text/event-stream","X-Request-Id":"r-1"},"#)
        .await
        .unwrap();
    f.chunk(br#""multiValueHeaders":{"Vary":["Origin","Accept"]},"cookies":["c=1; Secure"]}"#)
        .await
        .unwrap();
    f.chunk(&[0u8; 8]).await.unwrap();
    let mut s = streamed(outcome).await;
    assert_eq!(s.status, 201);
    assert_eq!(s.header("content-type"), Some("text/event-stream"));
    assert_eq!(s.header("x-request-id"), Some("r-1"));
    assert_eq!(s.headers["vary"], vec!["Origin", "Accept"]);
    assert_eq!(s.cookies, vec!["c=1; Secure"]);
    assert_eq!(s.headers["set-cookie"], vec!["c=1; Secure"]);

    f.chunk(b"event: delta\ndata: one\n\n").await.unwrap();
    // The first chunk is out before the function has written the second.
    assert_eq!(next_data(&mut s).await, b"event: delta\ndata: one\n\n");
    f.chunk(b"event: done\ndata: {}\n\n").await.unwrap();
    assert_eq!(next_data(&mut s).await, b"event: done\ndata: {}\n\n");
    f.end(&[]).await;
    assert_eq!(s.next_chunk_within(WAIT).await, None);
    assert!(f.answer().await.starts_with("HTTP/1.1 202"));
}

#[tokio::test]
async fn body_bytes_in_the_delimiters_chunk_are_the_first_chunk_and_collect_reads_them_all() {
    let api = RuntimeApi::start().await;
    let (mut f, outcome) = HandFunction::streaming(&api).await;
    let mut first = br#"{"statusCode":200,"headers":{}}"#.to_vec();
    first.extend_from_slice(&[0u8; 8]);
    first.extend_from_slice(b"hello ");
    f.chunk(&first).await.unwrap();
    f.chunk(b"world").await.unwrap();
    f.end(&[]).await;
    let collected = streamed(outcome).await.collect().await;
    assert_eq!(collected.status, 200);
    assert_eq!(collected.chunks, vec!["hello ", "world"]);
    assert_eq!(collected.error, None);
    let gateway = GatewayResponse::from_collected(collected);
    assert_eq!(
        (gateway.text(), gateway.streamed),
        ("hello world".to_owned(), true)
    );
}

#[tokio::test]
async fn an_error_sent_as_trailers_mid_stream_ends_the_stream_after_the_chunks_before_it() {
    let api = RuntimeApi::start().await;
    let (mut f, outcome) = HandFunction::streaming(&api).await;
    let mut first = br#"{"statusCode":200}"#.to_vec();
    first.extend_from_slice(&[0u8; 8]);
    f.chunk(&first).await.unwrap();
    f.chunk(b"partial").await.unwrap();
    let body = B64.encode("the model went away");
    f.end(&[
        ("Lambda-Runtime-Function-Error-Type", "Runtime.StreamError"),
        ("Lambda-Runtime-Function-Error-Body", &body),
    ])
    .await;
    let collected = streamed(outcome).await.collect().await;
    assert_eq!(collected.chunks, vec!["partial"]);
    assert_eq!(
        collected.error,
        Some(StreamError {
            error_type: "Runtime.StreamError".to_owned(),
            body: "the model went away".to_owned(),
            via: Via::Trailers,
        })
    );
}

#[tokio::test]
async fn lambda_runtimes_error_report_in_a_last_chunk_is_the_stream_error_even_split_in_two() {
    let api = RuntimeApi::start().await;
    let (mut f, outcome) = HandFunction::streaming(&api).await;
    let mut first = br#"{"statusCode":200}"#.to_vec();
    first.extend_from_slice(&[0u8; 8]);
    f.chunk(&first).await.unwrap();
    f.chunk(b"event: delta\n\n").await.unwrap();
    let report = format!(
        "Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n\
         Lambda-Runtime-Function-Error-Body: {}\r\n",
        B64.encode("body broke")
    );
    f.chunk(&report.as_bytes()[..10]).await.unwrap();
    f.chunk(&report.as_bytes()[10..]).await.unwrap();
    f.end(&[]).await;
    let collected = streamed(outcome).await.collect().await;
    assert_eq!(collected.chunks, vec!["event: delta\n\n"]);
    assert_eq!(
        collected.error,
        Some(StreamError {
            error_type: "Runtime.StreamError".to_owned(),
            body: "body broke".to_owned(),
            via: Via::LastChunk,
        })
    );
}

#[tokio::test]
async fn what_api_gateway_would_answer_502_for_is_a_fault() {
    let api = RuntimeApi::start().await;
    let list_header = br#"{"statusCode":200,"headers":{"vary":["Origin","Accept"]}}"#.to_vec();
    let cases: [(Vec<u8>, &str); 3] = [
        (
            list_header,
            r#"the prelude's header vary is not a string: ["Origin","Accept"]"#,
        ),
        (
            br#"{"headers":{}}"#.to_vec(),
            r#"the prelude has no valid statusCode: {"headers":{}}"#,
        ),
        (
            vec![b' '; 16 * 1024 + 9],
            "no prelude delimiter in the first 16384 bytes",
        ),
    ];
    for (prelude, why) in cases {
        let (mut f, outcome) = HandFunction::streaming(&api).await;
        let mut first = prelude;
        if first.len() < 16 * 1024 {
            first.extend_from_slice(&[0u8; 8]);
        }
        f.chunk(&first).await.unwrap();
        assert_eq!(fault(outcome).await, why);
    }
    let (mut f, outcome) = HandFunction::start(
        &api,
        &[
            ("Lambda-Runtime-Function-Response-Mode", "streaming"),
            ("Content-Type", "application/json"),
            ("Transfer-Encoding", "chunked"),
        ],
    )
    .await;
    f.chunk(b"{}").await.unwrap();
    assert_eq!(
        fault(outcome).await,
        "a streamed response of type \"application/json\", not \
         application/vnd.awslambda.http-integration-response"
    );
}

#[tokio::test]
async fn a_buffered_response_is_still_a_document() {
    let api = RuntimeApi::start().await;
    let body = json!({"statusCode": 200, "body": "ok"}).to_string();
    let length = body.len().to_string();
    let (mut f, outcome) = HandFunction::start(
        &api,
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", &length),
        ],
    )
    .await;
    f.conn.write_all(body.as_bytes()).await.unwrap();
    match tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap() {
        Outcome::Response(v) => assert_eq!(v, json!({"statusCode": 200, "body": "ok"})),
        other => panic!("{other:?}"),
    }
    assert!(f.answer().await.starts_with("HTTP/1.1 202"));
}

#[tokio::test]
async fn when_the_reader_drops_the_stream_the_functions_connection_is_closed_on_its_next_write() {
    let api = RuntimeApi::start().await;
    let (mut f, outcome) = HandFunction::streaming(&api).await;
    let mut first = br#"{"statusCode":200}"#.to_vec();
    first.extend_from_slice(&[0u8; 8]);
    f.chunk(&first).await.unwrap();
    f.chunk(b"one").await.unwrap();
    let mut s = streamed(outcome).await;
    assert_eq!(next_data(&mut s).await, b"one");
    drop(s);
    f.chunk(b"two").await.unwrap();
    let answer = f.answer().await;
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    // Then the stand-in closes the connection: the function's stream has nowhere to go.
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, f.conn.read_to_end(&mut rest))
        .await
        .expect("the connection is closed")
        .expect("an orderly close");
}

#[tokio::test]
async fn the_real_runtimes_report_of_a_broken_body_comes_after_the_chunk_before_it() {
    let task = std::env::temp_dir();
    let env = LambdaEnv::lambda("stream-error", "http://127.0.0.1:9", &task);
    let function = Function::start(&binary("debug", "stream_error"), &env).await;
    let broken = function.stream(&RestEvent::get("/broken")).await;
    assert_eq!(broken.status, 200);
    let collected = broken.collect().await;
    assert_eq!(collected.chunks, vec!["part one\n"]);
    assert_eq!(
        collected.error,
        Some(StreamError {
            error_type: "Runtime.StreamError".to_owned(),
            body: "the source went away".to_owned(),
            via: Via::LastChunk,
        })
    );
    // The instance serves on.
    let whole = function.call(&RestEvent::get("/whole")).await;
    assert_eq!((whole.status, whole.text()), (200, "whole".to_owned()));
}
