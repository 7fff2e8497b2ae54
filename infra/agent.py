"""The chat agent as deployed: chat runs a tool call by invoking the exec function directly
(Lambda Invoke under the chat role), and exec trusts a tool call's user only because nobody
else can make that invoke. Read off the SAM translation (what `sam deploy` creates, function
`Policies` and generated roles included):

  agent_environment_drift  chat's EXEC_FUNCTION_NAME is the exec function; CHAT_TOOLS comes
                           from a parameter whose AllowedPattern accepts exactly comma-separated
                           tool names as the code spells them (ToolName in
                           crates/bastion-core/src/tools.rs) and whose default offers every
                           tool; AGENT_MAX_STEPS comes from a parameter (its bounds against the
                           code are params.py's)
  invoke_grant_drift       the one Lambda invoke any IAM policy in the stack grants is the chat
                           role's `lambda:InvokeFunction` on the exec function's ARN: one Allow
                           statement, one action, one resource, no wildcard, no NotAction or
                           NotResource; and no role carries a managed policy that could invoke
  exec_permission_drift    exec's resource policy admits API Gateway alone (its stage scoping is
                           translated.stage_drift's), and exec has no function URL
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

from sources import ROOT, fn_bodies, strip_tests
from translated import _ref_ids, _sub_text

CHAT = "ChatFunction"
EXEC = "ExecFunction"
# Every IAM action that invokes a function (InvokeWithResponseStream is authorised as
# lambda:InvokeFunction).
INVOKE_ACTIONS = ("lambda:invokefunction", "lambda:invokeasync", "lambda:invokefunctionurl")
# Managed policies a role of the stack may carry: none of them invokes a function.
MANAGED_POLICIES_WITHOUT_INVOKE = frozenset({"AmazonAPIGatewayPushToCloudWatchLogs"})
TOOL_NAME = re.compile(r'ToolName::[A-Za-z]+\s*=>\s*"([a-z_]+)"')


# ---------------------------------------------------------------------------------------------
# The code's tool names


def code_tools(root: Path = ROOT) -> list[str]:
    """The tool names `ToolName::as_str` spells, in its order."""
    src = strip_tests((root / "crates/bastion-core/src/tools.rs").read_text())
    bodies = fn_bodies(src).get("as_str", [])
    names = [n for body in bodies for n in TOOL_NAME.findall(body)]
    if not names:
        raise ValueError("ToolName::as_str changed shape: update infra/agent.py")
    return names


def tools_pattern(root: Path = ROOT) -> str:
    """The AllowedPattern of CHAT_TOOLS: empty, or tool names joined by commas."""
    one = "(" + "|".join(code_tools(root)) + ")"
    return f"^({one}(,{one})*)?$"


# ---------------------------------------------------------------------------------------------
# Reading the translated template


def _variables(translated: dict, function_id: str) -> dict:
    props = translated["Resources"][function_id]["Properties"]
    return props.get("Environment", {}).get("Variables", {})


def _parameter(translated: dict, value: Any) -> tuple[str, dict] | None:
    if isinstance(value, dict) and isinstance(value.get("Ref"), str):
        name = value["Ref"]
        if name in translated.get("Parameters", {}):
            return name, translated["Parameters"][name]
    return None


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _branches(value: Any) -> list:
    """Both outcomes of an `Fn::If` (either may be deployed), else the value itself."""
    if isinstance(value, dict) and "Fn::If" in value:
        return [b for v in value["Fn::If"][1:] for b in _branches(v)]
    return [value]


def _documents(resource: dict) -> list[dict]:
    """The policy documents an IAM resource holds."""
    props = resource.get("Properties", {})
    kind = resource["Type"]
    if kind == "AWS::IAM::Role":
        return [
            p["PolicyDocument"]
            for pol in props.get("Policies", [])
            for p in _branches(pol)
            if isinstance(p, dict) and "PolicyDocument" in p
        ]
    if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        return [props["PolicyDocument"]]
    return []


def _statements(document: dict) -> list[dict]:
    return [
        st
        for raw in _as_list(document.get("Statement", []))
        for st in _branches(raw)
        if isinstance(st, dict)
    ]


def _invokes(statement: dict) -> bool:
    """Whether an Allow statement grants some invoke action (wildcards included)."""
    if statement.get("Effect") != "Allow":
        return False
    if "NotAction" in statement:
        return True
    actions = [a.lower() for a in _as_list(statement.get("Action", [])) if isinstance(a, str)]
    return any(fnmatch.fnmatchcase(target, a) for a in actions for target in INVOKE_ACTIONS)


def _holder(translated: dict, policy_id: str) -> str:
    """The role a standalone policy is attached to (its logical id), or the policy itself."""
    roles = translated["Resources"][policy_id].get("Properties", {}).get("Roles", [])
    ids = sorted(set().union(*(_ref_ids(r) for r in roles))) if roles else []
    return ids[0] if len(ids) == 1 else policy_id


def invoke_grants(translated: dict) -> list[tuple[str, dict]]:
    """(role logical id, statement) for every statement that grants a Lambda invoke."""
    out = []
    for lid, res in translated["Resources"].items():
        holder = _holder(translated, lid) if res["Type"] != "AWS::IAM::Role" else lid
        for document in _documents(res):
            out += [(holder, st) for st in _statements(document) if _invokes(st)]
    return out


def _role_of(translated: dict, function_id: str) -> str | None:
    ids = _ref_ids(translated["Resources"][function_id]["Properties"].get("Role"))
    return next(iter(ids)) if len(ids) == 1 else None


# ---------------------------------------------------------------------------------------------
# The checks


def agent_environment_drift(translated: dict, root: Path = ROOT) -> list[str]:
    env = _variables(translated, CHAT)
    drifts = []
    if env.get("EXEC_FUNCTION_NAME") != {"Ref": EXEC}:
        drifts.append(f"{CHAT}: EXEC_FUNCTION_NAME is not !Ref {EXEC} (the name chat invokes)")
    tools = _parameter(translated, env.get("CHAT_TOOLS"))
    if tools is None:
        drifts.append(f"{CHAT}: CHAT_TOOLS is not set from a template parameter")
    else:
        name, p = tools
        if p.get("AllowedPattern") != tools_pattern(root):
            drifts.append(
                f"parameter {name} (CHAT_TOOLS): AllowedPattern {p.get('AllowedPattern')!r}, "
                f"the code's tools are {tools_pattern(root)!r}"
            )
        if p.get("Default") != ",".join(code_tools(root)):
            drifts.append(
                f"parameter {name} (CHAT_TOOLS): default {p.get('Default')!r} does not offer "
                f"every tool ({','.join(code_tools(root))})"
            )
    if _parameter(translated, env.get("AGENT_MAX_STEPS")) is None:
        drifts.append(f"{CHAT}: AGENT_MAX_STEPS is not set from a template parameter")
    return drifts


def _grant_drift(role: str, st: dict, chat_role: str | None) -> list[str]:
    """What is wrong with one invoke grant, given the chat role's logical id."""
    if role != chat_role:
        return [f"{role}: grants a Lambda invoke; only the chat role ({chat_role}) may, on {EXEC}"]
    drifts = []
    actions = [a for a in _as_list(st.get("Action", [])) if isinstance(a, str)]
    if "NotAction" in st or [a.lower() for a in actions] != ["lambda:invokefunction"]:
        drifts.append(f"{role}: its invoke grant allows {actions or 'NotAction'}, not exactly lambda:InvokeFunction")
    resources = _as_list(st.get("Resource", []))
    texts = [_sub_text(r) or "" for r in resources]
    exact = len(resources) == 1 and texts[0] == "${" + EXEC + ".Arn}"
    if "NotResource" in st or not exact or any("*" in t for t in texts):
        drifts.append(
            f"{role}: its invoke grant reaches {texts or 'NotResource'}, not exactly {EXEC}'s ARN"
        )
    return drifts


def invoke_grant_drift(translated: dict) -> list[str]:
    chat_role = _role_of(translated, CHAT)
    grants = invoke_grants(translated)
    drifts = [d for role, st in grants for d in _grant_drift(role, st, chat_role)]
    if not any(role == chat_role for role, _ in grants):
        drifts.append(f"{chat_role}: cannot invoke {EXEC}, so no tool call can run")
    elif sum(role == chat_role for role, _ in grants) > 1:
        drifts.append(f"{chat_role}: more than one invoke grant (one statement on {EXEC} only)")
    for lid, res in translated["Resources"].items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for arn in _as_list(res.get("Properties", {}).get("ManagedPolicyArns", [])):
            name = (_sub_text(arn) or repr(arn)).rsplit("/", 1)[-1]
            if name not in MANAGED_POLICIES_WITHOUT_INVOKE:
                drifts.append(
                    f"{lid}: managed policy {name} may grant a Lambda invoke (agent.MANAGED_POLICIES_WITHOUT_INVOKE)"
                )
    return drifts


def exec_permission_drift(translated: dict) -> list[str]:
    drifts = []
    for lid, res in translated["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Lambda::Permission" and EXEC in _ref_ids(props.get("FunctionName")):
            if props.get("Principal") != "apigateway.amazonaws.com":
                drifts.append(
                    f"permission {lid}: lets {props.get('Principal')!r} invoke {EXEC}; only API "
                    "Gateway may (a tool call comes from the chat role, by IAM)"
                )
        if res["Type"] == "AWS::Lambda::Url" and EXEC in _ref_ids(props.get("TargetFunctionArn")):
            drifts.append(f"{lid}: a function URL on {EXEC} bypasses API Gateway and the WAF")
    return drifts


def agent_drift(translated: dict, root: Path = ROOT) -> list[str]:
    return (
        agent_environment_drift(translated, root)
        + invoke_grant_drift(translated)
        + exec_permission_drift(translated)
    )


def describe(translated: dict) -> list[str]:
    """Every Lambda invoke grant, one line each: `Role: actions on resources`."""
    lines = []
    for role, st in invoke_grants(translated):
        actions = ", ".join(a for a in _as_list(st.get("Action", [])) if isinstance(a, str))
        resources = ", ".join(_sub_text(r) or repr(r) for r in _as_list(st.get("Resource", [])))
        lines.append(f"{role}: {actions or 'NotAction'} on {resources or 'NotResource'}")
    return lines
