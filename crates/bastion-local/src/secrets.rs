//! Development secrets: generated on first run into a 0600 file under the data directory, so a
//! newcomer needs no configuration. Values in the process environment always win.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bastion_core::Clock;
use bastion_core::envelope::{ContentSealer, LocalContentKeys};
use bastion_http::Env;
use bastion_http::config::ProcessEnv;
use bastion_http::config::keyed_secrets;
use rand_core::{OsRng, RngCore};

const FILE_NAME: &str = "dev-secrets.env";

/// The process environment over the development-secrets file.
pub struct LayeredEnv {
    file: HashMap<String, String>,
}

fn random_b64() -> String {
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    STANDARD.encode(key)
}

/// A fresh Ed25519 token key pair as its two lines: auth signs with the seed, every function
/// verifies with the public half.
fn jwt_lines() -> Result<String, Box<dyn std::error::Error>> {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let public = bastion_core::crypto::jwt::public_key_of("dev1", &seed)?;
    Ok(format!(
        "JWT_SIGNING_KEYS=dev1:{}\nJWT_VERIFY_KEYS=dev1:{}\n",
        STANDARD.encode(seed),
        STANDARD.encode(public)
    ))
}

fn has_line(text: &str, name: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().starts_with(&format!("{name}=")))
}

impl LayeredEnv {
    pub fn load(data_dir: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        let path = data_dir.join(FILE_NAME);
        if !path.exists() {
            let contents = format!(
                "# Development secrets for bastion-local ONLY. Never use these in a deployment.\n{}PASSWORD_PEPPER=1:{}\nEXEC_SANDBOX_KEY={}\nCONTENT_KEK=dev1:{}\n",
                jwt_lines()?,
                random_b64(),
                random_b64(),
                random_b64()
            );
            write_private(&path, &contents)?;
            eprintln!(
                "WARNING: generated development secrets in {} (mode 0600). They are for this machine only.",
                path.display()
            );
        }
        let mut text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        // Files generated before a secret existed lack it: add one. Files from before asymmetric
        // tokens hold an HS256 `JWT_KEYS` nothing reads; they gain a key pair (both lines).
        let mut added = String::new();
        if !has_line(&text, "EXEC_SANDBOX_KEY") {
            added.push_str(&format!("EXEC_SANDBOX_KEY={}\n", random_b64()));
        }
        if !has_line(&text, "CONTENT_KEK") {
            added.push_str(&format!("CONTENT_KEK=dev1:{}\n", random_b64()));
        }
        if !has_line(&text, "JWT_SIGNING_KEYS") || !has_line(&text, "JWT_VERIFY_KEYS") {
            added.push_str(&jwt_lines()?);
        }
        if !added.is_empty() {
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(added.as_bytes()))
                .map_err(|e| format!("cannot update {}: {e}", path.display()))?;
            text.push_str(&added);
        }
        let file = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Ok(Self { file })
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

/// The chat-content sealer of `bastion-local`: the Lambda envelope format, with data keys
/// wrapped under `CONTENT_KEK` (`id:base64` of 32 bytes, comma-separated, current first).
pub fn content_sealer(
    env: &dyn Env,
    clock: Arc<dyn Clock>,
) -> Result<Arc<ContentSealer>, Box<dyn std::error::Error>> {
    let keys = LocalContentKeys::new(keyed_secrets(env, "CONTENT_KEK")?)
        .map_err(|e| format!("configuration CONTENT_KEK: {e}"))?;
    Ok(Arc::new(ContentSealer::new(Arc::new(keys), clock)))
}

impl Env for LayeredEnv {
    fn get(&self, key: &str) -> Option<String> {
        ProcessEnv.get(key).or_else(|| self.file.get(key).cloned())
    }

    fn keys(&self) -> Vec<String> {
        let mut keys = ProcessEnv.keys();
        keys.extend(self.file.keys().cloned());
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bastion_core::envelope::{ContentContext, PURPOSE_CHAT};
    use bastion_core::{ManualClock, Timestamp};

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "bastion-local-secrets-{name}-{}-{}",
            std::process::id(),
            bastion_core::UserId::generate().as_str()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn a_first_run_generates_a_content_kek_that_seals_and_opens_chat_content() {
        let dir = temp_dir("fresh");
        let env = LayeredEnv::load(&dir).unwrap();
        assert!(
            bastion_http::config::parse_jwt_signer(&env)
                .unwrap()
                .can_sign()
        );
        let kek = env.file.get("CONTENT_KEK").unwrap();
        assert!(kek.starts_with("dev1:"));
        let sealer = content_sealer(&env, Arc::new(ManualClock::new(Timestamp(1)))).unwrap();
        let ctx = ContentContext::new(PURPOSE_CHAT, "user#a");
        let sealed = sealer.seal(&ctx, &["c"], "hello local").await.unwrap();
        assert!(sealed.starts_with("bastion-sealed:v1:"));
        assert_eq!(
            sealer.open(&ctx, &["c"], &sealed).await.unwrap(),
            "hello local"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_secrets_file_from_before_content_encryption_gains_a_kek_and_keeps_its_lines() {
        let dir = temp_dir("old");
        let path = dir.join(FILE_NAME);
        write_private(&path, "JWT_KEYS=dev1:abc\nEXEC_SANDBOX_KEY=keep-me\n").unwrap();
        let env = LayeredEnv::load(&dir).unwrap();
        assert_eq!(env.file.get("EXEC_SANDBOX_KEY").unwrap(), "keep-me");
        // The HS256 key is left alone and a key pair whose halves match is added.
        let signer = bastion_http::config::parse_jwt_signer(&env).unwrap();
        assert!(signer.can_sign());
        let kek = env.file.get("CONTENT_KEK").unwrap().clone();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("CONTENT_KEK=").count(), 1);
        // A second start keeps the same key, so earlier content stays readable.
        let again = LayeredEnv::load(&dir).unwrap();
        assert_eq!(again.file.get("CONTENT_KEK").unwrap(), &kek);
        assert_eq!(
            again.file.get("JWT_SIGNING_KEYS"),
            env.file.get("JWT_SIGNING_KEYS")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("JWT_VERIFY_KEYS=").count(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
