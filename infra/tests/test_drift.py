"""The drift checks against the real template and code, and each check failing on a deliberate
drift (of the template, and of the code, in a scratch copy) so none of them can pass vacuously."""

import copy
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import drift  # noqa: E402

TEMPLATE = drift.load_template()


def scratch_root() -> Path:
    """A copy of the sources drift.py reads, to edit without touching the work tree."""
    tmp = Path(tempfile.mkdtemp(prefix="bastion-drift-"))
    for d in ("crates", "functions"):
        shutil.copytree(drift.ROOT / d, tmp / d, ignore=shutil.ignore_patterns("target"))
    return tmp


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def statement(t: dict, role: str, action: str) -> dict:
    for policy in t["Resources"][role]["Properties"]["Policies"]:
        for st in policy["PolicyDocument"]["Statement"]:
            acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            if action in acts and "/index/" not in " ".join(drift._scalars(st["Resource"])):
                return st
    raise AssertionError(f"{role} grants no {action}")


class TemplateMatchesCode(unittest.TestCase):
    def test_the_template_is_in_step_with_the_code_on_every_check(self):
        self.assertEqual(drift.all_drifts(TEMPLATE), [])

    def test_the_checks_see_what_the_code_does(self):
        # Guards against a parser that silently finds nothing.
        self.assertIn("/auth/login", drift.code_routes(drift.ROOT / "functions/auth"))
        self.assertIn("LLM_MODEL", drift.code_variables(drift.ROOT / "functions/chat"))
        self.assertEqual(
            drift.function_actions(drift.ROOT / "functions/exec")["hit"],
            {"dynamodb:UpdateItem"},
        )
        self.assertEqual(
            drift.function_actions(drift.ROOT / "functions/auth")["list_for_day"],
            {drift.INDEX_QUERY},
        )


class KeySchemaDrift(unittest.TestCase):
    def test_a_renamed_sort_key_in_the_template_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        t["Resources"]["Table"]["Properties"]["KeySchema"][1]["AttributeName"] = "sort"
        self.assertTrue(any("table keys" in d for d in drift.key_schema_drift(t)))

    def test_a_missing_ttl_in_the_template_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["Table"]["Properties"]["TimeToLiveSpecification"]
        self.assertTrue(any("table ttl" in d for d in drift.key_schema_drift(t)))

    def test_a_code_side_index_change_is_drift(self):
        root = scratch_root()
        edit(
            root / "crates/bastion-store/src/dynamodb/mod.rs",
            '.key_schema(key("gsi1sk", KeyType::Range)?)',
            '.key_schema(key("gsi1at", KeyType::Range)?)',
        )
        self.assertTrue(any("table indexes" in d for d in drift.key_schema_drift(TEMPLATE, root)))


class VariableDrift(unittest.TestCase):
    def test_a_variable_missing_from_the_environment_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["ChatFunction"]["Properties"]["Environment"]["Variables"]["LLM_MODEL"]
        self.assertIn(
            "ChatFunction: code reads LLM_MODEL, which is neither in its environment, nor a "
            "secret-document key, nor listed in drift.DEFAULTED",
            drift.variable_drift(t),
        )

    def test_a_secret_in_the_plain_environment_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        t["Resources"]["AuthFunction"]["Properties"]["Environment"]["Variables"][
            "JWT_SIGNING_KEYS"] = "x"
        self.assertIn(
            "AuthFunction: secret(s) ['JWT_SIGNING_KEYS'] in the plain environment",
            drift.variable_drift(t),
        )

    def test_a_new_required_variable_in_the_code_is_drift(self):
        root = scratch_root()
        edit(
            root / "functions/exec/src/config.rs",
            'env.required("EXEC_SANDBOX_KEY")?',
            'env.required("EXEC_SANDBOX_KEY").and(env.required("EXEC_QUEUE_URL"))?',
        )
        self.assertTrue(any("EXEC_QUEUE_URL" in d for d in drift.variable_drift(TEMPLATE, root)))

    def test_a_secret_missing_from_the_document_is_drift(self):
        keys = drift.SECRET_KEYS - {"EXEC_SANDBOX_KEY"}
        self.assertTrue(
            any("EXEC_SANDBOX_KEY" in d for d in drift.variable_drift(TEMPLATE, secret_keys=keys))
        )


class SecretDocumentDrift(unittest.TestCase):
    def test_the_template_points_each_function_at_its_own_document(self):
        self.assertEqual(drift.secret_document_drift(TEMPLATE), [])

    def test_exec_pointed_at_the_main_document_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["ExecFunction"]["Properties"]["Environment"]["Variables"][
            "BASTION_SECRET_ID"]
        self.assertIn(
            "ExecFunction: BASTION_SECRET_ID names ['Secret'], not its document ExecSecret",
            drift.secret_document_drift(t),
        )

    def test_execs_role_reading_the_main_document_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        t["Resources"]["ExecRole"]["Properties"]["Policies"] = [
            p if p["PolicyName"] != "config"
            else t["Resources"]["AuthRole"]["Properties"]["Policies"][1]
            for p in t["Resources"]["ExecRole"]["Properties"]["Policies"]
        ]
        self.assertIn(
            "ExecFunction: its role reads the secret(s) ['Secret'], not only ExecSecret",
            drift.secret_document_drift(t),
        )

    def test_exec_code_accepting_another_document_key_is_drift(self):
        root = scratch_root()
        edit(
            root / "functions/exec/src/config.rs",
            '["EXEC_SANDBOX_KEY", "JWT_VERIFY_KEYS"]',
            '["EXEC_SANDBOX_KEY", "JWT_VERIFY_KEYS", "JWT_SIGNING_KEYS"]',
        )
        self.assertTrue(any("exec's code accepts" in d
                            for d in drift.secret_document_drift(TEMPLATE, root)))


class RouteDrift(unittest.TestCase):
    def test_an_unrouted_prefix_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["Api"]["Properties"]["DefinitionBody"]["paths"]["/admin/{proxy+}"]
        self.assertIn(
            "AuthFunction: its router serves /admin/audit, the API does not route it",
            drift.route_drift(t),
        )

    def test_the_bare_chat_path_needs_its_own_route(self):
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["Api"]["Properties"]["DefinitionBody"]["paths"]["/chat"]
        self.assertIn(
            "ChatFunction: its router serves /chat, the API does not route it",
            drift.route_drift(t),
        )

    def test_a_new_route_prefix_in_the_code_is_drift(self):
        root = scratch_root()
        edit(
            root / "functions/webhooks/src/lib.rs",
            '.route("/webhooks/health", get(health))',
            '.route("/webhooks/health", get(health)).route("/billing/portal", get(health))',
        )
        self.assertIn(
            "WebhooksFunction: its router serves /billing/portal, the API does not route it",
            drift.route_drift(TEMPLATE, root),
        )


class ActionDrift(unittest.TestCase):
    def test_an_action_missing_from_a_role_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        st = statement(t, "ChatRole", "dynamodb:BatchWriteItem")
        st["Action"].remove("dynamodb:BatchWriteItem")
        self.assertIn(
            "ChatFunction: code calls dynamodb:BatchWriteItem (via delete_conversation), "
            "its role does not grant it",
            drift.action_drift(t),
        )

    def test_an_action_granted_but_never_called_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        statement(t, "ExecRole", "dynamodb:GetItem")["Action"].append("dynamodb:Scan")
        self.assertIn(
            "ExecFunction: role grants dynamodb:Scan, which its code never calls",
            drift.action_drift(t),
        )

    def test_a_new_sdk_call_in_a_store_method_is_drift(self):
        root = scratch_root()
        edit(
            root / "crates/bastion-store/src/dynamodb/counters.rs",
            ".update_item()",
            ".scan().update_item()",
        )
        found = drift.action_drift(TEMPLATE, root)
        self.assertIn(
            "ExecFunction: code calls dynamodb:Scan (via hit), its role does not grant it", found
        )

    def test_the_index_query_needs_the_index_resource(self):
        t = copy.deepcopy(TEMPLATE)
        policies = t["Resources"]["AuthRole"]["Properties"]["Policies"]
        stmts = next(p for p in policies if p["PolicyName"] == "table")["PolicyDocument"]
        stmts["Statement"] = [
            s for s in stmts["Statement"] if "/index/" not in " ".join(drift._scalars(s["Resource"]))
        ]
        self.assertIn(
            "AuthFunction: code calls dynamodb:Query(index) (via list_for_day), "
            "its role does not grant it",
            drift.action_drift(t),
        )


class LeadingKeyDrift(unittest.TestCase):
    def test_a_prefix_missing_from_leading_keys_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        for st in drift._statements(t["Resources"]["WebhooksRole"]["Properties"]):
            keys = st.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys", [])
            if "IDEMP#*" in keys:
                keys.remove("IDEMP#*")
        self.assertIn(
            "WebhooksFunction: code touches IDEMP#* (via claim_delivery, complete_delivery, "
            "release_delivery), its role's LeadingKeys do not allow it",
            drift.leading_key_drift(t),
        )

    def test_a_prefix_allowed_but_never_touched_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        st = statement(t, "ExecRole", "dynamodb:GetItem")
        st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"].append("EMAIL#*")
        self.assertIn(
            "ExecFunction: LeadingKeys allow EMAIL#*, which its code never touches",
            drift.leading_key_drift(t),
        )

    def test_a_table_statement_without_leading_keys_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        del statement(t, "ChatRole", "dynamodb:GetItem")["Condition"]
        self.assertIn(
            "ChatFunction: its table statement has no dynamodb:LeadingKeys condition",
            drift.leading_key_drift(t),
        )

    def test_a_new_port_method_without_prefixes_is_drift(self):
        root = scratch_root()
        edit(
            root / "crates/bastion-store/src/users.rs",
            "    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError>;",
            "    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError>;\n"
            "    async fn export_user(&self, id: &UserId) -> Result<(), StoreError>;",
        )
        self.assertIn(
            "port method export_user has no entry in iam.PORT_ACCESS",
            drift.leading_key_drift(TEMPLATE, root),
        )


class WorkspaceBucketDrift(unittest.TestCase):
    def bucket(self, t: dict) -> dict:
        return t["Resources"]["WorkspaceBucket"]["Properties"]

    def bucket_policy(self, t: dict) -> list:
        return t["Resources"]["WorkspaceBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]

    def test_a_bucket_without_kms_default_encryption_or_bucket_key_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        rule = self.bucket(t)["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        rule["ServerSideEncryptionByDefault"] = {"SSEAlgorithm": "AES256"}
        expected = "WorkspaceBucket: default encryption is not SSE-KMS under DataKey with BucketKeyEnabled"
        self.assertIn(expected, drift.workspace_bucket_drift(t))
        t = copy.deepcopy(TEMPLATE)
        del self.bucket(t)["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["BucketKeyEnabled"]
        self.assertIn(expected, drift.workspace_bucket_drift(t))

    def test_each_public_access_setting_left_off_is_drift(self):
        for setting in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            t = copy.deepcopy(TEMPLATE)
            self.bucket(t)["PublicAccessBlockConfiguration"][setting] = False
            self.assertEqual(
                drift.workspace_bucket_drift(t),
                [f"WorkspaceBucket: public access block {setting} is not true"],
            )

    def test_object_ownership_other_than_owner_enforced_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        self.bucket(t)["OwnershipControls"]["Rules"][0]["ObjectOwnership"] = "ObjectWriter"
        self.assertEqual(
            drift.workspace_bucket_drift(t),
            ["WorkspaceBucket: object ownership is not BucketOwnerEnforced"],
        )

    def test_a_bucket_policy_without_the_tls_or_key_denials_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        statements = self.bucket_policy(t)
        statements[:] = [st for st in statements if st["Sid"] != "TlsOnly"]
        self.assertEqual(
            drift.workspace_bucket_drift(t),
            ["WorkspaceBucket: no bucket policy denies requests without TLS (aws:SecureTransport)"],
        )
        t = copy.deepcopy(TEMPLATE)
        statements = self.bucket_policy(t)
        statements[:] = [st for st in statements if st["Sid"] != "PutsUseTheStackKey"]
        self.assertEqual(
            drift.workspace_bucket_drift(t),
            ["WorkspaceBucket: no bucket policy denies puts not encrypted under DataKey"],
        )

    def test_the_bucket_name_in_another_functions_environment_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        env = t["Resources"]["ChatFunction"]["Properties"]["Environment"]["Variables"]
        env["WORKSPACE_BUCKET"] = "x"
        self.assertEqual(
            drift.workspace_bucket_drift(t),
            ["ChatFunction: WORKSPACE_BUCKET set in its environment"],
        )
        t = copy.deepcopy(TEMPLATE)
        del t["Resources"]["ExecFunction"]["Properties"]["Environment"]["Variables"]["WORKSPACE_BUCKET"]
        self.assertEqual(
            drift.workspace_bucket_drift(t),
            ["ExecFunction: WORKSPACE_BUCKET missing in its environment"],
        )

    def test_s3_access_in_another_role_or_beyond_the_bucket_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        grant = copy.deepcopy(statement(t, "ExecRole", "s3:GetObject"))
        t["Resources"]["AuthRole"]["Properties"]["Policies"].append(
            {"PolicyName": "files", "PolicyDocument": {"Statement": [grant]}}
        )
        self.assertEqual(
            drift.workspace_bucket_drift(t),
            ["AuthFunction: its role grants s3:GetObject, s3:PutObject, s3:DeleteObject; only exec's may"],
        )
        t = copy.deepcopy(TEMPLATE)
        statement(t, "ExecRole", "s3:GetObject")["Resource"] = "*"
        self.assertEqual(
            drift.workspace_bucket_drift(t),
            ["ExecFunction: an S3 grant reaches beyond WorkspaceBucket or uses a wildcard action"],
        )

    def test_exec_kms_use_not_limited_to_s3_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        [workspaces] = [
            p for p in t["Resources"]["ExecRole"]["Properties"]["Policies"]
            if p["PolicyName"] == "workspaces"
        ]
        [kms] = [st for st in workspaces["PolicyDocument"]["Statement"] if "kms:Decrypt" in st["Action"]]
        del kms["Condition"]
        self.assertEqual(
            drift.workspace_bucket_drift(t),
            [
                "ExecFunction: a KMS grant is not limited to one service (kms:ViaService)",
                "ExecFunction: its role cannot use DataKey through S3 for the bucket",
            ],
        )


class MetricFilterDrift(unittest.TestCase):
    def test_a_filter_on_a_value_the_code_never_logs_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        t["Resources"]["LoginFailuresMetric"]["Properties"]["FilterPattern"] = (
            '{ $.fields.audit = "login_fail" }'
        )
        self.assertIn(
            "LoginFailuresMetric: the code never emits the value 'login_fail'",
            drift.metric_filter_drift(t),
        )

    def test_a_filter_on_a_field_the_code_never_logs_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        t["Resources"]["WebhookRejectedMetric"]["Properties"]["FilterPattern"] = (
            '{ $.fields.event_name = "webhook_rejected" }'
        )
        self.assertIn(
            "WebhookRejectedMetric: no log line in the code has a field 'event_name'",
            drift.metric_filter_drift(t),
        )

    def test_an_alarm_on_a_metric_nothing_makes_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        self.assertEqual(drift.metric_filter_drift(t), [])
        t["Resources"]["SecretStaleAlarm"]["Properties"]["MetricName"] = "SecretAge"
        t["Resources"]["FunctionServerErrorsAlarm"]["Properties"]["Metrics"][1]["MetricStat"][
            "Metric"
        ]["MetricName"] = "Auth500"
        self.assertEqual(
            drift.metric_filter_drift(t),
            [
                "SecretStaleAlarm: alarms on 'SecretAge', which no metric filter makes and the "
                "code never writes",
                "FunctionServerErrorsAlarm: alarms on 'Auth500', which no metric filter makes and "
                "the code never writes",
            ],
        )


class DeploySettingsDrift(unittest.TestCase):
    def test_a_template_timeout_unlike_the_cargo_lambda_one_is_drift(self):
        t = copy.deepcopy(TEMPLATE)
        t["Resources"]["ExecFunction"]["Properties"]["Timeout"] = 20
        self.assertIn(
            "ExecFunction: Timeout 20 but cargo-lambda timeout 29",
            drift.deploy_settings_drift(t),
        )


class RustReading(unittest.TestCase):
    def test_braces_inside_strings_and_chars_do_not_end_a_body(self):
        src = 'fn a() { let s = "}{"; let c = \'}\'; let r = r#"}"#; /* } */ x() }\nfn b() {}'
        self.assertEqual(drift.fn_bodies(src)["a"][0].count("x()"), 1)
        self.assertIn("b", drift.fn_bodies(src))

    def test_test_modules_are_not_read_as_code(self):
        src = 'fn live() {}\n#[cfg(test)]\nmod tests { fn only_in_tests() { env.required("X_Y") } }'
        stripped = drift.strip_tests(src)
        self.assertIn("live", stripped)
        self.assertNotIn("X_Y", stripped)


if __name__ == "__main__":
    unittest.main()
