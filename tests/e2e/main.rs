//! End-to-end tests: every route driven through the full router and edge pipeline, in-process,
//! on the SQLite store with a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod agent;
mod api_keys;
mod auth_accounts;
mod auth_edge;
mod auth_tokens;
mod channels;
mod chat;
mod concurrency;
mod configured_limits;
mod dynamodb_requests;
mod exec_dot_paths;
mod exec_files;
mod exec_run;
mod exec_tool;
mod exec_workspace;
mod exec_workspace_purge;
mod fake_google;
mod google_signin;
mod hardening;
mod helpers;
mod local_paths;
mod mfa;
mod recovery;
mod rotation;
mod sign_in_races;
mod streaming;
mod test_only_oidc_key;
