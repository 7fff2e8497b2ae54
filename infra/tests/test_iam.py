"""Table grants per key prefix: each role may perform on a prefix only what its code does
there, and a one-field update is limited to that field. Shown failing on the roles as they
were (the union of actions on the union of prefixes) and on deliberate widenings."""

import copy
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import drift  # noqa: E402
import iam  # noqa: E402

TEMPLATE = drift.load_template()
ROOT = drift.ROOT


def table_policy(t: dict, role: str) -> dict:
    policies = t["Resources"][role]["Properties"]["Policies"]
    return next(p for p in policies if p["PolicyName"] == "table")["PolicyDocument"]


def union_statement(t: dict, role: str) -> None:
    """The role's table grants as they were: every action on every prefix, in one statement."""
    doc = table_policy(t, role)
    actions, keys = set(), set()
    for st in iam.table_statements(t, role.replace("Role", "Function")):
        actions |= set(iam.drift_actions(st))
        keys |= set(iam._list(st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]))
    doc["Statement"] = [
        {
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": drift._Tag("GetAtt", "Table.Arn"),
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": sorted(keys)}},
        }
    ] + [st for st in doc["Statement"] if "/index/" in " ".join(drift._scalars(st["Resource"]))]


class PrefixAccess(unittest.TestCase):
    def test_every_role_grants_per_prefix_exactly_what_its_code_does_there(self):
        self.assertEqual(iam.prefix_access_drift(TEMPLATE, ROOT), [])

    def test_exec_may_write_user_items_only_as_an_api_key_touch(self):
        self.assertEqual(
            iam.describe(TEMPLATE, "ExecFunction"),
            [
                "dynamodb:PutItem, dynamodb:DeleteItem on LEASE#*",
                "dynamodb:GetItem on USER#*, APIKEY#*",
                "dynamodb:UpdateItem on RL#*",
                "dynamodb:PutItem on AUDIT#*",
                "dynamodb:UpdateItem on USER#*, APIKEY#* "
                "(attributes last_used_at, pk, sk; ReturnValues NONE)",
            ],
        )

    def test_the_union_grant_let_exec_put_update_and_delete_any_user_item(self):
        t = copy.deepcopy(TEMPLATE)
        union_statement(t, "ExecRole")
        drifts = [d for d in iam.prefix_access_drift(t, ROOT) if d.startswith("ExecFunction")]
        for line in (
            "ExecFunction: role grants dynamodb:PutItem on USER#*, which its code never performs there",
            "ExecFunction: role grants dynamodb:DeleteItem on USER#*, which its code never performs there",
            "ExecFunction: role grants dynamodb:GetItem on LEASE#*, which its code never performs there",
            "ExecFunction: dynamodb:UpdateItem on USER#* limited to attributes none, "
            "its code writes ['last_used_at', 'pk', 'sk']",
        ):
            self.assertIn(line, drifts)

    def test_granting_exec_put_item_on_user_items_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        table_policy(t, "ExecRole")["Statement"].append(
            {
                "Effect": "Allow",
                "Action": ["dynamodb:PutItem"],
                "Resource": drift._Tag("GetAtt", "Table.Arn"),
                "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["USER#*"]}},
            }
        )
        self.assertEqual(
            iam.prefix_access_drift(t, ROOT),
            ["ExecFunction: role grants dynamodb:PutItem on USER#*, which its code never performs there"],
        )

    def test_an_api_key_touch_without_its_attribute_limit_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        limited = table_policy(t, "ExecRole")["Statement"][-1]
        del limited["Condition"]["ForAllValues:StringEquals"]
        del limited["Condition"]["StringEqualsIfExists"]
        self.assertEqual(
            iam.prefix_access_drift(t, ROOT),
            [
                "ExecFunction: dynamodb:UpdateItem on APIKEY#* limited to attributes none, "
                "its code writes ['last_used_at', 'pk', 'sk']",
                "ExecFunction: dynamodb:UpdateItem on USER#* limited to attributes none, "
                "its code writes ['last_used_at', 'pk', 'sk']",
            ],
        )

    def test_an_attribute_limit_that_lets_return_values_read_the_item_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        del table_policy(t, "ExecRole")["Statement"][-1]["Condition"]["StringEqualsIfExists"]
        self.assertEqual(
            iam.prefix_access_drift(t, ROOT),
            ["ExecFunction: a statement limited to attributes lets ReturnValues read others"],
        )

    def test_account_deletion_needs_the_stripe_customer_lookup_it_deletes(self):
        t = copy.deepcopy(TEMPLATE)
        doc = table_policy(t, "AuthRole")
        doc["Statement"] = [
            st for st in doc["Statement"]
            if "STRIPECUS#*" not in st.get("Condition", {}).get("ForAllValues:StringLike", {}).get(
                "dynamodb:LeadingKeys", []
            )
        ]
        self.assertEqual(
            iam.prefix_access_drift(t, ROOT),
            [
                "AuthFunction: code performs dynamodb:BatchWriteItem on STRIPECUS#* (via delete_user), "
                "its role does not grant it there",
                "AuthFunction: code performs dynamodb:DeleteItem on STRIPECUS#* (via delete_user), "
                "its role does not grant it there",
            ],
        )


def scratch_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="bastion-iam-"))
    for d in ("crates", "functions"):
        shutil.copytree(ROOT / d, root / d, ignore=shutil.ignore_patterns("target"))
    return root


class AccessTable(unittest.TestCase):
    def test_the_table_matches_the_actions_each_store_method_performs(self):
        self.assertEqual(iam.table_drift(ROOT), [])

    def test_a_store_method_that_reads_another_partition_is_drift(self):
        root = scratch_root()
        path = root / "crates/bastion-store/src/dynamodb/sessions.rs"
        text = path.read_text()
        old = ".set_key(Some(refresh_key(hash)))"
        self.assertIn(old, text)
        path.write_text(text.replace(old, ".set_key(Some(email_key(hash.as_str())))", 1))
        self.assertEqual(
            iam.table_drift(root),
            [
                "find_refresh builds keys under EMAIL#, iam.PORT_ACCESS does not list it",
                "iam.PORT_ACCESS lists REFRESH# for find_refresh, whose code never builds it",
            ],
        )

    def test_the_prefixes_are_read_from_the_key_helpers_and_twin_pointers(self):
        bodies = iam.store_functions(ROOT)
        known = set().union(*(set(a) for a in iam.PORT_ACCESS.values()))
        # owner_items queries the user's partition for sort keys starting APIKEY#.
        self.assertEqual(iam.code_prefixes("list_api_keys", bodies, known), {"USER#"})
        self.assertEqual(iam.code_prefixes("touch_api_key", bodies, known), {"USER#", "APIKEY#"})
        self.assertEqual(iam.code_prefixes("delete_user", bodies, known), {"USER#", "EMAIL#"})
        self.assertTrue(iam.reads_twins("delete_user", bodies))
        store_src = "\n".join(
            p.read_text() for p in (ROOT / "crates/bastion-store/src/dynamodb").glob("*.rs")
        )
        self.assertEqual(
            iam.twin_targets(store_src, bodies, known), {"APIKEY#", "GOOGLE#", "STRIPECUS#"}
        )

    def test_a_store_method_that_starts_another_action_is_drift(self):
        root = scratch_root()
        path = root / "crates/bastion-store/src/dynamodb/leases.rs"
        text = path.read_text()
        self.assertIn("            .delete_item()", text)
        path.write_text(text.replace("            .delete_item()", "            .update_item()", 1))
        self.assertEqual(
            iam.table_drift(root),
            [
                "iam.PORT_ACCESS['release_lease'] lists ['dynamodb:DeleteItem'], "
                "its code performs ['dynamodb:UpdateItem']"
            ],
        )


if __name__ == "__main__":
    unittest.main()
