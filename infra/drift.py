"""Reads template.yaml and the Rust sources and reports where they disagree.

Checks, each a function returning a list of human-readable drifts (empty = in step):
  key_schema_drift    the table's keys, index and TTL against `create_table` in the store code
  variable_drift      every variable a function's code reads is set in its environment, is a
                      key of the secret document, or is deliberately left to its default
  route_drift         every path prefix a router serves is routed to that function by the API
  action_drift        (infra/iam.py) every DynamoDB action a function's code can reach is
                      granted to its role
  leading_key_drift   (infra/iam.py) the role's dynamodb:LeadingKeys prefixes are exactly the
                      partitions the store methods the function calls can touch
  metric_filter_drift every log field a metric filter matches is one the code emits, and every
                      alarm on a Bastion/ metric reads one a filter makes or the code writes
                      as an EMF line
  deploy_settings_drift `cargo lambda deploy` metadata sizes each function as the template does
  workspace_bucket_drift the exec workspace bucket: SSE-KMS under the stack key with a Bucket
                      Key, public access blocked, owner-enforced, TLS-only and key-pinned puts;
                      its name and S3 access given to the exec function alone
  account_purge_drift the table's stream and exec's event source on it (purge_drift.py)

all_drifts also runs the checks of infra/translated.py (the SAM-translated API: stages, WAF
associations, Lambda permissions), infra/agent.py (chat's agent configuration, the one Lambda
invoke grant: chat's role on exec, and exec's resource policy), infra/waf.py (the web ACL per
route, its log), infra/iam.py (table grants per key prefix), infra/params.py (parameter
bounds, timeouts) and infra/streaming.py (the streamed methods are exactly the streaming
function's).

The Rust side is read as text (no compiler): the patterns are the ones the code base uses, and
the unit tests in infra/tests prove each check fails on a deliberate drift.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import agent
import iam
import params
import streaming
import translated
import waf

# Re-exported: tests and tools read the shared readers and the IAM checks as drift.*.
from iam import (  # noqa: F401
    INDEX_QUERY,
    PORT_PREFIXES,
    action_drift,
    actions_of,
    function_actions,
    leading_key_drift,
    port_methods,
    role_actions,
    store_functions,
)
from sources import (  # noqa: F401
    FUNCTIONS,
    ROOT,
    _actions,
    _refs,
    _role_of,
    _scalars,
    _statements,
    _Tag,
    api_paths,
    fn_bodies,
    load_template,
    match_brace,
    path_routed,
    rust_sources,
    strip_tests,
    workspace_deps,
)
from purge_drift import account_purge_drift


# Keys of the Secrets Manager documents (the shared contract, the code's SECRET_NAMES);
# infra/secret_document.py generates exactly these.
SECRET_KEYS = frozenset(
    {
        "JWT_SIGNING_KEYS",
        "JWT_VERIFY_KEYS",
        "PASSWORD_PEPPER",
        "LEGACY_PASSWORD_HMAC_KEY",
        "EXEC_SANDBOX_KEY",
        "ADMIN_KEYS",
        "GOOGLE_CLIENT_SECRET",
        "LLM_API_KEY",
        "LLM_FALLBACK_API_KEY",
        "TELEGRAM_WEBHOOK_SECRET",
        "TELEGRAM_BOT_TOKEN",
        "FACEBOOK_APP_SECRET",
        "FACEBOOK_VERIFY_TOKEN",
        "FACEBOOK_PAGE_ACCESS_TOKEN",
        "STRIPE_WEBHOOK_SECRETS",
    }
)

# What each secret document may hold: exec's holds only what exec uses (the code refuses any
# other key: SECRET_DOCUMENT_NAMES in functions/exec/src/config.rs), the main one the rest.
EXEC_ONLY_KEYS = frozenset({"EXEC_SANDBOX_KEY"})
DOCUMENT_KEYS = {
    "Secret": SECRET_KEYS - EXEC_ONLY_KEYS,
    "ExecSecret": frozenset({"EXEC_SANDBOX_KEY", "JWT_VERIFY_KEYS"}),
}
# The document each function is pointed at (BASTION_SECRET_ID) and may read (its role).
FUNCTION_DOCUMENTS = {
    "AuthFunction": "Secret",
    "WebhooksFunction": "Secret",
    "ChatFunction": "Secret",
    "ExecFunction": "ExecSecret",
}
EXEC_DOCUMENT_CONST = re.compile(r"SECRET_DOCUMENT_NAMES: \[&str; \d+\] = \[([^\]]*)\]")

# Variables the code reads that a deployment deliberately leaves to the code's default; each
# with the reason, so a new variable in the code fails the check until someone decides.
DEFAULTED = {
    "RATE_LIMIT_": "prefix of the RATE_LIMIT_<NAME> family, not a variable",
    "JWT_KEYS": "the retired HS256 keys: named only to refuse them (RETIRED_SECRET_NAMES)",
    "RATE_LIMIT_LOGIN_ACCOUNT": "code default 5/60",
    "RATE_LIMIT_LOGIN_IP": "code default 20/60",
    "RATE_LIMIT_REGISTER_IP": "code default 3/60",
    "RATE_LIMIT_REFRESH_SESSION": "code default 10/60",
    "RATE_LIMIT_DEFAULT_IP": "code default 100/60",
    "RATE_LIMIT_DEFAULT_ACCOUNT": "code default 100/60",
    "RATE_LIMIT_WEBHOOKS_IP": "code default 600/60",
    "RATE_LIMIT_ADMIN_IP": "code default 30/60",
    "RATE_LIMIT_ADMIN": "code default 30/60",
    "RATE_LIMIT_GOOGLE_IP": "code default 30/60",
    "CHAT_RATE_LIMIT": "code default",
    "SESSION_IDLE_TIMEOUT_SECS": "code default",
    "SESSION_MAX_LIFETIME_SECS": "code default",
    "LLM_ALLOWED_MODELS": "defaults to LLM_MODEL alone",
    "LLM_CONTEXT_BUDGET_CHARS": "code default",
    "LLM_CONTEXT_MAX_MESSAGES": "code default",
    "LLM_MAX_TOKENS": "code default: 4096 for anthropic, not sent for openai",
    "LLM_SYSTEM_PROMPT": "no system prompt unless the operator adds one",
    "LLM_TIMEOUT_SECS": "code default 25 s, below the function timeout",
    "LLM_STREAM_IDLE_SECS": "code default 20 s between two bytes of a streamed model call",
    "AGENT_DEADLINE_SECS": "code default 120 s, below the function timeout (infra/params.py)",
    "CHAT_STREAM_KEEPALIVE_SECS": "code default 10 s, far inside API Gateway's 5 min stream idle cut",
    "PLAN_FREE_DAILY_CREDITS": "code default",
    "PLAN_PRO_DAILY_CREDITS": "code default",
    "GOOGLE_AUTH_URL": "Google's public endpoint by default (tests point it elsewhere)",
    "GOOGLE_TOKEN_URL": "Google's public endpoint by default",
    "GOOGLE_JWKS_URL": "Google's public endpoint by default",
    "FACEBOOK_GRAPH_BASE": "Meta's public endpoint by default",
    "TELEGRAM_API_BASE": "Telegram's public endpoint by default",
    "STRIPE_TOLERANCE_SECS": "code default 300 s",
    "EXEC_ALLOWED_COMMANDS": "code default list",
    "EXEC_TOOLS_DIR": "code default /opt/tools in Lambda, where ExecToolsLayer mounts the toolset",
    "EXEC_OUTPUT_CAP_BYTES": "code default",
    "EXEC_OUTPUT_HARD_CAP_BYTES": "code default",
    "EXEC_SANDBOX_QUOTA_BYTES": "code default",
    "EXEC_SANDBOX_QUOTA_FILES": "code default",
    "EXEC_REQUIRE_LAYERS": "none required by default",
    "EXEC_RUNS_PER_MINUTE": "code default",
    "SECRET_REFRESH_SECS": "code default 300 s",
    "AWS_ENDPOINT_URL": "SDK standard variable, only for tests against moto",
    "BASTION_TEST_DYNAMODB_ENDPOINT": "tests only",
    "BASTION_DATA_DIR": "bastion-local only",
    "BASTION_WORKSPACE_DIR": "bastion-local only (the directory workspace store)",
    "CONTENT_KEK": "bastion-local only (the development key-encryption key)",
    "RUST_LOG": "set in Globals",
    # The agent's configuration lives in bastion-chat, which webhooks links too; ChatFunction
    # sets both (infra/agent.py checks it), webhooks' channel turns are text-only.
    "CHAT_TOOLS": "ChatFunction sets it; webhooks offers no tools",
    "AGENT_MAX_STEPS": "ChatFunction sets it; webhooks makes one model call per turn",
}

# Set by the Lambda runtime (AWS_LAMBDA_RUNTIME_API, AWS_REGION, credentials) or read by the
# SDK's standard chain: never the template's to set.
RUNTIME_PREFIX = "AWS_"

# Where the code reads configuration: files of these names, outside test modules.
CONFIG_FILE = re.compile(r"(config|extras|secrets?|env|settings|lambda)\.rs$")
UPPER_LITERAL = re.compile(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+_?)"')
ENV_CALL = re.compile(
    r'(?:required|non_empty|get|var|bounded|keyed_secrets|optional_secret|required_with|'
    r'base_url|url_var)\s*\(\s*(?:[a-z_&*]+\s*,\s*)?"([A-Z][A-Z0-9_]+)"'
)
ENV_CONST = re.compile(r'const\s+[A-Z0-9_]*(?:ENV|VAR)[A-Z0-9_]*\s*:\s*&str\s*=\s*"([A-Z][A-Z0-9_]+)"')


# ---------------------------------------------------------------------------------------------
# Check 1: key schema


@dataclass
class Schema:
    attributes: dict[str, str]
    keys: list[tuple[str, str]]
    indexes: dict[str, tuple[list[tuple[str, str]], str]]
    ttl: str | None
    billing: str


def code_schema(root: Path = ROOT) -> Schema:
    src = (root / "crates/bastion-store/src/dynamodb/mod.rs").read_text()
    body = fn_bodies(src)["create_table"][0]
    gsi_name = re.search(r'pub const GSI1: &str = "([^"]+)"', src)
    attrs = {
        n: "S" for n in re.findall(r'\.attribute_definitions\(attr\("([^"]+)"\)', body)
    }
    if "ScalarAttributeType::S" not in body:
        raise ValueError("create_table no longer builds only string attributes: update drift.py")
    gsi_at = body.find("GlobalSecondaryIndex::builder()")
    table_at = body.find(".create_table()")
    key_re = re.compile(r'\.key_schema\(key\("([^"]+)",\s*KeyType::(Hash|Range)\)')
    gsi_keys = [(n, t.upper()) for n, t in key_re.findall(body[gsi_at:table_at])]
    keys = [(n, t.upper()) for n, t in key_re.findall(body[table_at:])]
    projection = re.search(r"ProjectionType::(\w+)", body)
    ttl = re.search(r'\.attribute_name\("([^"]+)"\)\s*\.build\(\)\s*\.map_err\(build_error\)\?,\s*\)', body)
    billing = re.search(r"BillingMode::(\w+)", body)
    return Schema(
        attributes=attrs,
        keys=keys,
        indexes={
            gsi_name.group(1) if gsi_name else "?": (
                gsi_keys,
                (projection.group(1) if projection else "?").upper(),
            )
        },
        ttl=ttl.group(1) if ttl else None,
        billing={"PayPerRequest": "PAY_PER_REQUEST", "Provisioned": "PROVISIONED"}.get(
            billing.group(1) if billing else "", "?"
        ),
    )


def template_schema(template: dict) -> Schema:
    tables = [r for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    if len(tables) != 1:
        raise ValueError(f"expected one table, found {len(tables)}")
    p = tables[0]["Properties"]
    ttl = p.get("TimeToLiveSpecification", {})
    return Schema(
        attributes={a["AttributeName"]: a["AttributeType"] for a in p["AttributeDefinitions"]},
        keys=[(k["AttributeName"], k["KeyType"]) for k in p["KeySchema"]],
        indexes={
            g["IndexName"]: (
                [(k["AttributeName"], k["KeyType"]) for k in g["KeySchema"]],
                g["Projection"]["ProjectionType"],
            )
            for g in p.get("GlobalSecondaryIndexes", [])
        },
        ttl=ttl.get("AttributeName") if ttl.get("Enabled") is True else None,
        billing=p.get("BillingMode", "PROVISIONED"),
    )


def key_schema_drift(template: dict, root: Path = ROOT) -> list[str]:
    code, tpl = code_schema(root), template_schema(template)
    drifts = []
    for field in ("attributes", "keys", "indexes", "ttl", "billing"):
        if getattr(code, field) != getattr(tpl, field):
            drifts.append(
                f"table {field}: code creates {getattr(code, field)!r}, "
                f"template has {getattr(tpl, field)!r}"
            )
    return drifts


# ---------------------------------------------------------------------------------------------
# Check 2: variables


def code_variables(package_dir: Path) -> set[str]:
    """Every configuration variable the package's code (with its workspace dependencies) reads."""
    names: set[str] = set()
    for d in workspace_deps(package_dir):
        for p in (d / "src").rglob("*.rs"):
            src = strip_tests(p.read_text())
            names.update(ENV_CALL.findall(src))
            names.update(ENV_CONST.findall(src))
            if CONFIG_FILE.search(p.name):
                names.update(UPPER_LITERAL.findall(src))
    return names


def function_environment(template: dict, logical_id: str) -> set[str]:
    glob = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    own = template["Resources"][logical_id]["Properties"].get("Environment", {})
    return set(glob.get("Variables", {})) | set(own.get("Variables", {}))


def variable_drift(template: dict, root: Path = ROOT, secret_keys=SECRET_KEYS) -> list[str]:
    drifts = []
    for logical_id, pkg in FUNCTIONS.items():
        env = function_environment(template, logical_id)
        leaked = sorted(env & set(secret_keys))
        if leaked:
            drifts.append(f"{logical_id}: secret(s) {leaked} in the plain environment")
        for var in sorted(code_variables(root / pkg)):
            if var in env or var in secret_keys or var in DEFAULTED:
                continue
            if var.startswith(RUNTIME_PREFIX):
                continue
            drifts.append(
                f"{logical_id}: code reads {var}, which is neither in its environment, "
                f"nor a secret-document key, nor listed in drift.DEFAULTED"
            )
    return drifts


def function_variable(template: dict, logical_id: str, name: str) -> Any:
    """A function's environment value: its own, else the Globals one."""
    glob = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    own = template["Resources"][logical_id]["Properties"].get("Environment", {})
    return own.get("Variables", {}).get(name, glob.get("Variables", {}).get(name))


def secret_document_drift(template: dict, root: Path = ROOT) -> list[str]:
    """Each function is pointed at its own document and its role reads only that one; exec's
    document holds exactly the keys exec's code accepts."""
    drifts = []
    for logical_id, document in FUNCTION_DOCUMENTS.items():
        if document not in template["Resources"]:
            drifts.append(f"{document}: the secret {logical_id} reads is not in the template")
        pointed = _refs(function_variable(template, logical_id, "BASTION_SECRET_ID"))
        if pointed != {document}:
            drifts.append(f"{logical_id}: BASTION_SECRET_ID names {sorted(pointed)}, "
                          f"not its document {document}")
        readable: set[str] = set()
        for st in _statements(_role_of(template, logical_id)):
            if st.get("Effect") == "Allow" and any(
                    a.startswith("secretsmanager:") for a in _actions(st)):
                readable |= _refs(st.get("Resource"))
        if readable != {document}:
            drifts.append(f"{logical_id}: its role reads the secret(s) {sorted(readable)}, "
                          f"not only {document}")
    found = EXEC_DOCUMENT_CONST.search((root / "functions/exec/src/config.rs").read_text())
    code_keys = frozenset(re.findall(r'"([A-Z0-9_]+)"', found.group(1))) if found else frozenset()
    if code_keys != DOCUMENT_KEYS["ExecSecret"]:
        drifts.append(f"ExecSecret: exec's code accepts {sorted(code_keys)}, "
                      f"the document holds {sorted(DOCUMENT_KEYS['ExecSecret'])}")
    return drifts


# ---------------------------------------------------------------------------------------------
# Check 3: routes


ROUTE = re.compile(r'\.route\(\s*"(/[^"]*)"')


def code_routes(package_dir: Path) -> set[str]:
    return set(ROUTE.findall(rust_sources(package_dir)))


def route_drift(template: dict, root: Path = ROOT) -> list[str]:
    drifts = []
    owner: dict[str, str] = {}
    for logical_id, pkg in FUNCTIONS.items():
        paths = api_paths(template, logical_id)
        for p in paths:
            if p in owner:
                drifts.append(f"{p} is routed to both {owner[p]} and {logical_id}")
            owner[p] = logical_id
        for route in sorted(code_routes(root / pkg)):
            if not path_routed(route, paths):
                drifts.append(f"{logical_id}: its router serves {route}, the API does not route it")
    return drifts


# ---------------------------------------------------------------------------------------------
# Check 6: metric filters

FILTER_FIELD = re.compile(r'\$\.fields\.([a-z_]+)\s*(=|>=|<=|>|<)\s*("([^"]*)"|\d+)')
# A metric the code writes itself in Embedded Metric Format (`logging::Metric { name: "…", … }`).
EMF_METRIC = re.compile(r'\bMetric\s*\{\s*name:\s*"([A-Za-z][A-Za-z0-9]*)"')


def _own_metrics(props: dict) -> list[str]:
    """Names of the Bastion/ metrics an alarm reads, directly or in a metric-math query."""
    stats = [props] + [q["MetricStat"]["Metric"] for q in props.get("Metrics", []) if "MetricStat" in q]
    return [
        m["MetricName"]
        for m in stats
        if "MetricName" in m and any("Bastion/" in v for v in _scalars(m.get("Namespace")))
    ]


def metric_filter_drift(template: dict, root: Path = ROOT) -> list[str]:
    code = "\n".join(
        strip_tests(p.read_text())
        for d in ("crates", "functions")
        for p in (root / d).rglob("src/**/*.rs")
    )
    drifts = []
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::Logs::MetricFilter":
            continue
        pattern = res["Properties"]["FilterPattern"]
        fields = FILTER_FIELD.findall(pattern)
        if not fields:
            drifts.append(f"{name}: pattern {pattern!r} matches no structured field")
        for field, _op, _raw, text in fields:
            if not re.search(r"\b" + field + r"\s*=", code):
                drifts.append(f"{name}: no log line in the code has a field {field!r}")
            if text and f'"{text}"' not in code:
                drifts.append(f"{name}: the code never emits the value {text!r}")
    made = {
        t["MetricName"]
        for res in template["Resources"].values()
        if res["Type"] == "AWS::Logs::MetricFilter"
        for t in res["Properties"]["MetricTransformations"]
    } | set(EMF_METRIC.findall(code))
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::CloudWatch::Alarm":
            continue
        for metric in _own_metrics(res["Properties"]):
            if metric not in made:
                drifts.append(
                    f"{name}: alarms on {metric!r}, which no metric filter makes and the code "
                    "never writes"
                )
    return drifts


# ---------------------------------------------------------------------------------------------
# Check 7: cargo-lambda settings


def deploy_settings_drift(template: dict, root: Path = ROOT) -> list[str]:
    drifts = []
    for logical_id, pkg in FUNCTIONS.items():
        props = template["Resources"][logical_id]["Properties"]
        meta = tomllib.loads((root / pkg / "Cargo.toml").read_text())
        deploy = meta.get("package", {}).get("metadata", {}).get("lambda", {}).get("deploy")
        if deploy is None:
            drifts.append(f"{pkg}/Cargo.toml: no [package.metadata.lambda.deploy]")
            continue
        for key, prop in (("memory", "MemorySize"), ("timeout", "Timeout")):
            if deploy.get(key) != props.get(prop):
                drifts.append(
                    f"{logical_id}: {prop} {props.get(prop)} but cargo-lambda {key} "
                    f"{deploy.get(key)}"
                )
    return drifts


# ---------------------------------------------------------------------------------------------
# Check 8: the exec workspace bucket

BUCKET = "WorkspaceBucket"
BUCKET_USER = "ExecFunction"


def _bucket_properties_drift(bucket: dict) -> list[str]:
    drifts = []
    props = bucket.get("Properties", {})
    rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    kms_rules = [
        r for r in rules
        if r.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") == "aws:kms"
        and "DataKey" in _refs(r["ServerSideEncryptionByDefault"].get("KMSMasterKeyID"))
        and r.get("BucketKeyEnabled") is True
    ]
    if len(rules) != 1 or not kms_rules:
        drifts.append(f"{BUCKET}: default encryption is not SSE-KMS under DataKey with BucketKeyEnabled")
    block = props.get("PublicAccessBlockConfiguration", {})
    for setting in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        if block.get(setting) is not True:
            drifts.append(f"{BUCKET}: public access block {setting} is not true")
    owners = [r.get("ObjectOwnership") for r in props.get("OwnershipControls", {}).get("Rules", [])]
    if owners != ["BucketOwnerEnforced"]:
        drifts.append(f"{BUCKET}: object ownership is not BucketOwnerEnforced")
    return drifts


def _bucket_policy_drift(template: dict) -> list[str]:
    policies = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in template["Resources"].values()
        if r.get("Type") == "AWS::S3::BucketPolicy" and BUCKET in _refs(r["Properties"]["Bucket"])
    ]
    statements = [st for sts in policies for st in sts]
    tls_only = any(
        st.get("Effect") == "Deny" and "s3:*" in _actions(st)
        and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        and len(_scalars(st.get("Resource"))) == 2
        for st in statements
    )
    key_pinned = any(
        st.get("Effect") == "Deny" and "s3:PutObject" in _actions(st)
        and "DataKey" in _refs(
            st.get("Condition", {}).get("StringNotEquals", {})
            .get("s3:x-amz-server-side-encryption-aws-kms-key-id")
        )
        for st in statements
    )
    drifts = []
    if not tls_only:
        drifts.append(f"{BUCKET}: no bucket policy denies requests without TLS (aws:SecureTransport)")
    if not key_pinned:
        drifts.append(f"{BUCKET}: no bucket policy denies puts not encrypted under DataKey")
    return drifts


def workspace_bucket_drift(template: dict, root: Path = ROOT) -> list[str]:
    resources = template["Resources"]
    bucket = resources.get(BUCKET)
    if bucket is None or bucket.get("Type") != "AWS::S3::Bucket":
        return [f"{BUCKET}: the exec workspace bucket is missing"]
    drifts = _bucket_properties_drift(bucket) + _bucket_policy_drift(template)
    for function_id in FUNCTIONS:
        env = (
            resources[function_id]["Properties"].get("Environment", {}).get("Variables", {})
        )
        has_name = "WORKSPACE_BUCKET" in env
        if has_name != (function_id == BUCKET_USER):
            drifts.append(
                f"{function_id}: WORKSPACE_BUCKET {'set' if has_name else 'missing'} in its environment"
            )
        for st in _statements(_role_of(template, function_id)):
            s3 = [a for a in _actions(st) if a.startswith("s3:")]
            if not s3:
                continue
            if function_id != BUCKET_USER:
                drifts.append(f"{function_id}: its role grants {', '.join(s3)}; only exec's may")
            elif "*" in " ".join(s3) or _refs(st.get("Resource")) != {BUCKET}:
                drifts.append(f"{function_id}: an S3 grant reaches beyond {BUCKET} or uses a wildcard action")
    kms = [
        st for st in _statements(_role_of(template, BUCKET_USER))
        if any(a.startswith("kms:") for a in _actions(st))
    ]
    via = [
        " ".join(_scalars(st.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")))
        for st in kms
    ]
    if any(not v for v in via):
        drifts.append(f"{BUCKET_USER}: a KMS grant is not limited to one service (kms:ViaService)")
    if not any(v.startswith("s3.") for v in via):
        drifts.append(f"{BUCKET_USER}: its role cannot use DataKey through S3 for the bucket")
    return drifts


def _translated_drift(template: dict, root: Path = ROOT) -> list[str]:
    out = translated.translate(template)
    return (
        translated.stage_drift(out)
        + translated.account_drift(out)
        + agent.agent_drift(out, root)
    )


def all_drifts(template: dict | None = None, root: Path = ROOT) -> list[str]:
    template = template if template is not None else load_template(root / "template.yaml")
    return (
        key_schema_drift(template, root)
        + variable_drift(template, root)
        + secret_document_drift(template, root)
        + route_drift(template, root)
        + action_drift(template, root)
        + leading_key_drift(template, root)
        + metric_filter_drift(template, root)
        + deploy_settings_drift(template, root)
        + workspace_bucket_drift(template, root)
        + _translated_drift(template, root)
        + waf.all_waf_drifts(template)
        + iam.prefix_access_drift(template, root)
        + params.parameter_bounds_drift(template, root)
        + params.timeout_drift(template, root)
        + streaming.streaming_drift(template, root)
        + account_purge_drift(template, root)
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["--actions"]:
        for fid, pkg in FUNCTIONS.items():
            acts: set[str] = set()
            for m, a in function_actions(ROOT / pkg).items():
                acts |= a
            print(fid, sorted(acts))
        return 0
    if argv[:1] == ["--show"]:
        # The deployed shape: the translated API's stages, WAF associations and permissions,
        # and each role's table statements.
        template = load_template()
        out = translated.translate(template)
        print("\n".join(translated.describe(out)))
        print("\n".join("invoke grant " + line for line in agent.describe(out)))
        for fid in FUNCTIONS:
            print(f"{fid} table statements:")
            print("\n".join("  " + line for line in iam.describe(template, fid)))
        return 0
    found = all_drifts()
    for d in found:
        print("drift:", d)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
