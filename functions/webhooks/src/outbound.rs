//! Sending answers back: Telegram Bot API `sendMessage` and the Messenger Send API, at
//! configurable base URLs, with long answers split to each platform's limit.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// Telegram's `sendMessage` limit, in UTF-16 code units.
pub const TELEGRAM_MAX_TEXT: usize = 4096;
/// Messenger's text message limit, in UTF-16 code units.
pub const MESSENGER_MAX_TEXT: usize = 2000;
/// An outbound call that takes longer is a failure (the platform retries the delivery).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an answer could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The platform refused the message for good (blocked bot, unknown chat): retrying the
    /// delivery cannot help.
    #[error("{platform} refused the message with status {status}")]
    Refused { platform: &'static str, status: u16 },
    /// Network failure or a 5xx/429: worth a retry of the whole delivery.
    #[error("{platform} send failed: {detail}")]
    Transient {
        platform: &'static str,
        detail: String,
    },
}

/// The one outbound HTTP client, built once at start-up over the process's one trust store
/// and TLS stack (aws-lc).
pub fn http_client() -> Result<reqwest::Client, ClientError> {
    let tls = bastion_http::tls::roots().client_config()?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(SEND_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Why the outbound client could not be built at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("TLS could not be configured: {0}")]
    Tls(#[from] rustls::Error),
    #[error("the HTTP client could not be built: {0}")]
    Build(#[from] reqwest::Error),
}

/// Splits `text` into pieces of at most `max` UTF-16 code units, never inside a character,
/// preferring to cut after a newline in the second half of a piece. Concatenating the pieces
/// gives `text` back.
pub fn split_message(text: &str, max: usize) -> Vec<&str> {
    let max = max.max(2);
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut units = 0;
        let mut end = rest.len();
        let mut last_newline = None;
        for (i, c) in rest.char_indices() {
            if units + c.len_utf16() > max {
                end = i;
                break;
            }
            units += c.len_utf16();
            if c == '\n' && units > max / 2 {
                last_newline = Some(i + 1);
            }
        }
        let cut = if end < rest.len() {
            last_newline.unwrap_or(end)
        } else {
            end
        };
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

fn transient(platform: &'static str, e: reqwest::Error) -> SendError {
    // reqwest errors carry the URL, and Telegram's holds the bot token: drop it.
    let e = e.without_url();
    SendError::Transient {
        platform,
        detail: bastion_http::error::error_chain(&e),
    }
}

async fn post_json(
    platform: &'static str,
    request: reqwest::RequestBuilder,
    body: &serde_json::Value,
) -> Result<(), SendError> {
    let response = request
        .json(body)
        .send()
        .await
        .map_err(|e| transient(platform, e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(SendError::Transient {
            platform,
            detail: format!("status {}", status.as_u16()),
        });
    }
    Err(SendError::Refused {
        platform,
        status: status.as_u16(),
    })
}

/// The Telegram Bot API for one bot.
#[derive(Debug, Clone)]
pub struct TelegramApi {
    pub client: reqwest::Client,
    pub base: String,
    pub token: SecretString,
}

impl TelegramApi {
    /// Sends `text` to `chat_id`, split into as many messages as needed.
    pub async fn send(&self, chat_id: i64, text: &str) -> Result<(), SendError> {
        let url = format!(
            "{}/bot{}/sendMessage",
            self.base,
            self.token.expose_secret()
        );
        for piece in split_message(text, TELEGRAM_MAX_TEXT) {
            let body = serde_json::json!({"chat_id": chat_id, "text": piece});
            post_json("telegram", self.client.post(&url), &body).await?;
        }
        Ok(())
    }
}

/// The Messenger Send API for one page.
#[derive(Debug, Clone)]
pub struct MessengerApi {
    pub client: reqwest::Client,
    pub base: String,
    pub page_token: SecretString,
}

impl MessengerApi {
    /// Sends `text` to the user `psid` as a response, split as needed. The page token goes in
    /// the Authorization header, never the URL.
    pub async fn send(&self, psid: &str, text: &str) -> Result<(), SendError> {
        let url = format!("{}/me/messages", self.base);
        for piece in split_message(text, MESSENGER_MAX_TEXT) {
            let body = serde_json::json!({
                "recipient": {"id": psid},
                "messaging_type": "RESPONSE",
                "message": {"text": piece},
            });
            let request = self
                .client
                .post(&url)
                .bearer_auth(self.page_token.expose_secret());
            post_json("messenger", request, &body).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_telegram_call_reports_no_url_and_so_no_bot_token() {
        let api = TelegramApi {
            client: http_client().unwrap(),
            // Port 1 on loopback refuses connections.
            base: "http://127.0.0.1:1".to_owned(),
            token: SecretString::from("123456:SECRET-bot-token"),
        };
        let err = api.send(5, "hello").await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(matches!(err, SendError::Transient { .. }), "{text}");
        assert!(!text.contains("SECRET-bot-token"), "{text}");
        assert!(!text.contains("127.0.0.1"), "{text}");
    }

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(split_message("hello", 4096), vec!["hello"]);
        assert!(split_message("", 4096).is_empty());
    }

    #[test]
    fn long_text_is_cut_at_the_limit_and_reassembles() {
        let text = "a".repeat(10_000);
        let pieces = split_message(&text, 4096);
        assert_eq!(
            pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![4096, 4096, 1808]
        );
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn cuts_prefer_a_late_newline_and_never_split_a_character() {
        let text = format!("{}\n{}", "b".repeat(3000), "c".repeat(3000));
        let pieces = split_message(&text, 4096);
        assert_eq!(pieces[0], format!("{}\n", "b".repeat(3000)));
        assert_eq!(pieces.concat(), text);
        // Emoji count two UTF-16 units each.
        let emoji = "😀".repeat(3000);
        let pieces = split_message(&emoji, 4096);
        assert_eq!(pieces[0].chars().count(), 2048);
        assert_eq!(pieces.concat(), emoji);
    }
}
