"""Reads template.yaml and the Rust sources and reports where they disagree.

Four checks, each a function returning a list of human-readable drifts (empty = in step):
  key_schema_drift    the table's keys, index and TTL against `create_table` in the store code
  variable_drift      every variable a function's code reads is set in its environment, is a
                      key of the secret document, or is deliberately left to its default
  route_drift         every path prefix a router serves is routed to that function by the API
  action_drift        every DynamoDB action a function's code can reach is granted to its role
  leading_key_drift   the role's dynamodb:LeadingKeys prefixes are exactly the partitions the
                      store methods the function calls can touch
  metric_filter_drift every log field a metric filter matches is one the code emits
  deploy_settings_drift `cargo lambda deploy` metadata sizes each function as the template does
  workspace_bucket_drift the exec workspace bucket: SSE-KMS under the stack key with a Bucket
                      Key, public access blocked, owner-enforced, TLS-only and key-pinned puts;
                      its name and S3 access given to the exec function alone

The Rust side is read as text (no compiler): the patterns are the ones the code base uses, and
the unit tests in infra/tests prove each check fails on a deliberate drift.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent

# The four Lambda packages: logical id in template.yaml -> package directory.
FUNCTIONS = {
    "AuthFunction": "functions/auth",
    "WebhooksFunction": "functions/webhooks",
    "ChatFunction": "functions/chat",
    "ExecFunction": "functions/exec",
}

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
    "LLM_SYSTEM_PROMPT": "no system prompt unless the operator adds one",
    "LLM_TIMEOUT_SECS": "code default 25 s, below the function timeout",
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
# Reading the template


class _Tag:
    """A CloudFormation intrinsic (`!Ref`, `!Sub`…) kept as data."""

    def __init__(self, tag: str, value: Any):
        self.tag = tag
        self.value = value

    def __repr__(self) -> str:
        return f"{self.tag} {self.value!r}"


class _Loader(yaml.SafeLoader):
    pass


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> _Tag:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return _Tag(suffix, value)


_Loader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path | None = None) -> dict:
    text = (path or ROOT / "template.yaml").read_text()
    return yaml.load(text, Loader=_Loader)


def _scalars(node: Any) -> list[str]:
    """Every string inside a value, intrinsics included (for `!Sub` action lists etc.)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, _Tag):
        return _scalars(node.value)
    if isinstance(node, list):
        return [s for v in node for s in _scalars(v)]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _scalars(v)]
    return []


# ---------------------------------------------------------------------------------------------
# Reading Rust


def strip_tests(src: str) -> str:
    """The source without `#[cfg(test)]` items (a test module or a test-only fn)."""
    out = src
    while True:
        i = out.find("#[cfg(test)]")
        if i < 0:
            return out
        brace = out.find("{", i)
        semi = out.find(";", i)
        if brace < 0 or (0 <= semi < brace):
            out = out[:i] + out[semi + 1 :]
            continue
        end = match_brace(out, brace)
        out = out[:i] + out[end + 1 :]


def match_brace(src: str, open_at: int) -> int:
    """Index of the `}` closing the `{` at `open_at`, skipping strings, chars and comments."""
    depth = 0
    i = open_at
    n = len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        raw = re.match(r'r(#*)"', src[i : i + 12])
        if raw and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            close = '"' + raw.group(1)
            j = src.find(close, i + len(raw.group(0)))
            i = n if j < 0 else j + len(close)
            continue
        if c == '"':
            i += 1
            while i < n and src[i] != '"':
                i += 2 if src[i] == "\\" else 1
            i += 1
            continue
        if c == "'":
            ch = re.match(r"'(\\.|\\u\{[0-9a-fA-F]+\}|[^\\'])'", src[i : i + 12])
            if ch:
                i += len(ch.group(0))
                continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("unbalanced braces")


FN_DEF = re.compile(r"\bfn\s+([a-z_][a-z0-9_]*)\s*(?:<[^>{]*>)?\s*\(")


def fn_bodies(src: str) -> dict[str, list[str]]:
    """fn name -> bodies (a name may be defined more than once); declarations without a body
    (trait methods ending in `;`) are skipped."""
    out: dict[str, list[str]] = {}
    for m in FN_DEF.finditer(src):
        brace = src.find("{", m.end())
        semi = src.find(";", m.end())
        if brace < 0 or (0 <= semi < brace):
            continue
        end = match_brace(src, brace)
        out.setdefault(m.group(1), []).append(src[brace : end + 1])
    return out


def rust_sources(package_dir: Path) -> str:
    return "\n".join(
        strip_tests(p.read_text()) for p in sorted((package_dir / "src").rglob("*.rs"))
    )


def workspace_deps(package_dir: Path) -> list[Path]:
    """The package and every workspace crate it depends on (normal dependencies,
    transitively), by directory."""
    root = package_dir.parent.parent
    members = {}
    for cargo in list((root / "crates").glob("*/Cargo.toml")) + list(
        (root / "functions").glob("*/Cargo.toml")
    ):
        name = re.search(r'^name\s*=\s*"([^"]+)"', cargo.read_text(), re.M)
        if name:
            members[name.group(1)] = cargo.parent
    seen: list[Path] = []
    todo = [package_dir]
    while todo:
        d = todo.pop()
        if d in seen:
            continue
        seen.append(d)
        text = (d / "Cargo.toml").read_text()
        deps = re.search(r"^\[dependencies\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
        for line in (deps.group(1) if deps else "").splitlines():
            name = line.split("=", 1)[0].split(".", 1)[0].strip()
            if name in members:
                todo.append(members[name])
    return seen


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


def api_paths(template: dict, logical_id: str) -> list[str]:
    events = template["Resources"][logical_id]["Properties"].get("Events", {})
    return [e["Properties"]["Path"] for e in events.values() if e["Type"] == "Api"]


def path_routed(route: str, paths: list[str]) -> bool:
    """Whether API Gateway sends `route` to a function with these event paths."""
    for p in paths:
        if p == route:
            return True
        if p.endswith("/{proxy+}") and route.startswith(p[: -len("{proxy+}")]) and len(
            route
        ) > len(p) - len("{proxy+}"):
            return True
    return False


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
# Check 4: DynamoDB actions


SDK_CALLS = {
    ".get_item()": "dynamodb:GetItem",
    ".put_item()": "dynamodb:PutItem",
    ".update_item()": "dynamodb:UpdateItem",
    ".delete_item()": "dynamodb:DeleteItem",
    ".query()": "dynamodb:Query",
    ".scan()": "dynamodb:Scan",
    ".batch_write_item()": "dynamodb:BatchWriteItem",
    ".batch_get_item()": "dynamodb:BatchGetItem",
    ".transact_get_items()": "dynamodb:GetItem",
    # A transaction is authorised per action it holds (below), not as TransactWriteItems.
    "Put::builder()": "dynamodb:PutItem",
    "Update::builder()": "dynamodb:UpdateItem",
    "Delete::builder()": "dynamodb:DeleteItem",
    "ConditionCheck::builder()": "dynamodb:ConditionCheckItem",
    ".describe_table()": "dynamodb:DescribeTable",
    ".create_table()": "dynamodb:CreateTable",
    ".update_time_to_live()": "dynamodb:UpdateTimeToLive",
}
INDEX_QUERY = "dynamodb:Query(index)"
CALL = re.compile(r"\b([a-z_][a-z0-9_]*)\s*(?:::<[^>]*>)?\s*\(")


def store_functions(root: Path = ROOT) -> dict[str, list[str]]:
    """Every fn of the DynamoDB adapter and the ports' default methods, name -> bodies."""
    bodies: dict[str, list[str]] = {}
    files = port_files(root) + sorted((root / "crates/bastion-store/src/dynamodb").glob("*.rs"))
    for f in files:
        for name, bs in fn_bodies(strip_tests(f.read_text())).items():
            bodies.setdefault(name, []).extend(bs)
    return bodies


def port_files(root: Path = ROOT) -> list[Path]:
    """The store's port modules: its top-level files that declare a trait (one per port)."""
    return [
        f
        for f in sorted((root / "crates/bastion-store/src").glob("*.rs"))
        if re.search(r"^pub trait ", f.read_text(), re.M)
    ]


def port_methods(root: Path = ROOT) -> set[str]:
    """Method names of the store's port traits."""
    names: set[str] = set()
    for f in port_files(root):
        src = strip_tests(f.read_text())
        for m in re.finditer(r"pub trait (\w+)[^{]*\{", src):
            body = src[m.end() - 1 : match_brace(src, m.end() - 1) + 1]
            names.update(re.findall(r"\bfn\s+([a-z_][a-z0-9_]*)", body))
    return names


def actions_of(name: str, bodies: dict[str, list[str]], seen: set[str] | None = None) -> set[str]:
    """The DynamoDB actions reachable from the store fn `name`."""
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    out: set[str] = set()
    for body in bodies.get(name, []):
        for needle, action in SDK_CALLS.items():
            if needle in body:
                out.add(action)
        if ".query()" in body and re.search(r"\.index_name\(", body):
            out.add(INDEX_QUERY)
            if not re.search(r"\.query\(\)(?:(?!\.index_name).)*?\.send\(\)", body, re.S):
                out.discard("dynamodb:Query")
        for callee in CALL.findall(body):
            if callee != name and callee in bodies:
                out |= actions_of(callee, bodies, seen)
    return out


def function_actions(package_dir: Path, root: Path = ROOT) -> dict[str, set[str]]:
    """Port method -> actions, for every port method the function's code can call."""
    bodies = store_functions(root)
    ports = port_methods(root)
    src = "\n".join(
        rust_sources(d)
        for d in workspace_deps(package_dir)
        if d.name != "bastion-store"
    )
    called = {m for m in ports if re.search(r"\.\s*" + m + r"\s*\(", src)}
    return {m: actions_of(m, bodies) for m in sorted(called)}


def role_actions(template: dict, logical_id: str) -> set[str]:
    """DynamoDB actions the function's role grants: on the table, and on the index."""
    props = template["Resources"][logical_id]["Properties"]
    role_ref = props.get("Role")
    if not (isinstance(role_ref, _Tag) and role_ref.tag == "GetAtt"):
        raise ValueError(f"{logical_id}: Role must be !GetAtt <Role>.Arn")
    role_id = (role_ref.value if isinstance(role_ref.value, str) else ".".join(role_ref.value))
    role = template["Resources"][role_id.split(".")[0]]["Properties"]
    out: set[str] = set()
    for policy in role.get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            if st.get("Effect") != "Allow":
                continue
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = " ".join(_scalars(st.get("Resource", [])))
            on_index = "/index/" in resources
            on_table = any(
                "/index/" not in r for r in _scalars(st.get("Resource", []))
            ) and ("Table" in resources or "table/" in resources)
            for a in actions:
                if not a.startswith("dynamodb:"):
                    continue
                if on_table:
                    out.add(a)
                if on_index and a == "dynamodb:Query":
                    out.add(INDEX_QUERY)
    return out


def action_drift(template: dict, root: Path = ROOT) -> list[str]:
    drifts = []
    for logical_id, pkg in FUNCTIONS.items():
        granted = role_actions(template, logical_id)
        needed: dict[str, set[str]] = {}
        for method, actions in function_actions(root / pkg, root).items():
            for a in actions:
                needed.setdefault(a, set()).add(method)
        for a in sorted(set(needed) - granted):
            drifts.append(
                f"{logical_id}: code calls {a} (via {', '.join(sorted(needed[a]))}), "
                f"its role does not grant it"
            )
        for a in sorted(granted - set(needed)):
            drifts.append(f"{logical_id}: role grants {a}, which its code never calls")
    return drifts


# ---------------------------------------------------------------------------------------------
# Check 5: LeadingKeys

# Partition-key prefixes each port method of the DynamoDB adapter can read or write (from the
# `pk` each builds in crates/bastion-store/src/dynamodb). Twins: `delete_user` deletes the API-key
# lookups and the Google guard that point at the user. Conversations and credits live under
# the owner: `USER#` for an account, `OWNER#` for a channel owner. `list_for_day` queries the
# index only (its own statement, no LeadingKeys). A port method missing here fails the check.
PORT_PREFIXES: dict[str, set[str]] = {
    "create_user": {"USER#", "EMAIL#"},
    "get_user": {"USER#"},
    "find_user_by_email": {"EMAIL#", "USER#"},
    "set_password_hash": {"USER#"},
    "delete_user": {"USER#", "EMAIL#", "APIKEY#", "GOOGLE#"},
    "create_session": {"USER#", "REFRESH#"},
    "get_session": {"USER#"},
    "find_refresh": {"REFRESH#"},
    "rotate_refresh": {"USER#", "REFRESH#"},
    "list_sessions": {"USER#"},
    "revoke_session": {"USER#"},
    "revoke_all_sessions": {"USER#"},
    "hit": {"RL#"},
    "append": {"AUDIT#"},
    "list_for_user": {"AUDIT#"},
    "list_for_day": set(),
    "put_one_time": {"ONCE#"},
    "take_one_time": {"ONCE#"},
    "find_user_by_google": {"GOOGLE#", "USER#"},
    "create_google_user": {"USER#", "EMAIL#", "GOOGLE#"},
    "link_google": {"USER#", "GOOGLE#"},
    "unlink_google": {"USER#", "GOOGLE#"},
    "set_roles": {"USER#"},
    "set_disabled": {"USER#"},
    "create_api_key": {"APIKEY#", "USER#"},
    "find_api_key": {"APIKEY#"},
    "list_api_keys": {"USER#"},
    "revoke_api_key": {"USER#", "APIKEY#"},
    "revoke_all_api_keys": {"USER#", "APIKEY#"},
    "touch_api_key": {"APIKEY#", "USER#"},
    "get_conversation": {"USER#", "OWNER#"},
    "list_conversations": {"USER#", "OWNER#"},
    "list_messages": {"USER#", "OWNER#"},
    "append_turn": {"USER#", "OWNER#"},
    "delete_conversation": {"USER#", "OWNER#"},
    "debit": {"USER#", "OWNER#"},
    "refund": {"USER#", "OWNER#"},
    "claim_delivery": {"IDEMP#"},
    "complete_delivery": {"IDEMP#"},
    "release_delivery": {"IDEMP#"},
    "acquire_lease": {"LEASE#"},
    "release_lease": {"LEASE#"},
    "link_customer": {"STRIPECUS#", "USER#"},
    "user_for_customer": {"STRIPECUS#"},
    "apply_billing": {"USER#"},
    "billing_of": {"USER#"},
    "plan_of": {"USER#"},
}


def role_leading_keys(template: dict, logical_id: str) -> set[str] | None:
    """The LeadingKeys prefixes on the role's table statement; None when unconditioned."""
    props = template["Resources"][logical_id]["Properties"]
    role_id = props["Role"].value
    role_id = role_id if isinstance(role_id, str) else ".".join(role_id)
    role = template["Resources"][role_id.split(".")[0]]["Properties"]
    found: set[str] | None = None
    for policy in role.get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            res = _scalars(st.get("Resource", []))
            acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            if not any(a.startswith("dynamodb:") for a in acts) or any("/index/" in r for r in res):
                continue
            cond = st.get("Condition", {}).get("ForAllValues:StringLike", {})
            keys = cond.get("dynamodb:LeadingKeys")
            if keys is None:
                return None
            found = (found or set()) | {k.rstrip("*") for k in keys}
    return found


def leading_key_drift(template: dict, root: Path = ROOT) -> list[str]:
    drifts = []
    ports = port_methods(root)
    for m in sorted(ports - set(PORT_PREFIXES)):
        drifts.append(f"port method {m} has no entry in drift.PORT_PREFIXES")
    store_src = "\n".join(
        p.read_text() for p in (root / "crates/bastion-store/src/dynamodb").glob("*.rs")
    )
    for prefix in sorted(set().union(*PORT_PREFIXES.values())):
        if f'"{prefix}' not in store_src:
            drifts.append(f"prefix {prefix} of drift.PORT_PREFIXES is built nowhere in the store")
    for logical_id, pkg in FUNCTIONS.items():
        granted = role_leading_keys(template, logical_id)
        if granted is None:
            drifts.append(f"{logical_id}: its table statement has no dynamodb:LeadingKeys condition")
            continue
        needed: dict[str, set[str]] = {}
        for method in function_actions(root / pkg, root):
            for prefix in PORT_PREFIXES.get(method, set()):
                needed.setdefault(prefix, set()).add(method)
        for prefix in sorted(set(needed) - granted):
            drifts.append(
                f"{logical_id}: code touches {prefix}* (via {', '.join(sorted(needed[prefix]))}), "
                f"its role's LeadingKeys do not allow it"
            )
        for prefix in sorted(granted - set(needed)):
            drifts.append(f"{logical_id}: LeadingKeys allow {prefix}*, which its code never touches")
    return drifts


# ---------------------------------------------------------------------------------------------
# Check 6: metric filters

FILTER_FIELD = re.compile(r'\$\.fields\.([a-z_]+)\s*(=|>=|<=|>|<)\s*("([^"]*)"|\d+)')


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


def _refs(node: Any) -> set[str]:
    """Logical ids a value points at through !Ref, !GetAtt or !Sub."""
    found: set[str] = set()
    for text in _scalars(node):
        subs = re.findall(r"\$\{([A-Za-z0-9]+)", text)
        found |= set(subs) if "${" in text else {text.split(".")[0]}
    return found


def _role_of(template: dict, function_id: str) -> dict:
    role_id = template["Resources"][function_id]["Properties"]["Role"].value
    role_id = role_id if isinstance(role_id, str) else ".".join(role_id)
    return template["Resources"][role_id.split(".")[0]]["Properties"]


def _statements(role: dict) -> list[dict]:
    return [st for pol in role.get("Policies", []) for st in pol["PolicyDocument"]["Statement"]]


def _actions(st: dict) -> list[str]:
    return st["Action"] if isinstance(st["Action"], list) else [st["Action"]]


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
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--actions":
        for fid, pkg in FUNCTIONS.items():
            acts: set[str] = set()
            for m, a in function_actions(ROOT / pkg).items():
                acts |= a
            print(fid, sorted(acts))
        sys.exit(0)
    found = all_drifts()
    for d in found:
        print("drift:", d)
    sys.exit(1 if found else 0)
