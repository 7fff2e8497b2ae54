//! Start-up failures as Lambda sees them: every function that cannot start posts the reason to
//! the Runtime API's `init/error` (naming the variable or document key, never a value) and
//! exits non-zero, so the console shows an init error with its cause.

use std::time::Duration;

use bastion_lambda_tests::{Deployment, Function, InitError};
use serde_json::json;

const FUNCTIONS: [&str; 4] = ["auth", "webhooks", "chat", "exec"];

/// Waits for `function` to exit and returns its init error report, failing when it kept
/// running, exited successfully or posted nothing.
async fn init_error_of(name: &str, function: &mut Function) -> InitError {
    let status = function
        .exit_within(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("{name}: start-up did not stop: {}", function.output()));
    assert!(!status.success(), "{name}: {status:?}");
    function.runtime.init_error_report().unwrap_or_else(|| {
        panic!(
            "{name} exited without posting init/error: {}",
            function.output()
        )
    })
}

#[tokio::test]
async fn a_secret_in_the_plain_environment_is_posted_as_an_init_error_naming_it_never_its_value() {
    let d = Deployment::new().await;
    let value = "plain-env-stripe-secret-that-must-never-be-posted";
    for name in FUNCTIONS {
        let env = d.env(name).set("STRIPE_WEBHOOK_SECRETS", value);
        let mut function = d.start_with(name, &env).await;
        let report = init_error_of(name, &mut function).await;
        assert_eq!(
            report.error_type.as_deref(),
            Some("Runtime.ConfigInvalid"),
            "{name}"
        );
        assert_eq!(report.body["errorType"], json!("Runtime.ConfigInvalid"));
        assert_eq!(
            report.body["errorMessage"],
            json!(
                "configuration STRIPE_WEBHOOK_SECRETS: is a secret and must not be in the Lambda \
                 environment; put it in the Secrets Manager document named by BASTION_SECRET_ID"
            ),
            "{name}"
        );
        assert!(!report.raw.contains(value), "{name}: {}", report.raw);
        assert!(!function.output().contains(value), "{name}");
        // The function never asked for work.
        assert!(
            function
                .runtime
                .first_poll_within(Duration::from_millis(10))
                .await
                .is_none(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_malformed_secret_document_is_posted_as_an_init_error_naming_the_key() {
    let d = Deployment::with_secrets(&json!({
        "JWT_SIGNING_KEYS": "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "JWT_VERIFY_KEYS": "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
        "PASSWORD_PEPPER": 12345,
    }))
    .await;
    let mut auth = d.start("auth").await;
    let report = init_error_of("auth", &mut auth).await;
    assert_eq!(report.error_type.as_deref(), Some("Runtime.ConfigInvalid"));
    assert_eq!(
        report.body,
        json!({
            "errorMessage": "configuration PASSWORD_PEPPER: must be a string in the secret document",
            "errorType": "Runtime.ConfigInvalid",
        })
    );
    assert!(!report.raw.contains("AAECAwQF"), "{}", report.raw);
}

/// A deploy that points exec at the main document (which holds auth's signing keys) fails
/// closed: exec names the first key it has no use for and never asks for work.
#[tokio::test]
async fn exec_pointed_at_the_main_secret_document_is_posted_as_an_init_error_naming_a_signing_key()
{
    let d = Deployment::new().await;
    let env = d.env("exec").set("BASTION_SECRET_ID", &d.secret_id);
    let mut exec = d.start_with("exec", &env).await;
    let report = init_error_of("exec", &mut exec).await;
    assert_eq!(report.error_type.as_deref(), Some("Runtime.ConfigInvalid"));
    assert_eq!(
        report.body,
        json!({
            "errorMessage": "configuration JWT_SIGNING_KEYS: is not used by this function and must \
                 not be in its secret document; it may hold only: EXEC_SANDBOX_KEY, JWT_VERIFY_KEYS",
            "errorType": "Runtime.ConfigInvalid",
        })
    );
    assert!(!report.raw.contains("BwcHBwcH"), "{}", report.raw);
    assert!(
        exec.runtime
            .first_poll_within(Duration::from_millis(10))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_missing_secret_id_is_posted_as_an_init_error_naming_bastion_secret_id() {
    let d = Deployment::new().await;
    let mut chat = d
        .start_with("chat", &d.env("chat").remove("BASTION_SECRET_ID"))
        .await;
    let report = init_error_of("chat", &mut chat).await;
    assert_eq!(
        report.body,
        json!({
            "errorMessage": "configuration BASTION_SECRET_ID: is required",
            "errorType": "Runtime.ConfigInvalid",
        })
    );
}

/// Tools are offered by default, and chat cannot run one without knowing the exec function.
#[tokio::test]
async fn chat_offering_tools_without_exec_function_name_is_posted_as_an_init_error_naming_it() {
    let d = Deployment::new().await;
    let mut chat = d
        .start_with("chat", &d.env("chat").remove("EXEC_FUNCTION_NAME"))
        .await;
    let report = init_error_of("chat", &mut chat).await;
    assert_eq!(
        report.body,
        json!({
            "errorMessage": "configuration EXEC_FUNCTION_NAME: is required when tools are offered \
                 (the exec function's name or ARN)",
            "errorType": "Runtime.ConfigInvalid",
        })
    );
}

#[tokio::test]
async fn chat_offering_no_tools_starts_without_exec_function_name() {
    let d = Deployment::new().await;
    let env = d
        .env("chat")
        .remove("EXEC_FUNCTION_NAME")
        .set("CHAT_TOOLS", "");
    let chat = d.start_with("chat", &env).await;
    let r = chat
        .call(&bastion_lambda_tests::RestEvent::get("/chat/health"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}
