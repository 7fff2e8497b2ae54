"""Each function's DynamoDB grants against the store code (moved here from drift.py, which
runs them):

  action_drift         every DynamoDB action a function's code can reach is granted to its role
  leading_key_drift    the role's dynamodb:LeadingKeys prefixes, as a union, are exactly the
                       partitions the store methods the function calls can touch

  prefix_access_drift  per prefix, the actions a role grants (statements conditioned on
                       `dynamodb:LeadingKeys`) are exactly the actions the store methods its
                       code calls perform on that prefix — reads where it reads, writes only
                       where it writes; where every write of one action on a prefix sets a
                       single field, the statement also limits `dynamodb:Attributes` to that
                       field and the key (and `dynamodb:ReturnValues` to NONE), so the grant
                       cannot rewrite the rest of the item

PORT_ACCESS is read off crates/bastion-store/src/dynamodb (the `pk` each SDK call's key or
item is built with, transactions counted per action they hold). It is held to the code on both
axes: each method's actions must be exactly the ones actions_of finds in its body, and its
prefixes exactly the partition prefixes its code builds keys with (code_prefixes, through the
key helpers it calls), plus the partitions of twin pointers it follows (delete_user removes an
API key's lookup, the Google guard and the Stripe customer lookup its partition names). Which
action lands on which of a method's prefixes is the table's own reading: a store change that
adds an action or a prefix fails here until the table (and so the roles) follow.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from purge_drift import is_stream_statement
from sources import (
    FUNCTIONS,
    ROOT,
    _Tag,
    _actions,
    _role_of,
    _scalars,
    _statements,
    fn_bodies,
    match_brace,
    rust_sources,
    strip_tests,
    workspace_deps,
)

G, P, U, D = "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"
Q, B, C = "dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"

# Port method -> prefix -> actions it performs there. Notes on the less obvious rows:
# a profile update (set_password_hash, set_roles, set_disabled, revoke_all_sessions' epoch)
# also writes the email guard's login copy; delete_user deletes every twin its partition names
# (API-key lookups, the Google guard, the Stripe customer lookup), in a transaction or, past
# its size, a batch; conversations and credits live under `USER#` or `OWNER#`.
_CHAT = ("USER#", "OWNER#")
PORT_ACCESS: dict[str, dict[str, set[str]]] = {
    "create_user": {"USER#": {P}, "EMAIL#": {P}},
    "get_user": {"USER#": {G}},
    "find_user_by_email": {"EMAIL#": {G}, "USER#": {G}},
    "set_password_hash": {"USER#": {G, U}, "EMAIL#": {U}},
    "delete_user": {
        "USER#": {Q, D, B},
        "EMAIL#": {D},
        "APIKEY#": {D, B},
        "GOOGLE#": {D, B},
        "STRIPECUS#": {D, B},
    },
    "create_session": {"USER#": {P, C}, "REFRESH#": {P}},
    "get_session": {"USER#": {G}},
    "find_refresh": {"REFRESH#": {G}},
    "rotate_refresh": {"USER#": {G, U}, "REFRESH#": {P}},
    "list_sessions": {"USER#": {Q}},
    "revoke_session": {"USER#": {D}},
    "revoke_all_sessions": {"USER#": {G, U, Q, B}, "EMAIL#": {U}},
    "hit": {"RL#": {U}},
    "append": {"AUDIT#": {P}},
    "list_for_user": {"AUDIT#": {Q}},
    "list_for_day": {},
    "put_one_time": {"ONCE#": {P}},
    "take_one_time": {"ONCE#": {D}},
    "find_user_by_google": {"GOOGLE#": {G}, "USER#": {G}},
    "create_google_user": {"USER#": {P}, "EMAIL#": {P}, "GOOGLE#": {P}},
    "link_google": {"USER#": {C, P}, "GOOGLE#": {P}},
    "unlink_google": {"USER#": {G, D}, "GOOGLE#": {D}},
    "set_roles": {"USER#": {G, U}, "EMAIL#": {U}},
    "set_disabled": {"USER#": {G, U}, "EMAIL#": {U}},
    "create_api_key": {"APIKEY#": {P, B}, "USER#": {P, U, G, Q, B}},
    "find_api_key": {"APIKEY#": {G}},
    "list_api_keys": {"USER#": {Q}},
    "revoke_api_key": {"USER#": {G, D, U}, "APIKEY#": {D}},
    "revoke_all_api_keys": {"USER#": {Q, B, G, P}, "APIKEY#": {B}},
    "touch_api_key": {"APIKEY#": {U}, "USER#": {U}},
    "get_conversation": {p: {G} for p in _CHAT},
    "list_conversations": {p: {Q} for p in _CHAT},
    "list_messages": {p: {Q} for p in _CHAT},
    "append_turn": {p: {P, U} for p in _CHAT},
    "delete_conversation": {p: {D, Q, B} for p in _CHAT},
    "debit": {p: {U} for p in _CHAT},
    "refund": {p: {U} for p in _CHAT},
    "claim_delivery": {"IDEMP#": {P, G}},
    "complete_delivery": {"IDEMP#": {U}},
    "release_delivery": {"IDEMP#": {D}},
    "acquire_lease": {"LEASE#": {P}},
    "release_lease": {"LEASE#": {D}},
    "link_customer": {"STRIPECUS#": {P}, "USER#": {U}},
    "user_for_customer": {"STRIPECUS#": {G}},
    "apply_billing": {"USER#": {U}},
    "billing_of": {"USER#": {G}},
    "plan_of": {"USER#": {G}},
    "set_email_verified": {"USER#": {G, U}, "EMAIL#": {U}},
    "put_reset": {"USER#": {P}},
    "take_reset": {"USER#": {D}},
    "get_totp": {"USER#": {G}},
    "put_pending_totp": {"USER#": {P}},
    "confirm_totp": {"USER#": {U}},
    "accept_totp_step": {"USER#": {U}},
    "use_recovery_code": {"USER#": {U}},
    "delete_totp": {"USER#": {D}},
}

# Writes that set one field: (method, prefix, action) -> the attributes the request names
# (the key, the field, and what its condition reads).
SINGLE_FIELD = {
    ("touch_api_key", "APIKEY#", U): {"pk", "sk", "last_used_at"},
    ("touch_api_key", "USER#", U): {"pk", "sk", "last_used_at"},
}


# ---------------------------------------------------------------------------------------------
# The union checks: DynamoDB actions


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
            if st.get("Effect") != "Allow" or is_stream_statement(st):
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
# The union checks: LeadingKeys

# Partition-key prefixes each port method of the DynamoDB adapter can read or write: the keys
# of PORT_ACCESS, which also says which actions it performs on each (checked per prefix by
# prefix_access_drift). `list_for_day` queries the index only (its own statement, no
# LeadingKeys). A port method missing there fails the check.
PORT_PREFIXES: dict[str, set[str]] = {m: set(a) for m, a in PORT_ACCESS.items()}


def role_leading_keys(template: dict, logical_id: str) -> set[str] | None:
    """The LeadingKeys prefixes on the role's table statements; None when one is unconditioned."""
    found: set[str] | None = None
    for st in table_statements(template, logical_id):
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
        drifts.append(f"port method {m} has no entry in iam.PORT_ACCESS")
    store_src = "\n".join(
        p.read_text() for p in (root / "crates/bastion-store/src/dynamodb").glob("*.rs")
    )
    for prefix in sorted(set().union(*PORT_PREFIXES.values())):
        if f'"{prefix}' not in store_src:
            drifts.append(f"prefix {prefix} of iam.PORT_ACCESS is built nowhere in the store")
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


def _list(v: Any) -> list:
    return v if isinstance(v, list) else [v]


def table_statements(template: dict, function_id: str) -> list[dict]:
    """The function's role statements that allow DynamoDB actions on the table (not an index)."""
    out = []
    for st in _statements(_role_of(template, function_id)):
        if st.get("Effect") != "Allow" or not any(a.startswith("dynamodb:") for a in _actions(st)):
            continue
        if any("/index/" in r for r in _scalars(st.get("Resource", []))) or is_stream_statement(st):
            continue
        out.append(st)
    return out


def granted(template: dict, function_id: str) -> tuple[dict[str, set[str]], dict, list[str]]:
    """(prefix -> actions, (prefix, action) -> attributes it is limited to, drifts)."""
    access: dict[str, set[str]] = {}
    limits: dict[tuple[str, str], set[str]] = {}
    drifts = []
    for st in table_statements(template, function_id):
        cond = st.get("Condition", {})
        keys = cond.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        if keys is None:
            drifts.append(f"{function_id}: a table statement has no dynamodb:LeadingKeys condition")
            continue
        attrs = cond.get("ForAllValues:StringEquals", {}).get("dynamodb:Attributes")
        returns = cond.get("StringEqualsIfExists", {}).get("dynamodb:ReturnValues")
        if attrs is not None and _list(returns) != ["NONE"]:
            drifts.append(
                f"{function_id}: a statement limited to attributes lets ReturnValues read others"
            )
        for prefix in (k.rstrip("*") for k in _list(keys)):
            for action in drift_actions(st):
                access.setdefault(prefix, set()).add(action)
                if attrs is not None:
                    limits[(prefix, action)] = set(_list(attrs))
    return access, limits, drifts


def drift_actions(st: dict) -> list[str]:
    return [a for a in _actions(st) if a.startswith("dynamodb:")]


def needed(package_dir: Path, root: Path) -> tuple[dict[str, dict[str, set[str]]], dict]:
    """(prefix -> action -> the methods doing it, (prefix, action) -> attributes when every
    method doing it sets one field)."""
    out: dict[str, dict[str, set[str]]] = {}
    for method in function_actions(package_dir, root):
        for prefix, actions in PORT_ACCESS.get(method, {}).items():
            for a in actions:
                out.setdefault(prefix, {}).setdefault(a, set()).add(method)
    limits = {}
    for prefix, by_action in out.items():
        for action, methods in by_action.items():
            sets = [SINGLE_FIELD.get((m, prefix, action)) for m in methods]
            if all(s is not None for s in sets):
                limits[(prefix, action)] = set().union(*sets)
    return out, limits


SORT_KEY_FN = re.compile(r"(_sk|_prefix)$")
# `begins_with(sk, :p)` with `:p` a prefix literal: a sort-key range, not a partition.
SORT_KEY_VALUE = re.compile(r'\.expression_attribute_values\(\s*":p"\s*,\s*s\("[A-Z]+#"\)\s*\)')
READS_TWIN = re.compile(r"get(?:_opt)?_s\(\s*&?item\s*,\s*TWIN_PK\s*\)")
WRITES_TWIN = re.compile(r'(?:TWIN_PK\.into\(\),|":tpk",)\s*s\((.+?)\)\s*\)')


def _literals(body: str, known: set[str]) -> set[str]:
    if "begins_with(sk" in body:
        body = SORT_KEY_VALUE.sub("", body)
    return {p for p in re.findall(r'"([A-Z]+#)', body) if p in known}


def code_prefixes(name: str, bodies: dict, known: set[str], seen: set[str] | None = None) -> set[str]:
    """Partition prefixes the store fn `name` builds keys or items with (its own literals and
    those of the helpers it calls; sort-key helpers `*_sk`/`*_prefix` are not partitions)."""
    seen = set() if seen is None else seen
    if name in seen or SORT_KEY_FN.search(name):
        return set()
    seen.add(name)
    out: set[str] = set()
    for body in bodies.get(name, []):
        out |= _literals(body, known)
        for callee in CALL.findall(body):
            if callee != name and callee in bodies:
                out |= code_prefixes(callee, bodies, known, seen)
    return out


def reads_twins(name: str, bodies: dict, seen: set[str] | None = None) -> bool:
    """Whether the fn follows items' twin pointers (and so touches their partitions)."""
    seen = set() if seen is None else seen
    if name in seen:
        return False
    seen.add(name)
    return any(
        READS_TWIN.search(body)
        or any(reads_twins(c, bodies, seen) for c in CALL.findall(body) if c != name and c in bodies)
        for body in bodies.get(name, [])
    )


def twin_targets(store_src: str, bodies: dict, known: set[str]) -> set[str]:
    """Partitions a twin pointer can name: the prefixes of every value written as `twin_pk`."""
    out: set[str] = set()
    for expr in WRITES_TWIN.findall(store_src):
        out |= _literals(expr, known)
        for callee in CALL.findall(expr):
            if callee in bodies:
                out |= code_prefixes(callee, bodies, known)
    return out


def _prefix_table_drift(root: Path, bodies: dict, ports: set[str], store_src: str) -> list[str]:
    """PORT_ACCESS's prefixes per method against the keys its code builds: every prefix the
    code builds is listed, and a listed prefix it does not build is one a twin pointer it
    follows can name."""
    known = set().union(*(set(a) for a in PORT_ACCESS.values()))
    targets = twin_targets(store_src, bodies, known)
    drifts = []
    for m in sorted(ports & set(PORT_ACCESS)):
        code, table = code_prefixes(m, bodies, known), set(PORT_ACCESS[m])
        for p in sorted(code - table):
            drifts.append(f"{m} builds keys under {p}, iam.PORT_ACCESS does not list it")
        for p in sorted(table - code):
            if not (p in targets and reads_twins(m, bodies)):
                drifts.append(f"iam.PORT_ACCESS lists {p} for {m}, whose code never builds it")
    return drifts


def table_drift(root: Path) -> list[str]:
    """PORT_ACCESS against the store code."""
    drifts = []
    bodies = store_functions(root)
    ports = port_methods(root)
    for m in sorted(ports - set(PORT_ACCESS)):
        drifts.append(f"port method {m} has no entry in iam.PORT_ACCESS")
    store_src = "\n".join(p.read_text() for p in (root / "crates/bastion-store/src/dynamodb").glob("*.rs"))
    for m in sorted(ports & set(PORT_ACCESS)):
        code = actions_of(m, bodies) - {INDEX_QUERY}
        table = set().union(*PORT_ACCESS[m].values()) if PORT_ACCESS[m] else set()
        if code != table:
            drifts.append(
                f"iam.PORT_ACCESS[{m!r}] lists {sorted(table)}, its code performs {sorted(code)}"
            )
        for prefix in PORT_ACCESS[m]:
            if f'"{prefix}' not in store_src:
                drifts.append(f"prefix {prefix} of iam.PORT_ACCESS is built nowhere in the store")
    return drifts + _prefix_table_drift(root, bodies, ports, store_src)


def prefix_access_drift(template: dict, root: Path) -> list[str]:
    drifts = table_drift(root)
    for fid, pkg in FUNCTIONS.items():
        need, need_limits = needed(root / pkg, root)
        have, have_limits, found = granted(template, fid)
        drifts += found
        for prefix in sorted(set(need) | set(have)):
            wanted = need.get(prefix, {})
            given = have.get(prefix, set())
            for a in sorted(set(wanted) - given):
                drifts.append(
                    f"{fid}: code performs {a} on {prefix}* (via {', '.join(sorted(wanted[a]))}), "
                    f"its role does not grant it there"
                )
            for a in sorted(given - set(wanted)):
                drifts.append(f"{fid}: role grants {a} on {prefix}*, which its code never performs there")
        for pa in sorted(set(need_limits) | set(have_limits)):
            if pa[1] not in have.get(pa[0], set()):
                continue
            if need_limits.get(pa) != have_limits.get(pa):
                drifts.append(
                    f"{fid}: {pa[1]} on {pa[0]}* limited to attributes "
                    f"{sorted(have_limits.get(pa, [])) or 'none'}, its code writes "
                    f"{sorted(need_limits.get(pa, [])) or 'any'}"
                )
    return drifts


def describe(template: dict, function_id: str) -> list[str]:
    """The role's table statements, one line each (for the report)."""
    lines = []
    for st in table_statements(template, function_id):
        cond = st.get("Condition", {})
        keys = cond.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        attrs = cond.get("ForAllValues:StringEquals", {}).get("dynamodb:Attributes")
        line = f"{', '.join(drift_actions(st))} on {', '.join(_list(keys))}"
        if attrs:
            line += f" (attributes {', '.join(_list(attrs))}; ReturnValues NONE)"
        lines.append(line)
    return lines
