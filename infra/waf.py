"""The web ACL's behaviour per route, evaluated from template.yaml (no AWS):

  waf_split_drift  the core rule set's code-, path- and file-name rules block on the auth,
                   admin and webhook routes and only count on chat and exec (whose bodies,
                   file paths and prefixes are user data); the rules that stay in force on
                   every route (path traversal, bots, sizes but the body's) block everywhere
  waf_path_drift   every rule matching the URI path decodes it (URL_DECODE) before LOWERCASE
  waf_log_drift    the WAF log redacts the query string and the credential headers

A rule is evaluated the way AWS WAF documents it: a managed rule overridden to Count only
adds its label, and a later Block rule may match that label. The evaluator knows the statements
the template uses on the URI path (byte and regex matches, And/Or/Not, label matches) and
reports any other as drift rather than guessing.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

CRS = "AWSManagedRulesCommonRuleSet"
LABEL_PREFIX = "awswaf:managed:aws:core-rule-set:"

# The CRS rules that match what chat messages, exec commands, uploads, file paths and list
# prefixes legitimately hold (code, `<script>`, `../` in a command, 169.254.169.254, app.log,
# URLs): counted on the agent routes, blocking elsewhere. Rule name -> its label suffix.
AGENT_DATA_RULES = {
    "CrossSiteScripting_BODY": "CrossSiteScripting_Body",
    "GenericLFI_BODY": "GenericLFI_Body",
    "GenericRFI_BODY": "GenericRFI_Body",
    "EC2MetaDataSSRF_BODY": "EC2MetaDataSSRF_Body",
    "RestrictedExtensions_URIPATH": "RestrictedExtensions_URIPath",
    "CrossSiteScripting_URIPATH": "CrossSiteScripting_URIPath",
    "GenericRFI_URIPATH": "GenericRFI_URIPath",
    "EC2MetaDataSSRF_URIPATH": "EC2MetaDataSSRF_URIPath",
    "RestrictedExtensions_QUERYARGUMENTS": "RestrictedExtensions_QueryArguments",
    "CrossSiteScripting_QUERYARGUMENTS": "CrossSiteScripting_QueryArguments",
    "GenericRFI_QUERYARGUMENTS": "GenericRFI_QueryArguments",
    "EC2MetaDataSSRF_QUERYARGUMENTS": "EC2MetaDataSSRF_QueryArguments",
}
# In force on every route: no legitimate path or query holds a traversal, and the header,
# cookie and size rules are about the request, not its data.
EVERYWHERE_RULES = {
    "GenericLFI_URIPATH": "GenericLFI_URIPath",
    "GenericLFI_QUERYARGUMENTS": "GenericLFI_QueryArguments",
    "NoUserAgent_HEADER": "NoUserAgent_Header",
    "UserAgent_BadBots_HEADER": "BadBots_Header",
    "SizeRestrictions_URIPATH": "SizeRestrictions_URIPath",
    "SizeRestrictions_QUERYSTRING": "SizeRestrictions_QueryString",
}
# Counted on every route: the functions' own 1 MiB body limit is the wall.
COUNT_EVERYWHERE = {"SizeRestrictions_BODY"}

# Paths as WAF sees them: the stage first (or none under a custom domain), case and
# percent-encoding as a client may send them.
PROTECTED_PATHS = (
    "/v1/auth/login",
    "/v1/auth/google/callback",
    "/v1/admin/users",
    "/v1/webhooks/telegram",
    "/v1/webhooks/stripe",
    "/auth/login",
    "/v1/%61uth/login",
)
AGENT_PATHS = (
    "/v1/chat",
    "/v1/chat/c_1/messages",
    "/v1/exec/run",
    "/v1/exec/files/logs/app.log",
    "/exec/files/app.log",
    "/v1/%65xec/run",
)

REDACTED_HEADERS = ("authorization", "cookie", "x-telegram-bot-api-secret-token")


class Unsupported(ValueError):
    """A statement the evaluator does not model."""


def _transform(text: str, transformations: list[dict]) -> str:
    for t in sorted(transformations, key=lambda t: t["Priority"]):
        kind = t["Type"]
        if kind == "URL_DECODE":
            text = unquote(text)
        elif kind == "LOWERCASE":
            text = text.lower()
        elif kind != "NONE":
            raise Unsupported(f"text transformation {kind}")
    return text


def matches(statement: dict, path: str, labels: set[str]) -> bool:
    """Whether `statement` matches a request for `path` carrying `labels`."""
    (kind, body), = statement.items()
    if kind == "AndStatement":
        return all(matches(s, path, labels) for s in body["Statements"])
    if kind == "OrStatement":
        return any(matches(s, path, labels) for s in body["Statements"])
    if kind == "NotStatement":
        return not matches(body["Statement"], path, labels)
    if kind == "LabelMatchStatement":
        return body["Scope"] == "LABEL" and body["Key"] in labels
    if kind in ("ByteMatchStatement", "RegexMatchStatement"):
        if "UriPath" not in body["FieldToMatch"]:
            raise Unsupported(f"{kind} on {list(body['FieldToMatch'])}")
        text = _transform(path, body["TextTransformations"])
        if kind == "RegexMatchStatement":
            return re.search(body["RegexString"], text) is not None
        needle, where = body["SearchString"], body["PositionalConstraint"]
        return {
            "EXACTLY": text == needle,
            "STARTS_WITH": text.startswith(needle),
            "ENDS_WITH": text.endswith(needle),
            "CONTAINS": needle in text,
        }[where]
    raise Unsupported(kind)


def web_acl(template: dict) -> dict:
    acls = [r for r in template["Resources"].values() if r["Type"] == "AWS::WAFv2::WebACL"]
    if len(acls) != 1:
        raise ValueError(f"expected one web ACL, found {len(acls)}")
    return acls[0]["Properties"]


def crs_verdict(acl: dict, rule: str, label: str, path: str) -> str:
    """What the ACL does to a request on `path` that `rule` of the core rule set matches:
    "block", or "count" (allowed, labelled)."""
    rules = sorted(acl["Rules"], key=lambda r: r["Priority"])
    verdict = "allow"
    for i, r in enumerate(rules):
        group = r["Statement"].get("ManagedRuleGroupStatement", {})
        if group.get("Name") != CRS:
            continue
        scope = group.get("ScopeDownStatement")
        if scope is not None and not matches(scope, path, set()):
            continue
        if "Count" in r.get("OverrideAction", {}):
            action = "Count"
        else:
            overrides = {o["Name"]: o["ActionToUse"] for o in group.get("RuleActionOverrides", [])}
            action = next(iter(overrides.get(rule, {"Block": {}})))
        if action != "Count":
            return "block"
        labels = {LABEL_PREFIX + label}
        for later in rules[i + 1 :]:
            # Rate limits block on volume, not on what one request holds.
            if "RateBasedStatement" in later["Statement"]:
                continue
            if "Block" in later.get("Action", {}) and matches(later["Statement"], path, labels):
                return "block"
        verdict = "count"
    return verdict


def waf_split_drift(template: dict) -> list[str]:
    acl = web_acl(template)
    drifts = []
    try:
        for rule, label in AGENT_DATA_RULES.items():
            for path in PROTECTED_PATHS:
                if crs_verdict(acl, rule, label, path) != "block":
                    drifts.append(f"WAF: {rule} does not block on {path}")
            for path in AGENT_PATHS:
                if crs_verdict(acl, rule, label, path) == "block":
                    drifts.append(f"WAF: {rule} blocks agent traffic on {path}")
        for rule, label in EVERYWHERE_RULES.items():
            for path in PROTECTED_PATHS + AGENT_PATHS:
                if crs_verdict(acl, rule, label, path) != "block":
                    drifts.append(f"WAF: {rule} does not block on {path}")
    except Unsupported as e:
        drifts.append(f"WAF: infra/waf.py cannot evaluate {e}")
    return drifts


def _uri_matches(node: Any) -> list[dict]:
    """Every byte or regex match on the URI path inside a statement tree."""
    found = []
    if isinstance(node, dict):
        for kind in ("ByteMatchStatement", "RegexMatchStatement"):
            body = node.get(kind)
            if isinstance(body, dict) and "UriPath" in body.get("FieldToMatch", {}):
                found.append(body)
        for v in node.values():
            found += _uri_matches(v)
    elif isinstance(node, list):
        for v in node:
            found += _uri_matches(v)
    return found


def waf_path_drift(template: dict) -> list[str]:
    drifts = []
    for r in web_acl(template)["Rules"]:
        for m in _uri_matches(r["Statement"]):
            kinds = [t["Type"] for t in sorted(m["TextTransformations"], key=lambda t: t["Priority"])]
            if "URL_DECODE" not in kinds or "LOWERCASE" not in kinds or (
                kinds.index("URL_DECODE") > kinds.index("LOWERCASE")
            ):
                drifts.append(f"WAF rule {r['Name']}: a URI path match does not URL_DECODE before LOWERCASE")
    return drifts


def waf_log_drift(template: dict) -> list[str]:
    logging = [
        r["Properties"] for r in template["Resources"].values()
        if r["Type"] == "AWS::WAFv2::LoggingConfiguration"
    ]
    if len(logging) != 1:
        return [f"WAF: expected one logging configuration, found {len(logging)}"]
    fields = logging[0].get("RedactedFields", [])
    drifts = []
    if not any("QueryString" in f for f in fields):
        drifts.append("WAF log: the query string is not redacted")
    headers = {f["SingleHeader"]["Name"].lower() for f in fields if "SingleHeader" in f}
    for h in REDACTED_HEADERS:
        if h not in headers:
            drifts.append(f"WAF log: header {h} is not redacted")
    return drifts


def all_waf_drifts(template: dict) -> list[str]:
    return waf_split_drift(template) + waf_path_drift(template) + waf_log_drift(template)
