"""Each function's DynamoDB grants, per partition-key prefix:

  prefix_access_drift  per prefix, the actions a role grants (statements conditioned on
                       `dynamodb:LeadingKeys`) are exactly the actions the store methods its
                       code calls perform on that prefix — reads where it reads, writes only
                       where it writes; where every write of one action on a prefix sets a
                       single field, the statement also limits `dynamodb:Attributes` to that
                       field and the key (and `dynamodb:ReturnValues` to NONE), so the grant
                       cannot rewrite the rest of the item

PORT_ACCESS is read off crates/bastion-store/src/dynamodb (the `pk` each SDK call's key or
item is built with, transactions counted per action they hold). It is held to the code: each
method's actions must be exactly the ones drift.actions_of finds in its body, and each prefix
must be built in the store, so a store change that adds an action or a prefix fails here until
the table (and so the roles) follow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
}

# Writes that set one field: (method, prefix, action) -> the attributes the request names
# (the key, the field, and what its condition reads).
SINGLE_FIELD = {
    ("touch_api_key", "APIKEY#", U): {"pk", "sk", "last_used_at"},
    ("touch_api_key", "USER#", U): {"pk", "sk", "last_used_at"},
}


def port_prefixes() -> dict[str, set[str]]:
    """Method -> the prefixes it touches (what drift.leading_key_drift checks as a union)."""
    return {m: set(access) for m, access in PORT_ACCESS.items()}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else [v]


def table_statements(template: dict, function_id: str) -> list[dict]:
    """The function's role statements that allow DynamoDB actions on the table (not an index)."""
    import drift

    out = []
    for st in drift._statements(drift._role_of(template, function_id)):
        if st.get("Effect") != "Allow" or not any(a.startswith("dynamodb:") for a in drift._actions(st)):
            continue
        if any("/index/" in r for r in drift._scalars(st.get("Resource", []))):
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
    import drift

    return [a for a in drift._actions(st) if a.startswith("dynamodb:")]


def needed(package_dir: Path, root: Path) -> tuple[dict[str, dict[str, set[str]]], dict]:
    """(prefix -> action -> the methods doing it, (prefix, action) -> attributes when every
    method doing it sets one field)."""
    import drift

    out: dict[str, dict[str, set[str]]] = {}
    for method in drift.function_actions(package_dir, root):
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


def table_drift(root: Path) -> list[str]:
    """PORT_ACCESS against the store code."""
    import drift

    drifts = []
    bodies = drift.store_functions(root)
    ports = drift.port_methods(root)
    for m in sorted(ports - set(PORT_ACCESS)):
        drifts.append(f"port method {m} has no entry in iam.PORT_ACCESS")
    store_src = "\n".join(p.read_text() for p in (root / "crates/bastion-store/src/dynamodb").glob("*.rs"))
    for m in sorted(ports & set(PORT_ACCESS)):
        code = drift.actions_of(m, bodies) - {drift.INDEX_QUERY}
        table = set().union(*PORT_ACCESS[m].values()) if PORT_ACCESS[m] else set()
        if code != table:
            drifts.append(
                f"iam.PORT_ACCESS[{m!r}] lists {sorted(table)}, its code performs {sorted(code)}"
            )
        for prefix in PORT_ACCESS[m]:
            if f'"{prefix}' not in store_src:
                drifts.append(f"prefix {prefix} of iam.PORT_ACCESS is built nowhere in the store")
    return drifts


def prefix_access_drift(template: dict, root: Path) -> list[str]:
    import drift

    drifts = table_drift(root)
    for fid, pkg in drift.FUNCTIONS.items():
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
