//! The `EmailSender` port (verification and reset mails), the local outbox adapter, and the
//! base every mailed link starts with. SES, the deployed adapter, lives with auth, the one
//! function that mails.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bastion_core::config::ConfigError;
use bastion_core::{Clock, Email};

/// One plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    pub to: Email,
    pub subject: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("mail delivery failed: {0}")]
    Unavailable(String),
    #[error("no mail delivery is configured")]
    NotConfigured,
}

#[async_trait]
pub trait EmailSender: Send + Sync {
    async fn send(&self, message: &EmailMessage) -> Result<(), EmailError>;
}

/// The local adapter: one JSON file `{"to","subject","text"}` per message, mode 0600, in a
/// 0700 directory, named `<unix millis>-<sequence>-<random>.json` so a listing sorts by time. Each file
/// is written under a temporary name and renamed, so a reader never sees half a message.
pub struct OutboxSender {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    /// Orders messages written within one millisecond (or one tick of a test clock).
    written: std::sync::atomic::AtomicU64,
}

impl OutboxSender {
    pub fn new(dir: PathBuf, clock: Arc<dyn Clock>) -> Self {
        Self {
            dir,
            clock,
            written: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The next file name: the time, this sender's sequence number, a random tail.
    fn next_name(&self) -> String {
        let seq = self
            .written
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!(
            "{:013}-{seq:06}-{}",
            self.clock.now_nanos() / 1_000_000,
            hex::encode(bastion_core::random::random_bytes::<4>())
        )
    }
}

/// Writes one message file (blocking file I/O: run off the async workers).
fn write_message(dir: &Path, name: &str, body: &[u8]) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let partial = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(body)?;
    file.sync_all()?;
    std::fs::rename(&partial, dir.join(format!("{name}.json")))
}

#[async_trait]
impl EmailSender for OutboxSender {
    async fn send(&self, message: &EmailMessage) -> Result<(), EmailError> {
        let body = serde_json::json!({
            "to": message.to.as_str(),
            "subject": message.subject,
            "text": message.text,
        })
        .to_string();
        let (dir, name) = (self.dir.clone(), self.next_name());
        let failed =
            |e: String| EmailError::Unavailable(format!("outbox {}: {e}", self.dir.display()));
        tokio::task::spawn_blocking(move || write_message(&dir, &name, body.as_bytes()))
            .await
            .map_err(|e| failed(e.to_string()))?
            .map_err(|e| failed(e.to_string()))
    }
}

/// Where mailed links point: `https://host[:port][/path]` (plain `http` only to a loopback
/// host), no query, fragment or credentials, no trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkBase(String);

impl LinkBase {
    /// `raw` as read from the variable `var` (named in the error).
    pub fn parse(var: &str, raw: &str) -> Result<Self, ConfigError> {
        let refuse = |why: &str| ConfigError::new(var, format!("{raw:?} {why}"));
        let parsed = url::Url::parse(raw).map_err(|_| refuse("is not an absolute URL"))?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        let scheme_ok = match parsed.scheme() {
            "https" => parsed.host_str().is_some_and(|h| !h.is_empty()),
            "http" => loopback,
            _ => false,
        };
        if !scheme_ok {
            return Err(refuse(
                "must be an https URL (http only for a loopback host)",
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(refuse("must not carry credentials"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() || raw.contains(['?', '#']) {
            return Err(refuse(
                "must have no query or fragment (the token goes in the fragment)",
            ));
        }
        Ok(Self(parsed.as_str().trim_end_matches('/').to_owned()))
    }

    /// `<base>/<page>#token=<token>`: the fragment never reaches a server or a `Referer`.
    pub fn link(&self, page: &str, token: &str) -> String {
        format!("{}/{page}#token={token}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use bastion_core::{ManualClock, Timestamp};

    use super::*;

    #[test]
    fn a_link_base_is_an_https_origin_and_path_and_links_carry_the_token_in_the_fragment() {
        let base = LinkBase::parse("LINK", "https://app.example.com/account/").unwrap();
        assert_eq!(
            base.link("verify-email", "abc"),
            "https://app.example.com/account/verify-email#token=abc"
        );
        assert_eq!(
            LinkBase::parse("LINK", "http://127.0.0.1:3000")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:3000"
        );
        for bad in [
            "app.example.com",
            "http://app.example.com",
            "https://app.example.com/?next=x",
            "https://app.example.com/#x",
            "https://user:pw@app.example.com",
            "ftp://app.example.com",
            "",
        ] {
            let err = LinkBase::parse("LINK", bad).unwrap_err();
            assert_eq!(err.var, "LINK", "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_outbox_writes_one_private_json_file_per_message() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!(
            "bastion-outbox-{}",
            hex::encode(bastion_core::random::random_bytes::<6>())
        ));
        let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000)));
        let outbox = OutboxSender::new(dir.clone(), clock);
        let message = EmailMessage {
            to: Email::parse("ada@example.com").unwrap(),
            subject: "Hello".into(),
            text: "line one\n<b>not html</b>\n".into(),
        };
        outbox.send(&message).await.unwrap();
        outbox.send(&message).await.unwrap();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2);
        for (i, file) in files.iter().enumerate() {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with(&format!("1800000000000-{i:06}-")),
                "{name}"
            );
            assert!(
                name.starts_with("1800000000000-") && name.ends_with(".json"),
                "{name}"
            );
            assert_eq!(
                std::fs::metadata(file).unwrap().permissions().mode() & 0o777,
                0o600
            );
            let body: serde_json::Value =
                serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
            assert_eq!(
                body,
                serde_json::json!({"to": "ada@example.com", "subject": "Hello", "text": "line one\n<b>not html</b>\n"})
            );
        }
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
