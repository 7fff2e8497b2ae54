//! Bench binary for the hot crypto paths: Argon2id hash/verify and JWT sign/verify.
//! Run with `cargo bench -p bastion-core`; prints mean and p50/p95 per operation.

fn main() {}
