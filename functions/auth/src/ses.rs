//! The deployed `EmailSender`: SES v2 `SendEmail`, plain text only, from `EMAIL_FROM`; and the
//! choice between it and the local outbox (`EMAIL_SENDER`).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::DisplayErrorContext;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_types::SdkConfig;
use bastion_core::{Clock, Email};
use bastion_http::email::{EmailError, EmailMessage, EmailSender, LinkBase, OutboxSender};

const LINK_BASE_VAR: &str = "EMAIL_LINK_BASE";
use bastion_http::{ConfigError, Env};

pub struct SesSender {
    client: Client,
    from: Email,
}

impl SesSender {
    pub fn new(sdk: &SdkConfig, from: Email) -> Self {
        Self {
            client: Client::new(sdk),
            from,
        }
    }
}

fn utf8(data: &str) -> Result<Content, EmailError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| EmailError::Unavailable(format!("SES message could not be built: {e}")))
}

#[async_trait]
impl EmailSender for SesSender {
    async fn send(&self, message: &EmailMessage) -> Result<(), EmailError> {
        let body = Body::builder().text(utf8(&message.text)?).build();
        let content = EmailContent::builder()
            .simple(
                Message::builder()
                    .subject(utf8(&message.subject)?)
                    .body(body)
                    .build(),
            )
            .build();
        self.client
            .send_email()
            .from_email_address(self.from.as_str())
            .destination(
                Destination::builder()
                    .to_addresses(message.to.as_str())
                    .build(),
            )
            .content(content)
            .send()
            .await
            // The chain names SES's reason (an unverified identity, a throttle), never the recipient.
            .map_err(|e| {
                EmailError::Unavailable(format!("SES SendEmail: {}", DisplayErrorContext(&e)))
            })?;
        Ok(())
    }
}

/// The mail sender and link base a function was configured with.
pub struct EmailSetup {
    pub sender: Arc<dyn EmailSender>,
    pub link_base: LinkBase,
}

impl EmailSetup {
    /// Lambda (`sdk` given, no outbox): `EMAIL_SENDER` must be `ses`, with `EMAIL_FROM` and
    /// `EMAIL_LINK_BASE` set. Locally (`outbox` given): the outbox unless `EMAIL_SENDER=ses`,
    /// and links to `default_link_base` unless `EMAIL_LINK_BASE` is set.
    pub fn from_env(
        env: &dyn Env,
        sdk: Option<&SdkConfig>,
        outbox: Option<&Path>,
        clock: Arc<dyn Clock>,
        default_link_base: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let kind = env.get("EMAIL_SENDER").map(|v| v.trim().to_owned());
        let sender: Arc<dyn EmailSender> = match (kind.as_deref(), outbox, sdk) {
            (Some("ses"), _, Some(sdk)) => Arc::new(SesSender::new(sdk, from(env)?)),
            (Some("ses"), _, None) => {
                return Err(ConfigError::new(
                    "EMAIL_SENDER",
                    "ses needs AWS credentials and a region (Lambda)",
                ));
            }
            (None | Some("") | Some("outbox"), Some(dir), _) => {
                Arc::new(OutboxSender::new(dir.to_path_buf(), clock))
            }
            (None | Some(""), None, _) => {
                return Err(ConfigError::new("EMAIL_SENDER", "is required (ses)"));
            }
            (Some("outbox"), None, _) => {
                return Err(ConfigError::new(
                    "EMAIL_SENDER",
                    "outbox is for the local server only; use ses",
                ));
            }
            (Some(other), _, _) => {
                return Err(ConfigError::new(
                    "EMAIL_SENDER",
                    format!("must be ses or outbox, not {other:?}"),
                ));
            }
        };
        let link_base = match (
            env.get(LINK_BASE_VAR).filter(|v| !v.trim().is_empty()),
            default_link_base,
        ) {
            (Some(raw), _) => LinkBase::parse(LINK_BASE_VAR, raw.trim())?,
            (None, Some(default)) => LinkBase::parse(LINK_BASE_VAR, default)?,
            (None, None) => return Err(ConfigError::new(LINK_BASE_VAR, "is required")),
        };
        Ok(Self { sender, link_base })
    }
}

fn from(env: &dyn Env) -> Result<Email, ConfigError> {
    let raw = env
        .get("EMAIL_FROM")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ConfigError::new("EMAIL_FROM", "is required with EMAIL_SENDER=ses"))?;
    Email::parse(raw.trim()).map_err(|e| ConfigError::new("EMAIL_FROM", e.message))
}

#[cfg(test)]
mod tests {
    use bastion_core::{ManualClock, Timestamp};
    use bastion_http::config::map_env as env;

    use super::*;

    fn sdk() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("us-east-1"))
            .build()
    }

    fn setup(vars: &[(&str, &str)], lambda: bool) -> Result<EmailSetup, ConfigError> {
        let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000)));
        let dir = std::env::temp_dir().join("bastion-outbox-config");
        let e = env(vars);
        if lambda {
            EmailSetup::from_env(&e, Some(&sdk()), None, clock, None)
        } else {
            EmailSetup::from_env(&e, None, Some(&dir), clock, Some("http://127.0.0.1:3000"))
        }
    }

    fn refusal(vars: &[(&str, &str)], lambda: bool) -> (String, String) {
        match setup(vars, lambda) {
            Ok(_) => panic!("accepted {vars:?}"),
            Err(e) => (e.var, e.reason),
        }
    }

    #[test]
    fn lambda_mails_through_ses_and_refuses_anything_that_would_not_deliver() {
        let ok = setup(
            &[
                ("EMAIL_SENDER", "ses"),
                ("EMAIL_FROM", "no-reply@example.com"),
                ("EMAIL_LINK_BASE", "https://app.example.com"),
            ],
            true,
        )
        .unwrap();
        assert_eq!(ok.link_base.as_str(), "https://app.example.com");
        assert_eq!(
            refusal(&[], true),
            ("EMAIL_SENDER".into(), "is required (ses)".into())
        );
        assert_eq!(
            refusal(&[("EMAIL_SENDER", "outbox")], true),
            (
                "EMAIL_SENDER".into(),
                "outbox is for the local server only; use ses".into()
            )
        );
        assert_eq!(
            refusal(
                &[
                    ("EMAIL_SENDER", "ses"),
                    ("EMAIL_LINK_BASE", "https://app.example.com")
                ],
                true
            ),
            (
                "EMAIL_FROM".into(),
                "is required with EMAIL_SENDER=ses".into()
            )
        );
        assert_eq!(
            refusal(
                &[
                    ("EMAIL_SENDER", "ses"),
                    ("EMAIL_FROM", "no-reply@example.com")
                ],
                true
            ),
            ("EMAIL_LINK_BASE".into(), "is required".into())
        );
        assert_eq!(refusal(&[("EMAIL_SENDER", "smtp")], true).0, "EMAIL_SENDER");
    }

    #[test]
    fn locally_mail_goes_to_the_outbox_and_links_to_this_server() {
        let ok = setup(&[], false).unwrap();
        assert_eq!(ok.link_base.as_str(), "http://127.0.0.1:3000");
        let ok = setup(&[("EMAIL_LINK_BASE", "https://app.example.com/")], false).unwrap();
        assert_eq!(ok.link_base.as_str(), "https://app.example.com");
        assert_eq!(
            refusal(&[("EMAIL_SENDER", "ses")], false),
            (
                "EMAIL_SENDER".into(),
                "ses needs AWS credentials and a region (Lambda)".into()
            )
        );
    }
}
