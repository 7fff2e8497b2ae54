//! End-to-end tests: every route driven through the full router and edge pipeline, in-process,
//! on the SQLite store with a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth_accounts;
mod auth_edge;
mod auth_tokens;
mod chat;
mod helpers;
