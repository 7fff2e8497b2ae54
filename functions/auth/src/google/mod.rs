//! Google sign-in: OIDC authorization code flow with PKCE (S256), browser-bound state, and a
//! one-time login code instead of tokens in URLs.

pub mod account;
pub mod config;
pub mod flow;
pub mod oidc;
mod reauth;
mod resolve;
mod verdict;
