//! Bench binary for the hot crypto paths: Argon2id hash and verify, JWT sign and verify,
//! sealing and opening chat content with a cached data key.
//! Run with `cargo bench -p bastion-core`; prints mean, p50 and p95 per operation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bastion_core::crypto::password::Pepper;
use bastion_core::crypto::{JwtKeys, PasswordHasher};
use bastion_core::{Password, SessionId, Timestamp, UserId};

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
        "{name:<28} n={iters:<6} mean={mean:>10.1?} p50={:>10.1?} p95={:>10.1?}",
        pct(50),
        pct(95)
    );
}

fn main() {
    let hasher = PasswordHasher::new(Pepper::new(1, vec![7; 32]).unwrap(), vec![], None).unwrap();
    let password = Password::parse_existing("correct horse battery staple").unwrap();
    let phc = hasher.hash(&password).unwrap();
    measure("argon2id hash", 30, || {
        black_box(hasher.hash(&password).unwrap());
    });
    measure("argon2id verify", 30, || {
        black_box(hasher.verify(&password, &phc));
    });

    let seed = vec![1; 32];
    let public = bastion_core::crypto::jwt::public_key_of("k1", &seed).unwrap();
    let keys = JwtKeys::signer(
        "bastion",
        "bastion-api",
        vec![("k1".into(), seed)],
        vec![("k1".into(), public.to_vec())],
    )
    .unwrap();
    let (user, session) = (UserId::generate(), SessionId::generate());
    let roles = vec!["user".to_owned()];
    let (token, _) = keys
        .issue(&user, &session, &roles, Timestamp(1_800_000_000))
        .unwrap();
    measure("jwt sign (EdDSA)", 20_000, || {
        black_box(
            keys.issue(&user, &session, &roles, Timestamp(1_800_000_000))
                .unwrap(),
        );
    });
    measure("jwt verify (EdDSA)", 20_000, || {
        black_box(keys.verify(&token, Timestamp(1_800_000_100)).unwrap());
    });
    measure("password policy (zxcvbn)", 200, || {
        black_box(
            Password::parse_new("correct horse battery staple 42", &["a@example.com"]).is_ok(),
        );
    });
    envelope();
}

/// Seal and open with the instance's data key cached (the warm path of every chat turn).
fn envelope() {
    use std::sync::Arc;

    use bastion_core::ManualClock;
    use bastion_core::envelope::{ContentContext, ContentSealer, LocalContentKeys, PURPOSE_CHAT};

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keys = LocalContentKeys::new(vec![("k1".into(), vec![3; 32])]).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000)));
    let sealer = ContentSealer::new(Arc::new(keys), clock);
    let ctx = ContentContext::new(PURPOSE_CHAT, "user#0123456789abcdef");
    for (name, len) in [("1 KiB", 1024), ("32,000 chars", 32_000)] {
        let text = "x".repeat(len);
        let sealed = rt.block_on(sealer.seal(&ctx, &["c", "0"], &text)).unwrap();
        measure(&format!("seal {name} (warm)"), 5_000, || {
            black_box(rt.block_on(sealer.seal(&ctx, &["c", "0"], &text)).unwrap());
        });
        measure(&format!("open {name} (warm)"), 5_000, || {
            black_box(
                rt.block_on(sealer.open(&ctx, &["c", "0"], &sealed))
                    .unwrap(),
            );
        });
    }
}
