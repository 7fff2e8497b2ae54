"""The deployed shape: template.yaml translated by aws-sam-translator, as `sam deploy` would.

SAM adds resources the template never names (an implicit `Stage` stage, Lambda permissions
for API events), so the API's exposure is checked on the translation, not the source:

  account_drift the account-wide API Gateway logging role is optional per stack
                (ManageApiGatewayAccount), retained on deletion, and waited for by the API
  stage_drift   the stages are exactly the one `StageName` names; each has a WAF association
                with the stack's web ACL; every Lambda permission for API Gateway names that
                stage in its SourceArn (never `*`), and every routed path has one

Translation is offline: fake account and region, artefact URIs rewritten to S3 as `sam package`
does, and a managed-policy loader that refuses to be called (no function uses managed policy
names, so no AWS call is ever needed).
"""

from __future__ import annotations

import copy
import fnmatch
import logging
import re
from typing import Any

FAKE_ACCOUNT = "123456789012"
FAKE_REGION = "us-east-1"


def to_cfn(node: Any) -> Any:
    """drift.py's template (intrinsics as tagged objects) in CloudFormation's JSON form."""
    tag = getattr(node, "tag", None)
    if tag is not None and hasattr(node, "value"):
        value = to_cfn(node.value)
        if tag == "Ref":
            return {"Ref": value}
        if tag == "GetAtt":
            return {"Fn::GetAtt": value.split(".", 1) if isinstance(value, str) else value}
        return {"Fn::" + tag: value}
    if isinstance(node, dict):
        return {k: to_cfn(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_cfn(v) for v in node]
    return node


class _NoManagedPolicies:
    """Stands in for the loader that would list AWS managed policies through IAM."""

    def load(self) -> dict[str, str]:
        raise RuntimeError("translation needed the AWS managed policy list; it must stay offline")


def translate(template: dict) -> dict:
    """The CloudFormation template SAM makes of `template` (drift.py's or CloudFormation form)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(to_cfn(template))
    # Local artefact paths are S3 URIs once `sam package` has uploaded them.
    sam.get("Globals", {}).get("Function", {})["CodeUri"] = "s3://artefacts/code.zip"
    for res in sam["Resources"].values():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = "s3://artefacts/code.zip"
        if res.get("Type") == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = "s3://artefacts/layer.zip"
    # A session with a region and dummy keys: the translator reads the region from it and
    # never sends a request.
    session = boto3.session.Session(
        region_name=FAKE_REGION, aws_access_key_id="offline", aws_secret_access_key="offline"
    )
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    return Translator(None, Parser(), boto_session=session).translate(
        sam,
        {"AWS::AccountId": FAKE_ACCOUNT},
        get_managed_policy_map=_NoManagedPolicies().load,
    )


# ---------------------------------------------------------------------------------------------
# Reading CloudFormation values


def _sub_text(value: Any) -> str | None:
    """The text of a `Fn::Sub` (its variable map applied where the values are literals), a
    plain string, or a `Fn::Join` of those and `Ref`s (as `${Name}`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"] + "}"
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        if isinstance(sub, str):
            return sub
        text, names = sub[0], sub[1]
        for name, v in names.items():
            inner = _sub_text(v)
            if inner is not None:
                text = text.replace("${" + name + "}", inner)
        return text
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        texts = [_sub_text(p) for p in parts]
        return None if None in texts else sep.join(t for t in texts if t is not None)
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    return None


def _ref_ids(value: Any) -> set[str]:
    """Logical ids a value points at (Ref, GetAtt, and `${Id…}` in Sub text)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found |= {m.split(".")[0] for m in re.findall(r"\$\{([A-Za-z0-9.]+)\}", text)}
        for v in value.values():
            found |= _ref_ids(v)
    elif isinstance(value, list):
        for v in value:
            found |= _ref_ids(v)
    return found


def _name_token(value: Any) -> str:
    """A stage name as text: a literal, or `${Param}` for a `Ref`."""
    text = _sub_text(value)
    return text if text is not None else repr(value)


# ---------------------------------------------------------------------------------------------
# The check


def stages(translated: dict) -> dict[str, str | None]:
    """Stage name -> the logical id of its `AWS::ApiGateway::Stage` (None for a stage a
    Deployment's own StageName creates)."""
    out: dict[str, str | None] = {}
    for lid, res in translated["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::ApiGateway::Stage":
            out[_name_token(props.get("StageName"))] = lid
        elif res["Type"] == "AWS::ApiGateway::Deployment" and "StageName" in props:
            out.setdefault(_name_token(props["StageName"]), None)
    return out


def _associated(translated: dict, name: str, stage_id: str | None) -> bool:
    res = translated["Resources"]
    for assoc in res.values():
        if assoc["Type"] != "AWS::WAFv2::WebACLAssociation":
            continue
        props = assoc["Properties"]
        acl_ids = _ref_ids(props.get("WebACLArn"))
        if not any(res.get(a, {}).get("Type") == "AWS::WAFv2::WebACL" for a in acl_ids):
            continue
        arn = props.get("ResourceArn")
        if stage_id is not None and stage_id in _ref_ids(arn):
            return True
        text = _sub_text(arn) or ""
        if text.endswith("/stages/" + name):
            return True
    return False


def _routed_paths(translated: dict) -> dict[str, list[str]]:
    """Function logical id -> the API paths whose integration invokes it."""
    out: dict[str, list[str]] = {}
    for res in translated["Resources"].values():
        if res["Type"] != "AWS::ApiGateway::RestApi":
            continue
        for path, methods in res["Properties"].get("Body", {}).get("paths", {}).items():
            for op in methods.values():
                uri = op.get("x-amazon-apigateway-integration", {}).get("uri") if isinstance(op, dict) else None
                for fid in _ref_ids(uri):
                    out.setdefault(fid, []).append(path)
    return out


# …:execute-api:<region>:<account>:<api id>/<stage>/<method>/<path>
PERMISSION_ARN = re.compile(r":execute-api:.*:([^:/]+)/([^/]+)/([^/]+)(/.*)$")


def _permission_drift(translated: dict, names: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Drifts of API Gateway's Lambda permissions, and function -> path patterns they grant."""
    drifts: list[str] = []
    granted: dict[str, list[str]] = {}
    for lid, res in translated["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] != "AWS::Lambda::Permission" or props.get("Principal") != "apigateway.amazonaws.com":
            continue
        text = _sub_text(props.get("SourceArn"))
        m = PERMISSION_ARN.search(text or "")
        if m is None:
            drifts.append(f"permission {lid} has no execute-api SourceArn naming a stage")
            continue
        stage, path = m.group(2), m.group(4)
        if stage not in names:
            drifts.append(
                f"permission {lid} allows every stage" if "*" in stage
                else f"permission {lid} names stage {stage}, which the API does not have"
            )
        for fid in _ref_ids(props.get("FunctionName")):
            granted.setdefault(fid, []).append(path)
    return drifts, granted


def stage_drift(translated: dict, expected: set[str] | None = None) -> list[str]:
    """`expected`: the stage names meant (default: the one `StageName` parameter)."""
    expected = {"${StageName}"} if expected is None else expected
    found = stages(translated)
    drifts = []
    for name in sorted(set(found) - expected):
        drifts.append(f"stage {name} exists beside {', '.join(sorted(expected))}")
    for name in sorted(expected - set(found)):
        drifts.append(f"stage {name} is missing")
    for name, stage_id in sorted(found.items()):
        if not _associated(translated, name, stage_id):
            drifts.append(f"stage {name} has no WAF association")
    perm_drifts, granted = _permission_drift(translated, set(found) & expected)
    drifts += perm_drifts
    for fid, paths in sorted(_routed_paths(translated).items()):
        for path in paths:
            concrete = path.replace("{proxy+}", "x")
            if not any(fnmatch.fnmatchcase(concrete, p) for p in granted.get(fid, [])):
                drifts.append(f"{fid}: the API routes {path} to it, no permission lets it be invoked there")
    return drifts


ACCOUNT_CONDITION = "ManagesApiGatewayAccount"


def account_drift(translated: dict) -> list[str]:
    """API Gateway's CloudWatch role is one setting per account and region: a second stack
    there must be able to leave it alone, and deleting a stack must not take it away."""
    res = translated["Resources"]
    drifts = []
    singletons = [
        lid for lid, r in res.items()
        if r["Type"] == "AWS::ApiGateway::Account"
        or (r["Type"] == "AWS::IAM::Role" and lid in _ref_ids(
            [a.get("Properties", {}).get("CloudWatchRoleArn") for a in res.values()
             if a["Type"] == "AWS::ApiGateway::Account"]))
    ]
    for lid in singletons:
        if res[lid].get("Condition") != ACCOUNT_CONDITION:
            drifts.append(f"{lid}: account-wide, but not under the {ACCOUNT_CONDITION} condition")
        if res[lid].get("DeletionPolicy") != "Retain":
            drifts.append(f"{lid}: account-wide, but deleted with this stack")
    accounts = {lid for lid in singletons if res[lid]["Type"] == "AWS::ApiGateway::Account"}
    for lid, r in res.items():
        if r["Type"] != "AWS::ApiGateway::RestApi":
            continue
        waits = r.get("DependsOn", [])
        waits = [waits] if isinstance(waits, str) else waits
        reached = set(waits) | {a for w in waits for a in _ref_ids(res.get(w, {}).get("Metadata"))}
        if not accounts <= reached:
            drifts.append(f"{lid}: does not wait for the API Gateway account setting it logs through")
    return drifts


def describe(translated: dict) -> list[str]:
    """The stages, WAF associations and API permissions, one line each (for the report)."""
    lines = [f"stage {n} (resource {sid})" for n, sid in sorted(stages(translated).items(), key=str)]
    for lid, res in translated["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::WAFv2::WebACLAssociation":
            lines.append(f"WAF association {lid}: {_sub_text(props['ResourceArn'])}")
        if res["Type"] == "AWS::Lambda::Permission":
            lines.append(f"permission {lid}: {_sub_text(props.get('SourceArn'))}")
    return lines
