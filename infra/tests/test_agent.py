"""chat → exec as deployed: chat's agent configuration, the chat role's one invoke grant (exactly
the exec function), no other way to invoke exec than API Gateway on the stage; each check shown
failing on the template before the agent and on deliberate widenings."""

import copy
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import agent  # noqa: E402
import drift  # noqa: E402
import params  # noqa: E402
import translated  # noqa: E402

TEMPLATE = drift.load_template()
TRANSLATED = translated.translate(TEMPLATE)
ROOT = drift.ROOT
EXEC_ARN = {"Fn::GetAtt": ["ExecFunction", "Arn"]}


def chat_grant(t: dict) -> dict:
    """The chat role's invoke statement in the translated template `t`."""
    policies = t["Resources"]["ChatRole"]["Properties"]["Policies"]
    return next(p for p in policies if p["PolicyName"] == "tools")["PolicyDocument"]["Statement"][0]


def add_role_statement(t: dict, role: str, statement: dict) -> None:
    t["Resources"][role]["Properties"]["Policies"].append(
        {"PolicyName": "extra", "PolicyDocument": {"Version": "2012-10-17", "Statement": [statement]}}
    )


def invoke(resource) -> dict:
    return {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": resource}


class AgentConfiguration(unittest.TestCase):
    def test_the_template_is_in_step_with_the_agent(self):
        self.assertEqual(agent.agent_drift(TRANSLATED, ROOT), [])

    def test_the_template_before_the_agent_is_drift(self):
        t = copy.deepcopy(TRANSLATED)
        env = t["Resources"]["ChatFunction"]["Properties"]["Environment"]["Variables"]
        for name in ("EXEC_FUNCTION_NAME", "CHAT_TOOLS", "AGENT_MAX_STEPS"):
            del env[name]
        t["Resources"]["ChatRole"]["Properties"]["Policies"] = [
            p for p in t["Resources"]["ChatRole"]["Properties"]["Policies"] if p["PolicyName"] != "tools"
        ]
        self.assertEqual(
            agent.agent_drift(t, ROOT),
            [
                "ChatFunction: EXEC_FUNCTION_NAME is not !Ref ExecFunction (the name chat invokes)",
                "ChatFunction: CHAT_TOOLS is not set from a template parameter",
                "ChatFunction: AGENT_MAX_STEPS is not set from a template parameter",
                "ChatRole: cannot invoke ExecFunction, so no tool call can run",
            ],
        )

    def test_chat_pointed_at_another_function_is_drift(self):
        t = copy.deepcopy(TRANSLATED)
        env = t["Resources"]["ChatFunction"]["Properties"]["Environment"]["Variables"]
        env["EXEC_FUNCTION_NAME"] = {"Ref": "AuthFunction"}
        self.assertEqual(
            agent.agent_environment_drift(t, ROOT),
            ["ChatFunction: EXEC_FUNCTION_NAME is not !Ref ExecFunction (the name chat invokes)"],
        )

    def test_the_tools_parameter_accepts_exactly_the_codes_tool_names(self):
        self.assertEqual(agent.code_tools(ROOT), ["run_command", "read_file", "write_file", "list_files"])
        self.assertEqual(
            TEMPLATE["Parameters"]["ChatTools"]["AllowedPattern"], agent.tools_pattern(ROOT)
        )
        t = copy.deepcopy(TRANSLATED)
        t["Parameters"]["ChatTools"]["AllowedPattern"] = "^[a-z_,]*$"
        t["Parameters"]["ChatTools"]["Default"] = "read_file"
        self.assertEqual(
            agent.agent_environment_drift(t, ROOT),
            [
                f"parameter ChatTools (CHAT_TOOLS): AllowedPattern '^[a-z_,]*$', the code's tools "
                f"are {agent.tools_pattern(ROOT)!r}",
                "parameter ChatTools (CHAT_TOOLS): default 'read_file' does not offer every tool "
                "(run_command,read_file,write_file,list_files)",
            ],
        )

    def test_the_step_cap_parameter_holds_the_codes_bounds_once_the_code_reads_it(self):
        root = Path(tempfile.mkdtemp(prefix="bastion-agent-"))
        self.addCleanup(shutil.rmtree, root)
        for d in ("crates", "functions"):
            shutil.copytree(ROOT / d, root / d, ignore=shutil.ignore_patterns("target"))
        probe = root / "crates/bastion-chat/src/agent_steps_probe.rs"
        probe.write_text('fn steps(env: &dyn Env) { bounded(env, "AGENT_MAX_STEPS", 8, 1..=32) }\n')
        self.assertEqual(params.parameter_bounds_drift(TEMPLATE, root), [])
        probe.write_text('fn steps(env: &dyn Env) { bounded(env, "AGENT_MAX_STEPS", 8, 1..=16) }\n')
        self.assertEqual(
            params.parameter_bounds_drift(TEMPLATE, root),
            ["parameter AgentMaxSteps (AGENT_MAX_STEPS): allows 1..32, the code accepts 1..16"],
        )


class InvokeGrants(unittest.TestCase):
    def test_the_chat_role_may_invoke_exactly_the_exec_function_and_no_role_any_other(self):
        self.assertEqual(agent.describe(TRANSLATED), ["ChatRole: lambda:InvokeFunction on ${ExecFunction.Arn}"])
        self.assertEqual(agent.invoke_grant_drift(TRANSLATED), [])

    def test_a_wildcard_resource_is_drift(self):
        for resource in ("*", {"Fn::Sub": "arn:aws:lambda:us-east-1:123456789012:function:*"}):
            t = copy.deepcopy(TRANSLATED)
            chat_grant(t)["Resource"] = resource
            drifts = agent.invoke_grant_drift(t)
            self.assertEqual(len(drifts), 1, drifts)
            self.assertTrue(drifts[0].startswith("ChatRole: its invoke grant reaches"), drifts)

    def test_invoking_auth_as_well_is_drift(self):
        t = copy.deepcopy(TRANSLATED)
        chat_grant(t)["Resource"] = [EXEC_ARN, {"Fn::GetAtt": ["AuthFunction", "Arn"]}]
        self.assertEqual(
            agent.invoke_grant_drift(t),
            [
                "ChatRole: its invoke grant reaches ['${ExecFunction.Arn}', '${AuthFunction.Arn}'], "
                "not exactly ExecFunction's ARN"
            ],
        )

    def test_a_wider_action_is_drift(self):
        for action in ("lambda:*", "*", ["lambda:InvokeFunction", "lambda:UpdateFunctionCode"]):
            t = copy.deepcopy(TRANSLATED)
            chat_grant(t)["Action"] = action
            drifts = agent.invoke_grant_drift(t)
            self.assertEqual(len(drifts), 1, drifts)
            self.assertIn("not exactly lambda:InvokeFunction", drifts[0])

    def test_another_role_that_can_invoke_exec_is_drift(self):
        for role in ("WebhooksRole", "AuthRole", "ExecRole"):
            t = copy.deepcopy(TRANSLATED)
            add_role_statement(t, role, invoke(EXEC_ARN))
            self.assertEqual(
                agent.invoke_grant_drift(t),
                [f"{role}: grants a Lambda invoke; only the chat role (ChatRole) may, on ExecFunction"],
            )

    def test_a_wildcard_action_elsewhere_is_seen_as_an_invoke(self):
        t = copy.deepcopy(TRANSLATED)
        add_role_statement(t, "WebhooksRole", {"Effect": "Allow", "Action": "Lambda:Invoke*", "Resource": "*"})
        add_role_statement(t, "AuthRole", {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"})
        self.assertEqual(len(agent.invoke_grant_drift(t)), 2)

    def test_a_standalone_policy_attached_to_a_role_is_drift(self):
        t = copy.deepcopy(TRANSLATED)
        t["Resources"]["ExtraInvoke"] = {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "extra",
                "Roles": [{"Ref": "WebhooksRole"}],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [invoke(EXEC_ARN)]},
            },
        }
        self.assertEqual(
            agent.invoke_grant_drift(t),
            ["WebhooksRole: grants a Lambda invoke; only the chat role (ChatRole) may, on ExecFunction"],
        )

    def test_a_managed_policy_that_may_invoke_is_drift(self):
        t = copy.deepcopy(TRANSLATED)
        t["Resources"]["WebhooksRole"]["Properties"]["ManagedPolicyArns"] = [
            "arn:aws:iam::aws:policy/service-role/AWSLambdaRole"
        ]
        self.assertEqual(
            agent.invoke_grant_drift(t),
            ["WebhooksRole: managed policy AWSLambdaRole may grant a Lambda invoke "
             "(agent.MANAGED_POLICIES_WITHOUT_INVOKE)"],
        )

    def test_a_sam_policy_template_on_a_function_is_caught_in_the_translation(self):
        t = copy.deepcopy(TEMPLATE)
        props = t["Resources"]["WebhooksFunction"]["Properties"]
        del props["Role"]
        props["Policies"] = [{"LambdaInvokePolicy": {"FunctionName": drift._Tag("Ref", "ExecFunction")}}]
        drifts = agent.invoke_grant_drift(translated.translate(t))
        self.assertIn(
            "WebhooksFunctionRole: grants a Lambda invoke; only the chat role (ChatRole) may, on ExecFunction",
            drifts,
        )


class ExecResourcePolicy(unittest.TestCase):
    def test_only_api_gateway_on_the_stage_may_invoke_exec_through_its_resource_policy(self):
        permissions = [
            (r["Properties"]["Principal"], translated._sub_text(r["Properties"]["SourceArn"]))
            for r in TRANSLATED["Resources"].values()
            if r["Type"] == "AWS::Lambda::Permission"
            and "ExecFunction" in translated._ref_ids(r["Properties"]["FunctionName"])
        ]
        self.assertEqual(
            permissions,
            [(
                "apigateway.amazonaws.com",
                "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/${StageName}/*/exec/*",
            )],
        )
        self.assertEqual(agent.exec_permission_drift(TRANSLATED), [])

    def test_a_permission_for_another_principal_is_drift(self):
        for principal in ("*", "123456789012", "lambda.amazonaws.com"):
            t = copy.deepcopy(TRANSLATED)
            t["Resources"]["ExecAnyone"] = {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": {"Ref": "ExecFunction"},
                    "Principal": principal,
                },
            }
            self.assertEqual(
                agent.exec_permission_drift(t),
                [f"permission ExecAnyone: lets {principal!r} invoke ExecFunction; only API Gateway "
                 "may (a tool call comes from the chat role, by IAM)"],
            )

    def test_a_function_url_on_exec_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        t["Resources"]["ExecFunction"]["Properties"]["FunctionUrlConfig"] = {"AuthType": "AWS_IAM"}
        drifts = agent.exec_permission_drift(translated.translate(t))
        self.assertIn("ExecFunctionUrl: a function URL on ExecFunction bypasses API Gateway and the WAF", drifts)


if __name__ == "__main__":
    unittest.main()
