"""Reading template.yaml and the Rust sources as data, shared by infra/drift.py and its check
modules (iam.py, params.py): the template with its intrinsics kept as tagged values, Rust
files without their test items, function bodies by name, the workspace crates a package
depends on, and the role, statements and API paths of a function.
"""

from __future__ import annotations

import re
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
    transitively), by directory. An optional dependency is left out: the function is built
    without features (exec's `in-process-tools`, which brings the chat engine, is for
    bastion-local and the tests only)."""
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
            if name in members and not re.search(r"optional\s*=\s*true", line):
                todo.append(members[name])
    return seen


# ---------------------------------------------------------------------------------------------
# Reading a function's place in the template


def api_paths(template: dict, logical_id: str) -> list[str]:
    """Paths routed to the function: its SAM Api events, and the API DefinitionBody paths
    whose integration invokes it."""
    events = template["Resources"][logical_id]["Properties"].get("Events", {})
    paths = [e["Properties"]["Path"] for e in events.values() if e["Type"] == "Api"]
    for res in template["Resources"].values():
        if res.get("Type") != "AWS::Serverless::Api":
            continue
        for path, methods in res["Properties"].get("DefinitionBody", {}).get("paths", {}).items():
            for op in methods.values():
                uri = op.get("x-amazon-apigateway-integration", {}).get("uri")
                if logical_id in _refs(uri) and path not in paths:
                    paths.append(path)
    return paths


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
