//! The Lambda-shaped harness: a Runtime API stand-in that starts the real function binaries
//! the way AWS Lambda does and reads their buffered or streamed responses, API Gateway REST
//! proxy events to feed them, the moto setup (table, secret document, KMS key) they run
//! against, and a Lambda Invoke API stand-in through which one function invokes another. Used
//! by the `lambda` suite and the `cold_start` bench.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod aws;
pub mod deployment;
pub mod event;
pub mod function;
pub mod invoke;
pub mod runtime;
pub mod stream;

pub use aws::Moto;
pub use deployment::Deployment;
pub use event::{GatewayResponse, RestEvent};
pub use function::{Function, LambdaEnv, binary};
pub use invoke::InvokeApi;
pub use runtime::{InitError, Outcome, RuntimeApi};
pub use stream::{Collected, StreamError, Streamed, Via};
