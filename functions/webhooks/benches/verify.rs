//! Bench binary for delivery signature verification over 1 KiB and 64 KiB bodies: Stripe
//! (one secret, and two secrets with two `v1` entries as during a rotation) and Messenger.
//! Run with `cargo bench -p bastion-webhooks`; prints mean, p50 and p95 per case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bastion_core::Timestamp;
use bastion_webhooks::verify;

fn measure(name: &str, iters: usize, mut f: impl FnMut()) {
    f();
    let mut samples: Vec<Duration> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / u32::try_from(iters).unwrap();
    let pct = |p: usize| samples[(iters * p / 100).min(iters - 1)];
    println!(
        "{name:<40} n={iters:<6} mean={mean:>10.1?} p50={:>10.1?} p95={:>10.1?}",
        pct(50),
        pct(95)
    );
}

fn main() {
    let now = Timestamp(1_800_000_000);
    let current: &[u8] = b"whsec_current_signing_secret_0123";
    let previous: &[u8] = b"whsec_previous_signing_secret_456";
    for size in [1024, 64 * 1024] {
        let body: Vec<u8> = (0..size)
            .map(|i| b'a' + u8::try_from(i % 26).unwrap())
            .collect();
        let label = format!("{} KiB", size / 1024);

        let header = verify::stripe_signature_header(current, now.secs(), &body);
        measure(&format!("stripe, 1 secret, {label}"), 5_000, || {
            black_box(
                verify::stripe(Some(header.as_bytes()), &[current], &body, now, 300).unwrap(),
            );
        });

        let old = verify::stripe_signature_header(previous, now.secs(), &body);
        let rotated = format!("{header},v1={}", old.split("v1=").nth(1).unwrap());
        measure(&format!("stripe, 2 secrets x 2 v1, {label}"), 5_000, || {
            black_box(
                verify::stripe(
                    Some(rotated.as_bytes()),
                    &[previous, current],
                    &body,
                    now,
                    300,
                )
                .unwrap(),
            );
        });

        let fb = verify::facebook_signature_header(b"app-secret", &body);
        measure(
            &format!("messenger x-hub-signature-256, {label}"),
            5_000,
            || {
                black_box(
                    verify::facebook(Some(fb.as_bytes()), b"app-secret", black_box(&body)).is_ok(),
                );
            },
        );
    }
}
