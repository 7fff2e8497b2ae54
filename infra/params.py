"""Template parameters against the bounds the code puts on the variables they feed, and
function timeouts against the route that calls them:

  parameter_bounds_drift  a parameter that becomes a function's environment variable allows
                          exactly the values the code accepts for it: `bounded(env, "VAR",
                          default, LO..=HI)` -> MinValue LO / MaxValue HI; a `match` on the
                          variable's literal values -> AllowedValues among them; LLM_MODEL ->
                          the ModelName character set and length (LLM_FALLBACK_MODEL: the
                          same, or empty for no fallback). A deploy the code refuses
                          at start must already be refused by CloudFormation.
  timeout_drift           a routed function finishes within its routes' integration timeout
                          (29 s for a buffered route; a streamed one sets timeoutInMillis, up
                          to 15 min; time past it is spent after the client was cut off), and
                          its own timeout is longer than the code's largest deadlines for the work

The Rust side is read as text, like drift.py does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sources import FUNCTIONS, api_paths, match_brace, strip_tests
from streaming import integration_timeout_secs

# API Gateway REST's integration timeout for a buffered (non-streaming) Lambda proxy route.
API_GATEWAY_TIMEOUT_SECS = 29

# Code deadlines that must fit inside a function's timeout: function -> [(variable, unit in s)].
DEADLINES = {
    "ExecFunction": [("EXEC_TIMEOUT_MS", 0.001)],
    "ChatFunction": [("LLM_TIMEOUT_SECS", 1), ("AGENT_DEADLINE_SECS", 1)],
    "WebhooksFunction": [("LLM_TIMEOUT_SECS", 1)],
}

BOUNDED = re.compile(
    r"\bbounded\(\s*[^,]+,\s*(\"[A-Z0-9_]+\"|[A-Z0-9_]+)\s*,\s*[^,]+?,\s*([^,)]+?)\s*\.\.=\s*([^,)]+?)\s*,?\s*\)",
    re.S,
)
STR_CONST = re.compile(r'const\s+([A-Z0-9_]+)\s*:\s*&str\s*=\s*"([^"]+)"')
NUM_CONST = re.compile(r"const\s+([A-Z0-9_]+)\s*:\s*[a-z0-9]+\s*=\s*([0-9_ *+]+);")
MATCH_ON = re.compile(r'match\s+env\s*\.\s*non_empty\(\s*"([A-Z0-9_]+)"\s*\)[^{]*\{')


def _sources(root: Path) -> str:
    return "\n".join(
        strip_tests(p.read_text())
        for d in ("crates", "functions")
        for p in sorted((root / d).glob("*/src/**/*.rs"))
    )


def _number(expr: str, consts: dict[str, str]) -> int | None:
    """An integer bound written as digits, `_`, `*`, `+` and numeric constants; None otherwise."""
    text = expr.strip()
    for name, value in consts.items():
        text = re.sub(r"\b" + name + r"\b", f"({value})", text)
    if "(" in text and "+" in text:
        return None  # grouping this reader does not evaluate: no bound rather than a wrong one
    text = text.replace("(", "").replace(")", "").replace("_", "").replace(" ", "")
    if not re.fullmatch(r"-?[0-9]+(?:[*+][0-9]+)*", text):
        return None
    total = 0
    for term in text.split("+"):
        product = 1
        for factor in term.split("*"):
            product *= int(factor)
        total += product
    return total


def code_bounds(root: Path) -> dict[str, tuple[int, int]]:
    """Variable -> (lowest, highest) accepted, for every `bounded(…)` with literal bounds."""
    src = _sources(root)
    names = dict(STR_CONST.findall(src))
    consts = dict(NUM_CONST.findall(src))
    out: dict[str, tuple[int, int]] = {}
    for var, lo, hi in BOUNDED.findall(src):
        var = var.strip('"') if var.startswith('"') else names.get(var, var)
        low, high = _number(lo, consts), _number(hi, consts)
        if low is not None and high is not None:
            out[var] = (low, high)
    return out


def code_enumerations(root: Path) -> dict[str, set[str]]:
    """Variable -> the literal values a `match env.non_empty("VAR")…` accepts."""
    src = _sources(root)
    out: dict[str, set[str]] = {}
    for m in MATCH_ON.finditer(src):
        body = src[m.end() - 1 : match_brace(src, m.end() - 1)]
        arms = re.findall(r'Some\("([^"]*)"\)\s*(?:\|[^=]*)?=>', body)
        arms += re.findall(r'\|\s*Some\("([^"]*)"\)', body)
        if arms:
            out[m.group(1)] = set(arms)
    # `parse_flag(env, "VAR")` (bastion-http) is the shared true/false parser: each variable it
    # reads accepts what its own match accepts, the empty value meaning unset.
    flag = re.search(r"pub fn parse_flag\(", src)
    if flag:
        start = src.index("{", flag.end())
        body = src[start : match_brace(src, start)]
        values = set(re.findall(r'Some\("([^"]*)"\)', body)) - {""}
        for var in re.findall(r'parse_flag\(env, "([A-Z0-9_]+)"\)', src):
            out[var] = values
    return out


def model_pattern(root: Path) -> str:
    """The AllowedPattern matching exactly what `ModelName::parse` accepts."""
    src = (root / "crates/bastion-chat/src/message.rs").read_text()
    length = re.search(r"const MAX_MODEL_CHARS: usize = ([0-9_]+);", src)
    extra = re.search(r'is_ascii_alphanumeric\(\) \|\| b"([^"]+)"\.contains', src)
    if not (length and extra):
        raise ValueError("ModelName::parse changed shape: update infra/params.py")
    # `-` last, where a character class takes it literally; the others need no escape there.
    chars = "".join(sorted(set(extra.group(1)) - {"-"})) + ("-" if "-" in extra.group(1) else "")
    if not set(chars) <= set("./:@_-"):
        raise ValueError("ModelName::parse accepts a character infra/params.py does not escape")
    return f"^[A-Za-z0-9{chars}]{{1,{length.group(1).replace('_', '')}}}$"


def model_patterns(root: Path) -> dict[str, str]:
    """Model variable -> its parameter's AllowedPattern: the fallback's model may be empty (no
    fallback), the default model may not."""
    one = model_pattern(root)
    return {"LLM_MODEL": one, "LLM_FALLBACK_MODEL": "^(" + one[1:-1] + ")?$"}


def parameter_of(template: dict) -> dict[str, str]:
    """Environment variable -> the template parameter it is set from (`!Ref Param`)."""
    params = template.get("Parameters", {})
    envs = [template.get("Globals", {}).get("Function", {}).get("Environment", {})]
    envs += [
        r["Properties"].get("Environment", {})
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    ]
    out: dict[str, str] = {}
    for env in envs:
        for var, value in env.get("Variables", {}).items():
            for name in _ref_names(value):
                if name in params:
                    out[var] = name
    return out


def _ref_names(value: Any) -> list[str]:
    if getattr(value, "tag", None) == "Ref":
        return [value.value]
    if getattr(value, "tag", None) == "If":
        return [n for v in value.value[1:] for n in _ref_names(v)]
    return []


def parameter_bounds_drift(template: dict, root: Path) -> list[str]:
    params = template.get("Parameters", {})
    feeds = parameter_of(template)
    bounds, enums = code_bounds(root), code_enumerations(root)
    drifts = []
    for var, name in sorted(feeds.items()):
        p = params[name]
        if var in bounds:
            lo, hi = bounds[var]
            if (p.get("Type"), p.get("MinValue"), p.get("MaxValue")) != ("Number", lo, hi):
                drifts.append(
                    f"parameter {name} ({var}): allows {p.get('MinValue')}..{p.get('MaxValue')}, "
                    f"the code accepts {lo}..{hi}"
                )
        if var in enums:
            allowed = set(p.get("AllowedValues", []))
            if not allowed or not allowed <= enums[var]:
                drifts.append(
                    f"parameter {name} ({var}): AllowedValues {sorted(allowed)}, the code accepts "
                    f"{sorted(enums[var])}"
                )
        wanted = model_patterns(root).get(var)
        if wanted is not None and p.get("AllowedPattern") != wanted:
            drifts.append(
                f"parameter {name} ({var}): AllowedPattern {p.get('AllowedPattern')!r}, the code "
                f"accepts {wanted!r}"
            )
    return drifts


def timeout_drift(template: dict, root: Path) -> list[str]:
    bounds = code_bounds(root)
    drifts = []
    for fid in FUNCTIONS:
        timeout = template["Resources"][fid]["Properties"].get("Timeout")
        limit = integration_timeout_secs(template, fid)
        if limit is None and api_paths(template, fid):
            limit = API_GATEWAY_TIMEOUT_SECS
        if limit is not None and (timeout is None or timeout > limit):
            drifts.append(
                f"{fid}: Timeout {timeout} s, but API Gateway gives up on its routes after "
                f"{limit:g} s"
            )
        for var, unit in DEADLINES.get(fid, []):
            if var not in bounds:
                drifts.append(f"{fid}: no bounded {var} found in the code")
            elif timeout is None or bounds[var][1] * unit >= timeout:
                drifts.append(
                    f"{fid}: Timeout {timeout} s does not leave room after {var}'s largest "
                    f"value ({bounds[var][1] * unit:g} s)"
                )
    return drifts
