//! The HTTP edge every Bastion function shares: one error envelope and status map, security
//! headers, CORS, body limits, request ids, client IPs, rate limits, Bearer auth and config.

pub mod account_files;
pub mod audit;
pub mod auth;
pub mod body;
pub mod client;
pub mod config;
pub mod cors;
pub mod email;
pub mod error;
pub mod event_guard;
pub mod lambda;
pub mod lambda_stream;
pub mod limit_headers;
pub mod limits;
pub mod logging;
pub mod openapi;
pub mod pipeline;
pub mod rate_limit;
pub mod sdk;
pub mod secrets;
pub mod side_events;
pub mod startup;

pub use auth::{Authenticated, Credential, SessionOnly};
pub use bastion_core::tls;
pub use body::JsonBody;
pub use client::{ClientIp, RequestMeta, UserAgent};
pub use config::{ConfigError, EdgeConfig, Env};
pub use error::{ApiError, ErrorKind};
pub use limits::{Limit, LimitTable};
pub use pipeline::{Edge, with_edge};
pub use rate_limit::{Limits, RateLimitSlot, RateLimiter};
