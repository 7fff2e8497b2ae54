"""The account-purge checks against the real template, and each failing on a deliberate drift
of the template so none of them passes vacuously."""

import copy
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import drift  # noqa: E402
import purge_drift  # noqa: E402

TEMPLATE = drift.load_template()


def mapping(t: dict) -> dict:
    return t["Resources"]["ExecFunction"]["Properties"]["Events"]["AccountDeleted"]["Properties"]


def purge_policy(t: dict) -> list[dict]:
    for policy in t["Resources"]["ExecRole"]["Properties"]["Policies"]:
        if policy["PolicyName"] == "account-purge":
            return policy["PolicyDocument"]["Statement"]
    raise AssertionError("ExecRole has no account-purge policy")


class AccountPurgeDrift(unittest.TestCase):
    def test_the_template_is_in_step(self):
        self.assertEqual(purge_drift.account_purge_drift(TEMPLATE), [])

    def test_a_stream_that_carries_images_or_none_at_all_is_drift(self):
        for spec in ({"StreamViewType": "NEW_AND_OLD_IMAGES"}, None):
            t = copy.deepcopy(TEMPLATE)
            t["Resources"]["Table"]["Properties"]["StreamSpecification"] = spec
            self.assertEqual(
                purge_drift.account_purge_drift(t),
                ["Table: its stream is not KEYS_ONLY (exec reads the keys; nothing else belongs there)"],
            )

    def test_a_mapping_without_batch_item_failures_would_drop_failed_purges(self):
        t = copy.deepcopy(TEMPLATE)
        del mapping(t)["FunctionResponseTypes"]
        self.assertEqual(
            purge_drift.account_purge_drift(t),
            ["ExecFunction.AccountDeleted: no ReportBatchItemFailures, so a failed purge would count as done"],
        )

    def test_unbounded_retries_are_drift(self):
        t = copy.deepcopy(TEMPLATE)
        mapping(t)["MaximumRetryAttempts"] = -1
        self.assertEqual(
            purge_drift.account_purge_drift(t),
            ["ExecFunction.AccountDeleted: MaximumRetryAttempts is not a bound between 0 and 100"],
        )

    def test_any_filter_but_a_profile_removal_is_drift(self):
        for pattern in (
            '{"eventName": ["REMOVE"]}',
            '{"eventName": ["REMOVE"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "USER#"}]}, "sk": {"S": ["SESSION"]}}}}',
            "not json",
        ):
            t = copy.deepcopy(TEMPLATE)
            mapping(t)["FilterCriteria"]["Filters"][0]["Pattern"] = pattern
            self.assertEqual(
                purge_drift.account_purge_drift(t),
                ["ExecFunction.AccountDeleted: its filter is not exactly a profile item's REMOVE"],
                pattern,
            )

    def test_a_missing_or_unencrypted_or_unalarmed_queue_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        del mapping(t)["DestinationConfig"]
        self.assertEqual(
            purge_drift.account_purge_drift(t),
            ["ExecFunction.AccountDeleted: no SQS on-failure destination"],
        )
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["AccountPurgeDeadLetterQueue"]["Properties"]["KmsMasterKeyId"]
        self.assertEqual(
            purge_drift.account_purge_drift(t),
            ["ExecFunction.AccountDeleted: its on-failure queue is not encrypted"],
        )
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["AccountPurgeDeadLetterAlarm"]
        self.assertEqual(
            purge_drift.account_purge_drift(t),
            ["ExecFunction.AccountDeleted: no alarm on its on-failure queue"],
        )

    def test_the_role_missing_a_purge_permission_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        statements = purge_policy(t)
        statements[:] = [
            st for st in statements
            if st["Action"] not in ("sqs:SendMessage", "s3:DeleteObjectVersion")
        ]
        self.assertEqual(
            purge_drift.account_purge_drift(t),
            [
                "ExecFunction.AccountDeleted: exec's role cannot send to its on-failure queue",
                "ExecFunction: its role does not grant s3:DeleteObjectVersion, which the workspace purge calls",
            ],
        )
        t = copy.deepcopy(TEMPLATE)
        purge_policy(t)[0]["Action"].remove("dynamodb:GetRecords")
        self.assertEqual(
            purge_drift.account_purge_drift(t),
            ["ExecFunction: its role cannot dynamodb:GetRecords on the table's stream"],
        )

    def test_a_second_function_on_the_stream_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        events = t["Resources"]["ChatFunction"]["Properties"].setdefault("Events", {})
        events["Stolen"] = copy.deepcopy(t["Resources"]["ExecFunction"]["Properties"]["Events"]["AccountDeleted"])
        self.assertIn(
            "the table's stream feeds ['ChatFunction.Stolen', 'ExecFunction.AccountDeleted'], not one ExecFunction event",
            purge_drift.account_purge_drift(t),
        )

    def test_stream_statements_are_not_taken_for_table_statements(self):
        stream = purge_policy(TEMPLATE)[0]
        self.assertTrue(purge_drift.is_stream_statement(stream))
        table = next(
            st for p in TEMPLATE["Resources"]["ExecRole"]["Properties"]["Policies"]
            if p["PolicyName"] == "table" for st in p["PolicyDocument"]["Statement"]
        )
        self.assertFalse(purge_drift.is_stream_statement(table))


if __name__ == "__main__":
    unittest.main()
