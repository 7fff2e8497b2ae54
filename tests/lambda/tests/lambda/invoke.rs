//! chat → exec as deployed: the chat function's `LambdaTools` invoking a function through the
//! Lambda Invoke stand-in, with the role credentials and endpoint variables Lambda and the
//! template give chat. The invoked function is `tool_echo` (it answers the event it received)
//! or, through `Deployment::start_agent`, the real exec.

use std::collections::HashMap;
use std::time::Duration;

use bastion_chat::ToolRunner;
use bastion_chat_fn::tools::{LambdaTools, unavailable};
use bastion_core::tools::{
    ReadFileArgs, RunCommandArgs, ToolCall, ToolInvocation, ToolOutcome, WriteFileArgs,
};
use bastion_core::{RequestId, UserId};
use bastion_http::tls::Roots;
use bastion_lambda_tests::aws::REGION;
use bastion_lambda_tests::deployment::EXEC_FUNCTION;
use bastion_lambda_tests::function::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN};
use bastion_lambda_tests::{
    Deployment, Function, GatewayResponse, InvokeApi, LambdaEnv, Outcome, RestEvent, binary,
};
use serde_json::{Value, json};

/// Where every AWS client but Lambda's is sent: nothing listens there, so a Lambda call that
/// ignored `AWS_ENDPOINT_URL_LAMBDA` would fail.
const DEAD_ENDPOINT: &str = "http://127.0.0.1:9";
const BUDGET: Duration = Duration::from_secs(20);

/// chat's environment as far as the runner reads it.
fn chat_env(lambda: &InvokeApi, exec_function: &str) -> HashMap<String, String> {
    [
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        ("AWS_ENDPOINT_URL", DEAD_ENDPOINT),
        ("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint()),
        ("EXEC_FUNCTION_NAME", exec_function),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The runner exactly as chat's `main` builds it: the shared SDK configuration from the
/// environment, then `LambdaTools::from_sdk`.
fn runner(env: &HashMap<String, String>) -> LambdaTools {
    let http = bastion_http::sdk::http_client(&Roots::from_certs(Vec::new())).unwrap();
    let sdk = bastion_http::sdk::from_env(env, http).unwrap();
    LambdaTools::from_sdk(&sdk, env).unwrap()
}

/// `tool_echo` running and registered under `name`.
async fn echo_function(lambda: &InvokeApi, name: &str) -> Function {
    let env = LambdaEnv::lambda("tool-echo", DEAD_ENDPOINT, &std::env::temp_dir());
    let function = Function::start(&binary("debug", "tool_echo"), &env).await;
    lambda.register(name, &function.runtime);
    function
}

fn invocation(call: ToolCall) -> ToolInvocation {
    ToolInvocation {
        user_id: UserId::parse("0123456789abcdef0123456789abcdef").unwrap(),
        request_id: RequestId::generate(),
        call,
    }
}

fn command(line: &str) -> ToolInvocation {
    invocation(ToolCall::RunCommand(RunCommandArgs {
        command: line.to_owned(),
    }))
}

/// An outcome short enough to print.
fn summary(outcome: &ToolOutcome) -> String {
    outcome.to_value().to_string().chars().take(300).collect()
}

#[tokio::test]
async fn a_tool_invocation_round_trips_through_lambda_invoke_signed_with_chats_role() {
    let lambda = InvokeApi::start().await;
    let _echo = echo_function(&lambda, EXEC_FUNCTION).await;
    let tools = runner(&chat_env(&lambda, EXEC_FUNCTION));
    // A whole 1 MiB file (write_file's limit) crosses in the payload.
    let inv = invocation(ToolCall::WriteFile(WriteFileArgs {
        path: "notes/big.txt".to_owned(),
        content: "é\"\n".repeat(1024 * 1024 / 4),
    }));

    let outcome = tools.run(&inv, BUDGET).await;

    // Compared without printing: a failure would dump the megabyte.
    let expected = ToolOutcome::Ok(json!({"received": inv.to_json()}));
    assert!(
        outcome == expected,
        "not the echoed invocation: {}",
        summary(&outcome)
    );
    let seen = lambda.invocations();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].function, EXEC_FUNCTION);
    assert_eq!(seen[0].access_key_id, ACCESS_KEY_ID);
    assert!(seen[0].payload == inv.to_json());
}

#[tokio::test]
async fn an_exec_function_named_by_its_arn_is_invoked_like_by_its_name() {
    let lambda = InvokeApi::start().await;
    let _echo = echo_function(&lambda, EXEC_FUNCTION).await;
    let tools = runner(&chat_env(&lambda, &InvokeApi::arn(EXEC_FUNCTION)));
    let inv = invocation(ToolCall::ReadFile(ReadFileArgs {
        path: "a.txt".to_owned(),
    }));
    assert_eq!(
        tools.run(&inv, BUDGET).await,
        ToolOutcome::Ok(json!({"received": inv.to_json()}))
    );
}

#[tokio::test]
async fn a_function_error_is_tool_unavailable_and_the_next_call_still_runs() {
    let lambda = InvokeApi::start().await;
    let _echo = echo_function(&lambda, EXEC_FUNCTION).await;
    let tools = runner(&chat_env(&lambda, EXEC_FUNCTION));

    assert_eq!(tools.run(&command("fail"), BUDGET).await, unavailable());

    let next = command("ls");
    assert_eq!(
        tools.run(&next, BUDGET).await,
        ToolOutcome::Ok(json!({"received": next.to_json()}))
    );
}

#[tokio::test]
async fn an_answer_that_is_not_a_tool_outcome_is_tool_unavailable() {
    let lambda = InvokeApi::start().await;
    let _echo = echo_function(&lambda, EXEC_FUNCTION).await;
    let tools = runner(&chat_env(&lambda, EXEC_FUNCTION));
    assert_eq!(
        tools.run(&command("not-an-outcome"), BUDGET).await,
        unavailable()
    );
}

#[tokio::test]
async fn an_unknown_function_name_is_tool_unavailable_and_invokes_nothing() {
    let lambda = InvokeApi::start().await;
    let _echo = echo_function(&lambda, EXEC_FUNCTION).await;
    let tools = runner(&chat_env(&lambda, "bastion-auth"));
    assert_eq!(tools.run(&command("ls"), BUDGET).await, unavailable());
    assert!(lambda.invocations().is_empty());
}

#[tokio::test]
async fn a_function_slower_than_the_budget_is_tool_unavailable() {
    let lambda = InvokeApi::start().await;
    let _echo = echo_function(&lambda, EXEC_FUNCTION).await;
    let tools = runner(&chat_env(&lambda, EXEC_FUNCTION));
    // The function answers (in 20 s) only long after the budget is spent.
    assert_eq!(
        tools
            .run(&command("sleep 20000"), Duration::from_millis(300))
            .await,
        unavailable()
    );
    assert_eq!(lambda.invocations().len(), 1);
}

/// A raw Invoke request to the stand-in, signed-looking with `access_key`.
async fn raw_invoke(lambda: &InvokeApi, name: &str, access_key: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/2015-03-31/functions/{name}/invocations",
            lambda.endpoint()
        ))
        .body("{}");
    if let Some(key) = access_key {
        request = request.header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={key}/20261206/{REGION}/lambda/aws4_request, \
                 SignedHeaders=host, Signature=00"
            ),
        );
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_invoke_stand_in_answers_like_lambda_for_unknown_functions_and_unsigned_calls() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let lambda = InvokeApi::start().await;

    let r = raw_invoke(&lambda, "bastion-nope", Some(ACCESS_KEY_ID)).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()["x-amzn-errortype"].to_str().unwrap(),
        "ResourceNotFoundException"
    );
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"Type": "User", "message": format!(
            "Function not found: arn:aws:lambda:{REGION}:123456789012:function:bastion-nope"
        )})
    );

    let r = raw_invoke(&lambda, "bastion-nope", None).await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["x-amzn-errortype"].to_str().unwrap(),
        "MissingAuthenticationTokenException"
    );
}

#[tokio::test]
async fn the_agent_deployment_routes_the_exec_function_name_to_the_running_exec() {
    let d = Deployment::new().await;
    let agent = d.start_agent().await;
    // exec (its edge: a health check needs a token too) answers an event sent through Lambda
    // Invoke under the name chat is given.
    let event = RestEvent::get("/exec/health").to_json();
    let r = reqwest::Client::new()
        .post(format!(
            "{}/2015-03-31/functions/{EXEC_FUNCTION}/invocations",
            agent.lambda.endpoint()
        ))
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20261206/{REGION}/lambda/aws4_request"
            ),
        )
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-amz-function-error").is_none());
    let proxy = r.json::<Value>().await.unwrap();
    GatewayResponse::from_outcome(Outcome::Response(proxy)).assert_error(
        401,
        "unauthorized",
        "missing bearer token",
    );
    // chat started with the Lambda endpoint and the exec function name it was given.
    let health = agent.chat.call(&RestEvent::get("/chat/health")).await;
    assert_eq!(health.status, 200, "{}", health.text());
}

/// The whole path as deployed: the runner chat builds, its Lambda endpoint the agent
/// deployment's Invoke stand-in, the real exec answering a tool invocation in the user's
/// workspace. Needs exec's direct-invoke entry (branch s22-exec): without it exec answers an
/// invocation as a malformed event, a function error.
#[tokio::test]
async fn a_tool_call_through_lambda_invoke_runs_in_the_users_exec_workspace() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (user, _) = crate::signed_up(&auth, "invoker@example.com").await;
    let agent = d.start_agent().await;
    let tools = runner(&chat_env(&agent.lambda, EXEC_FUNCTION));
    let user = UserId::parse(&user).unwrap();
    let call = |call: ToolCall| ToolInvocation {
        user_id: user.clone(),
        request_id: RequestId::generate(),
        call,
    };

    let wrote = tools
        .run(
            &call(ToolCall::WriteFile(WriteFileArgs {
                path: "notes.txt".to_owned(),
                content: "b\na\n".to_owned(),
            })),
            BUDGET,
        )
        .await;
    assert_eq!(
        wrote,
        ToolOutcome::Ok(json!({"path": "notes.txt", "size": 4, "created": true}))
    );
    let ran = tools
        .run(
            &call(ToolCall::RunCommand(RunCommandArgs {
                command: "sort notes.txt".to_owned(),
            })),
            BUDGET,
        )
        .await;
    let ToolOutcome::Ok(output) = ran else {
        panic!("the run failed: {ran:?}");
    };
    assert_eq!(
        (&output["exit_code"], &output["stdout"]),
        (&json!(0), &json!("a\nb\n"))
    );
    let read = tools
        .run(
            &call(ToolCall::ReadFile(ReadFileArgs {
                path: "notes.txt".to_owned(),
            })),
            BUDGET,
        )
        .await;
    assert_eq!(
        read,
        ToolOutcome::Ok(
            json!({"path": "notes.txt", "size": 4, "encoding": "utf8", "content": "b\na\n"})
        )
    );
    let seen = agent.lambda.invocations();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|i| i.access_key_id == ACCESS_KEY_ID));
}
